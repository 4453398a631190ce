import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { AlbedoError } from '../core/faults.ts';
import type { Stage } from '../core/ids.ts';
import type { JudgeGateway } from '../judge/types.ts';
import type { SubmissionLimits } from '../machines/submission.ts';
import { DEFAULT_STAGE_TIMING, type StageTiming } from '../persistence/claims.ts';
import type { Db } from '../persistence/db.ts';
import { type Principal, TokenRegistry } from '../rpc/auth.ts';
import { createAlbedoClient } from '../rpc/client.ts';
import { createAppRouter, type RpcDeps } from '../rpc/router.ts';
import { type RpcServer, startRpcServer } from '../rpc/server.ts';
import { trpcStageClient } from '../rpc/stage-client.ts';
import { Dispatcher } from './dispatcher.ts';
import { ActorHost } from './host.ts';
import { createInspectionFeed } from './inspection.ts';
import { NodeRegistry } from './node-registry.ts';
import { type InProcessExecutor, type StageHooks, StageService } from './stage-service.ts';
import { evalHooks, preEvalHooks } from './stages/remote-hooks.ts';
import { Sweeper } from './sweeper.ts';

export interface BackendOptions {
  readonly db: Db;
  readonly nodeId: string;
  readonly listen?: { host?: string; port?: number };
  readonly publicReads?: boolean;
  readonly tokens: { operator?: string; reader?: string; backend?: string; nodes?: Record<string, string> };
  /** In-process stages; the others (PRE_EVAL, EVAL by default) run on GPU nodes. */
  readonly executors: Partial<Record<Stage, InProcessExecutor>>;
  readonly hooks?: Partial<Record<Stage, StageHooks>>;
  readonly judge: JudgeGateway | null;
  readonly limits: SubmissionLimits;
  readonly concurrency?: Partial<Record<Stage, number>>;
  readonly timing?: Partial<Record<Stage, StageTiming>>;
  readonly sweepIntervalMs?: number;
  readonly actorLeaseMs?: number;
  readonly writerLanes?: number;
  readonly evalSampleCount?: number;
  /** URL of a Stately inspector WebSocket server (`--inspect`). */
  readonly inspectUrl?: string;
  readonly onError?: (e: AlbedoError, context: string) => void;
}

export interface Backend {
  readonly url: string;
  readonly rpc: RpcServer;
  readonly host: ActorHost;
  readonly stages: StageService;
  readonly dispatcher: Dispatcher;
  readonly sweeper: Sweeper;
  readonly nodes: NodeRegistry;
  readonly restored: number;
  close(): Promise<void>;
}

/**
 * Assembles one backend process: the RPC endpoint, the stage services, the actor host (which calls
 * the stage services over its own authenticated tRPC link, the same path a remote host would use),
 * the dispatcher and the sweeper.
 */
export async function startBackend(o: BackendOptions): Promise<Backend> {
  const incarnation = randomUUID();
  const onError = o.onError ?? (() => {});
  const timing = { ...DEFAULT_STAGE_TIMING, ...o.timing };
  const backendToken = o.tokens.backend ?? `internal-${randomUUID()}`;
  const entries: Array<{ token: string; principal: Principal }> = [{ token: backendToken, principal: { role: 'backend', name: o.nodeId } }];
  if (o.tokens.operator) entries.push({ token: o.tokens.operator, principal: { role: 'operator', name: 'operator' } });
  if (o.tokens.reader) entries.push({ token: o.tokens.reader, principal: { role: 'reader', name: 'reader' } });
  for (const [nodeId, token] of Object.entries(o.tokens.nodes ?? {})) entries.push({ token, principal: { role: 'node', name: nodeId } });

  const stages = new StageService({
    db: o.db,
    incarnation,
    executors: o.executors,
    hooks: { PRE_EVAL: preEvalHooks, EVAL: evalHooks({ sampleCount: o.evalSampleCount }), ...o.hooks },
    leaseMs: Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, v.leaseMs])) as Record<Stage, number>,
    onError,
  });
  const nodes = new NodeRegistry(o.db, (stage) => timing[stage as Stage]?.leaseMs ?? 300_000);
  const inspection = createInspectionFeed({ webSocketUrl: o.inspectUrl });
  const deps: { -readonly [K in keyof RpcDeps]: RpcDeps[K] } = { db: o.db, host: null as unknown as ActorHost, stages, nodes, judge: o.judge, inspection: inspection.emitter };
  const rpc = await startRpcServer({ router: createAppRouter(deps), tokens: new TokenRegistry(entries), publicReads: o.publicReads, host: o.listen?.host, port: o.listen?.port });
  const link = createAlbedoClient({ url: rpc.url, token: backendToken, WebSocket });
  const host = new ActorHost({
    db: o.db,
    nodeId: o.nodeId,
    incarnation,
    stageClient: trpcStageClient(link.api),
    limits: o.limits,
    actorLeaseMs: o.actorLeaseMs,
    writerLanes: o.writerLanes,
    inspect: inspection.inspect,
    onError,
  });
  deps.host = host;
  const remoteStages = new Set((['HIPPIUS', 'PRE_EVAL', 'EVAL', 'SET_REIGN', 'WEIGHT_SET'] as const).filter((s) => !o.executors[s]));
  const dispatcher = new Dispatcher({ db: o.db, host, remoteStages, concurrency: o.concurrency, timing, onError });
  const sweeper = new Sweeper({
    db: o.db,
    host,
    intervalMs: o.sweepIntervalMs,
    isAliveRemotely: (worker, key) => nodes.isAlive(worker, key),
    notify: (k) => stages.notify(k),
    onError,
  });
  const { restored } = await host.start();
  dispatcher.start();
  sweeper.start();
  return {
    url: rpc.url,
    rpc,
    host,
    stages,
    dispatcher,
    sweeper,
    nodes,
    restored,
    close: async () => {
      await dispatcher.stop();
      sweeper.stop();
      stages.close();
      await host.stop();
      await link.close();
      await rpc.close();
      inspection.stop();
    },
  };
}
