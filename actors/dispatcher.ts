import { stageFault, toAlbedoError, type AlbedoError } from '../core/faults.ts';
import { type Stage, STAGES, type SubmissionId } from '../core/ids.ts';
import { STAGE_STATES } from '../core/states.ts';
import { SUBMISSION_MACHINE_VERSION } from '../machines/submission.ts';
import {
  claimCandidates,
  DEFAULT_STAGE_TIMING,
  evalBlocked,
  freeWorkers,
  hasActiveKing,
  hotkeyAlreadyEvaluated,
  insertClaim,
  insertRejection,
  runningCount,
  type StageTiming,
} from '../persistence/claims.ts';
import { type Db, inTx } from '../persistence/db.ts';
import type { ActorHost, TransitionNotice } from './host.ts';

/** In-process concurrency per stage (remote stages are bounded by their GPU hosts instead). */
export const DEFAULT_STAGE_CONCURRENCY: Readonly<Record<Stage, number>> = { HIPPIUS: 2, PRE_EVAL: 1, EVAL: 1, SET_REIGN: 1, WEIGHT_SET: 1 };
/** Period of the safety poll that catches elapsed backoffs and claims made elsewhere. @default 1000 */
export const DEFAULT_DISPATCH_POLL_MS = 1_000;

export interface DispatcherOptions {
  readonly db: Db;
  readonly host: ActorHost;
  /** Stages run by remote GPU nodes; their capacity comes from `remote_gpu_hosts`. */
  readonly remoteStages: ReadonlySet<Stage>;
  /** @default DEFAULT_STAGE_CONCURRENCY; for EVAL this is a global cap over all hosts. */
  readonly concurrency?: Partial<Record<Stage, number>>;
  /** @default DEFAULT_STAGE_TIMING */
  readonly timing?: Partial<Record<Stage, StageTiming>>;
  /** @default DEFAULT_DISPATCH_POLL_MS */
  readonly pollMs?: number;
  readonly onError?: (error: AlbedoError, context: string) => void;
}

/**
 * Claims queued submissions for each stage within its concurrency limit (spec §T3, §T10, §4.4).
 * A claim is one transaction that inserts the RUNNING attempt (with its fencing token) and the
 * actor's CLAIMED inbox event; the actor is then told to apply its inbox. Woken by transitions,
 * with a poll for elapsed backoffs.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined;
  private readonly busy = new Set<Stage>();
  private readonly again = new Set<Stage>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;
  private readonly onTransition = (t: TransitionNotice) => this.wakeFor(t.to, t.from);

  constructor(private readonly options: DispatcherOptions) {}

  start(): void {
    this.options.host.transitions.on('transition', this.onTransition);
    this.timer = setInterval(() => this.wakeAll(), this.options.pollMs ?? DEFAULT_DISPATCH_POLL_MS);
    this.timer.unref();
    this.wakeAll();
  }

  /**
   * Stops claiming and resolves once no claim pass is in flight: a pass that outlived `stop()` could
   * claim a submission after its host stopped, leaving a CLAIMED event nobody applies until restart.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.options.host.transitions.off('transition', this.onTransition);
    await Promise.all([...this.inFlight]);
  }

  wakeAll(): void {
    for (const s of STAGES) this.wake(s);
  }

  private wakeFor(to: string, from: string | null): void {
    for (const s of STAGES) {
      const st = STAGE_STATES[s];
      // A new candidate appeared, or a slot was freed.
      if (st.claimFrom.includes(to as never) || st.running === from) this.wake(s);
    }
    if (from === 'SET_REIGN_RUNNING') this.wake('EVAL');
  }

  private wake(stage: Stage): void {
    if (this.stopped) return;
    if (this.busy.has(stage)) {
      this.again.add(stage);
      return;
    }
    this.busy.add(stage);
    const run = this.pass(stage)
      .catch((e) => this.options.onError?.(toAlbedoError(e), `dispatch ${stage}`))
      .finally(() => {
        this.inFlight.delete(run);
        this.busy.delete(stage);
        if (this.again.delete(stage)) this.wake(stage);
      });
    this.inFlight.add(run);
  }

  /** One claim pass for a stage; returns the submissions that were claimed or rejected. */
  async pass(stage: Stage): Promise<SubmissionId[]> {
    const timing = { ...DEFAULT_STAGE_TIMING, ...this.options.timing }[stage];
    const touched = await inTx(this.options.db, async (tx) => {
      // One claimer per stage at a time across all backend processes; a busy lock means another
      // process is claiming right now, and its transitions will wake us again.
      const lock = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`albedo_claim:${stage}`]);
      if (!lock.rows[0]?.ok) return [];
      if (stage === 'EVAL' && (await evalBlocked(tx))) return [];
      const cap = { ...DEFAULT_STAGE_CONCURRENCY, ...this.options.concurrency }[stage];
      let free = cap - (await runningCount(tx, stage));
      const remote = this.options.remoteStages.has(stage);
      const workers = remote ? await freeWorkers(tx, stage === 'EVAL' ? 'EVAL' : 'PRE_EVAL') : [];
      if (remote) free = Math.min(free, workers.reduce((a, w) => a + w.free, 0));
      if (free <= 0) return [];
      const out: SubmissionId[] = [];
      const candidates = await claimCandidates(tx, stage, free + 8, SUBMISSION_MACHINE_VERSION);
      for (const c of candidates) {
        if (free <= 0) break;
        if (stage === 'EVAL') {
          if (await hotkeyAlreadyEvaluated(tx, c.hotkey, c.id)) {
            const fault = stageFault('MINER_FAULT', 'hotkey_already_validated', `hotkey ${c.hotkey} already has a submission that reached evaluation`);
            await insertRejection(tx, c.id, stage, fault, `reject:${c.id}:EVAL:hotkey`);
            out.push(c.id);
            continue;
          }
          if (!(await hasActiveKing(tx))) {
            const fault = stageFault('INFRA_FAULT', 'missing_active_lead_king', 'no ACTIVE reign with a slot-1 king; run genesis first');
            await insertRejection(tx, c.id, stage, fault, `reject:${c.id}:EVAL:noking:${Date.now()}`);
            out.push(c.id);
            continue;
          }
        }
        let workerId: string | null = null;
        if (remote) {
          const w = workers.find((x) => x.free > 0);
          if (!w) break;
          workerId = w.id;
          (w as { free: number }).free -= 1;
        }
        await insertClaim(tx, { submissionId: c.id, stage, timing, workerId });
        out.push(c.id);
        free -= 1;
      }
      return out;
    });
    await Promise.all(touched.map((id) => this.options.host.applyPending(id)));
    return touched;
  }
}
