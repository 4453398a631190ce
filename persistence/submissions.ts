import { payloadHash as specPayloadHash } from '../chain/reveal.ts';
import type { SubmissionId } from '../core/ids.ts';
import type { Tx } from './db.ts';

export interface NewReveal {
  readonly netuid: number;
  readonly hotkey: string;
  readonly uid: number;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly extrinsicHash?: string | null;
  readonly repo: string;
  readonly digest: string;
  /** The raw reveal string, kept for the used-hotkeys ledger and audits. */
  readonly raw: string;
  readonly protocolVersion?: 'v1' | 'v2';
  /** `Owner(hotkey)` at the scanned block (spec/chain.md §3 step 7). */
  readonly coldkey?: string | null;
  /** `BlockAtRegistration(netuid, uid)` from the metagraph snapshot. */
  readonly registrationBlock?: number | null;
}

/**
 * T1 of spec/pipeline.md: one chain commit and its submission, idempotently (key
 * `chain:<netuid>:<hotkey>:<payload_hash>`). Returns `created: false` for a reveal already ingested.
 * A re-reveal of identical content moves the commit's block (spec/chain.md §3 step 7) but never creates a
 * second submission.
 */
export async function insertSubmission(tx: Tx, r: NewReveal): Promise<{ id: SubmissionId; created: boolean; createdAt: Date }> {
  // spec/chain.md: sha256 of the canonical JSON of the commit payload (repo, digest, author hotkey).
  const ph = specPayloadHash({ repo: r.repo, digest: r.digest }, r.hotkey);
  const idempotencyKey = `chain:${r.netuid}:${r.hotkey}:${ph}`;
  const miner = await tx.query<{ id: string }>(
    `INSERT INTO miners (hotkey, coldkey, uid, netuid, registration_block) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (hotkey) DO UPDATE SET uid = EXCLUDED.uid, coldkey = coalesce(EXCLUDED.coldkey, miners.coldkey),
       registration_block = coalesce(EXCLUDED.registration_block, miners.registration_block), updated_at = now()
     RETURNING id`,
    [r.hotkey, r.coldkey ?? null, r.uid, r.netuid, r.registrationBlock ?? null],
  );
  const modelUri = `${r.repo}@${r.digest}`;
  const commit = await tx.query<{ id: string; submission_id: SubmissionId | null }>(
    `INSERT INTO chain_commits (netuid, block_number, block_hash, extrinsic_hash, uid, hotkey, commit_payload, model_uri, payload_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (netuid, hotkey, payload_hash) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash,
       uid = EXCLUDED.uid, commit_payload = EXCLUDED.commit_payload, model_uri = EXCLUDED.model_uri
     RETURNING id, submission_id`,
    [r.netuid, r.blockNumber, r.blockHash, r.extrinsicHash ?? null, r.uid, r.hotkey, { version: 'v7', repo: r.repo, digest: r.digest, author_hotkey: r.hotkey, spoofed: false }, modelUri, ph],
  );
  const existing = await tx.query<{ id: SubmissionId; created_at: Date }>('SELECT id, created_at FROM model_submissions WHERE idempotency_key = $1', [idempotencyKey]);
  if (existing.rows[0]) return { id: existing.rows[0].id, created: false, createdAt: existing.rows[0].created_at };
  const sub = await tx.query<{ id: SubmissionId; created_at: Date }>(
    `INSERT INTO model_submissions (miner_id, chain_commit_id, netuid, uid, hotkey, model_uri, commit_hash, idempotency_key, protocol_version, block_number, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now()) RETURNING id, created_at`,
    [miner.rows[0]?.id, commit.rows[0]?.id, r.netuid, r.uid, r.hotkey, modelUri, r.digest, idempotencyKey, r.protocolVersion ?? 'v1', r.blockNumber],
  );
  const row = sub.rows[0]!;
  await tx.query('UPDATE chain_commits SET submission_id = $1 WHERE id = $2', [row.id, commit.rows[0]?.id]);
  return { id: row.id, created: true, createdAt: row.created_at };
}

/**
 * The ingest-time hotkey guard (spec/pipeline.md T2): a hotkey in the used-hotkeys ledger is rejected as
 * `hotkey_swap` (source swap) or `hotkey_reused` (backfill, eval). Bans are enforced by the validation
 * stage's first pre-check (T4 `hotkey_banned`, before any I/O), so one rule lives in one place.
 * Null ⇒ the submission may proceed.
 */
export async function ingestRejection(tx: Tx, hotkey: string): Promise<{ code: 'hotkey_swap' | 'hotkey_reused'; message: string } | null> {
  const { rows } = await tx.query<{ source: 'backfill' | 'swap' | 'eval' }>('SELECT source FROM used_hotkeys WHERE hotkey = $1', [hotkey]);
  const source = rows[0]?.source;
  if (!source) return null;
  return { code: source === 'swap' ? 'hotkey_swap' : 'hotkey_reused', message: `hotkey ${hotkey} is in the used-hotkeys ledger (${source})` };
}
