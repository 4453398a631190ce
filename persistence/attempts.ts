import type { FaultClass, FaultCode, StageFault } from '../core/faults.ts';
import type { AttemptKey, Stage, SubmissionId } from '../core/ids.ts';
import type { StageOutcome } from '../core/stage.ts';
import type { Db, Tx } from './db.ts';

type Queryable = Db | Tx;

export interface AttemptRow {
  readonly id: string;
  readonly submission_id: SubmissionId;
  readonly stage: Stage;
  readonly attempt_number: number;
  readonly attempt_key: AttemptKey;
  readonly state: 'RUNNING' | 'SUCCEEDED' | 'FAILED_RETRYABLE' | 'FAILED_TERMINAL' | 'ABANDONED';
  readonly worker_id: string | null;
  readonly lease_token: string;
  readonly lease_expires_at: Date;
  readonly deadline_at: Date;
  readonly executor_incarnation: string | null;
  readonly dispatched_at: Date | null;
  readonly remote_run_id: string | null;
  readonly input_snapshot: Record<string, unknown> | null;
  readonly result_summary: Record<string, unknown> | null;
  readonly fault_class: FaultClass | null;
  readonly fault_code: FaultCode | null;
  readonly fault_message: string | null;
  readonly counts_against_budget: boolean;
}

export async function lockAttempt(tx: Tx, key: AttemptKey): Promise<AttemptRow | undefined> {
  const { rows } = await tx.query<AttemptRow>('SELECT * FROM stage_attempts WHERE attempt_key = $1 FOR UPDATE', [key]);
  return rows[0];
}

export async function getAttempt(q: Queryable, key: AttemptKey): Promise<AttemptRow | undefined> {
  const { rows } = await q.query<AttemptRow>('SELECT * FROM stage_attempts WHERE attempt_key = $1', [key]);
  return rows[0];
}

export async function markDispatched(tx: Tx, key: AttemptKey, input: Record<string, unknown>, incarnation: string | null): Promise<void> {
  await tx.query('UPDATE stage_attempts SET input_snapshot = $2, dispatched_at = now(), executor_incarnation = $3 WHERE attempt_key = $1', [key, input, incarnation]);
}

/**
 * The compare-and-set every finaliser goes through (spec §2.2 "Rules that apply everywhere"):
 * zero rows means the caller lost ownership, and nothing else may be written.
 */
/** The attempt columns of an outcome, in the parameter order of the finaliser statements ($3..$8). */
function outcomeColumns(outcome: StageOutcome): unknown[] {
  const fault: StageFault | null = outcome.status === 'failed' ? outcome.fault : null;
  const state = outcome.status === 'succeeded' ? 'SUCCEEDED' : fault?.retryable ? 'FAILED_RETRYABLE' : 'FAILED_TERMINAL';
  return [state, outcome.status === 'succeeded' ? outcome.result : null, fault?.faultClass ?? null, fault?.code ?? null, fault?.message ?? null, fault ? fault.countsAgainstBudget : true];
}

export async function finalizeAttempt(tx: Tx, key: AttemptKey, epoch: string, outcome: StageOutcome): Promise<AttemptRow | undefined> {
  const { rows } = await tx.query<AttemptRow>(
    `UPDATE stage_attempts SET state = $3, finished_at = now(), result_summary = $4,
       fault_class = $5, fault_code = $6, fault_message = $7, counts_against_budget = $8
     WHERE attempt_key = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING *`,
    [key, epoch, ...outcomeColumns(outcome)],
  );
  return rows[0];
}

/** Abandons a RUNNING attempt regardless of its lease token (sweeper / actor left the state). */
export async function abandonAttempt(q: Queryable, key: AttemptKey, fault: StageFault): Promise<AttemptRow | undefined> {
  const { rows } = await q.query<AttemptRow>(
    `UPDATE stage_attempts SET state = 'ABANDONED', finished_at = now(), fault_class = $2, fault_code = $3, fault_message = $4,
       counts_against_budget = $5, cancel_requested_at = coalesce(cancel_requested_at, now())
     WHERE attempt_key = $1 AND state = 'RUNNING' RETURNING *`,
    [key, fault.faultClass, fault.code, fault.message, fault.countsAgainstBudget],
  );
  return rows[0];
}

/** Reserved reporter sequence of the terminal event: a re-sent terminal report is a no-op. */
export const TERMINAL_REPORTER_SEQ = 2_147_483_647;

export interface StageEventRow {
  readonly id: string;
  readonly attempt_key: AttemptKey;
  readonly reporter_seq: number;
  readonly event_type: string;
  readonly data: Record<string, unknown>;
  readonly terminal: boolean;
}

export async function insertStageEvent(
  q: Queryable,
  e: { attemptKey: AttemptKey; reporterSeq: number; type: string; data: Record<string, unknown>; terminal: boolean },
): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO stage_events (attempt_key, reporter_seq, event_type, data, terminal) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (attempt_key, reporter_seq) DO NOTHING`,
    [e.attemptKey, e.reporterSeq, e.type, e.data, e.terminal],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Events after a cursor, and whether the attempt exists at all (null: unknown key), in one query:
 * the existence check rides on the attempt's primary key instead of a second round trip.
 */
export async function stageEventsAfter(q: Queryable, key: AttemptKey, afterId: number, limit = 200): Promise<StageEventRow[] | null> {
  const { rows } = await q.query<StageEventRow & { known: string }>(
    `SELECT a.attempt_key AS known, e.id, e.attempt_key, e.reporter_seq, e.event_type, e.data, e.terminal
     FROM stage_attempts a
     LEFT JOIN LATERAL (SELECT * FROM stage_events se WHERE se.attempt_key = a.attempt_key AND se.id > $2 ORDER BY se.id LIMIT $3) e ON true
     WHERE a.attempt_key = $1
     ORDER BY e.id`,
    [key, afterId, limit],
  );
  if (rows.length === 0) return null;
  return rows.filter((r) => r.id !== null);
}

/** Extends a live attempt's lease; zero rows ⇒ the caller must stop (spec §4.1). */
export async function heartbeatAttempt(q: Queryable, key: AttemptKey, epoch: string, leaseMs: number): Promise<boolean> {
  const r = await q.query(
    `UPDATE stage_attempts SET lease_expires_at = now() + make_interval(secs => $3::double precision / 1000), heartbeat_at = now()
     WHERE attempt_key = $1 AND lease_token = $2 AND state = 'RUNNING'`,
    [key, epoch, leaseMs],
  );
  return (r.rowCount ?? 0) > 0;
}

export function outcomeOf(row: AttemptRow): StageOutcome | null {
  if (row.state === 'RUNNING') return null;
  if (row.state === 'SUCCEEDED') return { status: 'succeeded', result: row.result_summary ?? {} };
  return {
    status: 'failed',
    fault: {
      faultClass: row.fault_class ?? 'UNKNOWN_FAULT',
      code: row.fault_code ?? 'unknown_remote_failure',
      message: row.fault_message ?? '',
      retryable: row.fault_class !== 'MINER_FAULT',
      countsAgainstBudget: row.counts_against_budget,
    },
  };
}

/**
 * First dispatch of an attempt that needs no input hook, in one statement (no explicit
 * transaction): measured on the pipeline benchmark, the locked read-modify-write of the general
 * path was 4 round trips per attempt. Returns undefined when the fast path does not apply (unknown
 * key, stale epoch, already dispatched or finished); the caller then takes the general path.
 */
export async function dispatchFast(q: Queryable, key: AttemptKey, epoch: string, incarnation: string | null): Promise<AttemptRow | undefined> {
  const { rows } = await q.query<AttemptRow>(
    `UPDATE stage_attempts SET input_snapshot = '{}', dispatched_at = now(), executor_incarnation = $3
     WHERE attempt_key = $1 AND lease_token = $2 AND state = 'RUNNING' AND dispatched_at IS NULL RETURNING *`,
    [key, epoch, incarnation],
  );
  return rows[0];
}

/**
 * The finaliser's compare-and-set and its terminal event in one statement, for outcomes with no
 * domain writes to commit alongside (one round trip instead of five).
 */
export async function finalizeWithEvent(q: Queryable, key: AttemptKey, epoch: string, outcome: StageOutcome): Promise<AttemptRow | undefined> {
  const { rows } = await q.query<AttemptRow>(
    `WITH done AS (
       UPDATE stage_attempts SET state = $3, finished_at = now(), result_summary = $4,
         fault_class = $5, fault_code = $6, fault_message = $7, counts_against_budget = $8
       WHERE attempt_key = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING *
     ), ev AS (
       INSERT INTO stage_events (attempt_key, reporter_seq, event_type, data, terminal)
       SELECT attempt_key, $9, 'terminal', $10, true FROM done
       ON CONFLICT (attempt_key, reporter_seq) DO NOTHING
     )
     SELECT * FROM done`,
    [key, epoch, ...outcomeColumns(outcome), TERMINAL_REPORTER_SEQ, { outcome }],
  );
  return rows[0];
}
