// A Swarm's results in S3 as `cfn results` reads them: directly from the
// store, with the reader's own keys (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY) or else the Swarm's Secret, read through the
// caller's own access to it. The S3 client is loaded on the first read only,
// so commands that never read S3 do not load it.
import { s3CredentialsFromEnv, s3CredentialsFromSecret } from './s3-credentials.js';
import { s3Location, type S3ResultsConfig } from './s3-location.js';
import type { ResultSource } from './result-sink.js';
import type { ResultScope } from './stored-result.js';

export interface S3ResultsSourceOptions {
  config: S3ResultsConfig;
  scope: ResultScope;
  /** Where AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY may be. */
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a Secret of the Swarm's namespace (the Kubernetes client's GET); called only without keys in env. */
  readSecret: (name: string) => Promise<unknown>;
}

export function s3ResultsSource(o: S3ResultsSourceOptions): ResultSource & { where: string } {
  return {
    where: s3Location(o.config, o.scope),
    async read() {
      const ref = o.config.credentialsSecretRef;
      const credentials = s3CredentialsFromEnv(o.env) ?? s3CredentialsFromSecret(await o.readSecret(ref.name), ref);
      const { S3Source } = await import('./s3-source.js');
      const source = new S3Source({ config: o.config, scope: o.scope, credentials });
      try {
        return await source.read();
      } finally {
        source.close();
      }
    },
  };
}
