// Safety net for the real-node suite only: a test that fails is run once more,
// with the first attempt's errors logged, and retry-reporter.js lists every
// retried test at the end of the run. A retry is a finding to understand, not
// a pass to forget (test/e2e/README.md).
import { jest } from '@jest/globals';

jest.retryTimes(1, { logErrorsBeforeRetry: true });
