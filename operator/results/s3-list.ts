// Every object under a key prefix, following ListObjectsV2's continuation
// tokens (S3 returns at most 1000 keys a page).
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { toS3StoreError, type S3Target } from './s3-client.js';

export interface ListedObject {
  key: string;
  size: number;
}

export async function listObjects(s3: S3Client, target: Pick<S3Target, 'endpoint' | 'bucket'>, prefix: string, pageSize?: number): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await s3.send(
        new ListObjectsV2Command({
          Bucket: target.bucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : {}),
          ...(pageSize ? { MaxKeys: pageSize } : {}),
        }),
      );
    } catch (err) {
      throw toS3StoreError(err, target, `listing ${prefix}`);
    }
    for (const c of page.Contents ?? []) if (c.Key) out.push({ key: c.Key, size: c.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated && !token) throw toS3StoreError(new Error('a truncated listing without a continuation token'), target, `listing ${prefix}`);
  } while (token);
  return out;
}
