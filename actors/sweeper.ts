import { type AlbedoError, type FaultCode, stageFault, toAlbedoError } from '../core/faults.ts';
import type { AttemptKey, Stage, SubmissionId } from '../core/ids.ts';
import { abandonAttempt, insertStageEvent, TERMINAL_REPORTER_SEQ } from '../persistence/attempts.ts';
import { type Db, inTx } from '../persistence/db.ts';
import type { ActorHost } from './host.ts';

/** @default 60000 (spec §4.2: every minute) */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

const LEASE_CODE: Record<Stage, FaultCode> = {
  HIPPIUS: 'validation_lease_expired',
  PRE_EVAL: 'pre_eval_lease_expired',
  EVAL: 'eval_attempt_lease_expired',
  SET_REIGN: 'set_reign_lease_expired',
  WEIGHT_SET: 'weight_set_lease_expired',
};

export interface SweeperOptions {
  readonly db: Db;
  readonly host: ActorHost;
  /** Asks a remote worker whether it still runs the attempt (§4.3 reconciler). */
  readonly isAliveRemotely?: (workerId: string, attemptKey: AttemptKey) => boolean;
  /** Wakes stage watchers after an out-of-band terminal write. */
  readonly notify?: (attemptKey: AttemptKey) => void;
  readonly cancelRemote?: (attemptKey: AttemptKey) => void;
  /** @default DEFAULT_SWEEP_INTERVAL_MS */
  readonly intervalMs?: number;
  readonly onError?: (error: AlbedoError, context: string) => void;
}

/**
 * The one recovery path for expired leases and deadlines (spec §4.2, §9.2). A remote attempt whose
 * worker still runs it and whose deadline has not passed is adopted (lease extended); any other
 * expired attempt is abandoned with a `*_lease_expired` INFRA/REMOTE_EVAL fault, which the actor
 * receives through its inbox.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((e) => this.options.onError?.(toAlbedoError(e), 'sweep')), this.options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sweep(): Promise<{ abandoned: AttemptKey[]; adopted: AttemptKey[] }> {
    const abandoned: Array<{ key: AttemptKey; submissionId: SubmissionId }> = [];
    const adopted: AttemptKey[] = [];
    await inTx(this.options.db, async (tx) => {
      const { rows } = await tx.query<{ attempt_key: AttemptKey; stage: Stage; submission_id: SubmissionId; worker_id: string | null; lease_token: string; past_deadline: boolean }>(
        `SELECT attempt_key, stage, submission_id, worker_id, lease_token, deadline_at < now() AS past_deadline
         FROM stage_attempts WHERE state = 'RUNNING' AND (lease_expires_at < now() OR deadline_at < now())
         ORDER BY lease_expires_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
      );
      for (const r of rows) {
        if (!r.past_deadline && r.worker_id && this.options.isAliveRemotely?.(r.worker_id, r.attempt_key)) {
          await tx.query(
            `UPDATE stage_attempts SET lease_expires_at = now() + (lease_expires_at - coalesce(heartbeat_at, started_at)), heartbeat_at = now() WHERE attempt_key = $1`,
            [r.attempt_key],
          );
          adopted.push(r.attempt_key);
          continue;
        }
        const code: FaultCode = r.past_deadline ? (r.stage === 'WEIGHT_SET' ? 'weight_set_timeout' : 'stage_deadline_exceeded') : LEASE_CODE[r.stage];
        const faultClass = r.stage === 'EVAL' ? 'REMOTE_EVAL_FAULT' : r.stage === 'WEIGHT_SET' ? 'CHAIN_FAULT' : 'INFRA_FAULT';
        const fault = stageFault(faultClass, code, `${r.stage} attempt ${r.past_deadline ? 'passed its hard deadline' : 'lease expired without a heartbeat'}`);
        await abandonAttempt(tx, r.attempt_key, fault);
        await tx.query("UPDATE eval_runs SET state = 'FAILED_RETRYABLE', fault_class = $2, fault_code = $3, finished_at = now() WHERE stage_attempt_id = (SELECT id FROM stage_attempts WHERE attempt_key = $1) AND state IN ('DISPATCHED','GENERATING','SCORING','VERDICT_READY')", [r.attempt_key, fault.faultClass, fault.code]);
        await insertStageEvent(tx, { attemptKey: r.attempt_key, reporterSeq: TERMINAL_REPORTER_SEQ, type: 'terminal', data: { outcome: { status: 'failed', fault } }, terminal: true });
        await tx.query('INSERT INTO actor_inbox (submission_id, event, dedup_key) VALUES ($1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING', [
          r.submission_id,
          { type: 'ATTEMPT_ABANDONED', attemptKey: r.attempt_key, fault, at: Date.now() },
          `abandon:${r.attempt_key}`,
        ]);
        abandoned.push({ key: r.attempt_key, submissionId: r.submission_id });
      }
    });
    for (const a of abandoned) {
      this.options.notify?.(a.key);
      this.options.cancelRemote?.(a.key);
      await this.options.host.applyPending(a.submissionId);
    }
    return { abandoned: abandoned.map((a) => a.key), adopted };
  }
}
