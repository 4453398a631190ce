import { AlbedoError, toAlbedoError } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { type Db, inTx, type Tx } from '../persistence/db.ts';
import type { DomainEvent } from './projection.ts';

/** Connections used for snapshot writes; writes of one actor always use the same lane. @default 2 */
export const DEFAULT_WRITER_LANES = 2;

export interface TransitionRecord {
  readonly seq: number;
  readonly from: string | null;
  readonly to: string;
  readonly eventType: string;
  readonly event: unknown;
  readonly domainEvent: DomainEvent;
  readonly at: Date;
}

export interface SubmissionPatch {
  readonly state: string;
  readonly faultClass: string | null;
  readonly faultCode: string | null;
  readonly faultMessage: string | null;
  readonly nextAttemptAt: Date | null;
  readonly retryCount: number;
  readonly priority: number;
  readonly terminal: boolean;
}

export interface SnapshotWrite {
  readonly id: SubmissionId;
  readonly epoch: number;
  readonly snapshot: unknown;
  readonly appliedSeq: number;
  readonly transitionSeq: number;
  readonly patch: SubmissionPatch;
  readonly transitions: TransitionRecord[];
  /** Rare side writes that must commit with the snapshot (abandon an attempt, used_hotkeys). */
  readonly extras: Array<(tx: Tx) => Promise<void>>;
}

interface Pending {
  write: SnapshotWrite;
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
}

/**
 * Group commit of actor snapshots. Commit latency, not CPU, bounds Postgres here (MACHINE-NOTES:
 * ~800 single-row commits/s per client), so every flush writes all pending actors of a lane with
 * one statement per table (`unnest` of arrays). Writes of one actor coalesce while queued (the
 * newest snapshot wins, transitions accumulate), and always go through the same lane, so they
 * commit in order. Each write is fenced by the actor's owner epoch: rows whose epoch moved on are
 * skipped and reported through `onFenced`.
 */
export class SnapshotWriter {
  private readonly lanes: Array<{ pending: Map<SubmissionId, Pending>; flushing: boolean }>;

  constructor(
    private readonly db: Db,
    private readonly onFenced: (id: SubmissionId) => void,
    private readonly onError: (e: AlbedoError) => void,
    lanes = DEFAULT_WRITER_LANES,
  ) {
    this.lanes = Array.from({ length: Math.max(1, lanes) }, () => ({ pending: new Map(), flushing: false }));
  }

  enqueue(write: SnapshotWrite): Promise<void> {
    const lane = this.lanes[laneOf(write.id, this.lanes.length)]!;
    return new Promise((resolve, reject) => {
      const prior = lane.pending.get(write.id);
      if (prior) {
        prior.write = {
          ...write,
          transitions: [...prior.write.transitions, ...write.transitions],
          extras: [...prior.write.extras, ...write.extras],
        };
        prior.waiters.push({ resolve, reject });
      } else {
        lane.pending.set(write.id, { write, waiters: [{ resolve, reject }] });
      }
      if (!lane.flushing) void this.flush(lane);
    });
  }

  private async flush(lane: { pending: Map<SubmissionId, Pending>; flushing: boolean }): Promise<void> {
    lane.flushing = true;
    try {
      while (lane.pending.size > 0) {
        const batch = [...lane.pending.values()];
        lane.pending.clear();
        try {
          const fenced = await inTx(this.db, (tx) => writeBatch(tx, batch.map((p) => p.write)));
          for (const p of batch) {
            if (fenced.has(p.write.id)) {
              this.onFenced(p.write.id);
              for (const w of p.waiters) w.reject(new AlbedoError('STALE_EPOCH', `actor ${p.write.id} is owned by a newer epoch`));
            } else for (const w of p.waiters) w.resolve();
          }
        } catch (error) {
          const e = toAlbedoError(error);
          this.onError(e);
          for (const p of batch) for (const w of p.waiters) w.reject(e);
        }
      }
    } finally {
      lane.flushing = false;
    }
  }
}

function laneOf(id: string, n: number): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
  return Math.abs(h) % n;
}

async function writeBatch(tx: Tx, writes: SnapshotWrite[]): Promise<Set<SubmissionId>> {
  // Lock the owned rows first, in id order (deadlock-free against another lane or process), and
  // learn which writes are still fenced in by their epoch.
  const ids = writes.map((w) => w.id);
  const epochs = writes.map((w) => w.epoch);
  const { rows } = await tx.query<{ submission_id: SubmissionId }>(
    `SELECT s.submission_id FROM actor_snapshots s
       JOIN unnest($1::uuid[], $2::bigint[]) AS x(id, epoch) ON s.submission_id = x.id AND s.owner_epoch = x.epoch
     ORDER BY s.submission_id FOR UPDATE OF s`,
    [ids, epochs],
  );
  const owned = new Set(rows.map((r) => r.submission_id));
  const fenced = new Set(ids.filter((id) => !owned.has(id)));
  const live = writes.filter((w) => owned.has(w.id));
  if (live.length === 0) return fenced;

  await tx.query(
    `UPDATE actor_snapshots s SET snapshot = x.snapshot, state = x.state, terminal = x.terminal,
       last_applied_seq = greatest(s.last_applied_seq, x.applied), transition_seq = greatest(s.transition_seq, x.tseq), updated_at = now()
     FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::bool[], $5::bigint[], $6::bigint[]) AS x(id, snapshot, state, terminal, applied, tseq)
     WHERE s.submission_id = x.id`,
    [
      live.map((w) => w.id),
      live.map((w) => JSON.stringify(w.snapshot)),
      live.map((w) => w.patch.state),
      live.map((w) => w.patch.terminal),
      live.map((w) => w.appliedSeq),
      live.map((w) => w.transitionSeq),
    ],
  );
  await tx.query(
    `UPDATE model_submissions m SET state = x.state, fault_class = x.fc, fault_code = x.fcode, fault_message = x.fmsg,
       next_attempt_at = x.next_at, retry_count = x.retries, priority = x.priority, updated_at = now(),
       finished_at = CASE WHEN x.terminal THEN coalesce(m.finished_at, now()) ELSE NULL END
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::int[], $8::int[], $9::bool[])
       AS x(id, state, fc, fcode, fmsg, next_at, retries, priority, terminal)
     WHERE m.id = x.id`,
    [
      live.map((w) => w.id),
      live.map((w) => w.patch.state),
      live.map((w) => w.patch.faultClass),
      live.map((w) => w.patch.faultCode),
      live.map((w) => w.patch.faultMessage),
      live.map((w) => w.patch.nextAttemptAt),
      live.map((w) => w.patch.retryCount),
      live.map((w) => w.patch.priority),
      live.map((w) => w.patch.terminal),
    ],
  );
  const transitions = live.flatMap((w) => w.transitions.map((t) => ({ id: w.id, t })));
  if (transitions.length > 0) {
    await lockTransitionLog(tx);
    // ON CONFLICT: a transition replayed after a crash (same actor, same sequence) logs once.
    await tx.query(
      `INSERT INTO actor_transitions (submission_id, transition_seq, from_state, to_state, event_type, event, created_at)
       SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[])
       ON CONFLICT (submission_id, transition_seq) DO NOTHING`,
      [
        transitions.map((x) => x.id),
        transitions.map((x) => x.t.seq),
        transitions.map((x) => x.t.from),
        transitions.map((x) => x.t.to),
        transitions.map((x) => x.t.eventType),
        transitions.map((x) => JSON.stringify(x.t.event ?? null)),
        transitions.map((x) => x.t.at),
      ],
    );
    await tx.query(
      `INSERT INTO events (submission_id, event_type, severity, message, data, dedup_key, created_at)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::timestamptz[])
       ON CONFLICT (dedup_key) DO NOTHING`,
      [
        transitions.map((x) => x.id),
        transitions.map((x) => x.t.domainEvent.type),
        transitions.map((x) => x.t.domainEvent.severity),
        transitions.map((x) => x.t.domainEvent.message),
        transitions.map((x) => JSON.stringify({ from: x.t.from, to: x.t.to, cause: x.t.eventType, ...x.t.domainEvent.data })),
        transitions.map((x) => `${x.id}:t${x.t.seq}`),
        transitions.map((x) => x.t.at),
      ],
    );
  }
  for (const w of live) for (const extra of w.extras) await extra(tx);
  return fenced;
}

/**
 * Subscribers resume the transition log by id (`id > cursor`). A bigserial id is taken at insert
 * time, not at commit, so two concurrent writers can commit ids out of order and a reader that saw
 * the larger one would skip the smaller one forever (seen as a flaky resume test). Holding this
 * lock from the first transition insert to commit makes commit order equal id order. Its cost is
 * small here: one holder per batch, and batches carry many transitions each.
 */
export async function lockTransitionLog(tx: Tx): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('albedo_transition_log'))");
}
