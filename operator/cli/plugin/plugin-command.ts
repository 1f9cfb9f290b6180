// `kubectl swarm` (bin/kubectl-swarm.js; also `cfn swarm`): a Swarm's live
// view, and a RolloutPolicy's view and the requests GitOps leaves to the
// operator (pause, resume, promote, abort, retry: annotations, never the spec).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { rolloutPolicy as policySchema, ROLLOUT_ANNOTATIONS } from '../../api/rollout-policy.js';
import { swarm as swarmSchema } from '../../api/swarm.js';
import { GROUP_VERSION, LABEL_SWARM, ROLLOUT_POLICY_RESOURCE, SWARM_RESOURCE } from '../../api/common.js';
import { KubeClient, resourcePath } from '../../k8s/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../../k8s/errors.js';
import { Informer } from '../../k8s/informer.js';
import { untilSignal } from '../operator-command.js';
import { resultsCommand } from '../results-command.js';
import { EXIT, UsageError } from '../usage-error.js';
import { formatRollout, formatSwarm, rolloutView, swarmView } from './object-views.js';
import type { KubeObject } from '../../k8s/client.js';
import type { CliIo } from '../io.js';
import type { RolloutView, SwarmView } from './object-views.js';

export const PLUGIN_HELP = `Usage: kubectl swarm <command> [options]      (the same as: cfn swarm ...)

Commands:
  get SWARM                  phase, health, version, agents done/failed, delivery,
                             fallback and its reason, a sharded swarm's shards
                             (range, node, version, phase, counts, reason),
                             coordinator pods, last events
  results SWARM              every agent's stored result, all shards as one set
                             (cfn results --help: --failed, --format jsonl|table,
                             --out DIR)
  logs SWARM --agent N       agent N's output (stdout) and error (stderr), from
                             the store of the shard whose range holds N
  rollout get POLICY         effective V2 share, step, gates observed, requests, conditions
  rollout pause POLICY       hold the evaluation (annotation ${ROLLOUT_ANNOTATIONS.paused})
  rollout resume POLICY      release a pause made by rollout pause
  rollout promote POLICY     move to the next step now, without waiting for the gates
  rollout abort POLICY       V2 at 0% for new swarms until the next spec change or a retry
  rollout retry POLICY       restart the evaluation from the spec (after an abort or a rollback)

pause, resume, promote, abort and retry set annotations (${ROLLOUT_ANNOTATIONS.promote}, ...)
and never the spec, which GitOps owns; each waits until the operator has handled
the request (status.requests) and prints the outcome.

Options:
  -n, --namespace NS         namespace (default: the kubeconfig context's)
  -w, --watch                get: follow changes; a swarm's watch ends when it finishes
  -o, --output human|json|yaml  (default human; with -w json prints one object per line)
      --timeout SECONDS      give up after this long (requests: default 30; -w: none)
      --no-wait              requests: return once the annotation is set
      --kubeconfig FILE      (default $KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME         kubeconfig context

Exit codes: 0 done (get shown; -w: the swarm Succeeded; a request was acted on),
1 the swarm Failed / the operator refused the request, 2 usage, 3 no answer in
time (--timeout; a request the operator did not handle) or the API server
unreachable, 4 not found, 130 interrupted.
`;

export const PLUGIN_EXIT = { ...EXIT, notFound: 4 } as const;

const OUTPUTS = ['human', 'json', 'yaml'] as const;
type Output = (typeof OUTPUTS)[number];
const ACTIONS = ['pause', 'resume', 'promote', 'abort', 'retry'] as const;
type Action = (typeof ACTIONS)[number];
const FIELD_MANAGER = 'kubectl-swarm';
const DEFAULT_REQUEST_TIMEOUT_S = 30;

const SWARMS = SWARM_RESOURCE;
const POLICIES = ROLLOUT_POLICY_RESOURCE;
const PODS = { group: '', version: 'v1', plural: 'pods' };
const EVENTS = { group: '', version: 'v1', plural: 'events' };

interface Options {
  namespace: string;
  watch: boolean;
  output: Output;
  timeoutMs: number | undefined;
  wait: boolean;
}

/** Hooks for tests running the command in-process: a stop other than a signal, and the clock. */
export interface PluginHooks {
  until?: Promise<unknown>;
  now?: () => Date;
}

class NotFound extends Error {}
class NoAnswer extends Error {}

function parse(args: readonly string[], io: CliIo) {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      help: { type: 'boolean', short: 'h' },
      namespace: { type: 'string', short: 'n' },
      watch: { type: 'boolean', short: 'w' },
      output: { type: 'string', short: 'o' },
      timeout: { type: 'string' },
      'no-wait': { type: 'boolean' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return { help: true as const };
  const output = (values.output ?? 'human') as Output;
  if (!OUTPUTS.includes(output)) throw new UsageError(`--output: expected one of ${OUTPUTS.join(', ')}, got ${JSON.stringify(values.output)}`);
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    if (!/^\d+$/.test(values.timeout)) throw new UsageError(`--timeout: expected whole seconds, got ${JSON.stringify(values.timeout)}`);
    timeoutMs = Number(values.timeout) * 1000;
  }
  let client: KubeClient;
  try {
    client = KubeClient.load(values.kubeconfig ?? io.env.KUBECONFIG, values.context);
  } catch (e) {
    throw new UsageError(`kubeconfig: ${errorMessage(e)}`);
  }
  const options: Options = { namespace: values.namespace ?? client.namespace, watch: values.watch ?? false, output, timeoutMs, wait: !values['no-wait'] };
  return { help: false as const, client, positionals, options };
}

function one(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what} name, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const name = positionals[0]!;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw new UsageError(`${JSON.stringify(name)} is not a valid ${what} name`);
  return name;
}

/** Options of the plugin and of `cfn results` that take a value: the command is the first word that is none of them. */
const VALUE_FLAGS = new Set(['-n', '--namespace', '-o', '--output', '--timeout', '--kubeconfig', '--context', '--format', '--out', '--agent', '--image']);

/** The command word and the arguments without it. */
function commandWord(args: readonly string[]): { word: string | undefined; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) return { word: a, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
  }
  return { word: undefined, rest: [...args] };
}

export async function pluginCommand(args: readonly string[], io: CliIo, hooks: PluginHooks = {}): Promise<number> {
  // results and logs are `cfn results` (its options, its exit codes).
  const { word, rest: others } = commandWord(args);
  if (word === 'results') return resultsCommand(others, io);
  if (word === 'logs') {
    if (!others.includes('--agent')) throw new UsageError('logs: --agent N is required (kubectl swarm logs SWARM --agent N)');
    return resultsCommand(others, io);
  }
  const p = parse(args, io);
  if (p.help) {
    io.stdout.write(PLUGIN_HELP);
    return EXIT.ok;
  }
  const { client, options } = p;
  const [command, ...rest] = p.positionals;
  // Signals are taken over only while watching: elsewhere Ctrl-C ends the process as usual.
  const stop = () => hooks.until ?? (io.signals ? untilSignal() : new Promise<never>(() => undefined));
  const run = new PluginRun(client, options, io, stop, hooks.now ?? (() => new Date()));
  try {
    if (command === 'get') return await run.getSwarm(one(rest, 'Swarm'));
    if (command === 'rollout') {
      const [sub, ...names] = rest;
      if (sub === 'get') return await run.getRollout(one(names, 'RolloutPolicy'));
      if (ACTIONS.includes(sub as Action)) {
        if (options.watch) throw new UsageError(`--watch applies to get, not to rollout ${sub}`);
        return await run.request(sub as Action, one(names, 'RolloutPolicy'));
      }
      throw new UsageError(`rollout: expected get, ${ACTIONS.join(', ')}; got ${JSON.stringify(sub ?? '')}`);
    }
    throw new UsageError(`unknown command ${JSON.stringify(command ?? '')} (commands: get, results, logs, rollout; kubectl swarm --help)`);
  } catch (e) {
    return failed(e, io);
  } finally {
    await client.close();
  }
}

/** Exit codes of the failures scripts tell apart; anything else is reported by runCli. */
function failed(e: unknown, io: CliIo): number {
  if (e instanceof NotFound) {
    io.stderr.write(`kubectl-swarm: ${e.message}\n`);
    return PLUGIN_EXIT.notFound;
  }
  if (e instanceof NoAnswer || (e instanceof KubeApiError && e.status === 0)) {
    io.stderr.write(`kubectl-swarm: ${e.message}\n`);
    return EXIT.unavailable;
  }
  throw e;
}

/** One invocation: reads through the k8s layer, writes what it shows to io. */
class PluginRun {
  private lastShown = '';

  constructor(
    private readonly client: KubeClient,
    private readonly o: Options,
    private readonly io: CliIo,
    private readonly stop: () => Promise<unknown>,
    private readonly now: () => Date,
  ) {}

  private async read<T>(path: string, what: string): Promise<T> {
    try {
      return await this.client.get<T>(path);
    } catch (e) {
      if (isNotFound(e)) throw new NotFound(`${what} not found`);
      throw e;
    }
  }

  private async events(kind: string, name: string): Promise<unknown[]> {
    const list = await this.client.get<{ items?: unknown[] }>(resourcePath({ ...EVENTS, namespace: this.o.namespace }), {
      fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
    });
    return list.items ?? [];
  }

  private async pods(name: string): Promise<unknown[]> {
    const list = await this.client.get<{ items?: unknown[] }>(resourcePath({ ...PODS, namespace: this.o.namespace }), {
      labelSelector: `${LABEL_SWARM}=${name}`,
    });
    return list.items ?? [];
  }

  private async swarmView(obj: KubeObject, name: string): Promise<SwarmView> {
    const [pods, events] = await Promise.all([this.pods(name), this.events('Swarm', name)]);
    return swarmView(swarmSchema.parse(obj), pods, events);
  }

  private async rolloutView(obj: KubeObject, name: string): Promise<RolloutView> {
    return rolloutView(policySchema.parse(obj), await this.events('RolloutPolicy', name));
  }

  /** Writes a view; under -w only when it changed, redrawn in place on a terminal. */
  private show(view: SwarmView | RolloutView): void {
    const key = JSON.stringify(view);
    if (this.o.watch && key === this.lastShown) return;
    const first = this.lastShown === '';
    this.lastShown = key;
    const human = () => (view.kind === 'Swarm' ? formatSwarm(view, this.now()) : formatRollout(view, this.now()));
    if (this.o.output === 'json') this.io.stdout.write(this.o.watch ? `${key}\n` : `${JSON.stringify(view, null, 2)}\n`);
    else if (this.o.output === 'yaml') this.io.stdout.write(`${this.o.watch && !first ? '---\n' : ''}${stringify(view, { lineWidth: 0 })}`);
    else if (this.o.watch && this.io.isTTY) this.io.stdout.write(`\x1b[H\x1b[2J${human()}`);
    else this.io.stdout.write(`${this.o.watch && !first ? '\n' : ''}${human()}`);
  }

  async getSwarm(name: string): Promise<number> {
    const path = resourcePath({ ...SWARMS, namespace: this.o.namespace, name });
    const what = `swarm ${this.o.namespace}/${name}`;
    if (!this.o.watch) {
      this.show(await this.swarmView(await this.read(path, what), name));
      return EXIT.ok;
    }
    const finished = (v: SwarmView) => (v.phase === 'Succeeded' ? EXIT.ok : v.phase === 'Failed' ? EXIT.runFailed : undefined);
    return this.follow(
      [
        { path: resourcePath({ ...SWARMS, namespace: this.o.namespace }), fieldSelector: `metadata.name=${name}` },
        { path: resourcePath({ ...PODS, namespace: this.o.namespace }), labelSelector: `${LABEL_SWARM}=${name}` },
      ],
      async ([swarms, pods]) => {
        const obj = swarms?.[0];
        if (!obj) throw new NotFound(`${what} not found`);
        const view = swarmView(swarmSchema.parse({ apiVersion: GROUP_VERSION, kind: 'Swarm', ...obj }), pods ?? [], await this.events('Swarm', name));
        this.show(view);
        return finished(view);
      },
      this.o.timeoutMs,
      `${what} did not finish`,
    );
  }

  async getRollout(name: string): Promise<number> {
    const what = `rolloutpolicy ${this.o.namespace}/${name}`;
    if (!this.o.watch) {
      this.show(await this.rolloutView(await this.read(resourcePath({ ...POLICIES, namespace: this.o.namespace, name }), what), name));
      return EXIT.ok;
    }
    // A policy never finishes: its watch ends on an interrupt or --timeout (exit 0 then).
    const code = await this.follow(
      [{ path: resourcePath({ ...POLICIES, namespace: this.o.namespace }), fieldSelector: `metadata.name=${name}` }],
      async ([policies]) => {
        const obj = policies?.[0];
        if (!obj) throw new NotFound(`${what} not found`);
        this.show(await this.rolloutView({ apiVersion: GROUP_VERSION, kind: 'RolloutPolicy', ...obj }, name));
        return undefined;
      },
      this.o.timeoutMs,
      undefined,
    );
    return code;
  }

  /**
   * Watches the sources (list + watch, informers) and calls `render` with
   * the objects each holds after every change, one render at a time; ends
   * when render returns an exit code, after `timeoutMs` (`timeoutMessage`:
   * exit 3; none: exit 0) or on an interrupt (130).
   */
  private async follow(
    sources: ReadonlyArray<{ path: string; fieldSelector?: string; labelSelector?: string }>,
    render: (objects: KubeObject[][]) => Promise<number | undefined>,
    timeoutMs: number | undefined,
    timeoutMessage: string | undefined,
  ): Promise<number> {
    let settle!: (code: number | Error) => void;
    const done = new Promise<number | Error>((r) => (settle = r));
    const synced = new Set<number>();
    let rendering = Promise.resolve();
    let again = false;
    let busy = false;
    const informers: Informer[] = [];
    const changed = () => {
      if (synced.size < sources.length) return;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      rendering = (async () => {
        do {
          again = false;
          const code = await render(informers.map((i) => i.list()));
          if (code !== undefined) settle(code);
        } while (again);
      })()
        .catch((e: unknown) => settle(e instanceof Error ? e : new Error(String(e))))
        .finally(() => (busy = false));
    };
    sources.forEach((s, i) => {
      informers.push(
        new Informer({
          client: this.client,
          path: s.path,
          ...(s.fieldSelector ? { fieldSelector: s.fieldSelector } : {}),
          ...(s.labelSelector ? { labelSelector: s.labelSelector } : {}),
          onEvent: changed,
          onSynced: () => {
            synced.add(i);
            changed();
          },
          onError: (err) => {
            // Never synced: the API server is not there (or refuses us); say so instead of retrying forever.
            if (!synced.has(i)) settle(err instanceof KubeApiError && err.status !== 0 ? err : new NoAnswer(`API server: ${errorMessage(err)}`));
          },
        }),
      );
    });
    for (const inf of informers) inf.start();
    const timer =
      timeoutMs !== undefined
        ? setTimeout(() => settle(timeoutMessage ? new NoAnswer(`${timeoutMessage} within ${timeoutMs / 1000}s`) : EXIT.ok), timeoutMs)
        : undefined;
    void this.stop().then(() => settle(EXIT.interrupted));
    const outcome = await done;
    if (timer) clearTimeout(timer);
    await Promise.all(informers.map((i) => i.stop()));
    await rendering.catch(() => undefined);
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }

  /** Sets the request's annotation (metadata only: the generation stays), then waits for the operator's answer. */
  async request(action: Action, name: string): Promise<number> {
    const path = resourcePath({ ...POLICIES, namespace: this.o.namespace, name });
    const what = `rolloutpolicy ${this.o.namespace}/${name}`;
    await this.read(path, what);
    const [key, value, handled] =
      action === 'pause'
        ? [ROLLOUT_ANNOTATIONS.paused, 'true', 'pause' as const]
        : action === 'resume'
          ? [ROLLOUT_ANNOTATIONS.paused, null, 'pause' as const]
          : // A time (requests are handled oldest first) and a nonce: two requests in one millisecond stay two.
            [ROLLOUT_ANNOTATIONS[action], `${this.now().toISOString()}-${randomBytes(3).toString('hex')}`, action];
    try {
      await this.client.mergePatch(path, { metadata: { annotations: { [key]: value } } }, FIELD_MANAGER);
    } catch (e) {
      if (isNotFound(e)) throw new NotFound(`${what} not found`);
      throw e;
    }
    const token = value ?? '';
    const report = (accepted: boolean | undefined, message: string) => {
      const out = {
        kind: 'RolloutRequest',
        policy: `${this.o.namespace}/${name}`,
        action,
        token,
        state: accepted === undefined ? 'requested' : accepted ? 'done' : 'refused',
        message,
      };
      if (this.o.output === 'json') this.io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      else if (this.o.output === 'yaml') this.io.stdout.write(stringify(out));
      else this.io.stdout.write(`${what}: ${action} ${out.state}: ${message}\n`);
    };
    if (!this.o.wait) {
      report(undefined, `annotation ${key} ${value === null ? 'removed' : `set to ${value}`}`);
      return EXIT.ok;
    }
    let answer: { accepted: boolean; message: string } | undefined;
    const code = await this.follow(
      [{ path: resourcePath({ ...POLICIES, namespace: this.o.namespace }), fieldSelector: `metadata.name=${name}` }],
      async ([policies]) => {
        const obj = policies?.[0];
        if (!obj) throw new NotFound(`${what} not found`);
        const h = policySchema.parse({ apiVersion: GROUP_VERSION, kind: 'RolloutPolicy', ...obj }).status?.requests?.[handled];
        if ((h?.token ?? '') !== token) return undefined;
        // Resuming a policy never paused by request: nothing to handle.
        answer = h ?? { accepted: true, message: 'not paused by request' };
        return answer.accepted ? EXIT.ok : EXIT.runFailed;
      },
      this.o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_S * 1000,
      `the operator did not handle the ${action} request (is it running?)`,
    );
    if (answer) report(answer.accepted, answer.message);
    return code;
  }
}
