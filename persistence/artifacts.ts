/**
 * The `artifacts` table (spec/pipeline.md §8): one row per stored object, `storage_backend` derived
 * from the URI scheme. Rows are idempotent by `(submission_id, artifact_type, uri)` so a retried
 * stage (or a replayed verdict) records each object once.
 */
import pg from 'pg';
import { AlbedoError } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { storageBackendOfUri } from '../validation/model-ref.ts';
import type { ArtifactRecord, ArtifactType } from './artifact-store.ts';
import { type Db, inTx, type Tx } from './db.ts';

export type Queryable = Db | Tx;

/** Longest `uri` recorded; URIs come from our own store, so a longer one is a bug. @default 2048 */
export const MAX_ARTIFACT_URI_LENGTH = 2048;

export interface NewArtifactRow {
  /** Null for artifacts not tied to a submission (e.g. a guard detection before ingest). */
  readonly submissionId: SubmissionId | null;
  readonly stageAttemptId?: string | null;
  readonly artifactType: ArtifactType;
  readonly uri: string;
  readonly bucket?: string | null;
  readonly objectKey?: string | null;
  /** `sha256:<hex>`. */
  readonly sha256?: string | null;
  readonly sizeBytes?: number | null;
  readonly contentType?: string | null;
}

export interface ArtifactRow {
  readonly id: string;
  readonly submission_id: SubmissionId | null;
  readonly stage_attempt_id: string | null;
  readonly artifact_type: ArtifactType;
  readonly storage_backend: 's3' | 'hippius' | 'hf' | 'local-cache';
  readonly uri: string;
  readonly bucket: string | null;
  readonly object_key: string | null;
  readonly sha256: string | null;
  /** `bigint` comes back from pg as a string; converted to a number (objects are capped far below 2^53). */
  readonly size_bytes: number | null;
  readonly content_type: string | null;
  readonly created_at: Date;
}

/** The row fields of a stored object. */
export function artifactRowOf(record: ArtifactRecord, ids: { readonly submissionId: SubmissionId | null; readonly stageAttemptId?: string | null }): NewArtifactRow {
  return {
    submissionId: ids.submissionId,
    stageAttemptId: ids.stageAttemptId ?? null,
    artifactType: record.artifactType,
    uri: record.uri,
    bucket: record.bucket,
    objectKey: record.objectKey,
    sha256: record.sha256,
    sizeBytes: record.sizeBytes,
    contentType: record.contentType,
  };
}

const COLUMNS = 'id, submission_id, stage_attempt_id, artifact_type, storage_backend, uri, bucket, object_key, sha256, size_bytes, content_type, created_at';

function normalise(row: Omit<ArtifactRow, 'size_bytes'> & { size_bytes: string | number | null }): ArtifactRow {
  return { ...row, size_bytes: row.size_bytes === null ? null : Number(row.size_bytes) };
}

export interface RecordArtifactOptions {
  /**
   * A recorded row of the same identity but another sha256 is updated instead of refused: for objects
   * stored with `replace` (the latest-state `fault.json`). @default false
   */
  readonly replace?: boolean;
}

async function recordInTx(tx: Tx, row: NewArtifactRow, options: RecordArtifactOptions): Promise<{ row: ArtifactRow; created: boolean }> {
  // The table has no unique index on the identity (001_pipeline.sql), so concurrent recorders of the
  // same object serialise on a transaction-scoped advisory lock of that identity; the existence check
  // runs after the lock, in a new statement snapshot, and therefore sees a concurrent insert.
  const identity = `artifact:${row.submissionId ?? '-'}:${row.artifactType}:${row.uri}`;
  await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [identity]);
  const existing = await tx.query(
    `SELECT ${COLUMNS} FROM artifacts WHERE submission_id IS NOT DISTINCT FROM $1 AND artifact_type = $2 AND uri = $3 ORDER BY created_at, id LIMIT 1`,
    [row.submissionId, row.artifactType, row.uri],
  );
  const found = existing.rows[0];
  if (found) {
    const prior = normalise(found);
    if (row.sha256 && prior.sha256 && prior.sha256 !== row.sha256) {
      if (options.replace) {
        const updated = await tx.query(
          `UPDATE artifacts SET sha256 = $2, size_bytes = $3, content_type = $4, stage_attempt_id = coalesce($5, stage_attempt_id) WHERE id = $1 RETURNING ${COLUMNS}`,
          [prior.id, row.sha256, row.sizeBytes ?? null, row.contentType ?? null, row.stageAttemptId ?? null],
        );
        return { row: normalise(updated.rows[0]), created: false };
      }
      throw new AlbedoError('CONFLICT', `artifact ${row.uri} is already recorded with ${prior.sha256}, not ${row.sha256} (artifacts are immutable)`);
    }
    return { row: prior, created: false };
  }
  const inserted = await tx.query(
    `INSERT INTO artifacts (submission_id, stage_attempt_id, artifact_type, storage_backend, uri, bucket, object_key, sha256, size_bytes, content_type)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
    [row.submissionId, row.stageAttemptId ?? null, row.artifactType, storageBackendOfUri(row.uri), row.uri, row.bucket ?? null, row.objectKey ?? null, row.sha256 ?? null, row.sizeBytes ?? null, row.contentType ?? null],
  );
  return { row: normalise(inserted.rows[0]), created: true };
}

/**
 * Inserts an `artifacts` row unless the same `(submission_id, artifact_type, uri)` is already recorded
 * (then returns that row, `created: false`; a different recorded sha256 is a CONFLICT). Given a pool it
 * opens its own transaction; given a transaction it joins it (the advisory lock lasts until its commit).
 * @example await recordArtifact(tx, artifactRowOf(record, { submissionId, stageAttemptId }))
 */
export async function recordArtifact(q: Queryable, row: NewArtifactRow, options: RecordArtifactOptions = {}): Promise<{ row: ArtifactRow; created: boolean }> {
  if (row.uri.length === 0 || row.uri.length > MAX_ARTIFACT_URI_LENGTH) throw new AlbedoError('BAD_INPUT', `artifact uri length ${row.uri.length} is outside 1..${MAX_ARTIFACT_URI_LENGTH}`);
  if (q instanceof pg.Pool) return inTx(q, (tx) => recordInTx(tx, row, options));
  return recordInTx(q as Tx, row, options);
}

/** Every artifact of a submission, oldest first. */
export async function listArtifacts(q: Queryable, submissionId: SubmissionId): Promise<ArtifactRow[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM artifacts WHERE submission_id = $1 ORDER BY created_at, id`, [submissionId]);
  return rows.map(normalise);
}
