/** `artifacts` rows against a real migrated Postgres (embedded, plus the machine's PG 15 when reachable). */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlbedoError } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { freshDatabase, type TestDatabase, testServers } from '../tests/support/pg.ts';
import { artifactRowOf, listArtifacts, recordArtifact } from './artifacts.ts';
import { inTx } from './db.ts';
import { insertSubmission } from './submissions.ts';

let seq = 0;

async function newSubmission(t: TestDatabase): Promise<SubmissionId> {
  seq += 1;
  return inTx(t.db, async (tx) => {
    const sub = await insertSubmission(tx, {
      netuid: 97,
      hotkey: `5ArtifactTestHotkey${seq}`,
      uid: seq,
      blockNumber: 1000 + seq,
      blockHash: `0x${'ab'.repeat(32)}`,
      repo: `alice/albedo-qwen3.6-35b-art${seq}`,
      digest: `sha256:${seq.toString(16).padStart(64, '0')}`,
      raw: `reveal-${seq}`,
    });
    return sub.id;
  });
}

async function newAttempt(t: TestDatabase, submissionId: SubmissionId): Promise<string> {
  const { rows } = await t.db.query<{ id: string }>(
    `INSERT INTO stage_attempts (submission_id, stage, attempt_number, attempt_key, state, lease_token, lease_expires_at, deadline_at)
     VALUES ($1, 'HIPPIUS', 1, $2, 'RUNNING', $3, now() + interval '1 minute', now() + interval '1 hour') RETURNING id`,
    [submissionId, `${submissionId}:HIPPIUS:1`, randomUUID()],
  );
  return rows[0]!.id;
}

for (const server of testServers()) {
  describe(`artifacts on ${server.name} Postgres`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await freshDatabase(server);
    });
    afterAll(async () => {
      await t?.drop();
    });

    it('records an S3 object with every column and derives storage_backend from the scheme', async () => {
      const submissionId = await newSubmission(t);
      const stageAttemptId = await newAttempt(t, submissionId);
      const sha256 = `sha256:${'1'.repeat(64)}`;
      const record = { uri: 's3://albedo-artifacts/hippius_validation/hk/d/fault.json', bucket: 'albedo-artifacts', objectKey: 'hippius_validation/hk/d/fault.json', sha256, sizeBytes: 321, contentType: 'application/json', artifactType: 'VALIDATION_FAULT' as const, public: true, uploaded: true };
      const { row, created } = await recordArtifact(t.db, artifactRowOf(record, { submissionId, stageAttemptId }));
      expect(created).toBe(true);
      expect(row).toMatchObject({ submission_id: submissionId, stage_attempt_id: stageAttemptId, artifact_type: 'VALIDATION_FAULT', storage_backend: 's3', uri: record.uri, bucket: 'albedo-artifacts', object_key: record.objectKey, sha256, size_bytes: 321, content_type: 'application/json' });
      expect(row.created_at).toBeInstanceOf(Date);
    });

    it('maps file://, hf:// and registry URIs to local-cache, hf and hippius', async () => {
      const submissionId = await newSubmission(t);
      const uris = ['file:///tmp/albedo/x.json', 'hf://org/repo@' + 'a'.repeat(40), `registry.hippius.com/org/repo@sha256:${'b'.repeat(64)}`];
      for (const uri of uris) await recordArtifact(t.db, { submissionId, artifactType: 'MODEL_MANIFEST', uri });
      const rows = await listArtifacts(t.db, submissionId);
      expect(rows.map((r) => [r.uri, r.storage_backend])).toEqual([
        [uris[0], 'local-cache'],
        [uris[1], 'hf'],
        [uris[2], 'hippius'],
      ]);
      expect(rows[0]!.size_bytes).toBeNull();
    });

    it('is idempotent by (submission_id, artifact_type, uri), also for concurrent recorders', async () => {
      const submissionId = await newSubmission(t);
      const row = { submissionId, artifactType: 'EVAL_VERDICT' as const, uri: 's3://albedo-artifacts/eval/r1/verdict.json', sha256: `sha256:${'2'.repeat(64)}`, sizeBytes: 10 };
      const results = await Promise.all(Array.from({ length: 6 }, () => recordArtifact(t.db, row)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.row.id)).size).toBe(1);
      // Same uri under another type is a distinct row.
      expect((await recordArtifact(t.db, { ...row, artifactType: 'SCORING_RESULTS' })).created).toBe(true);
      expect(await listArtifacts(t.db, submissionId)).toHaveLength(2);
    });

    it('joins a caller transaction: a rollback removes the row', async () => {
      const submissionId = await newSubmission(t);
      await expect(
        inTx(t.db, async (tx) => {
          await recordArtifact(tx, { submissionId, artifactType: 'SANITY_RESULT', uri: 's3://albedo-artifacts/s/r.json' });
          throw new Error('rollback please');
        }),
      ).rejects.toThrow('rollback please');
      expect(await listArtifacts(t.db, submissionId)).toEqual([]);
    });

    it('refuses a different sha256 for an already recorded uri and accepts rows without a submission', async () => {
      const submissionId = await newSubmission(t);
      const row = { submissionId, artifactType: 'REMOTE_LOGS' as const, uri: 's3://albedo-artifacts/logs.txt', sha256: `sha256:${'3'.repeat(64)}` };
      await recordArtifact(t.db, row);
      const err = await recordArtifact(t.db, { ...row, sha256: `sha256:${'4'.repeat(64)}` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AlbedoError);
      expect((err as AlbedoError).code).toBe('CONFLICT');
      const orphan = { submissionId: null, artifactType: 'GUARD_DETECTION' as const, uri: 's3://albedo-artifacts/guard/x.json' };
      const a = await recordArtifact(t.db, orphan);
      const b = await recordArtifact(t.db, orphan);
      expect([a.created, b.created]).toEqual([true, false]);
      expect(b.row.submission_id).toBeNull();
    });

    it('rejects empty and over-long uris', async () => {
      await expect(recordArtifact(t.db, { submissionId: null, artifactType: 'REMOTE_LOGS', uri: '' })).rejects.toThrow(/uri length/);
      await expect(recordArtifact(t.db, { submissionId: null, artifactType: 'REMOTE_LOGS', uri: `s3://b/${'x'.repeat(3000)}` })).rejects.toThrow(/uri length/);
    });
  });
}
