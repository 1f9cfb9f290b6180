// The leader elector's rules against an in-memory Lease server over HTTP
// (memory-api-server.ts; test/integration/k8s runs it against a real API
// server): it creates a missing Lease, renews its own, leaves a live Lease of
// another holder alone and takes over an expired one (acquireTime,
// leaseTransitions + 1); of two racing candidates one wins; another holder
// ends its term at once; an API server unreachable past the renew deadline
// ends it too; an ended term never campaigns again; stop() releases the Lease.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { LeaderElector } from '../../../operator/k8s/leader-election.js';
import { MemoryApiServer, until } from './memory-api-server.js';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/ops/leases';

interface LeaseSpec {
  holderIdentity?: string;
  renewTime?: string;
  acquireTime?: string;
  leaseDurationSeconds?: number;
  leaseTransitions?: number;
}

const server = new MemoryApiServer();
const electors: LeaderElector[] = [];
beforeAll(() => server.start());
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop();
  server.down = false;
});
afterAll(() => server.stop());

const lease = (name: string): { spec: LeaseSpec; metadata: { resourceVersion?: string } } | undefined =>
  server.get(`${LEASES}/${name}`) as { spec: LeaseSpec; metadata: { resourceVersion?: string } } | undefined;
const microTime = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

/** A candidate on lease `name`, with a log of its callbacks and a count of its requests. */
function candidate(name: string, identity: string, timing = { lease: 0.6, renew: 0.4, retry: 0.05 }) {
  const client = server.client();
  let requests = 0;
  client.onRequest = () => requests++;
  const log: string[] = [];
  const errors: unknown[] = [];
  const e = new LeaderElector({
    client,
    namespace: 'ops',
    name,
    identity,
    leaseDurationSeconds: timing.lease,
    renewDeadlineSeconds: timing.renew,
    retryPeriodSeconds: timing.retry,
    onStartedLeading: () => log.push('started'),
    onStoppedLeading: () => log.push('stopped'),
    onError: (err) => errors.push(err),
  });
  electors.push(e);
  return { e, log, errors, requests: () => requests };
}

describe('LeaderElector', () => {
  it("refuses timings that let a holder lose its term to one slow renew (client-go's checks)", () => {
    const base = { client: server.client(), namespace: 'ops', name: 'x', identity: 'a', onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 10, renewDeadlineSeconds: 10 })).toThrow(
      'leaseDuration must be greater than renewDeadline',
    );
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 15, renewDeadlineSeconds: 2, retryPeriodSeconds: 2 })).toThrow(
      'renewDeadline must be greater than 1.2 × retryPeriod',
    );
  });

  it('creates a missing Lease and leads; then renews it (renewTime moves, holder, acquireTime and transitions stay)', async () => {
    const a = candidate('create', 'a');
    a.e.start();
    await until('a leads', () => a.e.isLeader);
    expect(a.log).toEqual(['started']);
    const first = lease('create')!.spec;
    expect(first).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 0.6, leaseTransitions: 0 });
    expect(first.acquireTime).toBe(first.renewTime);
    await until('a renews', () => lease('create')!.spec.renewTime !== first.renewTime);
    expect(lease('create')!.spec).toMatchObject({ holderIdentity: 'a', acquireTime: first.acquireTime, leaseTransitions: 0 });
    expect(a.e.isLeader).toBe(true);
    expect(a.log).toEqual(['started']);
  });

  it('of two candidates for a missing Lease exactly one leads; the other waits while the Lease is renewed', async () => {
    const a = candidate('race', 'a');
    const b = candidate('race', 'b');
    a.e.start();
    b.e.start();
    await until('one leads', () => a.e.isLeader || b.e.isLeader);
    const [leader, standby] = a.e.isLeader ? [a, b] : [b, a];
    const renewals = lease('race')!.metadata.resourceVersion;
    await until('several renewals', () => Number(lease('race')!.metadata.resourceVersion) >= Number(renewals) + 3);
    expect(leader.e.isLeader).toBe(true);
    expect(standby.e.isLeader).toBe(false);
    expect(standby.log).toEqual([]);
    expect(lease('race')!.spec.holderIdentity).toBe(leader === a ? 'a' : 'b');
  });

  it('takes over a Lease whose holder stopped renewing once it expired: acquireTime now, leaseTransitions + 1', async () => {
    // A holder that is gone: its last renew 0.1 s ago, for 0.5 s.
    const renewed = Date.now() - 100;
    server.put(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'expire', namespace: 'ops' },
      spec: {
        holderIdentity: 'gone',
        leaseDurationSeconds: 0.5,
        renewTime: microTime(new Date(renewed)),
        acquireTime: microTime(new Date(0)),
        leaseTransitions: 4,
      },
    });
    const b = candidate('expire', 'b');
    b.e.start();
    await until('b asked while the lease was live', () => b.requests() >= 1);
    await until('b leads', () => b.e.isLeader);
    const spec = lease('expire')!.spec;
    expect(spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
    // Not before the old holder's lease ran out.
    expect(Date.parse(spec.acquireTime!)).toBeGreaterThanOrEqual(renewed + 500);
  });

  it('another holder in the Lease ends the term at once; the elector never campaigns again, even with the Lease free', async () => {
    const a = candidate('intruder', 'a', { lease: 30, renew: 20, retry: 0.05 });
    a.e.start();
    await until('a leads', () => a.e.isLeader);
    const current = lease('intruder')!;
    server.put(LEASES, {
      ...current,
      metadata: { name: 'intruder', namespace: 'ops' },
      spec: { ...current.spec, holderIdentity: 'other', renewTime: microTime(new Date()) },
    });
    // Well within its 20 s renew deadline: the other live holder ends it.
    await until('a stops leading', () => !a.e.isLeader, 2_000);
    expect(a.log).toEqual(['started', 'stopped']);
    expect(a.e.lost).toBe(true);
    server.remove(LEASES, 'intruder');
    const after = a.requests();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.requests()).toBe(after);
    expect(lease('intruder')).toBeUndefined();
  });

  it('an API server unreachable past the renew deadline ends the term; errors are reported meanwhile', async () => {
    const a = candidate('outage', 'a');
    a.e.start();
    await until('a leads', () => a.e.isLeader);
    server.down = true;
    const lastRenew = Date.parse(lease('outage')!.spec.renewTime!);
    await until('a stops leading', () => !a.e.isLeader, 3_000);
    // Not before its renew deadline (0.4 s) after the last renew that landed.
    expect(Date.now()).toBeGreaterThanOrEqual(lastRenew + 400);
    expect(a.log).toEqual(['started', 'stopped']);
    expect(a.e.lost).toBe(true);
    expect(a.errors.length).toBeGreaterThan(0);
    expect(String(a.errors[0])).toContain('ServiceUnavailable');
  });

  it('stop() releases the Lease (no holder, 1 s) so the standby leads at once', async () => {
    const a = candidate('release', 'a', { lease: 30, renew: 20, retry: 0.05 });
    a.e.start();
    await until('a leads', () => a.e.isLeader);
    const b = candidate('release', 'b', { lease: 30, renew: 20, retry: 0.05 });
    b.e.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(b.e.isLeader).toBe(false);
    await a.e.stop();
    expect(a.log).toEqual(['started', 'stopped']);
    // Released: no holder, and 1 s instead of 30 (b's next try sees it free).
    await until('b leads', () => b.e.isLeader, 3_000);
    expect(lease('release')!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('stop() of a candidate that never led leaves the Lease as it is', async () => {
    server.put(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'held', namespace: 'ops' },
      spec: { holderIdentity: 'other', leaseDurationSeconds: 30, renewTime: microTime(new Date()), leaseTransitions: 0 },
    });
    const before = lease('held')!.metadata.resourceVersion;
    const b = candidate('held', 'b');
    b.e.start();
    await until('b asked', () => b.requests() >= 2);
    await b.e.stop();
    expect(b.log).toEqual([]);
    expect(lease('held')!.metadata.resourceVersion).toBe(before);
  });
});
