import { EventEmitter } from 'node:events';
import { AlbedoError, type StageFault, stageFault, toAlbedoError } from '../core/faults.ts';
import { waitForEvent } from '../core/io.ts';
import { type AttemptKey, parseAttemptKey, type Stage, type SubmissionId } from '../core/ids.ts';
import type { StageOutcome, StageProgress } from '../core/stage.ts';
import {
  type AttemptRow,
  dispatchFast,
  finalizeAttempt,
  finalizeWithEvent,
  getAttempt,
  heartbeatAttempt,
  insertStageEvent,
  lockAttempt,
  markDispatched,
  outcomeOf,
  stageEventsAfter,
  TERMINAL_REPORTER_SEQ,
} from '../persistence/attempts.ts';
import { type Db, inTx, type Tx } from '../persistence/db.ts';
import type { StageClient } from './host.ts';

/** Poll period of watch() when no in-process notification arrives (other backend processes). @default 1000 */
export const DEFAULT_WATCH_POLL_MS = 1_000;
/** Lease renewal period of in-process executors. @default 30000 (spec §4.1) */
export const DEFAULT_EXECUTOR_HEARTBEAT_MS = 30_000;

export interface AttemptView {
  readonly attemptKey: AttemptKey;
  readonly stage: Stage;
  readonly state: AttemptRow['state'];
  readonly outcome: StageOutcome | null;
  readonly workerId: string | null;
}

export interface WatchedEvent {
  readonly id: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly terminal: boolean;
}

/** Result of an in-process executor: the outcome, plus writes that must commit with the finaliser. */
export interface ExecutorResult {
  readonly outcome: StageOutcome;
  /** Runs inside the compare-and-set transaction; skipped if the attempt was already finalised. */
  readonly apply?: (tx: Tx) => Promise<void>;
}

export interface ExecutorContext {
  readonly db: Db;
  readonly attemptKey: AttemptKey;
  readonly submissionId: SubmissionId;
  readonly stage: Stage;
  readonly attemptNumber: number;
  readonly input: Record<string, unknown>;
  readonly signal: AbortSignal;
  emit(progress: StageProgress): Promise<void>;
}

export type InProcessExecutor = (ctx: ExecutorContext) => Promise<ExecutorResult>;

export interface StageHooks {
  /** Builds the attempt's input when it is first started (stored in `input_snapshot`). */
  buildInput?(tx: Tx, attempt: AttemptRow): Promise<Record<string, unknown> | StageFault>;
  /** Domain writes that commit with a remote attempt's terminal report (eval_runs, artifacts…). */
  onFinalized?(tx: Tx, attempt: AttemptRow, outcome: StageOutcome): Promise<void>;
}

export interface StageServiceOptions {
  readonly db: Db;
  /** This process incarnation; an in-process attempt started by another incarnation is lost. */
  readonly incarnation: string;
  readonly executors: Partial<Record<Stage, InProcessExecutor>>;
  readonly hooks?: Partial<Record<Stage, StageHooks>>;
  /** Lease length per stage for heartbeats, ms. */
  readonly leaseMs: Readonly<Record<Stage, number>>;
  /** @default DEFAULT_WATCH_POLL_MS */
  readonly watchPollMs?: number;
  /** @default DEFAULT_EXECUTOR_HEARTBEAT_MS */
  readonly executorHeartbeatMs?: number;
  readonly onError?: (error: AlbedoError, context: string) => void;
}

function view(row: AttemptRow): AttemptView {
  return { attemptKey: row.attempt_key, stage: row.stage, state: row.state, outcome: outcomeOf(row), workerId: row.worker_id };
}

/**
 * The backend side of every stage (DESIGN.md §3): `start` ensures the attempt runs exactly once per
 * attempt key, `watch` streams its events from a durable cursor, `result` reads the terminal
 * outcome, `cancel` asks it to stop. In-process stages run here; remote stages (GPU nodes) pick
 * their attempts up over their authenticated link and report back through `report`.
 */
export class StageService {
  private readonly events = new EventEmitter();
  private readonly running = new Map<AttemptKey, AbortController>();
  private readonly generations = new Map<AttemptKey, number>();
  private closed = false;

  constructor(private readonly options: StageServiceOptions) {
    this.events.setMaxListeners(0);
  }

  isRemote(stage: Stage): boolean {
    return !this.options.executors[stage];
  }

  /** Idempotent: a known key returns the existing attempt; a stale epoch is refused. */
  async start(req: { attemptKey: AttemptKey; epoch: string }): Promise<AttemptView> {
    const stage = parseAttemptKey(req.attemptKey).stage;
    if (!this.options.hooks?.[stage]?.buildInput) {
      const fast = await dispatchFast(this.options.db, req.attemptKey, req.epoch, this.isRemote(stage) ? null : this.options.incarnation);
      if (fast) {
        if (!this.isRemote(stage)) this.launch(fast);
        else if (fast.worker_id) this.events.emit('dispatched', fast.worker_id);
        return view(fast);
      }
    }
    const launch: { row?: AttemptRow } = {};
    const row = await inTx(this.options.db, async (tx) => {
      const row = await lockAttempt(tx, req.attemptKey);
      if (!row) throw new AlbedoError('NOT_FOUND', `unknown attempt ${req.attemptKey}`);
      if (row.lease_token !== req.epoch) throw new AlbedoError('STALE_EPOCH', `attempt ${req.attemptKey} is owned by a newer lease`);
      if (row.state !== 'RUNNING') return row;
      const inProcess = !this.isRemote(row.stage);
      if (row.dispatched_at === null) {
        const input = (await this.options.hooks?.[row.stage]?.buildInput?.(tx, row)) ?? {};
        if ('faultClass' in input) return this.finalizeInTx(tx, row, { status: 'failed', fault: input as StageFault });
        await markDispatched(tx, row.attempt_key, input, inProcess ? this.options.incarnation : null);
        const dispatched = { ...row, input_snapshot: input, dispatched_at: new Date(), executor_incarnation: inProcess ? this.options.incarnation : null };
        if (inProcess) launch.row = dispatched;
        return dispatched;
      }
      if (inProcess && !this.running.has(row.attempt_key)) {
        // Started by a previous incarnation that died with its executor. Re-running it under the
        // same key could repeat its side effect, so the attempt fails as our fault (not counted).
        const fault = stageFault('INFRA_FAULT', 'executor_lost', `executor of ${row.attempt_key} died with backend incarnation ${row.executor_incarnation}`);
        return this.finalizeInTx(tx, row, { status: 'failed', fault });
      }
      return row;
    });
    if (launch.row) this.launch(launch.row);
    else if (row.worker_id && row.state === 'RUNNING') this.events.emit('dispatched', row.worker_id);
    // Watchers are woken after commit only: a wake-up before it finds nothing to read.
    if (row.state !== 'RUNNING') this.notify(req.attemptKey);
    return view(row);
  }

  async result(req: { attemptKey: AttemptKey }): Promise<AttemptView> {
    const row = await getAttempt(this.options.db, req.attemptKey);
    if (!row) throw new AlbedoError('NOT_FOUND', `unknown attempt ${req.attemptKey}`);
    return view(row);
  }

  /** Streams events after `lastEventId`, ending with the terminal one; resumable by id. */
  async *watch(req: { attemptKey: AttemptKey; lastEventId?: number; signal?: AbortSignal }): AsyncGenerator<WatchedEvent> {
    let cursor = req.lastEventId ?? 0;
    while (!req.signal?.aborted && !this.closed) {
      // Read the wake-up generation before querying: a notify that lands between the query and
      // the wait is then seen, instead of being lost until the next poll (measured: ~15 % of
      // instant attempts waited a full poll period before this).
      const generation = this.generations.get(req.attemptKey) ?? 0;
      const rows = await stageEventsAfter(this.options.db, req.attemptKey, cursor);
      if (rows === null) throw new AlbedoError('NOT_FOUND', `unknown attempt ${req.attemptKey}`);
      for (const r of rows) {
        cursor = Number(r.id);
        yield { id: cursor, type: r.event_type, data: r.data, terminal: r.terminal };
        if (r.terminal) return;
      }
      if (rows.length === 0 && (this.generations.get(req.attemptKey) ?? 0) === generation) await this.nextEvent(req.attemptKey, req.signal);
    }
  }

  /** Waits for the terminal outcome (used by the in-process stage client). */
  async waitForOutcome(attemptKey: AttemptKey, signal: AbortSignal): Promise<StageOutcome> {
    for await (const e of this.watch({ attemptKey, signal })) {
      if (e.terminal) return e.data.outcome as StageOutcome;
    }
    throw new AlbedoError('INTERNAL', `watch of ${attemptKey} ended without a terminal event`);
  }

  /** Asks a running attempt to stop. The attempt row is finalised by whoever ends it. */
  async cancel(req: { attemptKey: AttemptKey; epoch?: string }): Promise<AttemptView> {
    const row = await getAttempt(this.options.db, req.attemptKey);
    if (!row) throw new AlbedoError('NOT_FOUND', `unknown attempt ${req.attemptKey}`);
    await this.options.db.query('UPDATE stage_attempts SET cancel_requested_at = coalesce(cancel_requested_at, now()) WHERE attempt_key = $1', [req.attemptKey]);
    this.running.get(req.attemptKey)?.abort(new AlbedoError('CONFLICT', 'cancelled'));
    return view(row);
  }

  /**
   * A progress or terminal report from an executor (in-process or a GPU node). Idempotent by
   * `(attemptKey, seq)`: a worker that re-sends after a lost acknowledgement changes nothing.
   * Returns false when the epoch is stale (the worker must stop).
   */
  async report(req: { attemptKey: AttemptKey; epoch: string; seq: number; progress?: StageProgress; outcome?: StageOutcome }): Promise<boolean> {
    if (req.outcome) {
      const outcome = req.outcome;
      const ok = await inTx(this.options.db, async (tx) => {
        const row = await lockAttempt(tx, req.attemptKey);
        if (!row || row.lease_token !== req.epoch) return false;
        if (row.state !== 'RUNNING') return true; // already final: duplicate report
        await this.finalizeInTx(tx, row, outcome);
        return true;
      });
      this.notify(req.attemptKey);
      return ok;
    }
    if (!req.progress) return true;
    const row = await getAttempt(this.options.db, req.attemptKey);
    if (!row || row.lease_token !== req.epoch || row.state !== 'RUNNING') return false;
    await insertStageEvent(this.options.db, { attemptKey: req.attemptKey, reporterSeq: req.seq, type: req.progress.type, data: { ...req.progress.data }, terminal: false });
    this.notify(req.attemptKey);
    return true;
  }

  async heartbeat(attemptKey: AttemptKey, epoch: string): Promise<boolean> {
    const stage = (await getAttempt(this.options.db, attemptKey))?.stage;
    if (!stage) return false;
    return heartbeatAttempt(this.options.db, attemptKey, epoch, this.options.leaseMs[stage]);
  }

  /** Resolves when an attempt is dispatched to `workerId`, or after `timeoutMs`. */
  waitForDispatch(workerId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return waitForEvent(this.events, ['dispatched'], timeoutMs, signal, (id) => id === workerId);
  }


  /** Wakes watchers after an out-of-band terminal write (sweeper, actor leaving a state). */
  notify(attemptKey: AttemptKey): void {
    this.generations.set(attemptKey, (this.generations.get(attemptKey) ?? 0) + 1);
    // Bounded: generations only need to outlive one watch loop iteration.
    if (this.generations.size > 50_000) this.generations.delete(this.generations.keys().next().value as AttemptKey);
    this.events.emit(attemptKey);
  }

  close(): void {
    this.closed = true;
    for (const c of this.running.values()) c.abort(new AlbedoError('INTERNAL', 'backend shutting down'));
    this.events.emit('close');
  }

  private async finalizeInTx(tx: Tx, row: AttemptRow, outcome: StageOutcome, apply?: (tx: Tx) => Promise<void>): Promise<AttemptRow> {
    const done = await finalizeAttempt(tx, row.attempt_key, row.lease_token, outcome);
    if (!done) return row;
    if (apply) await apply(tx);
    await this.options.hooks?.[row.stage]?.onFinalized?.(tx, done, outcome);
    await insertStageEvent(tx, { attemptKey: row.attempt_key, reporterSeq: TERMINAL_REPORTER_SEQ, type: 'terminal', data: { outcome }, terminal: true });
    return done;
  }

  private nextEvent(attemptKey: AttemptKey, signal?: AbortSignal): Promise<void> {
    return waitForEvent(this.events, [attemptKey, 'close'], this.options.watchPollMs ?? DEFAULT_WATCH_POLL_MS, signal);
  }


  private launch(row: AttemptRow): void {
    const executor = this.options.executors[row.stage];
    if (!executor) return;
    const controller = new AbortController();
    this.running.set(row.attempt_key, controller);
    let seq = 0;
    const heartbeat = setInterval(() => {
      heartbeatAttempt(this.options.db, row.attempt_key, row.lease_token, this.options.leaseMs[row.stage])
        .then((alive) => {
          if (!alive) controller.abort(new AlbedoError('STALE_EPOCH', 'attempt lease lost'));
        })
        .catch(() => {});
    }, this.options.executorHeartbeatMs ?? DEFAULT_EXECUTOR_HEARTBEAT_MS);
    heartbeat.unref();
    const ctx: ExecutorContext = {
      db: this.options.db,
      attemptKey: row.attempt_key,
      submissionId: row.submission_id,
      stage: row.stage,
      attemptNumber: row.attempt_number,
      input: row.input_snapshot ?? {},
      signal: controller.signal,
      emit: async (progress) => {
        seq += 1;
        await this.report({ attemptKey: row.attempt_key, epoch: row.lease_token, seq, progress });
      },
    };
    void (async () => {
      let result: ExecutorResult;
      try {
        result = await executor(ctx);
      } catch (error) {
        const e = toAlbedoError(error);
        result = { outcome: { status: 'failed', fault: stageFault('INFRA_FAULT', 'unexpected', `${row.stage} executor failed: ${e.message}`) } };
      }
      try {
        if (this.closed) return; // shutting down: the next incarnation reports executor_lost
        if (!result.apply && !this.options.hooks?.[row.stage]?.onFinalized) {
          await finalizeWithEvent(this.options.db, row.attempt_key, row.lease_token, result.outcome);
        } else {
          await inTx(this.options.db, async (tx) => {
            const locked = await lockAttempt(tx, row.attempt_key);
            if (locked?.state === 'RUNNING' && locked.lease_token === row.lease_token) await this.finalizeInTx(tx, locked, result.outcome, result.apply);
          });
        }
        this.notify(row.attempt_key);
      } catch (error) {
        this.options.onError?.(toAlbedoError(error), `finalising ${row.attempt_key}`);
      } finally {
        clearInterval(heartbeat);
        this.running.delete(row.attempt_key);
      }
    })();
  }
}

/** The stage client of an actor host in the same process as its stage service (no link). */
export function localStageClient(service: StageService): StageClient {
  return {
    start: (req) => service.start(req),
    waitForOutcome: (key, signal) => service.waitForOutcome(key, signal),
    cancel: (req) => service.cancel(req),
  };
}
