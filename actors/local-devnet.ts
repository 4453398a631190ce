import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DevChainClient, devChainMiner } from '../chain/devnet/client.ts';
import { startDevChain } from '../chain/devnet/server.ts';
import { ChainReader } from '../chain/reader.ts';
import type { BackendConfig } from '../core/config.ts';
import type { AlbedoError } from '../core/faults.ts';
import { createJudge } from '../judge/judge-actor.ts';
import { OpenRouterClient } from '../judge/openrouter-client.ts';
import { startJudgeProviderStandin } from '../judge/provider-standin.ts';
import { DEFAULT_LIMITS } from '../machines/submission.ts';
import type { Db } from '../persistence/db.ts';
import { bootstrapGenesis } from '../persistence/genesis.ts';
import { activeReign } from '../persistence/queries.ts';
import { LocalDirStore } from '../validation/model-store.ts';
import { createValidationExecutor } from '../validation/stage.ts';
import { publishSyntheticModel } from '../validation/synthetic-model.ts';
import { type Backend, startBackend } from './backend.ts';
import { createSetReignExecutor } from './stages/set-reign.ts';
import { createWeightSetExecutor } from './stages/weight-set.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NETUID = 97;

/** The demo: one model per outcome a miner can meet. Repo names say what the stand-ins do. */
export const DEMO_MODELS = [
  { hotkey: '5DemoAliceStrong', repo: 'alice/albedo-qwen3.6-35b-strong', note: 'better answers: should be crowned' },
  { hotkey: '5DemoBobPlain', repo: 'bob/albedo-qwen3.6-35b-plain', note: 'ordinary answers: should lose the duel' },
  { hotkey: '5DemoCarolBroken', repo: 'carol/albedo-qwen3.6-35b-broken', note: 'degenerate output: should fail pre-eval (MINER)' },
  { hotkey: '5DemoDaveFp32', repo: 'dave/albedo-qwen3.6-35b-fp32', note: 'F32 weights: should fail validation (weight_dtype)', dtype: 'F32' as const },
  { hotkey: '5DemoErinBadName', repo: 'erin/my-cool-model', note: 'wrong repo name: should fail validation (repo_name)' },
] as const;

export interface LocalDevnetOptions {
  readonly db: Db;
  readonly config: BackendConfig;
  readonly dataDir: string;
  readonly port: number;
  readonly inspectUrl?: string;
  readonly log: (line: string) => void;
  readonly onError: (e: AlbedoError, context: string) => void;
  /** Push the demo submissions. @default true */
  readonly demo?: boolean;
}

export interface LocalDevnet {
  readonly backend: Backend;
  readonly tokensFile: string;
  stop(): Promise<void>;
}

const token = () => randomBytes(24).toString('base64url');

/**
 * `npm start`: the full stack on one machine. Every outside-world part is a clearly labelled local
 * stand-in speaking its real protocol shape — a dev chain (JSON-RPC over WS, not subtensor), GPU
 * nodes whose "vLLM" is a deterministic OpenAI-compatible server, an OpenRouter-compatible judge
 * provider — while the validator itself (actors, stages, judge actor, verdicts, coronation,
 * weights) is the production code.
 */
export async function startLocalDevnet(o: LocalDevnetOptions): Promise<LocalDevnet> {
  const { log } = o;
  mkdirSync(o.dataDir, { recursive: true });
  const cfg = o.config;
  const tokens = {
    operator: cfg.ALBEDO_OPERATOR_TOKEN ?? token(),
    reader: cfg.ALBEDO_READER_TOKEN ?? token(),
    pre: token(),
    eval: token(),
    chain: token(),
    provider: token(),
  };
  const tokensFile = join(o.dataDir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ operator: tokens.operator, reader: tokens.reader }, null, 2));
  chmodSync(tokensFile, 0o600);

  const chain = await startDevChain({ blockTimeMs: 1000, dataFile: join(o.dataDir, 'devchain.json'), authToken: tokens.chain, weightsRateLimitBlocks: 3 });
  log(`[stand-in] local dev chain (JSON-RPC over WebSocket, NOT subtensor) at ${chain.url}`);
  const chainClient = new DevChainClient(chain.url, { authToken: tokens.chain });
  const miner = devChainMiner(chain.url, { authToken: tokens.chain, netuid: NETUID });
  const provider = await startJudgeProviderStandin({ apiKey: tokens.provider });
  log(`[stand-in] judge provider (OpenRouter-compatible, deterministic) at ${provider.url}`);
  const judge = createJudge({ client: new OpenRouterClient({ apiKey: tokens.provider, baseUrl: provider.baseUrl }) });

  const modelsRoot = join(o.dataDir, 'models');
  const genesis = await publishSyntheticModel(modelsRoot, 'teutonic/albedo-qwen3.6-35b-genesis', { seed: 'genesis' });
  const genesisReg = await miner.register('5DemoGenesisKing');
  await miner.register('5DemoValidator');
  const g = await bootstrapGenesis(o.db, { netuid: NETUID, hotkey: '5DemoGenesisKing', uid: genesisReg.uid, modelUri: genesis.uri });
  if (g.created) log(`genesis king ${genesis.uri} seeded in slot 1 of reign 1`);

  const backend = await startBackend({
    db: o.db,
    nodeId: cfg.ALBEDO_NODE_ID,
    listen: { host: cfg.ALBEDO_API_HOST, port: o.port },
    publicReads: cfg.ALBEDO_API_PUBLIC,
    tokens: { operator: tokens.operator, reader: tokens.reader, nodes: { 'gpu-pre-eval-1': tokens.pre, 'gpu-eval-1': tokens.eval } },
    executors: {
      HIPPIUS: createValidationExecutor({ store: new LocalDirStore(modelsRoot), backends: ['hippius', 'hf'] }),
      SET_REIGN: createSetReignExecutor({ workerId: 'set-reign-worker', netuid: NETUID }),
      WEIGHT_SET: createWeightSetExecutor({ chain: chainClient, netuid: NETUID, signerHotkey: '5DemoValidator', versionKey: 10_003_000, rateLimitBlocks: 3, burnUid: 0, network: 'local-devnet', pollMs: 500, retryBackoffMs: 2_000 }),
    },
    judge,
    // Backoffs of spec §3 scaled to seconds (unless set) so the demo shows retries without waiting minutes.
    limits: { ...DEFAULT_LIMITS, backoffScale: process.env.ALBEDO_BACKOFF_SCALE ? cfg.ALBEDO_BACKOFF_SCALE : 0.01 },
    concurrency: { HIPPIUS: cfg.ALBEDO_HV_CONCURRENCY, EVAL: cfg.ALBEDO_EVAL_MAX_CONCURRENT },
    actorLeaseMs: cfg.ALBEDO_ACTOR_LEASE_S * 1000,
    writerLanes: cfg.ALBEDO_WRITER_LANES,
    evalSampleCount: 8,
    sweepIntervalMs: cfg.ALBEDO_SWEEP_INTERVAL_S * 1000,
    inspectUrl: o.inspectUrl,
    onError: o.onError,
  });

  const nodes: ChildProcess[] = [];
  for (const [role, nodeToken, name] of [['PRE_EVAL', tokens.pre, 'gpu-pre-eval-1'], ['EVAL', tokens.eval, 'gpu-eval-1']] as const) {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'gpu-node/main.ts'), '--backend', backend.url, '--role', role, '--state-dir', join(o.dataDir, name)], {
      env: { ...process.env, ALBEDO_NODE_TOKEN: nodeToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) log(`[${name}] ${line}`);
    });
    nodes.push(child);
    log(`[stand-in] GPU node ${name} (${role}) started; its "vLLM" is a deterministic OpenAI-compatible stub per model`);
  }

  const reader = new ChainReader({ db: o.db, chain: chainClient, netuid: NETUID, pollMs: 1000, ingest: (r) => backend.host.ingest(r), onError: o.onError });
  reader.start();

  if (o.demo !== false) {
    for (const m of DEMO_MODELS) {
      const published = await publishSyntheticModel(modelsRoot, m.repo, { seed: m.hotkey, ...('dtype' in m ? { dtype: m.dtype } : {}) });
      const reg = await miner.register(m.hotkey);
      await miner.commit(m.hotkey, `v7|${published.ref.repo}|${published.ref.digest}`);
      log(`demo: ${m.hotkey} (uid ${reg.uid}) committed ${published.uri} — ${m.note}`);
    }
  }

  return {
    backend,
    tokensFile,
    stop: async () => {
      reader.stop();
      for (const n of nodes) n.kill('SIGTERM');
      await backend.close();
      await chainClient.close();
      await miner.close();
      await provider.close();
      await chain.close();
    },
  };
}

/** One line per transition, with the repo name, so the demo's progress reads like a log. */
export function progressPrinter(db: Db, backend: Backend, log: (line: string) => void): void {
  const names = new Map<string, string>();
  backend.host.transitions.on('transition', async (t: { submissionId: string; from: string | null; to: string; eventType: string }) => {
    let name = names.get(t.submissionId);
    if (!name) {
      const { rows } = await db.query<{ model_uri: string }>('SELECT model_uri FROM model_submissions WHERE id = $1', [t.submissionId]);
      name = (rows[0]?.model_uri ?? '?').split('@')[0]!;
      names.set(t.submissionId, name);
    }
    let detail = '';
    if (t.to.startsWith('TERMINAL') || t.to.startsWith('COMPLETE')) {
      const { rows } = await db.query<{ fault_code: string | null; fault_message: string | null }>('SELECT fault_code, fault_message FROM model_submissions WHERE id = $1', [t.submissionId]);
      if (rows[0]?.fault_code) detail = `  (${rows[0].fault_code}: ${rows[0].fault_message?.slice(0, 220)})`;
      if (t.to === 'COMPLETE_CORONATED') {
        const reign = await activeReign(db);
        detail = `  — reign v${reign?.version}: ${reign?.members.map((m: { slot: number; hotkey: string; weight_bps: number }) => `#${m.slot} ${m.hotkey} ${m.weight_bps / 100}%`).join(', ')}`;
      }
    }
    log(`${t.submissionId.slice(0, 8)} ${name.padEnd(38)} ${(t.from ?? '—').padEnd(19)} → ${t.to}${detail}`);
  });
}
