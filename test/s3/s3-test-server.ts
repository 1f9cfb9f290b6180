// A real S3-compatible server for a test file (integration and e2e):
// s3-server.sh starts Versity's gateway (built once, cached) over a fresh
// posix directory with its own keys and buckets; stop() ends it and removes
// the directory.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

const SCRIPT = join(import.meta.dirname, 's3-server.sh');

const serverInfo = z.object({
  endpoint: z.string(),
  region: z.string(),
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  buckets: z.array(z.string()),
  dir: z.string(),
  pid: z.number().int(),
});

export interface S3TestServer extends z.output<typeof serverInfo> {
  /** The posix directory holding bucket `bucket`: what the server really stored. */
  bucketDir(bucket: string): string;
  stop(): void;
}

export function startS3Server(opts: { buckets?: string[]; address?: string } = {}): S3TestServer {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-s3-'));
  const args = ['up', '--dir', dir, ...(opts.address ? ['--address', opts.address] : []), ...(opts.buckets ?? ['results']).flatMap((b) => ['--bucket', b])];
  const out = execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const info = serverInfo.parse(JSON.parse(out.trim().split('\n').pop() ?? ''));
  return {
    ...info,
    bucketDir: (bucket) => join(info.dir, 'data', bucket),
    stop: () => {
      execFileSync('bash', [SCRIPT, 'down', '--dir', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (existsSync(dir)) throw new Error(`s3-server.sh down left ${dir}`);
    },
  };
}
