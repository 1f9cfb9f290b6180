// `cfn results SWARM` (also `kubectl swarm results`, and `kubectl swarm logs
// SWARM --agent N`): every agent's stored result, read after the swarm's pods
// are gone, from where status.results says they are (a claim: through a
// short-lived reader pod; S3: directly). `cfn results --dir DIR` is the reader
// pod's side: it prints one page of the directory's records.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { swarm as swarmSchema } from '../api/swarm.js';
import { KubeClient, resourcePath } from '../k8s/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../k8s/errors.js';
import { releaseVersion } from '../util/release-version.js';
import { ClaimSource, ReaderPodError } from '../results/claim-source.js';
import { DirectorySource } from '../results/directory-sink.js';
import { PAGE_BYTES, readerPage } from '../results/reader-protocol.js';
import { S3CredentialsError } from '../results/s3-credentials.js';
import { s3Location } from '../results/s3-location.js';
import { s3ResultsSource } from '../results/s3-results-source.js';
import { S3StoreError } from '../results/s3-store-error.js';
import { resultDir } from '../results/stored-result.js';
import { MergedSource } from '../results/merged-source.js';
import { createdClaimName } from '../results/sink-factory.js';
import { resultsClaimName } from '../swarm/results-claim.js';
import { swarmShardCount, swarmShardRanges } from '../swarm/shards.js';
import { untilSignal } from './operator-command.js';
import { jsonLines, RESULTS_FORMATS, resultsTable, writeOutDir } from './results-format.js';
import { EXIT, UsageError } from './usage-error.js';
import type { Swarm } from '../api/swarm.js';
import type { ResultSource, UnreadableRecord } from '../results/result-sink.js';
import type { StoredResult } from '../results/stored-result.js';
import type { CliIo } from './io.js';

export const RESULTS_HELP = `Usage: cfn results SWARM [options]      (the same as: kubectl swarm results SWARM)

Prints every agent's stored result of a Swarm, one JSON line per agent index
(ascending), also after all the swarm's pods are gone. Results on a claim are
read by a short-lived reader pod (the operator image, the claim mounted
read-only, restricted Pod Security Standard), deleted when done. A sharded
swarm's results are one set: each shard's claim is read (a reader pod each)
and the records merged by index; --agent N reads the claim of N's shard.

Options:
  -n, --namespace NS     namespace (default: the kubeconfig context's)
      --failed           only the agents that failed
      --format jsonl|table  (default jsonl) table: index, status, exit code,
                         attempts, duration, first line of the output or error
      --out DIR          write DIR/<index>.out (each agent's output) and
                         DIR/results.jsonl (the records without their output),
                         each file atomically; prints a summary instead
      --agent N          only agent N: its output on stdout, its error on stderr
                         (kubectl swarm logs SWARM --agent N)
      --image IMAGE      the reader pod's image (default $CFN_RESULTS_IMAGE, else
                         swarm-operator:${releaseVersion()}, the chart's default)
      --timeout SECONDS  per reader pod (default 120)
      --kubeconfig FILE  (default $KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME     kubeconfig context

A summary goes to stderr: results read, failed, agents without a stored
result, records that did not parse (skipped and counted, never shown as results),
records of an index two stores held (the newer kept, counted).
Exit codes: 0 read (--agent: the agent completed), 1 the results cannot be read
(--agent: the agent failed), 2 usage, 3 the API server unreachable, 4 the
Swarm (--agent: the agent's result) not found, 130 interrupted.
`;

const RESULTS_EXIT = { ...EXIT, notFound: 4 } as const;

const index = z.coerce.number().int().min(0).max(1_000_000_000);
const seconds = z.coerce.number().int().min(1).max(86_400);
const image = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\s]+$/, 'an image reference without spaces');
const swarmName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a Swarm name (a DNS subdomain)')
  .max(253);

/** status.results.location of a claim: pvc://<claim>/<dir>. */
const pvcLocation = /^pvc:\/\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/(.*)$/;

function flagValue<T>(schema: z.ZodType<T>, flag: string, value: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(`${flag}: ${r.error.issues[0]?.message ?? 'invalid'} (got ${JSON.stringify(value)})`);
  return r.data;
}

/** The results are somewhere `cfn results` cannot read them (the message says where and why). */
export class ResultsUnavailable extends Error {}

/** One claim holding results of a swarm (of all its shards, or of the shards listed). */
export interface ClaimStore {
  claimName: string;
  dir: string;
  /** The shards whose records it holds. */
  shards: number[];
  where: string;
}

/**
 * The claims of a swarm's results: one for a single shard (status.results's,
 * else the spec's); a sharded swarm's one per shard (status.shards[i].results's,
 * else the operator's <swarm>-results-<i>, or spec.results.claimName that all
 * shards share), each named once.
 */
export function claimStores(swarm: Swarm): ClaimStore[] {
  const ns = swarm.metadata.namespace ?? 'default';
  const defaultDir = resultDir({ namespace: ns, name: swarm.metadata.name, uid: swarm.metadata.uid ?? '' });
  const store = (location: string | undefined, fallbackClaim: string | undefined, shards: number[]): ClaimStore | undefined => {
    const m = location ? pvcLocation.exec(location) : null;
    const claimName = m?.[1] ?? fallbackClaim;
    if (!claimName) return undefined;
    const dir = m?.[3] ?? defaultDir;
    return { claimName, dir, shards, where: `pvc://${claimName}/${dir}` };
  };
  if (swarmShardCount(swarm) <= 1) {
    const one = store(swarm.status?.results?.location, resultsClaimName(swarm), [0]);
    return one ? [one] : [];
  }
  const stores = new Map<string, ClaimStore>();
  for (const { shard } of swarmShardRanges(swarm)) {
    const location = swarm.status?.shards?.find((s) => s.index === shard)?.results?.location;
    const s = store(location, swarm.spec.results.claimName ?? createdClaimName(swarm.metadata.name, shard), [shard]);
    if (!s) continue;
    const held = stores.get(s.where);
    if (held) held.shards.push(shard);
    else stores.set(s.where, s);
  }
  return [...stores.values()];
}

/** A swarm's results as `cfn results` reads them. */
export interface SwarmResults extends ResultSource {
  /** Where they are, for the summary. */
  where: string;
  /** The records read to find agent N (a sharded swarm: its shard's store first); default: read(). */
  readAgent?: (agent: number) => Promise<{ results: StoredResult[]; unreadable: UnreadableRecord[]; duplicates?: number }>;
}

/** Where a Swarm's results are, and how to read them: the one place the results types split. */
export function resultsSource(
  swarm: Swarm,
  o: { client: KubeClient; image: string; timeoutMs: number; signal?: AbortSignal; env?: Readonly<Record<string, string | undefined>> },
): SwarmResults {
  const ns = swarm.metadata.namespace ?? 'default';
  const what = `swarm ${ns}/${swarm.metadata.name}`;
  const status = swarm.status?.results;
  const type = status?.type ?? swarm.spec.results.type;
  switch (type) {
    case 'emptyDir':
      throw new ResultsUnavailable(
        `${what}: results were in an emptyDir and went with the pod${status?.location ? ` (${status.location})` : ''}; keep them with spec.results.type persistentVolumeClaim (the default) or s3`,
      );
    case 's3': {
      const config = swarm.spec.results.s3;
      if (!config) throw new ResultsUnavailable(`${what}: results.type is s3 but results.s3 is missing`);
      const scope = { namespace: ns, name: swarm.metadata.name, uid: swarm.metadata.uid ?? '' };
      // Directly from the store: the reader's keys in env, else the Swarm's Secret through the caller's own access.
      const readSecret = async (secret: string) => {
        try {
          return await o.client.get(resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace: ns, name: secret }));
        } catch (e) {
          const why = isNotFound(e) ? 'not found' : `not readable (${errorMessage(e)})`;
          throw new S3CredentialsError(
            `S3 credentials: Secret ${ns}/${secret} ${why}; or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to a key that may read ${s3Location(config, scope)}`,
          );
        }
      };
      return s3ResultsSource({ config, scope, env: o.env ?? {}, readSecret });
    }
    case 'persistentVolumeClaim': {
      const stores = claimStores(swarm);
      if (stores.length === 0) throw new ResultsUnavailable(`${what}: no results claim`);
      const claimSource = (s: ClaimStore) =>
        new ClaimSource({
          client: o.client,
          namespace: ns,
          swarm: swarm.metadata.name,
          claimName: s.claimName,
          dir: s.dir,
          image: o.image,
          podTimeoutMs: o.timeoutMs,
          ...(o.signal ? { signal: o.signal } : {}),
        });
      if (stores.length === 1) return Object.assign(claimSource(stores[0]!), { where: stores[0]!.where });
      const merged = new MergedSource(stores.map((s) => ({ where: s.where, source: claimSource(s) })));
      const ranges = swarmShardRanges(swarm);
      return {
        where: `${stores.length} claims: ${stores
          .slice(0, 3)
          .map((s) => s.where)
          .join(', ')}${stores.length > 3 ? ', ...' : ''}`,
        read: () => merged.read(),
        readAgent: async (agent: number) => {
          const shard = ranges.find((r) => agent >= r.start && agent < r.end)?.shard;
          return (
            await merged.find(
              agent,
              stores.findIndex((s) => shard !== undefined && s.shards.includes(shard)),
            )
          ).read;
        },
      };
    }
  }
}

export function parseResultsArgs(args: readonly string[], env: NodeJS.ProcessEnv) {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      help: { type: 'boolean', short: 'h' },
      namespace: { type: 'string', short: 'n' },
      failed: { type: 'boolean' },
      format: { type: 'string' },
      out: { type: 'string' },
      agent: { type: 'string' },
      image: { type: 'string' },
      timeout: { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      // The reader pod's side.
      dir: { type: 'string' },
      from: { type: 'string' },
      'max-bytes': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return { mode: 'help' as const };
  if (values.dir !== undefined) {
    if (positionals.length) throw new UsageError('--dir reads a directory: no Swarm name');
    return {
      mode: 'dir' as const,
      dir: values.dir,
      from: values.from === undefined ? 0 : flagValue(index, '--from', values.from),
      maxBytes: values['max-bytes'] === undefined ? PAGE_BYTES : flagValue(z.coerce.number().int().min(1), '--max-bytes', values['max-bytes']),
    };
  }
  if (positionals.length !== 1) throw new UsageError(`expected exactly one Swarm name, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const format = values.format === undefined ? 'jsonl' : flagValue(z.enum(RESULTS_FORMATS), '--format', values.format);
  if (values.out !== undefined && values.format !== undefined) throw new UsageError('--out writes files: --format does not apply');
  const agent = values.agent === undefined ? undefined : flagValue(index, '--agent', values.agent);
  if (agent !== undefined && (values.out !== undefined || values.failed || values.format !== undefined))
    throw new UsageError('--agent prints one agent: no --out, --failed or --format');
  return {
    mode: 'swarm' as const,
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    context: values.context,
    namespace: values.namespace,
    name: flagValue(swarmName, 'SWARM', positionals[0]!),
    failed: values.failed ?? false,
    format,
    ...(values.out !== undefined ? { out: values.out } : {}),
    ...(agent !== undefined ? { agent } : {}),
    image: flagValue(image, '--image', values.image ?? env.CFN_RESULTS_IMAGE ?? `swarm-operator:${releaseVersion()}`),
    timeoutMs: (values.timeout === undefined ? 120 : flagValue(seconds, '--timeout', values.timeout)) * 1000,
  };
}

/** The summary line(s) on stderr. */
export function resultsSummary(
  what: string,
  results: readonly StoredResult[],
  unreadable: readonly UnreadableRecord[],
  total: number | undefined,
  duplicates = 0,
): string {
  const failed = results.filter((r) => r.status === 'failed').length;
  const lines = [
    `${what}: ${results.length} results (${results.length - failed} completed, ${failed} failed)${total !== undefined ? ` of ${total} agents` : ''}`,
  ];
  if (total !== undefined && results.length < total) lines.push(`${total - results.length} agents have no stored result`);
  if (duplicates) lines.push(`${duplicates} records of an index another store also held: the newer record of each index kept`);
  if (unreadable.length) {
    lines.push(
      `${unreadable.length} records did not parse (skipped): ${unreadable
        .slice(0, 3)
        .map((u) => `${u.key}: ${u.reason}`)
        .join('; ')}${unreadable.length > 3 ? '; ...' : ''}`,
    );
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** Prints one page of `dir` (the reader pod's side). */
export async function printDirectoryPage(source: ResultSource, from: number, maxBytes: number, io: CliIo): Promise<number> {
  for await (const line of readerPage(source, from, maxBytes)) {
    if (!io.stdout.write(line)) await new Promise((r) => io.stdout.once('drain', r));
  }
  return EXIT.ok;
}

/** The records of a run's directory, <root>/<namespace>/<name>/<uid> (what the reader pod mounts). */
export function directorySourceAt(dir: string): ResultSource {
  const parts = dir.replace(/\/+$/, '').split('/');
  const [namespace, name, uid] = parts.slice(-3);
  if (parts.length < 4 || !namespace || !name || !uid) throw new UsageError(`--dir: expected <root>/<namespace>/<name>/<uid>, got ${JSON.stringify(dir)}`);
  return new DirectorySource(parts.slice(0, -3).join('/') || '/', { namespace, name, uid });
}

export interface ResultsHooks {
  /** The reader pod's source of a directory (default: directorySourceAt). */
  directorySource?: (dir: string) => ResultSource;
  until?: Promise<unknown>;
}

export async function resultsCommand(args: readonly string[], io: CliIo, hooks: ResultsHooks = {}): Promise<number> {
  const p = parseResultsArgs(args, io.env);
  if (p.mode === 'help') {
    io.stdout.write(RESULTS_HELP);
    return EXIT.ok;
  }
  if (p.mode === 'dir') {
    return printDirectoryPage((hooks.directorySource ?? directorySourceAt)(p.dir), p.from, p.maxBytes, io);
  }
  let client: KubeClient;
  try {
    client = KubeClient.load(p.kubeconfig, p.context);
  } catch (e) {
    throw new UsageError(`kubeconfig: ${errorMessage(e)}`);
  }
  const namespace = p.namespace ?? client.namespace;
  const what = `swarm ${namespace}/${p.name}`;
  const abort = new AbortController();
  void (hooks.until ?? (io.signals ? untilSignal() : new Promise<never>(() => undefined))).then(() => abort.abort());
  try {
    let raw: unknown;
    try {
      raw = await client.get(resourcePath({ group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'swarms', namespace, name: p.name }));
    } catch (e) {
      if (isNotFound(e)) {
        io.stderr.write(`cfn results: ${what} not found\n`);
        return RESULTS_EXIT.notFound;
      }
      throw e;
    }
    const swarm = swarmSchema.parse(raw);
    const source = resultsSource(swarm, { client, image: p.image, timeoutMs: p.timeoutMs, signal: abort.signal, env: io.env });
    if (p.agent !== undefined) {
      const { results } = await (source.readAgent ?? (() => source.read()))(p.agent);
      if (abort.signal.aborted) return EXIT.interrupted;
      return printAgent(results, p.agent, what, io);
    }
    const { results, unreadable, duplicates } = await source.read();
    if (abort.signal.aborted) return EXIT.interrupted;
    const shown = p.failed ? results.filter((r) => r.status === 'failed') : results;
    if (p.out !== undefined) {
      await writeOutDir(p.out, shown);
      io.stdout.write(`wrote ${shown.length} outputs and ${p.out.replace(/\/+$/, '')}/results.jsonl\n`);
    } else {
      io.stdout.write(p.format === 'table' ? resultsTable(shown) : jsonLines(shown));
    }
    io.stderr.write(resultsSummary(`${what} (${source.where})`, results, unreadable, swarm.status?.agents?.total, duplicates));
    return EXIT.ok;
  } catch (e) {
    if (abort.signal.aborted) return EXIT.interrupted;
    if (e instanceof ResultsUnavailable || e instanceof ReaderPodError || e instanceof S3StoreError || e instanceof S3CredentialsError) {
      io.stderr.write(`cfn results: ${e.message}\n`);
      return EXIT.runFailed;
    }
    if (e instanceof KubeApiError && e.status === 0) {
      io.stderr.write(`cfn results: ${e.message}\n`);
      return EXIT.unavailable;
    }
    throw e;
  } finally {
    abort.abort();
    await client.close();
  }
}

/** `--agent N`: the output as stored on stdout; the error and the figures on stderr. */
function printAgent(results: readonly StoredResult[], agent: number, what: string, io: CliIo): number {
  const r = results.find((x) => x.index === agent);
  if (!r) {
    io.stderr.write(`cfn results: ${what}: no stored result for agent ${agent}\n`);
    return RESULTS_EXIT.notFound;
  }
  io.stdout.write(r.output);
  const exit = r.exitCode === null ? 'no exit code' : `exit ${r.exitCode}`;
  const trunc = r.outputTruncated ? `, output truncated (${r.outputBytes} bytes)` : '';
  io.stderr.write(`agent ${agent} ${r.status} (${exit}, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}${trunc})${r.error ? `: ${r.error}` : ''}\n`);
  return r.status === 'completed' ? EXIT.ok : EXIT.runFailed;
}
