import { createHash } from 'node:crypto';
import type { SubmissionId } from '../core/ids.ts';
import { type Db, inTx } from './db.ts';

export interface GenesisKing {
  readonly netuid: number;
  readonly hotkey: string;
  readonly uid: number;
  /** `<repo>@<digest>` (spec/config.md `ALBEDO_GENESIS_MODEL_URI`). */
  readonly modelUri: string;
  readonly coldkey?: string | null;
}

/**
 * Seeds reign version 1 with the genesis king in slot 1 (weight 10000 bps), idempotently
 * (key `genesis:<netuid>:<hotkey>:<sha256(reveal)>`, spec §8). The genesis submission is recorded
 * as COMPLETE_CORONATED; it never runs through the pipeline.
 */
export async function bootstrapGenesis(db: Db, g: GenesisKing): Promise<{ submissionId: SubmissionId; created: boolean }> {
  const at = g.modelUri.lastIndexOf('@');
  if (at <= 0) throw new TypeError(`genesis model uri must be <repo>@<digest>: ${g.modelUri}`);
  const repo = g.modelUri.slice(0, at);
  const digest = g.modelUri.slice(at + 1);
  const reveal = `v7|${repo}|${digest}`;
  const key = `genesis:${g.netuid}:${g.hotkey}:${createHash('sha256').update(reveal).digest('hex')}`;
  return inTx(db, async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('reign_promotion'))");
    const existing = await tx.query<{ id: SubmissionId }>('SELECT id FROM model_submissions WHERE idempotency_key = $1', [key]);
    if (existing.rows[0]) return { submissionId: existing.rows[0].id, created: false };
    const active = await tx.query("SELECT 1 FROM reigns WHERE state = 'ACTIVE'");
    if (active.rowCount) throw new Error('an ACTIVE reign already exists; genesis only seeds an empty chain');
    const commit = await tx.query<{ id: string }>(
      `INSERT INTO chain_commits (netuid, block_number, block_hash, uid, hotkey, commit_payload, model_uri, payload_hash)
       VALUES ($1, 0, 'genesis', $2, $3, $4, $5, $6) RETURNING id`,
      [g.netuid, g.uid, g.hotkey, { version: 'v7', repo, digest, author_hotkey: g.hotkey, spoofed: false }, g.modelUri, createHash('sha256').update(reveal).digest('hex')],
    );
    const sub = await tx.query<{ id: SubmissionId }>(
      `INSERT INTO model_submissions (chain_commit_id, netuid, uid, hotkey, model_uri, commit_hash, model_hash, state, idempotency_key, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6, 'COMPLETE_CORONATED', $7, now()) RETURNING id`,
      [commit.rows[0]?.id, g.netuid, g.uid, g.hotkey, g.modelUri, digest, key],
    );
    const submissionId = sub.rows[0]!.id;
    await tx.query('UPDATE chain_commits SET submission_id = $1 WHERE id = $2', [submissionId, commit.rows[0]?.id]);
    const artifact = await tx.query<{ id: string }>(
      `INSERT INTO artifacts (submission_id, artifact_type, storage_backend, uri) VALUES ($1, 'MODEL_MANIFEST', 'hippius', $2) RETURNING id`,
      [submissionId, g.modelUri],
    );
    const reign = await tx.query<{ id: string }>(
      "INSERT INTO reigns (version, reason, state, activated_at, trigger_submission_id) VALUES (1, 'GENESIS', 'ACTIVE', now(), $1) RETURNING id",
      [submissionId],
    );
    const king = await tx.query<{ id: string }>(
      `INSERT INTO king_versions (submission_id, model_hash, artifact_id, version, entered_reign_id, entered_slot, activated_at, activated_by)
       VALUES ($1, $2, $3, 1, $4, 1, now(), 'genesis') RETURNING id`,
      [submissionId, digest, artifact.rows[0]?.id, reign.rows[0]?.id],
    );
    await tx.query(
      `INSERT INTO reign_members (reign_id, slot, king_version_id, submission_id, hotkey, uid, model_hash, weight_bps) VALUES ($1, 1, $2, $3, $4, $5, $6, 10000)`,
      [reign.rows[0]?.id, king.rows[0]?.id, submissionId, g.hotkey, g.uid, digest],
    );
    await tx.query("INSERT INTO used_hotkeys (hotkey, netuid, submission_id, source) VALUES ($1, $2, $3, 'eval') ON CONFLICT DO NOTHING", [g.hotkey, g.netuid, submissionId]);
    await tx.query(
      "INSERT INTO events (submission_id, event_type, severity, message, dedup_key) VALUES ($1, 'genesis_king_bootstrapped', 'INFO', $2, $3)",
      [submissionId, `Genesis king ${g.modelUri} in slot 1 of reign 1`, `genesis:${submissionId}`],
    );
    return { submissionId, created: true };
  });
}
