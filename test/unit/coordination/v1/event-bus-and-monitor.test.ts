import { describe, expect, it } from '@jest/globals';
import { EventBus } from '../../../../operator/coordination/v1/event-bus.js';
import type { SwarmEvents } from '../../../../operator/coordination/v1/event-bus.js';
import { SwarmMonitor } from '../../../../operator/coordination/v1/swarm-monitor.js';

describe('EventBus', () => {
  it('delivers typed payloads and unsubscribes', () => {
    const bus = new EventBus();
    const got: Array<SwarmEvents['coordination:fallback']> = [];
    const off = bus.subscribe('coordination:fallback', (e) => got.push(e));
    bus.publish('coordination:fallback', { from: 'v2', to: 'v1', reason: '/dev/shm/cfn not writable', timestamp: 1 });
    off();
    bus.publish('coordination:fallback', { from: 'v2', to: 'v1', reason: 'again', timestamp: 2 });
    expect(got).toEqual([{ from: 'v2', to: 'v1', reason: '/dev/shm/cfn not writable', timestamp: 1 }]);
    expect(bus.listenerCount('coordination:fallback')).toBe(0);
  });
});

describe('SwarmMonitor', () => {
  it('counts agents, retries and timeouts, and derives durations and throughput', () => {
    let now = 1000;
    const m = new SwarmMonitor(() => now);
    for (let i = 0; i < 4; i++) m.agentStarted();
    m.agentRetried(true);
    now = 1500;
    m.agentFinished(true, 100);
    m.agentFinished(true, 200);
    m.agentFinished(false, 300);
    expect(m.snapshot()).toMatchObject({ started: 4, completed: 2, failed: 1, retries: 1, timeouts: 1, running: 1 });
    now = 2000;
    m.agentFinished(true, 400);
    const s = m.snapshot();
    expect(s.durationMs).toEqual({ count: 4, min: 100, max: 400, mean: 250, p50: 300, p95: 400 });
    expect(s.elapsedMs).toBe(1000);
    expect(s.throughputAgentsPerSec).toBe(4);
  });
});
