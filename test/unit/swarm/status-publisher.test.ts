// What a replacement coordinator resumes past: the completed and the finally
// failed indexes of the status an earlier coordinator published.
import { describe, expect, it } from '@jest/globals';
import { finalIndexes } from '../../../operator/swarm/status-publisher.js';

describe('finalIndexes', () => {
  it('reads completedAgents and failedIndexes apart', () => {
    expect(finalIndexes({ completedAgents: '0-2,5', failedIndexes: '3-4' })).toEqual({ completed: [0, 1, 2, 5], failed: [3, 4] });
    expect(finalIndexes({ completedAgents: '', failedIndexes: '0-1' })).toEqual({ completed: [], failed: [0, 1] });
    expect(finalIndexes(undefined)).toEqual({ completed: [], failed: [] });
  });

  it('reads a status from before failedIndexes (completedAgents held every final agent): its failedAgents count as failed', () => {
    const old = { completedAgents: '0-4', failedAgents: [{ index: 1, reason: 'exit code 1' }, { index: 3, reason: 'exit code 2' }] };
    expect(finalIndexes(old)).toEqual({ completed: [0, 2, 4], failed: [1, 3] });
    expect(finalIndexes({ completedAgents: '0-1' })).toEqual({ completed: [0, 1], failed: [] });
  });
});
