import type { SubmissionId } from '../core/ids.ts';
import type { Db } from './db.ts';

/** Read-side queries of the RPC API. Every list is bounded by an explicit limit. */

export async function listSubmissions(db: Db, f: { state?: string; hotkey?: string; limit: number; beforeCreatedAt?: Date }) {
  const { rows } = await db.query(
    `SELECT id, hotkey, uid, model_uri, state, fault_class, fault_code, fault_message, retry_count, priority, protocol_version,
            block_number, next_attempt_at, created_at, updated_at, finished_at
     FROM model_submissions
     WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR hotkey = $2) AND ($3::timestamptz IS NULL OR created_at < $3)
     ORDER BY created_at DESC LIMIT $4`,
    [f.state ?? null, f.hotkey ?? null, f.beforeCreatedAt ?? null, f.limit],
  );
  return rows;
}

export async function submissionDetail(db: Db, id: SubmissionId) {
  const sub = await db.query('SELECT * FROM model_submissions WHERE id = $1', [id]);
  if (!sub.rows[0]) return null;
  const [events, transitions, attempts, evalRuns] = await Promise.all([
    db.query('SELECT id, event_type, severity, message, data, created_at FROM events WHERE submission_id = $1 ORDER BY id', [id]),
    db.query('SELECT id, transition_seq, from_state, to_state, event_type, created_at FROM actor_transitions WHERE submission_id = $1 ORDER BY transition_seq', [id]),
    db.query(
      `SELECT attempt_key, stage, attempt_number, state, worker_id, started_at, finished_at, deadline_at, counts_against_budget,
              result_summary, fault_class, fault_code, fault_message FROM stage_attempts WHERE submission_id = $1 ORDER BY started_at`,
      [id],
    ),
    db.query('SELECT * FROM eval_runs WHERE submission_id = $1 ORDER BY started_at', [id]),
  ]);
  return { submission: sub.rows[0], events: events.rows, transitions: transitions.rows, attempts: attempts.rows, evalRuns: evalRuns.rows };
}

/** Mean duration of recent successful attempts per stage: the basis of queue ETAs. */
export async function measuredStageDurations(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.query<{ stage: string; ms: number }>(
    `SELECT stage, avg(extract(epoch FROM finished_at - started_at) * 1000)::float8 AS ms FROM (
       SELECT stage, started_at, finished_at, row_number() OVER (PARTITION BY stage ORDER BY finished_at DESC) AS rn
       FROM stage_attempts WHERE state = 'SUCCEEDED' AND finished_at IS NOT NULL) t
     WHERE rn <= 50 GROUP BY stage`,
  );
  return Object.fromEntries(rows.map((r) => [r.stage, r.ms]));
}

const QUEUE_STATES = ['SUBMITTED', 'HIPPIUS_RETRYABLE', 'PRE_EVAL_QUEUED', 'PRE_EVAL_RETRYABLE', 'EVAL_QUEUED', 'EVAL_RETRYABLE'];

export async function queueRows(db: Db, limit: number) {
  const { rows } = await db.query<{ id: string; hotkey: string; model_uri: string; state: string; priority: number; next_attempt_at: Date | null; created_at: Date }>(
    `SELECT id, hotkey, model_uri, state, priority, next_attempt_at, created_at FROM model_submissions
     WHERE state = ANY($1::text[]) ORDER BY priority, created_at LIMIT $2`,
    [QUEUE_STATES, limit],
  );
  return rows;
}

export async function activeReign(db: Db) {
  const reign = await db.query("SELECT id, version, reason, state, activated_at, trigger_submission_id FROM reigns WHERE state = 'ACTIVE'");
  if (!reign.rows[0]) return null;
  const members = await db.query(
    'SELECT slot, hotkey, uid, model_hash, weight_bps, submission_id, king_version_id, entered_at FROM reign_members WHERE reign_id = $1 ORDER BY slot',
    [reign.rows[0].id],
  );
  return { ...reign.rows[0], members: members.rows };
}

export async function listEvalRuns(db: Db, limit: number) {
  const { rows } = await db.query(
    `SELECT id, submission_id, king_submission_id, state, score_challenger, score_king, win_margin, win_policy, challenger_won,
            sample_count, judge_count, protocol_version, fault_class, fault_code, started_at, finished_at
     FROM eval_runs ORDER BY started_at DESC LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function transitionsAfter(db: Db, afterId: number, limit: number, submissionId?: SubmissionId) {
  const { rows } = await db.query<{ id: string; submission_id: string; transition_seq: string; from_state: string | null; to_state: string; event_type: string; created_at: Date }>(
    `SELECT id, submission_id, transition_seq, from_state, to_state, event_type, created_at FROM actor_transitions
     WHERE id > $1 AND ($3::uuid IS NULL OR submission_id = $3) ORDER BY id LIMIT $2`,
    [afterId, limit, submissionId ?? null],
  );
  return rows;
}

/**
 * The artifact URIs an eval run's verdict listed (duel.md §10 `artifacts`), from its attempt's result;
 * null when the run does not exist. `albedo verify <eval-run-id>` replays from them.
 */
export async function evalRunArtifacts(db: Db, evalRunId: string): Promise<{ state: string; artifacts: Record<string, string> } | null> {
  const { rows } = await db.query<{ state: string; artifacts: Record<string, string> | null }>(
    `SELECT er.state, sa.result_summary->'artifacts' AS artifacts
       FROM eval_runs er JOIN stage_attempts sa ON sa.id = er.stage_attempt_id WHERE er.id = $1`,
    [evalRunId],
  );
  const row = rows[0];
  return row ? { state: row.state, artifacts: row.artifacts ?? {} } : null;
}
