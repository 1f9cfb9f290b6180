import { createDefaultEsmPreset } from 'ts-jest';

const preset = createDefaultEsmPreset({ tsconfig: 'tsconfig.json' });
const common = {
  ...preset,
  testEnvironment: 'node',
  // Not the whole tree: .local/ holds etcd data whose *.snap files jest would take for snapshots.
  roots: ['<rootDir>/test', '<rootDir>/operator'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/** @type {import('jest').Config} */
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // One local control plane per run (test/cluster/cluster.sh), via KUBECONFIG.
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      // test/e2e/nodes/ needs several nodes: the e2e-nodes project.
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/nodes/'],
      // A cluster with a real node, the image and the chart (test/e2e/setup.sh), or E2E_KUBECONFIG.
      globalSetup: '<rootDir>/test/e2e/global-setup.ts',
      globalTeardown: '<rootDir>/test/e2e/global-teardown.ts',
      // No retries: a test that fails once is a defect to fix, never retried away.
    },
    {
      ...common,
      displayName: 'e2e-nodes',
      testMatch: ['<rootDir>/test/e2e/nodes/**/*.test.ts'],
      // The same setup with E2E_NODES nodes (npm run test:e2e:nodes: 3, instance e2e3).
      globalSetup: '<rootDir>/test/e2e/global-setup.ts',
      globalTeardown: '<rootDir>/test/e2e/global-teardown.ts',
    },
  ],
};
