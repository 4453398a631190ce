import type { EventEmitter } from 'node:events';
import { tracked, TRPCError } from '@trpc/server';
import { AlbedoError } from '../core/faults.ts';
import { abortableSleep, waitForEvent } from '../core/io.ts';
import type { AttemptKey, SubmissionId } from '../core/ids.ts';
import type { ActorHost } from '../actors/host.ts';
import type { NodeRegistry } from '../actors/node-registry.ts';
import type { StageService } from '../actors/stage-service.ts';
import type { JudgeGateway } from '../judge/types.ts';
import type { Db } from '../persistence/db.ts';
import { activeReign, evalRunArtifacts, listEvalRuns, listSubmissions, measuredStageDurations, queueRows, submissionDetail, transitionsAfter } from '../persistence/queries.ts';
import * as s from './schemas.ts';
import { backendProcedure, nodeProcedure, operatorProcedure, readerProcedure, router } from './trpc.ts';

export interface RpcDeps {
  readonly db: Db;
  readonly host: ActorHost;
  readonly stages: StageService;
  readonly nodes: NodeRegistry;
  /** The judge actor: the only holder of provider keys. Null when no judge is configured. */
  readonly judge: JudgeGateway | null;
  /** Emits 'event' with serialisable Stately inspection events. */
  readonly inspection: EventEmitter;
}

/** Poll period of subscriptions when no in-process wake-up arrives. @default 1000 */
export const SUBSCRIPTION_POLL_MS = 1_000;
/** How long a finished `stage.watch` waits for its client to unsubscribe. @default 30000 */
export const WATCH_LINGER_MS = 30_000;



async function audit(db: Db, actor: string, action: string, target: string, data: Record<string, unknown>) {
  await db.query('INSERT INTO operator_actions (actor, action, target, data) VALUES ($1, $2, $3, $4)', [actor, action, target, data]);
}

export function createAppRouter(deps: RpcDeps) {
  const { db } = deps;
  return router({
    submissions: router({
      list: readerProcedure.input(s.listSubmissionsInput).query(({ input }) =>
        listSubmissions(db, { state: input.state, hotkey: input.hotkey, limit: input.limit, beforeCreatedAt: input.before }),
      ),
      byId: readerProcedure.input(s.byIdInput).query(async ({ input }) => {
        const detail = await submissionDetail(db, input.id as SubmissionId);
        if (!detail) throw new TRPCError({ code: 'NOT_FOUND', message: `no submission ${input.id}` });
        return detail;
      }),
    }),

    /** Queue with position and an ETA from measured stage durations (mean of the last 50 successes). */
    queue: readerProcedure.input(s.limitInput).query(async ({ input }) => {
      const [rows, durations] = await Promise.all([queueRows(db, input.limit), measuredStageDurations(db)]);
      const perSubmission = (durations.HIPPIUS ?? 0) + (durations.PRE_EVAL ?? 0) + (durations.EVAL ?? 0);
      const evalMs = durations.EVAL ?? null;
      let evalPosition = 0;
      return {
        measuredStageMs: durations,
        items: rows.map((r, i) => {
          const inEval = r.state.startsWith('EVAL');
          const ahead = inEval ? evalPosition++ : i;
          const remaining = inEval ? (evalMs ?? 0) : perSubmission;
          return { ...r, position: i + 1, etaMs: evalMs === null && perSubmission === 0 ? null : Math.round(ahead * (evalMs ?? perSubmission) + remaining) };
        }),
      };
    }),

    reign: readerProcedure.query(() => activeReign(db)),
    evalRuns: readerProcedure.input(s.limitInput).query(({ input }) => listEvalRuns(db, input.limit)),
    /** The artifact URIs of one eval run (for `albedo verify <eval-run-id>`); NOT_FOUND when unknown. */
    evalRunArtifacts: readerProcedure.input(s.evalRunIdInput).query(async ({ input }) => {
      const found = await evalRunArtifacts(db, input.evalRunId);
      if (!found) throw new TRPCError({ code: 'NOT_FOUND', message: `no eval run ${input.evalRunId}` });
      return found;
    }),

    live: router({
      /**
       * Every actor transition, resumable: each item is `tracked(<transition id>)`, so a client that
       * reconnects continues after the last id it saw, exactly once.
       */
      transitions: readerProcedure.input(s.transitionsInput).subscription(async function* ({ input, signal }) {
        let cursor = input.lastEventId ? Number(input.lastEventId) : Number((await db.query('SELECT coalesce(max(id), 0) AS m FROM actor_transitions')).rows[0].m);
        while (!signal?.aborted) {
          const rows = await transitionsAfter(db, cursor, 200, input.submissionId as SubmissionId | undefined);
          for (const r of rows) {
            cursor = Number(r.id);
            yield tracked(r.id, { submissionId: r.submission_id, seq: Number(r.transition_seq), from: r.from_state, to: r.to_state, cause: r.event_type, at: r.created_at.toISOString() });
          }
          if (rows.length === 0) await waitForEvent(deps.host.transitions, ['transition'], SUBSCRIPTION_POLL_MS, signal);
        }
      }),
      /** Stately inspection events (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`) of this process's actors. */
      inspect: readerProcedure.subscription(async function* ({ signal }) {
        const queue: unknown[] = [];
        let wake: (() => void) | null = null;
        const onEvent = (e: unknown) => {
          if (queue.length < 10_000) queue.push(e); // a slow reader drops, never grows the heap
          wake?.();
        };
        deps.inspection.on('event', onEvent);
        const onAbort = () => wake?.();
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          while (!signal?.aborted) {
            while (queue.length > 0) yield queue.shift();
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = null;
          }
        } finally {
          signal?.removeEventListener('abort', onAbort);
          deps.inspection.off('event', onEvent);
        }
      }),
    }),

    operator: router({
      retry: operatorProcedure.input(s.operatorRetryInput).mutation(async ({ input, ctx }) => {
        await audit(db, ctx.principal?.name ?? '?', 'retry', input.id, { reason: input.reason });
        await deps.host.deliver(input.id as SubmissionId, { type: 'OPERATOR_RETRY', at: Date.now() });
        return { ok: true };
      }),
      cancel: operatorProcedure.input(s.operatorCancelInput).mutation(async ({ input, ctx }) => {
        await audit(db, ctx.principal?.name ?? '?', 'cancel', input.id, { reason: input.reason });
        await deps.host.deliver(input.id as SubmissionId, { type: 'OPERATOR_CANCEL', reason: input.reason, at: Date.now() });
        return { ok: true };
      }),
      banHotkey: operatorProcedure.input(s.banInput).mutation(async ({ input, ctx }) => {
        await audit(db, ctx.principal?.name ?? '?', 'ban', input.hotkey, { reason: input.reason });
        await db.query(
          `INSERT INTO hotkey_bans (hotkey, netuid, kind, reason) VALUES ($1, 97, 'operator', $2) ON CONFLICT (hotkey, kind) DO UPDATE SET reason = EXCLUDED.reason`,
          [input.hotkey, input.reason],
        );
        return { ok: true };
      }),
      unbanHotkey: operatorProcedure.input(s.unbanInput).mutation(async ({ input, ctx }) => {
        await audit(db, ctx.principal?.name ?? '?', 'unban', input.hotkey, {});
        const r = await db.query('DELETE FROM hotkey_bans WHERE hotkey = $1', [input.hotkey]);
        return { ok: true, removed: r.rowCount ?? 0 };
      }),
    }),

    /** The stage-service contract (DESIGN.md §3), called by actor hosts over their backend link. */
    stage: router({
      start: backendProcedure.input(s.stageStartInput).mutation(({ input }) => deps.stages.start({ attemptKey: input.attemptKey as AttemptKey, epoch: input.epoch })),
      result: backendProcedure.input(s.stageKeyInput).query(({ input }) => deps.stages.result({ attemptKey: input.attemptKey as AttemptKey })),
      cancel: backendProcedure.input(s.stageKeyInput).mutation(({ input }) => deps.stages.cancel({ attemptKey: input.attemptKey as AttemptKey })),
      watch: backendProcedure.input(s.stageWatchInput).subscription(async function* ({ input, signal }) {
        const lastEventId = input.lastEventId ? Number(input.lastEventId) : 0;
        for await (const e of deps.stages.watch({ attemptKey: input.attemptKey as AttemptKey, lastEventId, signal })) {
          yield tracked(String(e.id), e);
        }
        // Stay open until the client unsubscribes: when a generator returns right after its last
        // yield, the WS link can report completion before that last message (measured: most
        // instant attempts), which cost every attempt an extra `result` round trip.
        await abortableSleep(WATCH_LINGER_MS, signal);
      }),
    }),

    /** The GPU node link: nodes dial out to us; their identity is the token's principal. */
    node: router({
      hello: nodeProcedure.input(s.nodeHelloInput).mutation(async ({ input, ctx }) => {
        await deps.nodes.hello(ctx.principal!.name, input);
        return { nodeId: ctx.principal!.name };
      }),
      heartbeat: nodeProcedure.input(s.nodeHeartbeatInput).mutation(({ input, ctx }) => deps.nodes.heartbeat(ctx.principal!.name, input.running as AttemptKey[])),
      assignments: nodeProcedure.subscription(async function* ({ ctx, signal }) {
        const nodeId = ctx.principal!.name;
        const sent = new Set<string>();
        while (!signal?.aborted) {
          for (const a of await deps.nodes.pendingAssignments(nodeId)) {
            if (sent.has(a.attemptKey)) continue;
            sent.add(a.attemptKey);
            yield a;
          }
          await deps.stages.waitForDispatch(nodeId, SUBSCRIPTION_POLL_MS, signal);
          if (sent.size > 10_000) sent.clear();
        }
      }),
      accept: nodeProcedure.input(s.nodeAcceptInput).mutation(async ({ input, ctx }) => ({
        accepted: await deps.nodes.accept(ctx.principal!.name, input.attemptKey as AttemptKey, input.epoch, input.runId),
      })),
      /** Progress or terminal outcome; the returned `ack` is the explicit acknowledgement the node waits for. */
      report: nodeProcedure.input(s.nodeReportInput).mutation(async ({ input, ctx }) => {
        const owner = await db.query('SELECT 1 FROM stage_attempts WHERE attempt_key = $1 AND worker_id = $2', [input.attemptKey, ctx.principal!.name]);
        if (!owner.rowCount) throw new AlbedoError('NOT_FOUND', `attempt ${input.attemptKey} is not assigned to this node`);
        const live = await deps.stages.report({ attemptKey: input.attemptKey as AttemptKey, epoch: input.epoch, seq: input.seq, progress: input.progress, outcome: input.outcome });
        return { ack: input.seq, stop: !live };
      }),
      judge: nodeProcedure.input(s.nodeJudgeInput).mutation(async ({ input, ctx, signal }) => {
        if (!deps.judge) throw new AlbedoError('CONFLICT', 'no judge configured on this backend');
        const owner = await db.query("SELECT 1 FROM stage_attempts WHERE attempt_key = $1 AND worker_id = $2 AND lease_token = $3 AND state = 'RUNNING'", [
          input.attemptKey,
          ctx.principal!.name,
          input.epoch,
        ]);
        if (!owner.rowCount) throw new AlbedoError('STALE_EPOCH', `attempt ${input.attemptKey} is not a live attempt of this node`);
        return deps.judge.judgeDuel({ attemptKey: input.attemptKey, samples: input.samples, totalSampleCount: input.totalSampleCount, signal });
      }),
    }),
  });
}

export type AppRouter = ReturnType<typeof createAppRouter>;
