// The event recorder against a real API server: aggregation of repeats, a
// burst written a few at a time behind the reconciles, overflow counted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EventRecorder } from '../../../operator/k8s/events.js';
import { client, createNamespace, deleteNamespace } from '../operator/harness.js';
import type { KubeClient } from '../../../operator/k8s/client.js';

const c = client();
let ns: string;
beforeAll(async () => {
  ns = await createNamespace(c, 'events');
});
afterAll(() => deleteNamespace(c, ns));

interface EventItem {
  reason: string;
  message: string;
  count: number;
  involvedObject: { name: string };
}
const listEvents = async (k: KubeClient, namespace: string) =>
  ((await k.get(`/api/v1/namespaces/${namespace}/events`)) as unknown as { items: EventItem[] }).items;
const obj = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', name, namespace: ns });

describe('EventRecorder', () => {
  it('aggregates a repeated event into one with a count', async () => {
    const r = new EventRecorder(c, 'test');
    for (let i = 0; i < 3; i++) await r.record(obj('agg'), 'Normal', 'Repeated', 'the same message');
    const mine = (await listEvents(c, ns)).filter((e) => e.involvedObject.name === 'agg');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ reason: 'Repeated', count: 3 });
  });

  it('writes a burst of 60 events at most `concurrency` at a time, all of them', async () => {
    let inFlight = 0;
    let peak = 0;
    const counting = Object.create(c) as KubeClient;
    counting.create = async (...args: Parameters<KubeClient['create']>) => {
      peak = Math.max(peak, ++inFlight);
      try {
        return await c.create(...args);
      } finally {
        inFlight--;
      }
    };
    const r = new EventRecorder(counting, 'test', undefined, { concurrency: 3 });
    const all = Array.from({ length: 60 }, (_, i) => r.record(obj(`burst-${i}`), 'Normal', 'Burst', `event ${i}`));
    await r.idle();
    await Promise.all(all);
    expect(peak).toBe(3);
    expect((await listEvents(c, ns)).filter((e) => e.reason === 'Burst')).toHaveLength(60);
  });

  it('drops the oldest queued event when the queue is full, counts it and says so', async () => {
    const errors: string[] = [];
    const r = new EventRecorder(c, 'test', (e) => errors.push(String(e)), { concurrency: 1, capacity: 2 });
    const all = Array.from({ length: 5 }, (_, i) => r.record(obj(`full-${i}`), 'Warning', 'Full', `event ${i}`));
    await Promise.all(all);
    await r.idle();
    // One in flight, two queued: the 4th and 5th push out the 2nd and 3rd.
    expect(r.dropped).toBe(2);
    expect(errors.filter((e) => /event queue full/.test(e))).toHaveLength(2);
    const written = (await listEvents(c, ns))
      .filter((e) => e.reason === 'Full')
      .map((e) => e.involvedObject.name)
      .sort();
    expect(written).toEqual(['full-0', 'full-3', 'full-4']);
  });
});
