import type { StageFault } from '../core/faults.ts';
import { type AttemptKey, attemptKey, type Stage, type SubmissionId } from '../core/ids.ts';
import { STAGE_STATES } from '../core/states.ts';
import type { Tx } from './db.ts';

export interface StageTiming {
  /** Lease length; must be far above any poll or heartbeat period (spec §4.1). */
  readonly leaseMs: number;
  /** Hard maximum runtime of one attempt. */
  readonly deadlineMs: number;
}

/** spec/pipeline.md §4.1 table. */
export const DEFAULT_STAGE_TIMING: Readonly<Record<Stage, StageTiming>> = {
  HIPPIUS: { leaseMs: 600_000, deadlineMs: 6 * 3600_000 },
  PRE_EVAL: { leaseMs: 900_000, deadlineMs: 2 * 3600_000 },
  EVAL: { leaseMs: 300_000, deadlineMs: 8 * 3600_000 },
  SET_REIGN: { leaseMs: 60_000, deadlineMs: 60_000 },
  WEIGHT_SET: { leaseMs: 300_000, deadlineMs: 600_000 },
};

/** Candidate order per stage (spec §T3, §T10, §4.4). */
const ORDER: Record<Stage, string> = {
  HIPPIUS: 'ms.block_number ASC NULLS LAST, ms.priority ASC, ms.created_at ASC',
  PRE_EVAL: "(ms.state = 'PRE_EVAL_RETRYABLE') ASC, ms.priority ASC, ms.created_at ASC",
  EVAL: 'ms.priority ASC, ms.created_at ASC',
  SET_REIGN: 'ms.priority ASC, ms.created_at ASC',
  WEIGHT_SET: 'ms.priority ASC, ms.created_at ASC',
};

export interface Candidate {
  readonly id: SubmissionId;
  readonly hotkey: string;
  readonly state: string;
}

/**
 * Claimable submissions of a stage. `FOR UPDATE OF ms SKIP LOCKED`: two claimers never wait on
 * each other's rows. Rows with unapplied inbox events are skipped: their actor is about to move,
 * and the state column may be one batch behind it.
 */
export async function claimCandidates(tx: Tx, stage: Stage, limit: number, machineVersion: string): Promise<Candidate[]> {
  const { rows } = await tx.query<Candidate>(
    `SELECT ms.id, ms.hotkey, ms.state FROM model_submissions ms
       JOIN actor_snapshots a ON a.submission_id = ms.id
     WHERE ms.state = ANY($1::text[])
       AND (ms.next_attempt_at IS NULL OR ms.next_attempt_at <= now())
       AND NOT EXISTS (SELECT 1 FROM stage_attempts sa WHERE sa.submission_id = ms.id AND sa.state = 'RUNNING')
       AND NOT EXISTS (SELECT 1 FROM actor_inbox i WHERE i.submission_id = ms.id AND i.seq > a.last_applied_seq)
       -- A snapshot of another machine version is refused by the host; claiming it would hold a slot.
       AND a.machine_version = $3
     ORDER BY ${ORDER[stage]}
     LIMIT $2
     FOR UPDATE OF ms SKIP LOCKED`,
    [STAGE_STATES[stage].claimFrom, limit, machineVersion],
  );
  return rows;
}

export async function runningCount(tx: Tx, stage: Stage): Promise<number> {
  const { rows } = await tx.query<{ n: string }>("SELECT count(*) AS n FROM stage_attempts WHERE stage = $1 AND state = 'RUNNING'", [stage]);
  return Number(rows[0]?.n ?? 0);
}

export interface InsertedAttempt {
  readonly attemptKey: AttemptKey;
  readonly attemptNumber: number;
  readonly leaseToken: string;
  readonly deadlineAt: Date;
}

/** Inserts the RUNNING attempt with a fresh fencing token and its CLAIMED inbox event (one transaction). */
export async function insertClaim(tx: Tx, c: { submissionId: SubmissionId; stage: Stage; timing: StageTiming; workerId: string | null }): Promise<InsertedAttempt> {
  // One statement: next attempt number, the RUNNING attempt with a fresh fencing token, and the
  // actor's CLAIMED inbox row (was three round trips per claim). The attempt key is derived in SQL
  // exactly as core/ids.ts attemptKey() does.
  const { rows } = await tx.query<{ attempt_number: number; lease_token: string; deadline_at: Date }>(
    `WITH n AS (
       SELECT coalesce(max(attempt_number), 0) + 1 AS n FROM stage_attempts WHERE submission_id = $1 AND stage = $2
     ), a AS (
       INSERT INTO stage_attempts (submission_id, stage, attempt_number, attempt_key, state, worker_id, lease_token, lease_expires_at, heartbeat_at, deadline_at)
       SELECT $1, $2, n.n, $1::text || ':' || $2 || ':' || n.n, 'RUNNING', $3, gen_random_uuid(),
              now() + make_interval(secs => $4::double precision / 1000), now(), now() + make_interval(secs => $5::double precision / 1000)
       FROM n RETURNING attempt_number, attempt_key, lease_token, deadline_at
     ), i AS (
       INSERT INTO actor_inbox (submission_id, event, dedup_key)
       SELECT $1, jsonb_build_object('type', 'CLAIMED', 'stage', $2::text, 'attemptNumber', a.attempt_number, 'leaseToken', a.lease_token,
                'deadlineAt', (extract(epoch FROM a.deadline_at) * 1000)::bigint, 'at', $6::bigint),
              'claim:' || a.attempt_key
       FROM a ON CONFLICT (dedup_key) DO NOTHING
     )
     SELECT attempt_number, lease_token, deadline_at FROM a`,
    [c.submissionId, c.stage, c.workerId, c.timing.leaseMs, c.timing.deadlineMs, Date.now()],
  );
  const row = rows[0]!;
  return { attemptKey: attemptKey(c.submissionId, c.stage, row.attempt_number), attemptNumber: row.attempt_number, leaseToken: row.lease_token, deadlineAt: row.deadline_at };
}

export async function insertRejection(tx: Tx, submissionId: SubmissionId, stage: Stage, fault: StageFault, dedupKey: string): Promise<void> {
  await tx.query('INSERT INTO actor_inbox (submission_id, event, dedup_key) VALUES ($1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING', [
    submissionId,
    { type: 'CLAIM_REJECTED', stage, fault, at: Date.now() },
    dedupKey,
  ]);
}

/** T18: another submission of this hotkey already reached EVAL_RUNNING or later. */
export async function hotkeyAlreadyEvaluated(tx: Tx, hotkey: string, exceptId: SubmissionId): Promise<boolean> {
  const { rows } = await tx.query(
    `SELECT 1 FROM model_submissions WHERE hotkey = $1 AND id <> $2 AND state = ANY($3::text[]) LIMIT 1`,
    [hotkey, exceptId, ['EVAL_RUNNING', 'EVAL_WIN', 'SET_REIGN_RUNNING', 'SET_REIGN_RETRYABLE', 'REIGN_SET', 'WEIGHT_SET_RUNNING', 'WEIGHT_SET_RETRYABLE', 'COMPLETE_CORONATED', 'COMPLETE_LOSS']],
  );
  return rows.length > 0;
}

/**
 * §4.4 steps 2-3: no duel while another is running or a coronation is pending, so the next duel
 * faces the new king. `EVAL_RUNNING` is read from the state column, not from RUNNING attempts: a
 * winning attempt is finalised a moment before its actor's EVAL_WIN is written, and counting
 * attempts alone let a claim slip into that window and duel the old king (a wasted, stale duel).
 */
export async function evalBlocked(tx: Tx): Promise<boolean> {
  const { rows } = await tx.query("SELECT 1 FROM model_submissions WHERE state IN ('EVAL_RUNNING','EVAL_WIN','SET_REIGN_RUNNING','SET_REIGN_RETRYABLE') LIMIT 1");
  return rows.length > 0;
}

export async function hasActiveKing(tx: Tx): Promise<boolean> {
  const { rows } = await tx.query("SELECT 1 FROM reigns r JOIN reign_members m ON m.reign_id = r.id AND m.slot = 1 WHERE r.state = 'ACTIVE' LIMIT 1");
  return rows.length > 0;
}

export interface WorkerSlot {
  readonly id: string;
  readonly free: number;
}

/**
 * GPU hosts of a role with free capacity: READY, heartbeat younger than 2 minutes (spec §4.6),
 * free = max_concurrent − RUNNING attempts assigned to it.
 */
export async function freeWorkers(tx: Tx, role: 'PRE_EVAL' | 'EVAL'): Promise<WorkerSlot[]> {
  const { rows } = await tx.query<{ id: string; free: number }>(
    `SELECT h.id, h.max_concurrent - (SELECT count(*) FROM stage_attempts sa WHERE sa.worker_id = h.id AND sa.state = 'RUNNING')::int AS free
     FROM remote_gpu_hosts h
     WHERE h.role = $1 AND h.state = 'READY' AND h.last_heartbeat_at > now() - interval '2 minutes'
     ORDER BY free DESC, h.last_heartbeat_at DESC`,
    [role],
  );
  return rows.filter((r) => r.free > 0);
}
