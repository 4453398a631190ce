/**
 * `albedo verify`: recomputes an eval's aggregation and verdict from its run artifacts (duel.md §11)
 * with the parameters recorded in verdict.json, and says whether they match what the host recorded.
 * Sources: a local artifact directory, or a `file://` / `http(s)://` / `s3://` URI of verdict.json (the
 * other files are fetched by the URIs inside it, size-bounded), or an eval run id looked up on the
 * backend (`evalRunArtifacts`). `s3://` objects are read through their public URL (verdict artifacts
 * are public-read, spec/pipeline.md §9 item 25), or with `ALBEDO_S3_*` credentials when those are set.
 */
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ArtifactStore,
  artifactStoreFromEnv,
  ArtifactStoreError,
  DEFAULT_DASHBOARD_ARTIFACT_BASE_URL,
  type PublicUrlOptions,
  parseS3Uri,
  publicArtifactUrl,
  S3ArtifactStore,
} from '../../persistence/artifact-store.ts';
import { ARTIFACT_FILES, type ArtifactReader, directoryReader, MAX_ARTIFACT_BYTES, ReplayError, type ReplayResult, replayArtifacts } from '../../judge/replay.ts';
import type { CommandSpec } from '../cli.ts';
import { UsageError } from '../env.ts';

/** verdict.json itself is small; anything bigger is not one. @default 16 MiB */
export const MAX_VERDICT_BYTES = 16 * 1024 * 1024;
/** Per-download timeout. @default 60000 */
export const FETCH_TIMEOUT_MS = 60_000;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A failure of `albedo verify` itself (bad target, download trouble): exit 1 with its message. */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
}

async function readFileBounded(path: string, limit: number, what: string): Promise<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new VerifyError(`cannot read ${what} (${path}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > limit) throw new VerifyError(`${what} is ${size} bytes, over the ${limit}-byte limit`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** How `s3://` artifact URIs are read. */
export interface S3Access {
  /** Public URL mapping (`ALBEDO_DASHBOARD_ARTIFACT_BASE_URL`, `ALBEDO_DASHBOARD_BASE_INCLUDES_BUCKET`). @default the dashboard defaults */
  readonly publicUrl?: PublicUrlOptions;
  /** A credentialed store (`ALBEDO_S3_*`); objects of its bucket are read through it. @default none */
  readonly store?: ArtifactStore | null;
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/** {@link S3Access} from the environment; a malformed `ALBEDO_S3_*` setting is a {@link VerifyError}. */
export function s3AccessFromEnv(env: Readonly<Record<string, string | undefined>>): S3Access {
  let store: ArtifactStore | null;
  try {
    store = artifactStoreFromEnv(env);
  } catch (error) {
    if (error instanceof ArtifactStoreError) throw new VerifyError(`ALBEDO_S3_* settings: ${error.message}`);
    throw error;
  }
  return {
    publicUrl: { baseUrl: env.ALBEDO_DASHBOARD_ARTIFACT_BASE_URL || DEFAULT_DASHBOARD_ARTIFACT_BASE_URL, baseIncludesBucket: envFlag(env.ALBEDO_DASHBOARD_BASE_INCLUDES_BUCKET) },
    store,
  };
}

/** An `s3://` object: through the credentialed store when it holds the bucket, else its public URL. */
async function fetchS3(uri: string, limit: number, what: string, signal: AbortSignal, access: S3Access): Promise<Uint8Array> {
  let bucket: string;
  try {
    bucket = parseS3Uri(uri).bucket;
  } catch (error) {
    throw new VerifyError(`${what}: ${(error as Error).message}`);
  }
  const store = access.store;
  if (store instanceof S3ArtifactStore && store.bucket === bucket) {
    try {
      return await store.get(uri, { maxBytes: limit });
    } catch (error) {
      throw new VerifyError(`cannot download ${what} from ${uri}: ${(error as Error).message}`);
    }
  }
  const url = publicArtifactUrl(uri, access.publicUrl ?? {});
  if (url === null) throw new VerifyError(`${what}: ${uri} has no public URL`);
  return fetchBounded(url, limit, what, signal, access);
}

async function fetchBounded(url: string, limit: number, what: string, signal: AbortSignal, access: S3Access = {}): Promise<Uint8Array> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new VerifyError(`${what}: not a URI: ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (parsed.protocol === 'file:') return readFileBounded(fileURLToPath(parsed), limit, what);
  if (parsed.protocol === 's3:') return fetchS3(url, limit, what, signal, access);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new VerifyError(`${what}: unsupported URI scheme ${parsed.protocol} (file:, s3:, http: and https: are)`);
  let response: Response;
  try {
    response = await fetch(parsed, { signal: AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]), redirect: 'follow' });
  } catch (error) {
    throw new VerifyError(`cannot download ${what} from ${parsed.origin}${parsed.pathname}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new VerifyError(`cannot download ${what} from ${parsed.origin}${parsed.pathname}: HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw new VerifyError(`${what} is ${declared} bytes, over the ${limit}-byte limit`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw new VerifyError(`${what} is over the ${limit}-byte limit`);
      }
      chunks.push(value);
    }
  }
  return Buffer.concat(chunks);
}

/** Reads verdict.json from `url`, then every other artifact by the URI verdict.json names for it. */
async function urlReader(url: string, signal: AbortSignal, access: S3Access): Promise<ArtifactReader> {
  const verdictBytes = await fetchBounded(url, MAX_VERDICT_BYTES, ARTIFACT_FILES.verdict, signal, access);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(verdictBytes).toString('utf8'));
  } catch (error) {
    throw new ReplayError(`${ARTIFACT_FILES.verdict}: not valid JSON (${(error as Error).message})`);
  }
  const artifacts = (doc as { artifacts?: unknown } | null)?.artifacts;
  if (artifacts === null || typeof artifacts !== 'object') throw new ReplayError(`${ARTIFACT_FILES.verdict}.artifacts: expected a JSON object of artifact URIs`);
  const metadata = ((doc as { artifact_metadata?: unknown }).artifact_metadata ?? {}) as Record<string, { size_bytes?: unknown } | undefined>;
  const nameOf = new Map(Object.entries(ARTIFACT_FILES).map(([name, file]) => [file as string, name]));
  return async (file) => {
    if (file === ARTIFACT_FILES.verdict) return verdictBytes;
    const name = nameOf.get(file);
    const uri = name === undefined ? undefined : (artifacts as Record<string, unknown>)[name];
    if (typeof uri !== 'string') throw new ReplayError(`${ARTIFACT_FILES.verdict} names no URI for ${file}`);
    // The recorded size bounds the download (a little slack for nothing: sizes are exact).
    const declared = metadata[name as string]?.size_bytes;
    const limit = typeof declared === 'number' && Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, MAX_ARTIFACT_BYTES) : MAX_ARTIFACT_BYTES;
    let resolved: URL;
    try {
      resolved = new URL(uri, url);
    } catch {
      throw new ReplayError(`${ARTIFACT_FILES.verdict} names an invalid URI for ${file}`);
    }
    // A verdict served over the network never makes us read local files.
    if (!url.toLowerCase().startsWith('file:') && resolved.protocol === 'file:') throw new VerifyError(`${ARTIFACT_FILES.verdict} from ${url.split('/').slice(0, 3).join('/')} points ${file} at a local file; refusing`);
    return fetchBounded(resolved.href, limit, file, signal, access);
  };
}

/** Where an eval run id is looked up: the backend's tRPC endpoint and a reader token. */
export interface BackendLookup {
  readonly api?: string;
  readonly token?: string;
}

/**
 * The verdict URI of eval run `id`, asked of the backend (`evalRunArtifacts`): `s3://` when the eval
 * node uploaded its artifacts, `file://` on the node when it had no store configured (then a replay by
 * id works only where that path resolves).
 */
async function verdictUriOf(id: string, backend: BackendLookup): Promise<string> {
  if (!backend.api) throw new VerifyError('looking up an eval run by id needs the backend: pass --api <ws://host:port/rpc> (and ALBEDO_READER_TOKEN), or pass the artifact directory or the verdict URL');
  const [{ createAlbedoClient }, { WebSocket }] = await Promise.all([import('../../rpc/client.ts'), import('ws')]);
  const client = createAlbedoClient({ url: backend.api, token: backend.token, WebSocket });
  try {
    const found = await client.api.evalRunArtifacts.query({ evalRunId: id });
    const uri = found.artifacts.verdict;
    if (!uri) throw new VerifyError(`eval run ${id} (${found.state}) recorded no artifacts`);
    return uri;
  } catch (error) {
    if (error instanceof VerifyError) throw error;
    throw new VerifyError(`could not look up eval run ${id} at ${backend.api}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await client.close();
  }
}

/** Resolves the target to an artifact reader, or throws {@link VerifyError}. */
export async function resolveTarget(target: string, signal: AbortSignal, backend: BackendLookup = {}, access: S3Access = {}): Promise<ArtifactReader> {
  if (/^(file|https?|s3):\/\//i.test(target)) return urlReader(target, signal, access);
  const info = await stat(target).catch(() => null);
  if (info?.isDirectory()) return directoryReader(target);
  if (info?.isFile()) return directoryReader(dirname(target));
  if (UUID_RE.test(target)) return urlReader(await verdictUriOf(target, backend), signal, access);
  throw new VerifyError(`no such artifact directory: ${target}`);
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function formatResult(result: ReplayResult): string {
  if (result.match) return 'match';
  const d = result.firstDifference;
  return d ? `mismatch: ${d.field}: recorded ${show(d.recorded)}, recomputed ${show(d.recomputed)}` : 'mismatch';
}

export const verifyCommand: CommandSpec = {
  name: 'verify',
  summary: 'recompute an eval verdict from its run artifacts and compare it with the recorded one',
  synopsis: '<artifact-dir | verdict-url | eval-run-id> [--json]',
  description: [
    'Reads the run artifacts of one eval (verdict.json, scoring-results.jsonl, judge-results.jsonl,',
    'generated-samples.jsonl), recomputes the judge aggregation and the verdict (margin rule, bootstrap',
    'bound and policy) with the parameters recorded in verdict.json, and prints "match", or',
    '"mismatch: <field>: recorded X, recomputed Y" for the first field that differs. The target is a local',
    'artifact directory (or its verdict.json), or a file://, s3:// or http(s):// URI of verdict.json, in which',
    'case the other files are downloaded from the URIs it lists (size-bounded). An eval run id is looked up',
    'on the backend (--api, reader token in ALBEDO_READER_TOKEN) for its verdict URI. s3:// objects are read',
    'through their public URL (ALBEDO_DASHBOARD_ARTIFACT_BASE_URL, ALBEDO_DASHBOARD_BASE_INCLUDES_BUCKET),',
    'or with ALBEDO_S3_ENDPOINT / _BUCKET / _ACCESS_KEY / _SECRET_KEY when those are set.',
    'Exit 0 on match, 1 on mismatch or error.',
  ].join('\n'),
  // [0, 1] rather than [1, 1] so a missing target gets this command's own usage message.
  positionals: [0, 1],
  flags: {
    json: { type: 'boolean', description: 'print one JSON object ({match, firstDifference?} or {error})' },
    api: { type: 'string', placeholder: '<ws-url>', description: 'backend tRPC endpoint, to look up an eval run id (token: ALBEDO_READER_TOKEN)' },
  },

  async run(ctx, flags) {
    const target = flags.positionals[0];
    if (target === undefined || target === '') throw new UsageError('missing the artifact directory, verdict URL or eval run id to verify');
    const json = flags.boolean('json');
    let result: ReplayResult;
    let access: S3Access = {};
    try {
      access = s3AccessFromEnv(ctx.env);
      result = await replayArtifacts(await resolveTarget(target, ctx.signal, { api: flags.string('api'), token: ctx.env.ALBEDO_READER_TOKEN }, access));
    } catch (error) {
      if (json && (error instanceof VerifyError || error instanceof ReplayError)) {
        ctx.out(JSON.stringify({ match: false, error: error.message }));
        return 1;
      }
      if (error instanceof ReplayError) throw new VerifyError(error.message);
      throw error;
    } finally {
      if (access.store instanceof S3ArtifactStore) access.store.close();
    }
    ctx.out(json ? JSON.stringify(result) : formatResult(result));
    return result.match ? 0 : 1;
  },
};
