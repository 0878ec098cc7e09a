/**
 * @module storage/s3-blob-store
 * Uploads in an S3-compatible bucket (AWS, Ceph RGW, moto...), so that API nodes and worker nodes on different
 * machines share them. The only module that imports the AWS SDK. Uploads go up as multipart uploads of bounded
 * parts (`lib-storage`'s `Upload`), so one never sits whole in memory: at most `PART_SIZE_BYTES` times
 * (`QUEUE_SIZE` + 1) per upload (25 MiB).
 */
import { createWriteStream } from 'node:fs';
import { pipeline as pipelineCallback } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

import { BlobNotFoundError, BlobTooLargeError, storageUnavailable } from './blob-store.ts';
import type { BlobEntry, BlobStore } from './blob-store.ts';
import { byteLimit } from './byte-limit.ts';

/** S3's smallest part: the least memory an upload can hold. */
const PART_SIZE_BYTES = 5 * 1024 * 1024;
/**
 * Parts in flight at once. Against moto on loopback (`npm run bench:storage`, best of 2 rounds of 100 MB, one
 * run): 2 parts of 5 MiB put 44 MB/s, 4 put 66 MB/s, 4 of 8 MiB 53 MB/s, 4 of 16 MiB 49 MB/s. So at most
 * 5 MiB x (4 + 1) = 25 MiB of an upload is in memory, times `CESAR_MAX_CONCURRENT_UPLOADS`.
 */
const QUEUE_SIZE = 4;
/** A store that accepts no connection is reported unreachable quickly, so the job retries later. */
const CONNECT_TIMEOUT_MS = 5000;
/** A store that stops answering mid-request: the socket's idle limit. */
const REQUEST_IDLE_TIMEOUT_MS = 60_000;

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slashes; empty for the bucket's root. */
  prefix: string;
  /** A self-hosted store's URL (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL); null for AWS itself. */
  endpoint: string | null;
  region: string;
  /** From AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; null lets the SDK find them (profile, instance role). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
}

const errorName = (error: unknown): string => (error instanceof Error ? error.name : '');

export function createS3BlobStore(location: S3Location): BlobStore {
  const client = new S3Client({
    region: location.region,
    ...(location.endpoint !== null && { endpoint: location.endpoint }),
    // Self-hosted stores rarely have a DNS name per bucket.
    forcePathStyle: location.endpoint !== null,
    ...(location.credentials !== null && { credentials: location.credentials }),
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_IDLE_TIMEOUT_MS },
    // Two quick attempts: a longer outage is the job queue's to retry (with backoff), not one request's.
    maxAttempts: 2,
  });
  const Bucket = location.bucket;
  const objectKey = (key: string): string => (location.prefix === '' ? key : `${location.prefix}/${key}`);
  const ourKey = (stored: string): string => (location.prefix === '' ? stored : stored.slice(location.prefix.length + 1));

  /** Deletes the object and aborts unfinished multipart uploads of it (a killed API node leaves those behind). */
  const remove = async (key: string): Promise<void> => {
    const Key = objectKey(key);
    try {
      await client.send(new DeleteObjectCommand({ Bucket, Key }));
      let KeyMarker: string | undefined;
      let UploadIdMarker: string | undefined;
      do {
        const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key, KeyMarker, UploadIdMarker }));
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === Key && upload.UploadId !== undefined) {
            await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: upload.UploadId }));
          }
        }
        ({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : { NextKeyMarker: undefined, NextUploadIdMarker: undefined });
      } while (KeyMarker !== undefined);
    } catch (error) {
      throw storageUnavailable(`remove ${key}`, error);
    }
  };

  return {
    location: `s3://${Bucket}/${location.prefix}`,
    async put(key, body, { maxBytes, signal }) {
      signal.throwIfAborted();
      const limiter = byteLimit(maxBytes);
      // The callback form destroys the limiter with the body's error, which ends the upload's reads with it.
      const source: Readable = pipelineCallback(body, limiter, () => undefined);
      // Aborting through the source, not the Upload's own controller: its `done()` then settles only after the
      // multipart upload has been aborted, so the cleanup below never races it.
      const onAbort = (): void => void source.destroy(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      const upload = new Upload({ client, params: { Bucket, Key: objectKey(key), Body: source }, partSize: PART_SIZE_BYTES, queueSize: QUEUE_SIZE, leavePartsOnError: false });
      try {
        await upload.done();
        signal.throwIfAborted();
        return { sizeBytes: limiter.bytes };
      } catch (error) {
        // A single-part upload may have landed just before the failure; a removal that fails too is the orphan sweep's.
        await remove(key).catch(() => undefined);
        if (signal.aborted) {
          throw signal.reason;
        }
        if (error instanceof BlobTooLargeError || limiter.bytes > maxBytes) {
          throw new BlobTooLargeError(maxBytes);
        }
        if (body.errored) {
          throw body.errored;
        }
        throw storageUnavailable(`store ${key}`, error);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
    async download(key, file, signal) {
      let response;
      try {
        response = await client.send(new GetObjectCommand({ Bucket, Key: objectKey(key) }), { abortSignal: signal });
      } catch (error) {
        signal.throwIfAborted();
        if (errorName(error) === 'NoSuchKey') {
          throw new BlobNotFoundError(key);
        }
        throw storageUnavailable(`read ${key}`, error);
      }
      try {
        await pipeline(response.Body as Readable, createWriteStream(file), { signal });
      } catch (error) {
        signal.throwIfAborted();
        throw storageUnavailable(`read ${key}`, error);
      }
    },
    localPath: () => null,
    remove,
    async *list(prefix): AsyncGenerator<BlobEntry> {
      const Prefix = objectKey(prefix);
      try {
        let ContinuationToken: string | undefined;
        do {
          const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }));
          for (const object of page.Contents ?? []) {
            if (object.Key !== undefined) {
              yield { key: ourKey(object.Key), lastModifiedMs: object.LastModified?.getTime() ?? Date.now() };
            }
          }
          ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (ContinuationToken !== undefined);
        let KeyMarker: string | undefined;
        let UploadIdMarker: string | undefined;
        do {
          const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix, KeyMarker, UploadIdMarker }));
          for (const upload of page.Uploads ?? []) {
            if (upload.Key !== undefined) {
              yield { key: ourKey(upload.Key), lastModifiedMs: upload.Initiated?.getTime() ?? Date.now() };
            }
          }
          ({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : { NextKeyMarker: undefined, NextUploadIdMarker: undefined });
        } while (KeyMarker !== undefined);
      } catch (error) {
        throw storageUnavailable(`list ${prefix}`, error);
      }
    },
    close() {
      client.destroy();
      return Promise.resolve();
    },
  };
}
