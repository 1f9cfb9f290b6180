// The coordinator pod's side of Swarm status: progress (agents, delivery,
// delivered indexes, failures, the run's result), applied with its own field
// manager so it never touches the operator's decisions. Throttled: at most one
// write per interval, whatever the rate of responses.
import { GROUP_VERSION } from '../api/common.js';
import { resourcePath } from '../k8s/client.js';
import { compressRanges, expandRanges } from '../util/ranges.js';
import type { SwarmStatusT } from '../api/swarm.js';
import type { AgentResponse } from '../coordination/types.js';
import type { KubeClient } from '../k8s/client.js';

export const COORDINATOR_FIELD_MANAGER = 'cfn-coordinator';
const MAX_FAILED_LISTED = 50;

export interface PublisherOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  total: number;
  /** This coordinator's pod (status.progressPod): tells the operator it runs, even before a readiness probe passes. */
  pod?: string;
  /** What an earlier coordinator of this swarm already published (resume). */
  previous?: Pick<SwarmStatusT, 'agents' | 'completedAgents' | 'failedAgents' | 'coordinationTimeMs' | 'interruptedAgents'>;
  delivered?: Iterable<number>;
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

export class StatusPublisher {
  private readonly delivered: Set<number>;
  private completed: number;
  private failed: number;
  private readonly failedAgents: Array<{ index: number; reason: string }>;
  /** Agents cut short by a stop of this or an earlier coordinator: they run again. */
  private readonly interrupted: Set<number>;
  private readonly startedAt = Date.now();
  private readonly priorMs: number;
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PublisherOptions) {
    this.delivered = new Set(opts.delivered ?? []);
    this.completed = opts.previous?.agents?.completed ?? 0;
    this.failed = opts.previous?.agents?.failed ?? 0;
    this.failedAgents = [...(opts.previous?.failedAgents ?? [])];
    this.priorMs = opts.previous?.coordinationTimeMs ?? 0;
    this.interrupted = new Set(expandRanges(opts.previous?.interruptedAgents ?? ''));
  }

  /** Agents this coordinator's stop cut short (published with the next write). */
  onInterrupted(indexes: Iterable<number>): void {
    for (const i of indexes) this.interrupted.add(i);
    this.schedule();
  }

  /** Indexes already delivered: the coordinator skips them. */
  deliveredIndexes(): number[] {
    return [...this.delivered];
  }

  onResponse(r: AgentResponse): void {
    if (this.delivered.has(r.index)) return;
    this.delivered.add(r.index);
    if (r.status === 'completed') this.completed++;
    else {
      this.failed++;
      if (this.failedAgents.length < MAX_FAILED_LISTED) this.failedAgents.push({ index: r.index, reason: (r.error ?? `exit code ${r.exitCode}`).slice(0, 1024) });
    }
    this.schedule();
  }

  /** Writes now (and waits), with the run's final result when given. */
  async flush(result?: NonNullable<SwarmStatusT['result']>): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = false;
    const body = this.body(result);
    this.writing = this.writing.then(() => this.write(body));
    await this.writing;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.dirty) return;
      this.flush().catch((e: unknown) => this.opts.onError?.(e));
    }, this.opts.intervalMs ?? 1000);
  }

  private body(result?: NonNullable<SwarmStatusT['result']>): SwarmStatusT {
    const total = this.opts.total;
    return {
      agents: { total, completed: this.completed, failed: this.failed },
      deliveryRate: total === 0 ? 100 : Math.round((this.delivered.size / total) * 10000) / 100,
      coordinationTimeMs: this.priorMs + (Date.now() - this.startedAt),
      completedAgents: compressRanges(this.delivered),
      ...(this.failedAgents.length ? { failedAgents: this.failedAgents } : {}),
      ...(this.interrupted.size ? { interruptedAgents: compressRanges(this.interrupted), rerunAgents: this.interrupted.size } : {}),
      ...(result ? { result } : {}),
      ...(this.opts.pod ? { progressPod: this.opts.pod } : {}),
    };
  }

  private async write(status: SwarmStatusT): Promise<void> {
    await this.opts.client.apply(
      resourcePath({ group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'swarms', namespace: this.opts.namespace, name: this.opts.name }),
      { apiVersion: GROUP_VERSION, kind: 'Swarm', metadata: { name: this.opts.name, namespace: this.opts.namespace }, status },
      { fieldManager: COORDINATOR_FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }
}
