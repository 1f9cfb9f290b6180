// A swarm's rollout bucket is a pure function of its id, so the same swarm is
// routed the same way in every process and on every run (a random draw per
// decision would flip a swarm between versions).
import { createHash } from 'node:crypto';

export const ROLLOUT_BUCKETS = 100;

/** First 4 bytes of sha256(id), big-endian, mod 100: 0..99. */
export function rolloutBucket(id: string): number {
  const digest = createHash('sha256').update(id, 'utf8').digest();
  return digest.readUInt32BE(0) % ROLLOUT_BUCKETS;
}
