// The leader elector against a real API server's Lease: one leader of two
// candidates; a Lease that names another live holder ends the leader's term at
// once (not after its renew deadline); an ended term never campaigns again,
// even with the Lease free; the standby takes over once the other holder's
// lease expires; stop() releases the Lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isConflict } from '../../../operator/k8s/errors.js';
import { LeaderElector } from '../../../operator/k8s/leader-election.js';
import { client, createNamespace, deleteNamespace, waitFor } from '../operator/harness.js';

const c = client();
let ns: string;
const electors: LeaderElector[] = [];
beforeAll(async () => {
  ns = await createNamespace(c, 'lease');
});
afterAll(async () => {
  for (const e of electors) await e.stop();
  await deleteNamespace(c, ns);
});

interface Lease {
  spec: { holderIdentity?: string; renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}
const leasePath = (name: string) => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}`;
const microTime = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

/** A candidate with its own client (so its requests can be counted) and a log of its callbacks. */
function candidate(name: string, identity: string) {
  const own = client();
  let requests = 0;
  own.onRequest = (_m: string, path: string) => {
    if (path.includes('/leases')) requests++;
  };
  const log: string[] = [];
  const e = new LeaderElector({
    client: own,
    namespace: ns,
    name,
    identity,
    leaseDurationSeconds: 3,
    renewDeadlineSeconds: 2,
    retryPeriodSeconds: 0.2,
    onStartedLeading: () => log.push('started'),
    onStoppedLeading: () => log.push('stopped'),
  });
  electors.push(e);
  e.start();
  return { e, log, requests: () => requests };
}

describe('LeaderElector', () => {
  it('refuses timings that let a holder lose its term to one slow renew (as client-go)', () => {
    const base = { client: c, namespace: 'x', name: 'y', identity: 'z', onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 2, renewDeadlineSeconds: 2 })).toThrow(/leaseDuration must be greater than renewDeadline/);
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 4, renewDeadlineSeconds: 2, retryPeriodSeconds: 2 })).toThrow(
      /renewDeadline must be greater than 1.2/,
    );
  });

  it('one term per elector: another holder ends it at once, it never campaigns again, and the standby takes over', async () => {
    const a = candidate('term', 'a');
    await waitFor('a leads', () => a.e.isLeader || undefined, 10_000);
    const b = candidate('term', 'b');
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.e.isLeader).toBe(false);
    expect(b.log).toEqual([]);

    // Another holder writes the Lease, as a successor's elector would.
    // a renews every 0.2 s: read, write, and read again when a's renew came in between (a 409), as an elector does.
    await waitFor(
      'the intruder holds the Lease',
      async () => {
        const lease = await c.get<Lease & Record<string, unknown>>(leasePath('term'));
        const now = new Date();
        lease.spec = { ...lease.spec, holderIdentity: 'intruder', renewTime: microTime(now), acquireTime: microTime(now), leaseDurationSeconds: 3 };
        return c.request({ method: 'PUT', path: leasePath('term'), body: lease }).then(
          () => true,
          (e: unknown) => {
            if (isConflict(e)) return undefined;
            throw e;
          },
        );
      },
      5000,
      10,
    );
    const takenAt = Date.now();
    await waitFor('a steps down', () => (a.e.isLeader ? undefined : true), 5000, 20);
    // Within a retry period or two, well before a's renew deadline (2 s) would have ended it.
    expect(Date.now() - takenAt).toBeLessThan(1500);
    expect(a.log).toEqual(['started', 'stopped']);
    expect(a.e.lost).toBe(true);

    // The intruder's lease expires: b takes over; a, its term over, never asks again.
    const requestsAfterTerm = a.requests();
    await waitFor('b leads', () => b.e.isLeader || undefined, 10_000, 50);
    expect(Date.now() - takenAt).toBeGreaterThanOrEqual(3000 - 300);
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.requests()).toBe(requestsAfterTerm);
    expect(a.e.isLeader).toBe(false);
    expect(a.log).toEqual(['started', 'stopped']);
    expect((await c.get<Lease>(leasePath('term'))).spec.holderIdentity).toBe('b');

    // stop() releases the Lease for the next candidate at once.
    await b.e.stop();
    expect(b.log).toEqual(['started', 'stopped']);
    expect((await c.get<Lease>(leasePath('term'))).spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
  });
});
