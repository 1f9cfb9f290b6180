// Leader election on a coordination.k8s.io/v1 Lease, like client-go's: the
// holder renews before leaseDuration passes; others take over once it has.
// Updates carry the resourceVersion read, so two candidates never both win.
// One term per elector, as client-go's RunOrDie: once it stops leading (the
// renew deadline passed, or the Lease names another live holder) it stops
// campaigning; the process that owns it ends and a fresh one campaigns.
import { isConflict, isNotFound } from './errors.js';
import { resourcePath } from './client.js';
import type { KubeClient } from './client.js';

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = (d = new Date()): string => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private termOver = false;
  private timer: NodeJS.Timeout | undefined;
  /** The tick under way: stop() lets its write land before releasing (else the two race and the release loses a 409). */
  private ticking: Promise<void> = Promise.resolve();
  private lastRenew = 0;
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDuration = (opts.leaseDurationSeconds ?? 15) * 1000;
    this.renewDeadline = (opts.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriod = (opts.retryPeriodSeconds ?? 2) * 1000;
    // client-go's checks: a holder must renew before others may take over, and try
    // more than once within its deadline (a single slow renew must not end its term).
    if (!(this.leaseDuration > this.renewDeadline)) throw new Error('leader election: leaseDuration must be greater than renewDeadline');
    if (!(this.renewDeadline > 1.2 * this.retryPeriod)) throw new Error('leader election: renewDeadline must be greater than 1.2 × retryPeriod');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** True once this elector led and stopped leading: it never campaigns again. */
  get lost(): boolean {
    return this.termOver;
  }

  start(): void {
    this.ticking = this.tick();
  }

  /** Stops campaigning and, when leading, releases the lease so a successor starts at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // Bounded: a tick stuck on an unreachable API server must not hold up shutdown.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([this.ticking, new Promise<void>((r) => (bound = setTimeout(r, this.renewDeadline)))]);
    clearTimeout(bound);
    if (this.leading) {
      try {
        // A write of ours may still land between the read and the release: read again on a conflict.
        for (let attempt = 0; attempt < 3; attempt++) {
          const lease = await this.read();
          if (lease?.spec.holderIdentity !== this.opts.identity) break;
          lease.spec.holderIdentity = '';
          lease.spec.leaseDurationSeconds = 1;
          try {
            await this.opts.client.request({ method: 'PUT', path: this.path(), body: lease });
            break;
          } catch (e) {
            if (!isConflict(e)) throw e;
          }
        }
      } catch (e) {
        this.opts.onError?.(e);
      }
      this.setLeading(false);
    }
  }

  private path(): string {
    return resourcePath({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: this.opts.namespace, name: this.opts.name });
  }

  private async read(): Promise<Lease | undefined> {
    try {
      return await this.opts.client.get<Lease>(this.path());
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.termOver) return;
    try {
      const r = await this.tryAcquireOrRenew();
      if (this.stopped) return;
      if (r === 'held') this.lastRenew = Date.now();
      if (r === 'held' && !this.leading) this.setLeading(true);
      // Another live holder: this process leads no more, whatever its deadline says.
      else if (r === 'other' && this.leading) this.setLeading(false);
      else if (r !== 'held' && this.leading && Date.now() - this.lastRenew > this.renewDeadline) this.setLeading(false);
    } catch (e) {
      this.opts.onError?.(e);
      if (this.leading && Date.now() - this.lastRenew > this.renewDeadline) this.setLeading(false);
    }
    if (!this.stopped && !this.termOver) this.timer = setTimeout(() => (this.ticking = this.tick()), this.retryPeriod);
  }

  /** held: this identity holds the Lease now; other: another live holder does; conflict: a concurrent write won. */
  private async tryAcquireOrRenew(): Promise<'held' | 'other' | 'conflict'> {
    const now = new Date();
    const lease = await this.read();
    const spec = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: this.leaseDuration / 1000,
      renewTime: microTime(now),
    };
    if (!lease) {
      const body: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
      };
      try {
        await this.opts.client.create(resourcePath({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: this.opts.namespace }), body);
        return 'held';
      } catch (e) {
        if (isConflict(e)) return 'conflict';
        throw e;
      }
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const duration = (lease.spec.leaseDurationSeconds ?? 0) * 1000;
    const held = holder !== '' && holder !== this.opts.identity && renewed + duration > now.getTime();
    if (held) return 'other';
    const takingOver = holder !== this.opts.identity;
    lease.spec = {
      ...lease.spec,
      ...spec,
      ...(takingOver ? { acquireTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      // PUT with the resourceVersion read: a concurrent writer makes this a 409.
      await this.opts.client.request({ method: 'PUT', path: this.path(), body: lease });
      return 'held';
    } catch (e) {
      if (isConflict(e)) return 'conflict';
      throw e;
    }
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    if (v) return this.opts.onStartedLeading();
    this.termOver = true;
    if (this.timer) clearTimeout(this.timer);
    this.opts.onStoppedLeading();
  }
}
