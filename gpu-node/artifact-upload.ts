/**
 * Uploads an eval run's spool directory (as written by gpu-node/eval-artifacts.ts, duel.md §11) to the
 * artifact store under `<artifact_prefix>/<file>`, with object metadata `{sha256, eval_run_id,
 * artifact_name}`, `verdict.json` last. The verdict on disk lists the spool's `file://` URIs; the
 * uploaded verdict lists the stored URIs instead, so a reader of the bucket can follow it (only the
 * `artifacts` / `artifact_metadata` maps change; every other byte of the document is kept).
 *
 * Wiring: `runEval` (gpu-node/executors.ts) calls {@link uploadEvalArtifacts} after `writeEvalArtifacts`
 * when the node has a store (`ALBEDO_REMOTE_S3_*`, gpu-node/main.ts) and puts the stored URIs and
 * metadata into the verdict; the backend records one `artifacts` row per entry in the finaliser's
 * transaction (actors/stages/remote-hooks.ts).
 */
import { join } from 'node:path';
import { parseAttemptKey } from '../core/ids.ts';
import { ARTIFACT_FILES, ARTIFACT_TYPES, type ArtifactName, sortedJson } from '../judge/replay.ts';
import {
  type ArtifactRecord,
  type ArtifactStore,
  ArtifactStoreError,
  type ArtifactType,
  joinArtifactKey,
  LocalDirArtifactStore,
  MAX_ARTIFACT_OBJECT_BYTES,
  parseS3Uri,
  S3ArtifactStore,
  validateArtifactKey,
} from '../persistence/artifact-store.ts';
import type { ArtifactMetadata } from './eval-artifacts.ts';

/** `ALBEDO_EVAL_ARTIFACT_PREFIX` default (spec/config.md). */
export const DEFAULT_EVAL_ARTIFACT_PREFIX = 's3://albedo-artifacts';
/** Longest eval run id used in a key (UUIDs are 36; an attempt-key fallback is longer). @default 200 */
export const MAX_EVAL_RUN_ID_LENGTH = 200;

/** File name ⇒ artifact type of the eight run files (judge/replay.ts is the one source of both). */
export const EVAL_ARTIFACT_TYPE_BY_FILE: ReadonlyMap<string, { readonly name: ArtifactName; readonly type: ArtifactType }> = new Map(
  (Object.keys(ARTIFACT_FILES) as ArtifactName[]).map((name) => [ARTIFACT_FILES[name], { name, type: ARTIFACT_TYPES[name] as ArtifactType }]),
);

/** An eval run id as one key segment: anything outside the key alphabet (e.g. `:` of an attempt key) ⇒ `_`. */
export function evalRunKeySegment(evalRunId: string): string {
  if (evalRunId.length === 0 || evalRunId.length > MAX_EVAL_RUN_ID_LENGTH) throw new ArtifactStoreError('invalid_key', `eval run id length ${evalRunId.length} is outside 1..${MAX_EVAL_RUN_ID_LENGTH}`);
  const segment = evalRunId.replace(/[^A-Za-z0-9._=+-]/g, '_').replace(/^[.=+-]/, '_');
  return validateArtifactKey(segment);
}

/**
 * The run's `artifact_prefix` (duel.md §2): `<root>/submissions/<submission_id>/eval/<eval_run_id>`.
 * Without a submission id but with an attempt key (`<submission>:EVAL:<n>`) the id is taken from it;
 * with neither, `<root>/eval_runs/<eval_run_id>`.
 * @example evalArtifactPrefix({ submissionId: 'f1…', evalRunId: '3b0f…' }) // 's3://albedo-artifacts/submissions/f1…/eval/3b0f…'
 */
export function evalArtifactPrefix(input: { readonly rootPrefix?: string; readonly submissionId?: string | null; readonly attemptKey?: string | null; readonly evalRunId: string }): string {
  const root = (input.rootPrefix ?? DEFAULT_EVAL_ARTIFACT_PREFIX).replace(/\/+$/, '');
  let submissionId = input.submissionId ?? null;
  if (!submissionId && input.attemptKey) {
    try {
      submissionId = parseAttemptKey(input.attemptKey).submissionId;
    } catch {
      submissionId = null;
    }
  }
  const run = evalRunKeySegment(input.evalRunId);
  return submissionId ? `${root}/submissions/${validateArtifactKey(submissionId)}/eval/${run}` : `${root}/eval_runs/${run}`;
}

/**
 * The key prefix of `prefix` inside `store`. An `s3://<bucket>/<path>` prefix must name the S3 store's
 * bucket (a different bucket is a `config` error: one store writes one bucket); the local store keeps
 * the bucket as the first directory. A prefix without a scheme is a key prefix already.
 */
export function keyPrefixInStore(store: ArtifactStore, prefix: string): string {
  if (!prefix.includes('://')) return validateArtifactKey(prefix.replace(/\/+$/, ''));
  if (!prefix.startsWith('s3://')) throw new ArtifactStoreError('invalid_key', `artifact prefix ${JSON.stringify(prefix.slice(0, 120))} is not an s3:// uri`);
  const trimmed = prefix.replace(/\/+$/, '');
  const slash = trimmed.indexOf('/', 's3://'.length);
  const bucket = slash < 0 ? trimmed.slice('s3://'.length) : trimmed.slice('s3://'.length, slash);
  const path = slash < 0 ? '' : trimmed.slice(slash + 1);
  if (path !== '') parseS3Uri(trimmed); // validates bucket name and path
  if (store instanceof S3ArtifactStore) {
    if (bucket !== store.bucket) throw new ArtifactStoreError('config', `artifact prefix bucket ${bucket} differs from the store's bucket ${store.bucket} (ALBEDO_EVAL_ARTIFACT_PREFIX vs ALBEDO_S3_BUCKET)`);
    return path === '' ? '' : validateArtifactKey(path);
  }
  return joinArtifactKey(bucket, path);
}

export interface EvalArtifactUpload {
  /** One per uploaded file, `verdict.json` last: insert an `artifacts` row for each. */
  readonly records: readonly ArtifactRecord[];
  /** duel.md §10 `artifacts`: name ⇒ stored uri. */
  readonly artifacts: Readonly<Record<string, string>>;
  /** duel.md §10 `artifact_metadata` of the stored objects (the verdict's own entry included). */
  readonly artifactMetadata: Readonly<Record<string, ArtifactMetadata>>;
}

function metadataOf(record: ArtifactRecord): ArtifactMetadata {
  return {
    uri: record.uri,
    bucket: record.bucket,
    object_key: record.objectKey,
    sha256: record.sha256,
    size_bytes: record.sizeBytes,
    content_type: record.contentType,
    artifact_type: record.artifactType,
  };
}

/**
 * Uploads the run files found in `spoolDir` (unknown files are skipped), then `verdict.json` rewritten
 * to list the stored URIs. Re-running after a partial upload is safe: identical objects are not sent
 * again. Throws `ArtifactStoreError` (`not_found` when the spool has no `verdict.json`).
 * @example const up = await uploadEvalArtifacts(store, { spoolDir, artifactPrefix: evalArtifactPrefix({ submissionId, evalRunId }), evalRunId });
 */
export async function uploadEvalArtifacts(store: ArtifactStore, input: { readonly spoolDir: string; readonly artifactPrefix: string; readonly evalRunId: string }): Promise<EvalArtifactUpload> {
  const prefix = keyPrefixInStore(store, input.artifactPrefix);
  const verdictFile = ARTIFACT_FILES.verdict;
  const verdictKey = joinArtifactKey(prefix, verdictFile);
  // Read the verdict first: a spool without one is an unfinished run and uploads nothing.
  const spool = new LocalDirArtifactStore(input.spoolDir);
  const verdictBytes = await spool.get(spool.uriOf(verdictFile), { maxBytes: MAX_ARTIFACT_OBJECT_BYTES });
  let verdict: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(verdictBytes).toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    verdict = parsed as Record<string, unknown>;
  } catch (error) {
    throw new ArtifactStoreError('invalid_key', `${join(input.spoolDir, verdictFile)} is not a JSON object: ${(error as Error).message}`);
  }
  const records = await store.putDirectory(prefix, input.spoolDir, {
    artifactTypeOf: (rel) => (rel === verdictFile ? null : (EVAL_ARTIFACT_TYPE_BY_FILE.get(rel)?.type ?? null)),
    metadataOf: (rel) => ({ eval_run_id: input.evalRunId, artifact_name: EVAL_ARTIFACT_TYPE_BY_FILE.get(rel)?.name ?? rel }),
  });
  const artifacts: Record<string, string> = {};
  const artifactMetadata: Record<string, ArtifactMetadata> = {};
  for (const record of records) {
    const name = EVAL_ARTIFACT_TYPE_BY_FILE.get(record.objectKey.slice(prefix.length + (prefix ? 1 : 0)))?.name;
    if (!name) continue;
    artifacts[name] = record.uri;
    artifactMetadata[name] = metadataOf(record);
  }
  // As on disk, the verdict cannot hash itself: its own entry carries the URI only.
  artifacts.verdict = store.uriOf(verdictKey);
  const rewritten = `${sortedJson({ ...verdict, artifacts, artifact_metadata: artifactMetadata }, 2)}\n`;
  const verdictRecord = await store.put(verdictKey, rewritten, {
    contentType: 'application/json',
    artifactType: 'EVAL_VERDICT',
    metadata: { eval_run_id: input.evalRunId, artifact_name: 'verdict' },
  });
  return { records: [...records, verdictRecord], artifacts, artifactMetadata: { ...artifactMetadata, verdict: metadataOf(verdictRecord) } };
}
