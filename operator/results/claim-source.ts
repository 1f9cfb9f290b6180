// Reads a swarm's results from its claim without any pod of the swarm: a
// reader pod per page (reader-pod.ts) prints the records, its log is parsed
// (reader-protocol.ts), the pod is deleted. Works from outside the cluster
// with nothing but the API: no exec, no port-forward.
import { z } from 'zod';
import { resourcePath } from '../k8s/client.js';
import { isNotFound } from '../k8s/errors.js';
import { parseReaderLog, PAGE_BYTES } from './reader-protocol.js';
import { READER_CONTAINER, readerPod } from './reader-pod.js';
import type { KubeClient } from '../k8s/client.js';
import type { ReaderPodOptions } from './reader-pod.js';
import type { ResultSource, UnreadableRecord } from './result-sink.js';
import type { StoredResult } from './stored-result.js';

/** The reader pods' settings (every page's pod alike), and how to run them. */
export interface ClaimSourceOptions extends Omit<ReaderPodOptions, 'from' | 'maxBytes'> {
  client: KubeClient;
  /** Per reader pod, from its creation to its end (default 120 s). */
  podTimeoutMs?: number;
  pageBytes?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

/** The reader pod cannot start or finish; the message says why (the scheduler's or kubelet's words). */
export class ReaderPodError extends Error {}

const readerPodShape = z.looseObject({
  status: z
    .looseObject({
      phase: z.string().optional(),
      message: z.string().optional(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() })).optional(),
      containerStatuses: z
        .array(
          z.looseObject({
            state: z
              .looseObject({
                waiting: z.looseObject({ reason: z.string().optional(), message: z.string().optional() }).optional(),
                terminated: z.looseObject({ exitCode: z.number().int(), reason: z.string().optional(), message: z.string().optional() }).optional(),
              })
              .optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});

/** Waiting reasons that will not resolve by themselves: reported at once. */
const HOPELESS = new Set([
  'ErrImageNeverPull',
  'InvalidImageName',
  'ImagePullBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/** Where a reader pod is: done (its phase), hopeless (why), or still on its way (what it waits for). */
export function readerPodProgress(raw: unknown): { done: 'Succeeded' | 'Failed' } | { hopeless: string } | { waiting: string } {
  const status = readerPodShape.safeParse(raw).data?.status ?? {};
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return { done: status.phase };
  const waiting = status.containerStatuses?.[0]?.state?.waiting;
  if (waiting?.reason && HOPELESS.has(waiting.reason)) return { hopeless: `${waiting.reason}: ${waiting.message ?? ''}`.trim() };
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (scheduled) return { waiting: `${scheduled.reason ?? 'Unschedulable'}: ${scheduled.message ?? ''}`.trim() };
  if (waiting?.reason) return { waiting: `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  return { waiting: status.phase ?? 'Pending' };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class ClaimSource implements ResultSource {
  /** Reader pods created so far (one per page). */
  pods = 0;

  constructor(private readonly o: ClaimSourceOptions) {}

  async read(): Promise<{ results: StoredResult[]; unreadable: UnreadableRecord[] }> {
    const results: StoredResult[] = [];
    const unreadable: UnreadableRecord[] = [];
    let from = 0;
    for (;;) {
      const page = await this.page(from);
      results.push(...page.results);
      unreadable.push(...page.unreadable);
      if (!page.end) throw new ReaderPodError(`the reader pod's log ended before its last line (records from index ${from}); read ${results.length} so far`);
      if (page.end.next === null) break;
      if (page.end.next <= from) throw new ReaderPodError(`the reader pod did not advance past index ${from}`);
      from = page.end.next;
    }
    return { results, unreadable };
  }

  private podPath(name?: string, subresource?: string): string {
    return resourcePath({
      group: '',
      version: 'v1',
      plural: 'pods',
      namespace: this.o.namespace,
      ...(name ? { name } : {}),
      ...(subresource ? { subresource } : {}),
    });
  }

  private async page(from: number) {
    const pod = readerPod({
      namespace: this.o.namespace,
      swarm: this.o.swarm,
      claimName: this.o.claimName,
      dir: this.o.dir,
      image: this.o.image,
      ...(this.o.imagePullPolicy ? { imagePullPolicy: this.o.imagePullPolicy } : {}),
      from,
      maxBytes: this.o.pageBytes ?? PAGE_BYTES,
    });
    const name = pod.metadata.name;
    await this.o.client.create(this.podPath(), pod);
    this.pods++;
    try {
      const phase = await this.finished(name);
      const log = await this.o.client.getText(this.podPath(name, 'log'), { container: READER_CONTAINER });
      if (phase === 'Failed') {
        const tail = log.trim().split('\n').slice(-3).join(' | ');
        throw new ReaderPodError(`reader pod ${name} failed${tail ? `: ${tail}` : ''}`);
      }
      return parseReaderLog(log);
    } finally {
      await this.o.client.delete(this.podPath(name), { gracePeriodSeconds: 0 }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }

  private async finished(name: string): Promise<'Succeeded' | 'Failed'> {
    const timeoutMs = this.o.podTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    let last = 'created';
    for (;;) {
      if (this.o.signal?.aborted) throw new ReaderPodError(`interrupted while reader pod ${name} ran`);
      let progress: ReturnType<typeof readerPodProgress>;
      try {
        progress = readerPodProgress(await this.o.client.get(this.podPath(name)));
      } catch (e) {
        if (isNotFound(e)) throw new ReaderPodError(`reader pod ${name} is gone (deleted by someone else?)`);
        throw e;
      }
      if ('done' in progress) return progress.done;
      if ('hopeless' in progress) throw new ReaderPodError(`reader pod ${name} cannot start: ${progress.hopeless} (the image must be on the node: --image)`);
      last = progress.waiting;
      if (Date.now() >= deadline) throw new ReaderPodError(`reader pod ${name} did not finish within ${timeoutMs / 1000}s: ${last}`);
      await sleep(this.o.pollMs ?? 500, this.o.signal);
    }
  }
}
