import { EventEmitter } from 'node:events';
import { type Actor, createActor, fromPromise, type InspectionEvent } from 'xstate';
import { AlbedoError, stageFault, toAlbedoError } from '../core/faults.ts';
import { type AttemptKey, attemptKey, type Stage, type SubmissionId } from '../core/ids.ts';
import type { StageOutcome } from '../core/stage.ts';
import { HANDOFF_STATES, isTerminalState, stageOfRunningState } from '../core/states.ts';
import {
  type ExternalSubmissionEvent,
  SUBMISSION_MACHINE_VERSION,
  type SubmissionContext,
  type SubmissionLimits,
  type StageRunnerInput,
  submissionMachine,
} from '../machines/submission.ts';
import { abandonAttempt } from '../persistence/attempts.ts';
import { type Db, inTx, type Tx } from '../persistence/db.ts';
import { ingestRejection, insertSubmission, type NewReveal } from '../persistence/submissions.ts';
import { domainEventFor } from './projection.ts';
import { DEFAULT_WRITER_LANES, lockTransitionLog, SnapshotWriter, type SubmissionPatch, type TransitionRecord } from './writer.ts';

/** Ownership lease of a backend process over its actors. @default 30000 */
export const DEFAULT_ACTOR_LEASE_MS = 30_000;
/** How often pending inbox rows written by other processes are looked for. @default 1000 */
export const DEFAULT_INBOX_POLL_MS = 1_000;

/** Client side of the stage-service contract (tRPC link in production, direct call in unit tests). */
export interface StageClient {
  start(req: { attemptKey: AttemptKey; epoch: string }): Promise<{ outcome: StageOutcome | null }>;
  waitForOutcome(attemptKey: AttemptKey, signal: AbortSignal): Promise<StageOutcome>;
  cancel(req: { attemptKey: AttemptKey }): Promise<unknown>;
}

export interface TransitionNotice {
  readonly submissionId: SubmissionId;
  readonly seq: number;
  readonly from: string | null;
  readonly to: string;
  readonly eventType: string;
  readonly at: Date;
}

export interface ActorHostOptions {
  readonly db: Db;
  readonly nodeId: string;
  readonly incarnation: string;
  readonly stageClient: StageClient;
  readonly limits: SubmissionLimits;
  /** @default DEFAULT_ACTOR_LEASE_MS */
  readonly actorLeaseMs?: number;
  /** @default DEFAULT_INBOX_POLL_MS */
  readonly inboxPollMs?: number;
  /** @default DEFAULT_WRITER_LANES */
  readonly writerLanes?: number;
  /** Receives every xstate inspection event (Stately inspector, the RPC feed). */
  readonly inspect?: (event: InspectionEvent) => void;
  readonly onError?: (error: AlbedoError, context: string) => void;
}

type SubmissionActor = Actor<typeof submissionMachine>;

interface Entry {
  readonly id: SubmissionId;
  actor: SubmissionActor | null;
  epoch: number;
  appliedSeq: number;
  transitionSeq: number;
  lastValue: string | null;
  lastContext: SubmissionContext | null;
  /** Serialises inbox application per actor. */
  chain: Promise<void>;
  unloaded: boolean;
}

/** Backoff of the stage runner's retries of an idempotent start/watch after a transport error. */
function retryDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** attempt, 5_000) * (0.5 + Math.random() / 2);
}

/**
 * Hosts the persisted submission actors of one backend process (DESIGN.md §2):
 * - every external event goes through the write-ahead inbox, then to the actor;
 * - every snapshot is written with its transition log, domain event and projection columns in one
 *   transaction (group-committed by {@link SnapshotWriter}), fenced by the actor's owner epoch;
 * - on start it takes ownership of its own and orphaned actors, restores them (re-running in-flight
 *   stage invokes by their attempt keys) and replays unapplied inbox rows.
 */
export class ActorHost {
  readonly transitions = new EventEmitter();
  private readonly entries = new Map<SubmissionId, Entry>();
  private readonly writer: SnapshotWriter;
  private readonly machine;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly options: ActorHostOptions) {
    this.transitions.setMaxListeners(0);
    this.writer = new SnapshotWriter(
      options.db,
      (id) => this.unload(id, 'fenced by a newer owner'),
      (e) => this.report(e, 'snapshot write'),
      options.writerLanes ?? DEFAULT_WRITER_LANES,
    );
    const client = options.stageClient;
    this.machine = submissionMachine.provide({
      actors: {
        stageRunner: fromPromise<StageOutcome, StageRunnerInput>(({ input, signal }) => runStage(client, input, signal)),
      },
    });
  }

  get liveActorCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.actor) n++;
    return n;
  }

  /** Registers this incarnation, restores owned and orphaned actors, starts lease renewal. */
  async start(): Promise<{ restored: number }> {
    await this.options.db.query(
      `INSERT INTO backend_nodes (node_id, incarnation) VALUES ($1, $2)
       ON CONFLICT (node_id) DO UPDATE SET incarnation = EXCLUDED.incarnation, started_at = now(), heartbeat_at = now()`,
      [this.options.nodeId, this.options.incarnation],
    );
    const restored = await this.adopt({ includeOwn: true });
    const lease = this.options.actorLeaseMs ?? DEFAULT_ACTOR_LEASE_MS;
    this.timers.push(setInterval(() => void this.renewLeases().catch((e) => this.report(toAlbedoError(e), 'lease renewal')), lease / 3));
    this.timers.push(setInterval(() => void this.pollInbox().catch((e) => this.report(toAlbedoError(e), 'inbox poll')), this.options.inboxPollMs ?? DEFAULT_INBOX_POLL_MS));
    for (const t of this.timers) t.unref();
    return { restored };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const e of this.entries.values()) await e.chain.catch(() => {});
    for (const e of this.entries.values()) {
      e.unloaded = true;
      e.actor?.stop();
    }
    this.entries.clear();
  }

  /**
   * T1/T2: creates the submission of a new reveal with its actor, or returns the existing one.
   * A hotkey in the used-hotkeys ledger is rejected at once as MINER `hotkey_reused`/`hotkey_swap`.
   */
  async ingest(reveal: NewReveal): Promise<{ id: SubmissionId; created: boolean }> {
    const result = await inTx(this.options.db, async (tx) => {
      const rejection = await ingestRejection(tx, reveal.hotkey);
      const sub = await insertSubmission(tx, reveal);
      if (!sub.created) return { ...sub, rejection: null };
      const actor = this.createSubmissionActor(sub.id, reveal.hotkey, `${reveal.repo}@${reveal.digest}`, sub.createdAt.getTime());
      const snapshot = actor.getPersistedSnapshot();
      actor.stop();
      await tx.query(
        `INSERT INTO actor_snapshots (submission_id, machine_version, snapshot, state, owner_id, owner_epoch, lease_expires_at, transition_seq)
         VALUES ($1, $2, $3, 'SUBMITTED', $4, 1, now() + make_interval(secs => $5::double precision / 1000), 1)`,
        [sub.id, SUBMISSION_MACHINE_VERSION, JSON.stringify(snapshot), this.options.nodeId, this.options.actorLeaseMs ?? DEFAULT_ACTOR_LEASE_MS],
      );
      const domain = domainEventFor(null, 'SUBMITTED', 'CREATED', null);
      await lockTransitionLog(tx);
      await tx.query(
        `INSERT INTO actor_transitions (submission_id, transition_seq, from_state, to_state, event_type) VALUES ($1, 1, NULL, 'SUBMITTED', 'CREATED')`,
        [sub.id],
      );
      await tx.query(
        'INSERT INTO events (submission_id, event_type, severity, message, data, dedup_key) VALUES ($1, $2, $3, $4, $5, $6)',
        [sub.id, domain.type, domain.severity, domain.message, { block_number: reveal.blockNumber, block_hash: reveal.blockHash }, `${sub.id}:t1`],
      );
      return { ...sub, rejection, snapshot };
    });
    if (result.created && 'snapshot' in result) {
      this.restoreActor(result.id, result.snapshot, 1, 0, 1);
      this.emitTransition({ submissionId: result.id, seq: 1, from: null, to: 'SUBMITTED', eventType: 'CREATED', at: new Date() });
      if (result.rejection) {
        const { code, message } = result.rejection;
        await this.deliver(result.id, { type: 'CLAIM_REJECTED', stage: 'HIPPIUS', fault: stageFault('MINER_FAULT', code, message), at: Date.now() }, `${result.id}:ledger`);
      }
    }
    return { id: result.id, created: result.created };
  }

  /** Write-ahead delivery: the event is durable before the actor sees it. Idempotent by `dedupKey`. */
  async deliver(id: SubmissionId, event: ExternalSubmissionEvent, dedupKey?: string): Promise<void> {
    await this.options.db.query(
      'INSERT INTO actor_inbox (submission_id, event, dedup_key) VALUES ($1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING',
      [id, event, dedupKey ?? null],
    );
    await this.applyPending(id);
  }

  /** Applies this actor's unapplied inbox rows in order (after a claim written by a dispatcher). */
  applyPending(id: SubmissionId): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) {
      // Not live here (terminal and unloaded, or owned elsewhere): try to take it over on demand.
      return this.loadOnDemand(id);
    }
    const run = async (e: Entry) => {
      if (!e.actor) return;
      const { rows } = await this.options.db.query<{ seq: string; event: ExternalSubmissionEvent }>(
        'SELECT seq, event FROM actor_inbox WHERE submission_id = $1 AND seq > $2 ORDER BY seq',
        [id, e.appliedSeq],
      );
      for (const row of rows) {
        if (!e.actor) return;
        e.appliedSeq = Number(row.seq);
        e.actor.send(row.event);
      }
    };
    const next = entry.chain.then(() => run(entry));
    entry.chain = next.catch((err) => this.report(toAlbedoError(err), `inbox of ${id}`));
    return next;
  }

  private async loadOnDemand(id: SubmissionId): Promise<void> {
    if (this.stopped) return;
    const lease = this.options.actorLeaseMs ?? DEFAULT_ACTOR_LEASE_MS;
    const { rows } = await this.options.db.query<ClaimedRow>(
      `UPDATE actor_snapshots SET owner_id = $1, owner_epoch = owner_epoch + 1, lease_expires_at = now() + make_interval(secs => $3::double precision / 1000)
       WHERE submission_id = $2 AND (owner_id IS NULL OR owner_id = $1 OR lease_expires_at < now())
       RETURNING submission_id, owner_epoch, snapshot, machine_version, last_applied_seq, transition_seq`,
      [this.options.nodeId, id, lease],
    );
    const row = rows[0];
    if (!row || this.entries.has(id)) return;
    // Loaded for an event (e.g. OPERATOR_RETRY of a TERMINAL_INFRA_FAILED actor): keep it loaded
    // until that event is applied; a snapshot that is still terminal afterwards unloads it again.
    // A refused snapshot (other machine version) stays unloaded: applying its inbox would try to
    // load it again, forever (regression: an endless async loop before this check).
    if (!this.restoreRow(row, { keepTerminal: true })) return;
    await this.applyPending(id);
  }

  /**
   * Takes ownership of orphaned live actors (no owner, or lease expired) and, at start only, of our
   * own previous incarnation's. Regression: the periodic pass also re-took our *live* actors, which
   * bumped their epochs, fenced every in-memory actor out and reloaded it from its snapshot every
   * lease period (found when the serial pipeline benchmark slowed 10x with 400 submissions).
   */
  private async adopt(opts: { includeOwn: boolean }): Promise<number> {
    const lease = this.options.actorLeaseMs ?? DEFAULT_ACTOR_LEASE_MS;
    const { rows } = await this.options.db.query<ClaimedRow>(
      `UPDATE actor_snapshots SET owner_id = $1, owner_epoch = owner_epoch + 1, lease_expires_at = now() + make_interval(secs => $2::double precision / 1000)
       WHERE NOT terminal AND (owner_id IS NULL OR lease_expires_at < now() OR ($3 AND owner_id = $1))
       RETURNING submission_id, owner_epoch, snapshot, machine_version, last_applied_seq, transition_seq`,
      [this.options.nodeId, lease, opts.includeOwn],
    );
    const restored: SubmissionId[] = [];
    for (const row of rows) {
      if (this.entries.has(row.submission_id)) continue;
      if (this.restoreRow(row)) restored.push(row.submission_id);
    }
    await Promise.all(restored.map((id) => this.applyPending(id)));
    return restored.length;
  }

  private restoreRow(row: ClaimedRow, opts: { keepTerminal?: boolean } = {}): boolean {
    if (row.machine_version !== SUBMISSION_MACHINE_VERSION) {
      this.report(new AlbedoError('CONFIG', `refusing snapshot of ${row.submission_id}: machine version ${row.machine_version}, this build is ${SUBMISSION_MACHINE_VERSION}`), 'restore');
      return false;
    }
    this.restoreActor(row.submission_id, row.snapshot, Number(row.owner_epoch), Number(row.last_applied_seq), Number(row.transition_seq), opts.keepTerminal);
    return true;
  }

  private async renewLeases(): Promise<void> {
    const lease = this.options.actorLeaseMs ?? DEFAULT_ACTOR_LEASE_MS;
    await this.options.db.query(
      `UPDATE actor_snapshots SET lease_expires_at = now() + make_interval(secs => $2::double precision / 1000) WHERE owner_id = $1 AND NOT terminal`,
      [this.options.nodeId, lease],
    );
    await this.options.db.query('UPDATE backend_nodes SET heartbeat_at = now() WHERE node_id = $1', [this.options.nodeId]);
    await this.adopt({ includeOwn: false });
  }

  /** Catches inbox rows written by other processes (dispatchers, sweepers, RPC) for our actors. */
  private async pollInbox(): Promise<void> {
    const ids = [...this.entries.keys()];
    if (ids.length === 0) return;
    const { rows } = await this.options.db.query<{ submission_id: SubmissionId }>(
      `SELECT DISTINCT i.submission_id FROM actor_inbox i JOIN actor_snapshots s USING (submission_id)
       WHERE s.owner_id = $1 AND i.seq > s.last_applied_seq`,
      [this.options.nodeId],
    );
    await Promise.all(rows.filter((r) => this.entries.has(r.submission_id)).map((r) => this.applyPending(r.submission_id)));
  }

  private createSubmissionActor(id: SubmissionId, hotkey: string, modelUri: string, createdAt: number): SubmissionActor {
    return createActor(this.machine, { input: { submissionId: id, hotkey, modelUri, limits: this.options.limits, createdAt } });
  }

  private restoreActor(id: SubmissionId, snapshot: unknown, epoch: number, appliedSeq: number, transitionSeq: number, keepTerminal = false): void {
    const persisted = snapshot as { value: string; context: SubmissionContext };
    const entry: Entry = {
      id,
      actor: null,
      epoch,
      appliedSeq,
      transitionSeq,
      lastValue: String(persisted.value),
      lastContext: persisted.context,
      chain: Promise.resolve(),
      unloaded: false,
    };
    this.entries.set(id, entry);
    const actor = createActor(this.machine, {
      // biome-ignore lint/suspicious/noExplicitAny: persisted snapshots are JSON
      snapshot: snapshot as any,
      input: persisted.context as never,
      inspect: (ev) => {
        this.options.inspect?.(ev);
        if (ev.type === '@xstate.snapshot' && ev.actorRef.sessionId === ev.rootId) this.onSnapshot(entry, ev.event);
      },
    });
    entry.actor = actor;
    actor.start();
    if (!keepTerminal && isTerminalState(String(actor.getSnapshot().value))) this.unload(id, 'terminal');
  }

  /** Every processed event of a root actor: persist what changed, with its projections. */
  private onSnapshot(entry: Entry, event: { type: string }): void {
    const actor = entry.actor;
    if (!actor || entry.unloaded) return;
    const snap = actor.getSnapshot();
    // Stopping an actor (shutdown, unload) emits a 'stopped' snapshot: that is not a state of the
    // submission and must never reach the database, or a restore would revive a dead actor.
    if (snap.status === 'stopped' || this.stopped) return;
    const value = String(snap.value);
    const context = snap.context;
    const changedState = value !== entry.lastValue;
    if (!changedState && context === entry.lastContext && event.type === 'xstate.init') return;
    const transitions: TransitionRecord[] = [];
    const extras: Array<(tx: Tx) => Promise<void>> = [];
    const from = entry.lastValue;
    if (changedState) {
      entry.transitionSeq += 1;
      const cause = event.type.startsWith('xstate.done.actor') ? 'STAGE_DONE' : event.type.startsWith('xstate.error.actor') ? 'STAGE_ERROR' : event.type;
      transitions.push({
        seq: entry.transitionSeq,
        from,
        to: value,
        eventType: cause,
        event: summariseEvent(event),
        domainEvent: domainEventFor(from, value, cause, context.fault, cause === 'STAGE_DONE' ? context.lastResult : null),
        at: new Date(),
      });
      extras.push(...this.transitionEffects(entry, from, value, cause, entry.lastContext, context));
    }
    if (event.type === 'CLAIMED' && !changedState) {
      // A claim that arrived after the actor moved on (e.g. cancelled meanwhile): end its attempt
      // at once instead of leaving it for the sweeper.
      const claim = event as unknown as { stage: Stage; attemptNumber: number };
      const key = attemptKey(entry.id, claim.stage, claim.attemptNumber);
      extras.push(async (tx) => {
        await abandonAttempt(tx, key, stageFault('INFRA_FAULT', 'claim_superseded', `claim arrived in state ${value}`));
      });
    }
    entry.lastValue = value;
    entry.lastContext = context;
    const terminal = isTerminalState(value);
    const patch: SubmissionPatch = {
      state: value,
      faultClass: context.fault?.faultClass ?? null,
      faultCode: context.fault?.code ?? null,
      faultMessage: context.fault?.message ?? null,
      nextAttemptAt: context.nextAttemptAt === null ? null : new Date(context.nextAttemptAt),
      retryCount: context.retryCount,
      priority: context.priority,
      terminal,
    };
    const write = this.writer.enqueue({
      id: entry.id,
      epoch: entry.epoch,
      snapshot: actor.getPersistedSnapshot(),
      appliedSeq: entry.appliedSeq,
      transitionSeq: entry.transitionSeq,
      patch,
      transitions,
      extras,
    });
    write
      .then(() => {
        for (const t of transitions) this.emitTransition({ submissionId: entry.id, seq: t.seq, from: t.from, to: t.to, eventType: t.eventType, at: t.at });
        if (changedState && HANDOFF_STATES.has(value as never)) {
          // The requeuer (spec §4.5), immediately: the handoff state is durable, now move it on.
          void this.deliver(entry.id, { type: 'REQUEUE', at: Date.now() }, `${entry.id}:requeue:${entry.transitionSeq}`).catch((e) => this.report(toAlbedoError(e), 'requeue'));
        }
      })
      .catch(() => {});
    if (terminal) this.unload(entry.id, 'terminal');
  }

  /** Side writes a state change implies, committed with its snapshot. */
  private transitionEffects(entry: Entry, from: string | null, to: string, cause: string, before: SubmissionContext | null, after: SubmissionContext) {
    const effects: Array<(tx: Tx) => Promise<void>> = [];
    const leftRunning = from !== null && stageOfRunningState(from) !== null && before?.attempt;
    if (leftRunning && cause !== 'STAGE_DONE' && cause !== 'ATTEMPT_ABANDONED') {
      // The actor left a running state on its own (deadline, operator): end the attempt so no
      // worker keeps writing for it, and ask the executor to stop.
      const key = before.attempt!.attemptKey;
      const fault = after.fault ?? stageFault('INFRA_FAULT', 'operator_cancelled', 'attempt ended by the submission actor');
      effects.push(async (tx) => {
        await abandonAttempt(tx, key, fault);
      });
      queueMicrotask(() => void this.options.stageClient.cancel({ attemptKey: key }).catch(() => {}));
    }
    if (to === 'COMPLETE_LOSS' || to === 'COMPLETE_CORONATED') {
      // Spec §6.2 `eval` source: the seed's intended "burn after eval" (upstream never wrote it).
      effects.push(async (tx) => {
        await tx.query(
          `INSERT INTO used_hotkeys (hotkey, netuid, submission_id, source) SELECT hotkey, netuid, id, 'eval' FROM model_submissions WHERE id = $1
           ON CONFLICT (hotkey) DO NOTHING`,
          [entry.id],
        );
      });
    }
    return effects;
  }

  private unload(id: SubmissionId, _why: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.unloaded = true;
    this.entries.delete(id);
    // Stop after the current macrostep; a terminal actor has nothing left to run.
    queueMicrotask(() => entry.actor?.stop());
  }

  private emitTransition(notice: TransitionNotice): void {
    this.transitions.emit('transition', notice);
  }

  private report(error: AlbedoError, context: string): void {
    if (this.stopped) return;
    this.options.onError?.(error, context);
  }
}

interface ClaimedRow {
  readonly submission_id: SubmissionId;
  readonly owner_epoch: string;
  readonly snapshot: unknown;
  readonly machine_version: string;
  readonly last_applied_seq: string;
  readonly transition_seq: string;
}

function summariseEvent(event: { type: string }): unknown {
  const e = event as Record<string, unknown>;
  if (event.type.startsWith('xstate.done.actor')) return { type: event.type, output: e.output };
  if (event.type.startsWith('xstate.error.actor')) return { type: event.type, error: String(e.error) };
  // Lease tokens are fencing secrets of the attempt; they never leave the database.
  const { leaseToken: _omit, ...rest } = e;
  return rest;
}

/** The stage runner: ensure the attempt runs (idempotent start), then attach until it ends. */
async function runStage(client: StageClient, input: StageRunnerInput, signal: AbortSignal): Promise<StageOutcome> {
  const { attemptKey, leaseToken } = input.attempt;
  for (let attempt = 0; ; attempt++) {
    try {
      const started = await client.start({ attemptKey, epoch: leaseToken });
      if (started.outcome) return started.outcome;
      return await client.waitForOutcome(attemptKey, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      const e = toAlbedoError(error);
      if (e.code === 'STALE_EPOCH' || e.code === 'NOT_FOUND') {
        return { status: 'failed', fault: stageFault('INFRA_FAULT', 'executor_lost', `attempt ${attemptKey}: ${e.message}`) };
      }
      // Transport trouble: start and watch are idempotent, so trying again is always safe.
      await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
    }
  }
}
