import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import { client, createNamespace, deleteNamespace, getSwarm, installCrds, swarmManifest, swarmPath } from './harness.js';

const c = client();
let ns: string;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'swarm-valid');
});
afterAll(() => deleteNamespace(c, ns));

async function rejection(body: object): Promise<string> {
  try {
    await c.create(swarmPath(ns), body);
  } catch (e) {
    expect(e).toBeInstanceOf(KubeApiError);
    expect((e as KubeApiError).status).toBe(422);
    return (e as KubeApiError).message;
  }
  throw new Error('the API server accepted an invalid Swarm');
}

describe('invalid Swarms are rejected by the API server, naming the field', () => {
  it.each([
    ['agents below 1', { agents: 0 }, /spec\.agents: Invalid value: 0: spec\.agents in body should be greater than or equal to 1/],
    ['agents above 10000', { agents: 10001 }, /spec\.agents/],
    ['unknown topology', { topology: 'ring' }, /spec\.topology: Unsupported value: "ring"/],
    ['unknown version', { coordination: { version: 'v3' } }, /spec\.coordination\.version: Unsupported value: "v3"/],
    ['empty agent command', { agent: { command: [] } }, /spec\.agent\.command/],
    [
      'flat beyond 300 agents (CEL)',
      { topology: 'flat', agents: 500 },
      /spec\.topology: Invalid value: .*topology flat supports at most 300 agents; use hybrid or auto/,
    ],
    ['negative retries', { agent: { command: ['true'], retries: -1 } }, /spec\.agent\.retries/],
    [
      'successPolicy above 100%',
      { successPolicy: { minDeliveryRate: 101 } },
      /spec\.successPolicy\.minDeliveryRate: Invalid value: 101: spec\.successPolicy\.minDeliveryRate in body should be less than or equal to 100/,
    ],
    ['successPolicy below 0%', { successPolicy: { minDeliveryRate: -1 } }, /spec\.successPolicy\.minDeliveryRate: Invalid value: -1/],
    [
      'no-retry exit code 0',
      { agent: { command: ['true'], noRetryExitCodes: [0] } },
      /spec\.agent\.noRetryExitCodes\[0\]: Invalid value: 0: .*greater than or equal to 1/,
    ],
    [
      'no-retry exit code 256',
      { agent: { command: ['true'], noRetryExitCodes: [2, 256] } },
      /spec\.agent\.noRetryExitCodes\[1\]: Invalid value: 256: .*less than or equal to 255/,
    ],
    ['no-retry exit code twice', { agent: { command: ['true'], noRetryExitCodes: [2, 2] } }, /spec\.agent\.noRetryExitCodes\[1\]: Duplicate value: 2/],
    [
      'agents as root',
      { agent: { command: ['true'], securityContext: { runAsUser: 0 } } },
      /spec\.agent\.securityContext\.runAsUser: Invalid value: 0: .*greater than or equal to 1/,
    ],
    [
      "agents as the coordinator's user (CEL)",
      { agent: { command: ['true'], securityContext: { runAsUser: 65532 } } },
      /spec\.agent\.securityContext\.runAsUser: Invalid value: .*runAsUser must not be the coordinator's user 65532/,
    ],
    [
      'unknown agent pull policy',
      { agent: { command: ['true'], imagePullPolicy: 'Sometimes' } },
      /spec\.agent\.imagePullPolicy: Unsupported value: "Sometimes"/,
    ],
    ['shards 0 (CEL)', { shards: 0 }, /spec\.shards: Invalid value: .*shards must be a number from 1 to 100, or "auto"/],
    ['shards 101 (CEL)', { shards: 101 }, /spec\.shards: Invalid value: .*shards must be a number from 1 to 100, or "auto"/],
    ['shards as another word (CEL)', { shards: 'many' }, /spec\.shards: Invalid value: .*shards must be a number from 1 to 100, or "auto"/],
    [
      'flat with 3 shards (CEL)',
      { topology: 'flat', agents: 30, shards: 3 },
      /spec\.shards: Invalid value: .*topology flat is one shard: shards must be 1 or auto/,
    ],
    ['hybrid with 1 shard (CEL)', { topology: 'hybrid', agents: 30, shards: 1 }, /spec\.shards: Invalid value: .*topology hybrid is two or more shards/],
    ['unknown agent isolation', { agent: { command: ['true'], isolation: 'vm' } }, /spec\.agent\.isolation: Unsupported value: "vm"/],
    [
      'isolation container beyond 64 slots (CEL)',
      { agent: { command: ['true'], isolation: 'container', concurrency: 65 } },
      /spec\.agent\.concurrency: Invalid value: .*concurrency must be at most 64 with isolation container .*use spec\.shards/,
    ],
    [
      "isolation container with a slot as the coordinator's user (CEL)",
      { agent: { command: ['true'], isolation: 'container', concurrency: 4, securityContext: { runAsUser: 65530 } } },
      /spec\.agent\.securityContext: Invalid value: .*slots run as securityContext\.runAsUser \+ 0 \.\. concurrency-1, which must not include the coordinator's user 65532/,
    ],
    [
      'isolation container with slot users past the largest uid (CEL)',
      { agent: { command: ['true'], isolation: 'container', concurrency: 4, securityContext: { runAsUser: 2147483646 } } },
      /spec\.agent\.securityContext: Invalid value: .*which must stay at most 2147483647/,
    ],
    [
      'too many no-retry exit codes',
      { agent: { command: ['true'], noRetryExitCodes: Array.from({ length: 33 }, (_, i) => i + 1) } },
      /spec\.agent\.noRetryExitCodes: Too many: 33: must have at most 32 items/,
    ],
  ])('%s', async (_name, spec, pattern) => {
    expect(await rejection(swarmManifest(ns, `bad-${Math.random().toString(36).slice(2, 7)}`, spec))).toMatch(pattern);
  });

  it("accepts isolation container with slots beside the coordinator's user, and shared at any concurrency", async () => {
    for (const [name, agent] of [
      ['iso-below', { command: ['true'], isolation: 'container', concurrency: 64, securityContext: { runAsUser: 65468 } }],
      ['iso-above', { command: ['true'], isolation: 'container', concurrency: 2 }],
      ['iso-shared', { command: ['true'], isolation: 'shared', concurrency: 1000 }],
    ] as const) {
      const created = (await c.create(swarmPath(ns), swarmManifest(ns, name, { agent }))) as { spec: { agent: { isolation?: string } } };
      expect(created.spec.agent.isolation).toBe(agent.isolation);
    }
  });

  it('rejects a name too long to label its coordinator pod', async () => {
    expect(await rejection(swarmManifest(ns, 'n'.repeat(64)))).toMatch(/metadata\.name: at most 63 characters/);
  });

  it('rejects a Swarm without an objective', async () => {
    const m = swarmManifest(ns, 'no-objective');
    delete (m.spec as Record<string, unknown>).objective;
    expect(await rejection(m)).toMatch(/spec\.objective: Required value/);
  });

  it('keeps the spec immutable after creation (CEL transition rules)', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'fixed', { agents: 5 }));
    const attempt = (patch: object) => c.mergePatch(swarmPath(ns, 'fixed'), { spec: patch });
    await expect(attempt({ agents: 6 })).rejects.toThrow(/spec\.agents: Invalid value: .*agents is immutable/);
    await expect(attempt({ objective: 'something else' })).rejects.toThrow(/objective is immutable/);
    await expect(attempt({ coordination: { version: 'v1' } })).rejects.toThrow(/coordination\.version is immutable/);
    await expect(attempt({ shards: 2 })).rejects.toThrow(/spec\.shards: Invalid value: .*shards is immutable/);
    await attempt({ ttlSecondsAfterFinished: 60, suspend: true });
    expect((await getSwarm(c, ns, 'fixed')).spec).toMatchObject({ ttlSecondsAfterFinished: 60, agents: 5, suspend: true });
  });

  it('fills defaults server-side', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'defaults'));
    const sw = await getSwarm(c, ns, 'defaults');
    expect(sw.spec).toMatchObject({
      topology: 'auto',
      timeoutSeconds: 3600,
      coordination: { version: 'auto', fallbackEnabled: true, fallbackTimeoutSeconds: 30, startDeadlineSeconds: 600 },
      agent: { command: ['cat'], timeoutSeconds: 300, retries: 2, concurrency: 32, maxOutputBytes: 65536 },
      v2: { shmSizeLimit: '256Mi' },
      results: { type: 'persistentVolumeClaim' },
      successPolicy: { minDeliveryRate: 100 },
      shards: 'auto',
      suspend: false,
    });
  });

  it('accepts shards as a number or auto, with the topology that allows them', async () => {
    for (const [name, spec] of [
      ['shards-3', { agents: 30, shards: 3 }],
      ['shards-hybrid', { agents: 30, topology: 'hybrid', shards: 'auto' }],
      ['shards-flat', { agents: 30, topology: 'flat', shards: 1 }],
    ] as const) {
      await c.create(swarmPath(ns), swarmManifest(ns, name, spec));
      expect((await getSwarm(c, ns, name)).spec).toMatchObject(spec);
    }
  });

  it('never lets status.version change once decided', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'decided'));
    await c.mergePatch(swarmPath(ns, 'decided', 'status'), { status: { version: 'v2', versionReason: 'test' } });
    await expect(c.mergePatch(swarmPath(ns, 'decided', 'status'), { status: { version: 'v1' } })).rejects.toThrow(
      /status\.version is decided once and never changes/,
    );
  });
});

describe('config/samples', () => {
  it('are accepted by the API server (server-side dry run)', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { parse } = await import('yaml');
    const dir = join(process.cwd(), 'config/samples');
    const files = readdirSync(dir).filter((f) => f.startsWith('swarm-'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const doc = parse(readFileSync(join(dir, f), 'utf8')) as { metadata: { namespace?: string } };
      doc.metadata.namespace = ns;
      await c.request({ method: 'POST', path: swarmPath(ns), body: doc, query: { dryRun: 'All' } });
    }
  });
});

describe('per-agent tasks (spec.tasks, spec.tasksFrom) on the real API server', () => {
  const withoutAgents = (name: string, spec: Record<string, unknown>) => {
    const m = swarmManifest(ns, name, spec);
    delete (m.spec as Record<string, unknown>).agents;
    return m;
  };
  const from = { configMapKeyRef: { name: 'files', key: 'list' } };

  it('accepts inline tasks with agents left out (it defaults to their number) or equal to it', async () => {
    await c.create(swarmPath(ns), withoutAgents('tasks-only', { tasks: ['a', 'b $(id)', 'c\nd'] }));
    expect((await getSwarm(c, ns, 'tasks-only')).spec).toMatchObject({ tasks: ['a', 'b $(id)', 'c\nd'] });
    await c.create(swarmPath(ns), swarmManifest(ns, 'tasks-equal', { agents: 2, tasks: ['a', 'b'] }));
    await c.create(swarmPath(ns), swarmManifest(ns, 'tasks-from', { agents: 4, tasksFrom: from }));
    expect((await getSwarm(c, ns, 'tasks-from')).spec).toMatchObject({ tasksFrom: { ...from, format: 'auto' } });
  });

  it.each([
    ['agents not the number of tasks (CEL)', { agents: 3, tasks: ['a', 'b'] }, /spec\.agents: Invalid value: .*agents must equal the number of tasks/],
    [
      'tasks and tasksFrom together (CEL)',
      { agents: 1, tasks: ['a'], tasksFrom: from },
      /spec\.tasksFrom: Invalid value: .*tasks and tasksFrom are mutually exclusive/,
    ],
    ['an empty task list', { agents: 1, tasks: [] }, /spec\.tasks: Invalid value: 0: spec\.tasks in body should have at least 1 items/],
    ['one task above 65536 characters', { agents: 1, tasks: ['x'.repeat(65537)] }, /spec\.tasks\[0\]: Too long: may not be (longer|more) than 65536/],
    [
      'inline tasks above 262144 characters in all (CEL)',
      { agents: 5, tasks: Array.from({ length: 5 }, () => 'x'.repeat(60000)) },
      /spec\.tasks: Invalid value: .*tasks must hold at most 262144 characters in all; put a larger list in a ConfigMap/,
    ],
    [
      'flat with more than 300 tasks (CEL)',
      { topology: 'flat', agents: 301, tasks: Array.from({ length: 301 }, (_, i) => `t${i}`) },
      /topology flat supports at most 300 agents/,
    ],
    ['an unknown tasksFrom format', { agents: 1, tasksFrom: { ...from, format: 'csv' } }, /spec\.tasksFrom\.format: Unsupported value: "csv"/],
    ['tasksFrom without a key', { agents: 1, tasksFrom: { configMapKeyRef: { name: 'files' } } }, /spec\.tasksFrom\.configMapKeyRef\.key: Required value/],
  ])('rejects %s', async (_name, spec, pattern) => {
    expect(await rejection(swarmManifest(ns, `bad-${Math.random().toString(36).slice(2, 7)}`, spec))).toMatch(pattern);
  });

  it('rejects neither agents nor tasks, naming agents', async () => {
    expect(await rejection(withoutAgents('no-count', {}))).toMatch(/spec\.agents: Invalid value: .*agents is required unless tasks is given/);
    expect(await rejection(withoutAgents('no-count2', { tasksFrom: from }))).toMatch(/agents is required unless tasks is given/);
  });

  it('keeps tasks and tasksFrom immutable', async () => {
    await expect(c.mergePatch(swarmPath(ns, 'tasks-equal'), { spec: { tasks: ['a', 'changed'] } })).rejects.toThrow(/tasks is immutable/);
    await expect(c.mergePatch(swarmPath(ns, 'tasks-from'), { spec: { tasksFrom: { configMapKeyRef: { name: 'other', key: 'list' } } } })).rejects.toThrow(
      /tasksFrom is immutable/,
    );
    await expect(c.mergePatch(swarmPath(ns, 'tasks-only'), { spec: { agents: 3 } })).rejects.toThrow(/agents is immutable/);
  });
});

describe('spec.results on the real API server', () => {
  const s3 = { endpoint: 'http://s3.storage:9000', bucket: 'swarm-results', credentialsSecretRef: { name: 's3-creds' } };

  it('defaults to a claim the operator creates, fills S3 defaults, and keeps results immutable', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'results-default'));
    expect((await getSwarm(c, ns, 'results-default')).spec).toMatchObject({ results: { type: 'persistentVolumeClaim' } });
    await c.create(swarmPath(ns), swarmManifest(ns, 'results-s3', { results: { type: 's3', s3 } }));
    expect((await getSwarm(c, ns, 'results-s3')).spec).toMatchObject({
      results: {
        type: 's3',
        s3: {
          ...s3,
          region: 'us-east-1',
          forcePathStyle: true,
          credentialsSecretRef: { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' },
        },
      },
    });
    await expect(c.mergePatch(swarmPath(ns, 'results-default'), { spec: { results: { type: 'emptyDir' } } })).rejects.toThrow(/results is immutable/);
  });

  it.each([
    ['type s3 without s3 (CEL)', { type: 's3' }, /spec\.results\.s3: Invalid value: .*s3 is required when type is s3, and only then/],
    [
      's3 settings on a claim (CEL)',
      { type: 'persistentVolumeClaim', s3 },
      /spec\.results\.s3: Invalid value: .*s3 is required when type is s3, and only then/,
    ],
    [
      'claim settings on emptyDir (CEL)',
      { type: 'emptyDir', size: '1Gi' },
      /spec\.results\.type: Invalid value: .*apply only when type is persistentVolumeClaim/,
    ],
    ['a size for an existing claim (CEL)', { claimName: 'mine', size: '1Gi' }, /spec\.results\.claimName: Invalid value: .*not to an existing claimName/],
    ['an endpoint that is not a URL', { type: 's3', s3: { ...s3, endpoint: 'ftp://x' } }, /spec\.results\.s3\.endpoint: Invalid value/],
    ['an invalid bucket name', { type: 's3', s3: { ...s3, bucket: 'Bad_Bucket' } }, /spec\.results\.s3\.bucket: Invalid value/],
    ['an unknown type', { type: 'nfs' }, /spec\.results\.type: Unsupported value: "nfs"/],
  ])('rejects %s', async (_name, results, pattern) => {
    expect(await rejection(swarmManifest(ns, `bad-${Math.random().toString(36).slice(2, 7)}`, { results }))).toMatch(pattern);
  });
});
