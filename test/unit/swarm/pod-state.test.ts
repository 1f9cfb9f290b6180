// podState: what the operator reads from a coordinator pod, whoever wrote it.
import { describe, expect, it } from '@jest/globals';
import { podState } from '../../../operator/swarm/pod-state.js';

const pod = (extra: Record<string, unknown> = {}) => ({
  metadata: { name: 's-v2-1', labels: { 'swarm.cfn.dev/version': 'v2', 'swarm.cfn.dev/attempt': '1' }, annotations: { 'swarm.cfn.dev/created-at': '2026-11-25T00:00:00.123Z' } },
  ...extra,
});

describe('podState', () => {
  it('a fresh pod: starting, no node, our millisecond creation stamp', () => {
    expect(podState(pod())).toEqual({ name: 's-v2-1', version: 'v2', attempt: 1, createdAt: Date.parse('2026-11-25T00:00:00.123Z'), condition: { kind: 'starting' } });
  });

  it('a scheduled pod carries its node', () => {
    expect(podState(pod({ spec: { nodeName: 'node-a' }, status: { phase: 'Pending' } }))).toMatchObject({ node: 'node-a', condition: { kind: 'starting' } });
  });

  it('ready, succeeded, preflight-failed (exit 3 with its message) and lost', () => {
    expect(podState(pod({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }))?.condition).toEqual({ kind: 'ready' });
    expect(podState(pod({ status: { phase: 'Succeeded' } }))?.condition).toEqual({ kind: 'succeeded' });
    const term = (exitCode: number, message: string) => ({ status: { phase: 'Failed', containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode, message } } }] } });
    expect(podState(pod(term(3, 'not enough space on /dev/shm\n')))?.condition).toEqual({ kind: 'preflight-failed', reason: 'not enough space on /dev/shm' });
    expect(podState(pod(term(137, 'killed')))?.condition).toMatchObject({ kind: 'lost' });
    expect(podState(pod({ metadata: { ...pod().metadata, deletionTimestamp: '2026-11-25T00:00:01Z' } }))?.condition).toEqual({ kind: 'lost', reason: 'coordinator pod deleted' });
  });

  it('anything that is not a pod is undefined, not a throw', () => {
    expect(podState({ metadata: 'nope' })).toBeUndefined();
  });
});
