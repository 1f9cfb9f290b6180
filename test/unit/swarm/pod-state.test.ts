// podState: what the operator reads from a coordinator pod, whoever wrote it
// (API server, scheduler, kubelet). The kind decides between a fallback (V2's
// own failure), a replacement (lost from outside) and waiting (not started).
import { describe, expect, it } from '@jest/globals';
import { podState } from '../../../operator/swarm/pod-state.js';

const meta = {
  name: 's-v2-1',
  labels: { 'swarm.cfn.dev/version': 'v2', 'swarm.cfn.dev/attempt': '1' },
  annotations: { 'swarm.cfn.dev/created-at': '2026-11-25T00:00:00.123Z' },
};
const pod = (extra: Record<string, unknown> = {}) => ({ metadata: meta, ...extra });
const condition = (extra: Record<string, unknown>) => podState(pod(extra))?.condition;
const container = (state: Record<string, unknown>) => ({ containerStatuses: [{ name: 'coordinator', state }] });
const waitingOn = (reason: string, message?: string) => ({
  spec: { nodeName: 'node-a' },
  status: { phase: 'Pending', ...container({ waiting: { reason, ...(message ? { message } : {}) } }) },
});
const failed = (exitCode: number, extra: Record<string, unknown> = {}, term: Record<string, unknown> = {}) => ({
  status: { phase: 'Failed', ...container({ terminated: { exitCode, ...term } }), ...extra },
});

describe('podState', () => {
  it('a fresh pod: starting, not scheduled yet, our millisecond creation stamp', () => {
    expect(podState(pod())).toEqual({
      name: 's-v2-1',
      version: 'v2',
      attempt: 1,
      shard: 0,
      createdAt: Date.parse('2026-11-25T00:00:00.123Z'),
      ended: false,
      condition: { kind: 'starting', reason: 'PodCreated', message: 'waiting to be scheduled' },
    });
  });

  it('a scheduled pod carries its node and is starting while its container is created', () => {
    expect(podState(pod({ spec: { nodeName: 'node-a' }, status: { phase: 'Pending' } }))).toMatchObject({
      node: 'node-a',
      condition: { kind: 'starting', reason: 'Scheduled' },
    });
    expect(condition(waitingOn('ContainerCreating'))).toEqual({ kind: 'starting', reason: 'ContainerCreating', message: 'ContainerCreating on node-a' });
  });

  it("not schedulable: blocked with the scheduler's own reason and message", () => {
    const message = '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.';
    expect(condition({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] } })).toEqual({
      kind: 'blocked',
      reason: 'Unschedulable',
      message,
    });
  });

  it("image and container-config problems: blocked with the kubelet's reason and message", () => {
    for (const reason of ['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError']) {
      expect(condition(waitingOn(reason, `${reason}: details`))).toEqual({ kind: 'blocked', reason, message: `${reason}: details` });
    }
  });

  it('the agent image (an init container) that cannot be pulled: blocked, naming the container; the coordinator waits in PodInitializing', () => {
    const status = {
      phase: 'Pending',
      ...container({ waiting: { reason: 'PodInitializing' } }),
      initContainerStatuses: [
        { name: 'install-launcher', state: { terminated: { exitCode: 0 } } },
        { name: 'agent', state: { waiting: { reason: 'ErrImageNeverPull', message: 'image "team/agent:2" is not present' } } },
      ],
    };
    expect(condition({ spec: { nodeName: 'node-a' }, status })).toEqual({
      kind: 'blocked',
      reason: 'ErrImageNeverPull',
      message: 'container agent: image "team/agent:2" is not present',
    });
  });

  it('a running container is not ready yet: its start time (whole seconds, latest instant) starts the readiness clock', () => {
    expect(condition({ status: { phase: 'Running', ...container({ running: { startedAt: '2026-11-25T00:00:07Z' } }) } })).toEqual({
      kind: 'running',
      startedAt: Date.parse('2026-11-25T00:00:07.999Z'),
    });
    expect(
      condition({
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], ...container({ running: { startedAt: '2026-11-25T00:00:07Z' } }) },
      }),
    ).toEqual({ kind: 'ready' });
  });

  it('succeeded; a container that exited 0 before the phase says so is waited for', () => {
    expect(podState(pod({ status: { phase: 'Succeeded' } }))).toMatchObject({ ended: true, condition: { kind: 'succeeded' } });
    expect(condition({ status: { phase: 'Running', ...container({ terminated: { exitCode: 0 } }) } })).toEqual({
      kind: 'terminating',
      reason: 'coordinator exited 0',
    });
  });

  it("V2's own failures: preflight (exit 3, its message), a crash, an OOM kill", () => {
    expect(condition(failed(3, {}, { message: 'not enough space on /dev/shm\n' }))).toEqual({
      kind: 'preflight-failed',
      reason: 'not enough space on /dev/shm',
    });
    expect(condition(failed(1, {}, { reason: 'Error', message: 'stack\nTypeError: boom\n' }))).toEqual({
      kind: 'crashed',
      reason: 'Error: exit code 1: TypeError: boom',
    });
    expect(condition(failed(137, {}, { reason: 'OOMKilled' }))).toEqual({ kind: 'crashed', reason: 'OOMKilled: exit code 137' });
    // A message taken from the log (FallbackToLogsOnError): a JSON log line gives its msg.
    expect(condition(failed(1, {}, { reason: 'Error', message: '{"level":50,"pid":1,"msg":"engine failed: publish timed out"}\n' }))).toEqual({
      kind: 'crashed',
      reason: 'Error: exit code 1: engine failed: publish timed out',
    });
    expect(podState(pod(failed(137, {}, { reason: 'OOMKilled' })))?.ended).toBe(true);
  });

  it('lost from outside: evicted, preempted, node shutdown, deleted by someone, node lost', () => {
    expect(condition(failed(137, { reason: 'Evicted', message: 'The node was low on resource: memory.' }))).toEqual({
      kind: 'lost',
      reason: 'Evicted: The node was low on resource: memory.',
    });
    expect(
      condition(
        failed(143, {
          conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'preempted by a higher priority pod' }],
        }),
      ),
    ).toEqual({
      kind: 'lost',
      reason: 'PreemptionByScheduler: preempted by a higher priority pod',
    });
    expect(condition({ status: { phase: 'Failed', reason: 'OutOfcpu', message: "Node didn't have enough resource: cpu" } })).toEqual({
      kind: 'lost',
      reason: "OutOfcpu: Node didn't have enough resource: cpu",
    });
    expect(podState({ ...pod(failed(143)), metadata: { ...meta, deletionTimestamp: '2026-11-25T00:00:01Z' } })?.condition).toEqual({
      kind: 'lost',
      reason: 'coordinator pod deleted',
    });
    expect(condition({ spec: { nodeName: 'node-a' }, status: { phase: 'Unknown' } })).toEqual({ kind: 'lost', reason: 'node node-a lost: pod phase Unknown' });
  });

  it('deleted by someone and still running: terminating (its successor waits)', () => {
    const running = { status: { phase: 'Running', ...container({ running: { startedAt: '2026-11-25T00:00:07Z' } }) } };
    expect(podState({ ...pod(running), metadata: { ...meta, deletionTimestamp: '2026-11-25T00:00:09Z' } })).toMatchObject({
      ended: false,
      condition: { kind: 'terminating', reason: 'coordinator pod deleted' },
    });
  });

  it('anything that is not a pod is undefined, not a throw', () => {
    expect(podState({ metadata: 'nope' })).toBeUndefined();
  });
});
