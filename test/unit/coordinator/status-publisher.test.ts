// What a replacement coordinator resumes past: the completed and the finally
// failed indexes of the status an earlier coordinator published; and where a
// shard's coordinator publishes (its own status.shards entry, its own field
// manager), at what interval.
import { describe, expect, it } from '@jest/globals';
import { finalIndexes, publishIntervalMs, StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import type { KubeClient } from '../../../operator/k8s/client.js';

describe("a shard's coordinator publishes into its own entry", () => {
  const response = (index: number, status: 'completed' | 'failed') => ({
    agentId: `a${index}`,
    index,
    status,
    exitCode: status === 'completed' ? 0 : 1,
    attempts: 1,
    durationMs: 1,
    output: '',
    outputBytes: 0,
    outputTruncated: false,
    error: status === 'failed' ? 'exit code 1' : null,
  });

  it('status.shards[i] with its key, range and progress (no deliveryRate), field manager cfn-coordinator-s<i>, resuming past its entry', async () => {
    const writes: Array<{ body: unknown; fieldManager: string }> = [];
    const client = {
      apply: async (_p: string, body: unknown, o: { fieldManager: string }) => void writes.push({ body, fieldManager: o.fieldManager }),
    } as unknown as KubeClient;
    const pub = new StatusPublisher({
      client,
      namespace: 'ns',
      name: 's',
      total: 3,
      pod: 's-v2-2-s1',
      shard: { index: 1, indexes: '3-5' },
      previous: { agents: { total: 3, completed: 1, failed: 0 }, completedAgents: '3' },
    });
    expect(pub.completedIndexes()).toEqual([3]);
    pub.onResponse(response(4, 'completed'));
    pub.onResponse(response(5, 'failed'));
    await pub.flush({ status: 'completed' });
    pub.stop();
    expect(writes).toHaveLength(1);
    expect(writes[0]!.fieldManager).toBe('cfn-coordinator-s1');
    expect(writes[0]!.body).toMatchObject({
      status: {
        shards: [
          {
            index: 1,
            indexes: '3-5',
            agents: { total: 3, completed: 2, failed: 1 },
            completedAgents: '3-4',
            failedIndexes: '5',
            failedAgents: [{ index: 5, reason: 'exit code 1' }],
            result: { status: 'completed' },
            progressPod: 's-v2-2-s1',
          },
        ],
      },
    });
    expect(Object.keys((writes[0]!.body as { status: object }).status)).toEqual(['shards']);
    expect((writes[0]!.body as { status: { shards: Array<Record<string, unknown>> } }).status.shards[0]).not.toHaveProperty('deliveryRate');
  });

  it('the interval grows with the shards: max(1 s, shards x 100 ms)', () => {
    expect([1, 3, 10, 11, 100].map(publishIntervalMs)).toEqual([1000, 1000, 1000, 1100, 10000]);
  });
});

describe('finalIndexes', () => {
  it('reads completedAgents and failedIndexes apart', () => {
    expect(finalIndexes({ completedAgents: '0-2,5', failedIndexes: '3-4' })).toEqual({ completed: [0, 1, 2, 5], failed: [3, 4] });
    expect(finalIndexes({ completedAgents: '', failedIndexes: '0-1' })).toEqual({ completed: [], failed: [0, 1] });
    expect(finalIndexes(undefined)).toEqual({ completed: [], failed: [] });
  });

  it('reads a status from before failedIndexes (completedAgents held every final agent): its failedAgents count as failed', () => {
    const old = {
      completedAgents: '0-4',
      failedAgents: [
        { index: 1, reason: 'exit code 1' },
        { index: 3, reason: 'exit code 2' },
      ],
    };
    expect(finalIndexes(old)).toEqual({ completed: [0, 2, 4], failed: [1, 3] });
    expect(finalIndexes({ completedAgents: '0-1' })).toEqual({ completed: [0, 1], failed: [] });
  });
});
