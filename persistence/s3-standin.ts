/**
 * LOCAL STAND-IN for the artifact bucket (tests and `npm start`): an in-process `s3rver` (real S3
 * protocol over HTTP) on 127.0.0.1 port 0, backed by a directory (a temp one unless given), with one
 * bucket; production code talks to it through the same `S3ArtifactStore` as to a real endpoint. It rejects unknown access key ids but does not verify SigV4 signatures (a wrong
 * secret is accepted). MACHINE-NOTES §S3: use `forcePathStyle`, credentials S3RVER/S3RVER,
 * region us-east-1; page ListObjectsV2 with `StartAfter`.
 *
 * s3rver does not store ACLs (its GetObjectAcl is a stub that always answers FULL_CONTROL), so every
 * request's `x-amz-acl` header is recorded in `requests`: tests assert visibility on the wire.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of s3rver's (untyped) API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  readonly httpServer?: Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

/** s3rver's built-in account (models/account.js); it signs-checks every request with it. */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';
/** @default 'albedo-test-artifacts' */
export const DEFAULT_STANDIN_BUCKET = 'albedo-test-artifacts';

export interface RecordedS3Request {
  readonly method: string;
  /** Path and query, e.g. `/bucket/key?acl`. */
  readonly url: string;
  /** The canned ACL the client asked for, if any. */
  readonly acl: string | undefined;
}

export interface S3Standin {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** Every request received, in order. */
  readonly requests: RecordedS3Request[];
  close(): Promise<void>;
}

/**
 * @example const s3 = await startS3Standin(); try { … } finally { await s3.close(); }
 */
export async function startS3Standin(options: { readonly bucket?: string; readonly directory?: string } = {}): Promise<S3Standin> {
  const bucket = options.bucket ?? DEFAULT_STANDIN_BUCKET;
  // A given directory is kept on close (the demo's artifacts survive a restart); a temp one is removed.
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'albedo-s3rver-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Path-style only: virtual-host parsing would treat `127.0.0.1` as a bucket host.
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const address = await server.run();
  const requests: RecordedS3Request[] = [];
  server.httpServer?.prependListener('request', (req: IncomingMessage) => {
    const acl = req.headers['x-amz-acl'];
    requests.push({ method: req.method ?? '', url: req.url ?? '', acl: Array.isArray(acl) ? acl[0] : acl });
  });
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId: S3RVER_ACCESS_KEY_ID,
    secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
    region: 'us-east-1',
    requests,
    close: async () => {
      server.httpServer?.closeAllConnections?.();
      await server.close();
      if (!options.directory) await rm(directory, { recursive: true, force: true });
    },
  };
}
