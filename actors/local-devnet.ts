import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { startDevnetNode } from '../chain/devnet/rpc-node.ts';
import { burnedRegister, commitReveal, waitForReveal } from '../chain/miner-ops.ts';
import { ChainReader } from '../chain/reader.ts';
import { subtensorReaderSource } from '../chain/reader-source.ts';
import { connectSubtensor } from '../chain/subtensor.ts';
import type { BackendConfig } from '../core/config.ts';
import { type AlbedoError, toAlbedoError } from '../core/faults.ts';
import { writeSyntheticDataset } from '../dataset/synthetic.ts';
import { createJudge } from '../judge/judge-actor.ts';
import { OpenRouterClient } from '../judge/openrouter-client.ts';
import { startJudgeProviderStandin } from '../judge/provider-standin.ts';
import { DEFAULT_LIMITS } from '../machines/submission.ts';
import type { Db } from '../persistence/db.ts';
import { bootstrapGenesis } from '../persistence/genesis.ts';
import { activeReign } from '../persistence/queries.ts';
import { S3ArtifactStore } from '../persistence/artifact-store.ts';
import { startS3Standin } from '../persistence/s3-standin.ts';
import { dedupConfigFromEnv, openDedupIndex } from '../validation/dedup/index.ts';
import { HippiusStore } from '../validation/hippius-store.ts';
import { publishSyntheticRegistryModel, startLocalRegistry } from '../validation/local-registry.ts';
import { startCacheGc } from '../validation/cache-gc.ts';
import { ModelCache } from '../validation/model-cache.ts';
import { createValidationExecutor } from '../validation/stage.ts';
import { RoutingModelStore } from '../validation/store-config.ts';
import { type Backend, startBackend } from './backend.ts';
import { createSetReignExecutor } from './stages/set-reign.ts';
import { createWeightSetExecutor } from './stages/weight-set.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The chat template of the synthetic genesis model (validation/synthetic-model.ts writes the same
 * text into every synthetic repo). The eval node renders every duel prompt with it, pinned by sha256;
 * {@link genesisChatTemplateFile} refuses to start when it no longer matches the published genesis file.
 */
const GENESIS_CHAT_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";

/**
 * Writes the genesis `chat_template.jinja` for the eval node's `--chat-template` and returns it with
 * its pin, checked against the sha256 of the file the registry serves for the genesis model.
 */
function genesisChatTemplateFile(dir: string, publishedFiles: readonly { readonly path: string; readonly sha256: string }[]): { path: string; sha256: string } {
  const sha256 = createHash('sha256').update(GENESIS_CHAT_TEMPLATE, 'utf8').digest('hex');
  const published = publishedFiles.find((f) => f.path === 'chat_template.jinja')?.sha256;
  if (published !== sha256) throw new Error(`the genesis chat_template.jinja (sha256 ${published ?? 'missing'}) differs from the demo's pinned template (${sha256})`);
  const path = join(dir, 'genesis-chat_template.jinja');
  writeFileSync(path, GENESIS_CHAT_TEMPLATE);
  return { path, sha256 };
}
const NETUID = 97;

/** The demo: one model per outcome a miner can meet. Repo names say what the stand-ins do. */
export const DEMO_MODELS = [
  { name: 'alice', repo: 'alice/albedo-qwen3.6-35b-strong', note: 'better answers: should be crowned' },
  { name: 'bob', repo: 'bob/albedo-qwen3.6-35b-plain', note: 'ordinary answers: should lose the duel' },
  { name: 'carol', repo: 'carol/albedo-qwen3.6-35b-broken', note: 'degenerate output: should fail pre-eval (MINER)' },
  { name: 'dave', repo: 'dave/albedo-qwen3.6-35b-fp32', note: 'F32 weights: should fail validation (weight_dtype)', dtype: 'F32' as const },
  { name: 'erin', repo: 'erin/my-cool-model', note: 'wrong repo name: should fail validation (repo_name)' },
  {
    name: 'frank',
    repo: 'frank/albedo-qwen3.6-35b-copy',
    note: "the genesis weights with 1 % noise on one tensor: passes upstream's similarity rule, should fail validation (too_similar)",
    seed: 'genesis',
    perturb: { tensors: 1, relative: 0.01, noiseSeed: 'frank' },
  },
] as const;

/**
 * Well-known dev keys of the local stack (sr25519 from `//AlbedoDemo//<name>` URIs, like substrate's
 * `//Alice`): public by design, never funded anywhere but the local dev chain.
 */
export async function demoKeys(): Promise<{ coldkey: KeyringPair; validator: KeyringPair; genesisKing: KeyringPair; miner(name: string): KeyringPair }> {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const key = (name: string) => keyring.addFromUri(`//AlbedoDemo//${name}`);
  return { coldkey: key('coldkey'), validator: key('validator'), genesisKing: key('genesis-king'), miner: key };
}

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
 * stand-in speaking its real protocol — a subtensor dev chain serving recorded metadata to the real
 * `@polkadot/api` client (chain/devnet/), GPU
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
    registry: token(),
  };
  const tokensFile = join(o.dataDir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ operator: tokens.operator, reader: tokens.reader }, null, 2));
  chmodSync(tokensFile, 0o600);

  const keys = await demoKeys();
  const chain = await startDevnetNode({
    blockTimeMs: 1000,
    dataFile: join(o.dataDir, 'devnet-chain.jsonl'),
    authToken: tokens.chain,
    genesis: {
      subnets: [{ netuid: NETUID, weightsSetRateLimit: 3 }],
      endowments: { [keys.coldkey.address]: 1_000_000_000_000n },
      registrations: [
        { hotkey: keys.genesisKing.address, coldkey: keys.coldkey.address, netuid: NETUID },
        { hotkey: keys.validator.address, coldkey: keys.coldkey.address, netuid: NETUID },
      ],
    },
    log: (line) => log(`[stand-in chain] ${line}`),
  });
  log(`[stand-in] local subtensor dev chain (recorded spec-381 metadata, local drand beacon; NOT finney) at ${chain.url}`);
  const chainClient = await connectSubtensor({ network: chain.url, headers: { Authorization: `Bearer ${tokens.chain}` }, signers: [keys.validator] });
  const provider = await startJudgeProviderStandin({ apiKey: tokens.provider });
  log(`[stand-in] judge provider (OpenRouter-compatible, deterministic) at ${provider.url}`);
  const judge = createJudge({ client: new OpenRouterClient({ apiKey: tokens.provider, baseUrl: provider.baseUrl }) });

  const registryRoot = join(o.dataDir, 'registry');
  const registry = await startLocalRegistry({ root: registryRoot, auth: { mode: 'bearer', token: tokens.registry } });
  log(`[stand-in] Hippius model registry (OCI distribution API, content-addressed; NOT registry.hippius.com) at ${registry.url}`);
  const s3 = await startS3Standin({ bucket: 'albedo-artifacts', directory: join(o.dataDir, 's3') });
  log(`[stand-in] artifact bucket (s3rver, real S3 protocol; NOT s3.hippius.com) at ${s3.endpoint}/${s3.bucket}`);
  const artifacts = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, forcePathStyle: true });
  const dedup = await openDedupIndex(dedupConfigFromEnv(process.env), { db: o.db });
  await dedup.health();
  const modelCache = new ModelCache({ root: join(o.dataDir, 'model-cache') });
  const genesis = await publishSyntheticRegistryModel(registryRoot, 'teutonic/albedo-qwen3.6-35b-genesis', { seed: 'genesis' });
  const chatTemplate = genesisChatTemplateFile(o.dataDir, genesis.files);
  log(`genesis chat template pinned for duel prompts: sha256 ${chatTemplate.sha256.slice(0, 12)}…`);
  const genesisUid = await chainClient.uidOf(NETUID, keys.genesisKing.address);
  if (genesisUid === null) throw new Error('the dev chain lost its genesis registrations (delete the data dir to start over)');
  const g = await bootstrapGenesis(o.db, { netuid: NETUID, hotkey: keys.genesisKing.address, uid: genesisUid, modelUri: genesis.uri });
  if (g.created) log(`genesis king ${genesis.uri} seeded in slot 1 of reign 1`);

  const backend = await startBackend({
    db: o.db,
    nodeId: cfg.ALBEDO_NODE_ID,
    listen: { host: cfg.ALBEDO_API_HOST, port: o.port },
    publicReads: cfg.ALBEDO_API_PUBLIC,
    tokens: { operator: tokens.operator, reader: tokens.reader, nodes: { 'gpu-pre-eval-1': tokens.pre, 'gpu-eval-1': tokens.eval } },
    executors: {
      HIPPIUS: createValidationExecutor({
        store: new RoutingModelStore({ hippius: new HippiusStore({ registry: registry.url, token: tokens.registry }) }),
        cache: modelCache,
        dedup,
        artifacts,
        backends: ['hippius', 'hf'],
        onWarning: (line) => log(`[validation] warning: ${line}`),
      }),
      SET_REIGN: createSetReignExecutor({ workerId: 'set-reign-worker', netuid: NETUID }),
      WEIGHT_SET: createWeightSetExecutor({ chain: chainClient, netuid: NETUID, signerHotkey: keys.validator.address, versionKey: 10_003_000, rateLimitBlocks: 3, burnUid: 0, network: 'local-devnet', pollMs: 500, retryBackoffMs: 2_000 }),
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
  // Spec §5 cache GC: kings, genesis and unfinished submissions stay; the rest ages out.
  const cacheGc = startCacheGc({
    db: o.db,
    cache: modelCache,
    onResult: (r) => {
      if (r.evicted.length > 0) log(`[model-cache] evicted ${r.evicted.join(', ')}`);
    },
    onError: (e) => o.onError(toAlbedoError(e), 'model cache GC'),
  });

  // LOCAL STAND-IN for SWE-ZERO: synthetic trajectories in real parquet shards with a pinned manifest,
  // sampled by the production v1 sampler on the eval node.
  const dataset = await writeSyntheticDataset(join(o.dataDir, 'dataset'));
  log(`[stand-in] duel dataset: ${dataset.totalRows} synthetic trajectories in ${dataset.root} (manifest sha256 ${dataset.manifestSha256.slice(0, 12)}…)`);
  const nodes: ChildProcess[] = [];
  for (const [role, nodeToken, name] of [['PRE_EVAL', tokens.pre, 'gpu-pre-eval-1'], ['EVAL', tokens.eval, 'gpu-eval-1']] as const) {
    const evalArgs = role === 'EVAL' ? ['--dataset-root', dataset.root, '--dataset-manifest', dataset.manifestPath, '--chat-template', chatTemplate.path] : [];
    // The eval node uploads its run artifacts to the stand-in bucket (duel.md §11), and pins the prompt template.
    const evalEnv =
      role === 'EVAL'
        ? {
            ALBEDO_CHAT_TEMPLATE_SHA256: chatTemplate.sha256,
            ALBEDO_REMOTE_S3_ENDPOINT: s3.endpoint,
            ALBEDO_REMOTE_S3_BUCKET: s3.bucket,
            ALBEDO_REMOTE_S3_ACCESS_KEY: s3.accessKeyId,
            ALBEDO_REMOTE_S3_SECRET_KEY: s3.secretAccessKey,
            ALBEDO_REMOTE_S3_REGION: s3.region,
            ALBEDO_EVAL_ARTIFACT_PREFIX: `s3://${s3.bucket}`,
          }
        : {};
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'gpu-node/main.ts'), '--backend', backend.url, '--role', role, '--state-dir', join(o.dataDir, name), ...evalArgs], {
      env: { ...process.env, ALBEDO_NODE_TOKEN: nodeToken, ALBEDO_EVAL_DATASET_MANIFEST_HASH: dataset.manifestSha256, ...evalEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) log(`[${name}] ${line}`);
    });
    nodes.push(child);
    log(`[stand-in] GPU node ${name} (${role}) started; its "vLLM" is a deterministic OpenAI-compatible stub per model`);
  }

  const reader = new ChainReader({
    db: o.db,
    source: subtensorReaderSource(chainClient, NETUID),
    netuid: NETUID,
    // One-second blocks here, so poll faster than the spec's 2 s (unless configured).
    pollMs: process.env.CHAIN_POLL_INTERVAL_S ? cfg.CHAIN_POLL_INTERVAL_S * 1000 : 500,
    scanLagBlocks: cfg.CHAIN_SCAN_LAG_BLOCKS,
    startBlock: cfg.CHAIN_START_BLOCK,
    ignoreCommitsToBlock: cfg.IGNORE_COMMITS_TO_BLOCK,
    readRawCommitments: cfg.CHAIN_READ_RAW_COMMITMENTS,
    ingest: (r) => backend.host.ingest(r),
    onError: o.onError,
    log: (level, line) => log(`[chain-reader] ${level === 'info' ? '' : `${level}: `}${line}`),
  });
  reader.start();

  let stopping = false;
  const demo =
    o.demo === false
      ? Promise.resolve()
      : (async () => {
          // Real extrinsics, as a miner's `albedo register` / `albedo commit` would send them. The five
          // registrations share one coldkey, so they go one at a time (one nonce each). Alice commits
          // first and the rest wait for her reveal (~12 s, spec §4), so she duels the genesis king first
          // and the demo reads the same every run; the other four commit together (five hotkeys, five signers).
          const uids = new Map<string, number>();
          for (const m of DEMO_MODELS) {
            uids.set(m.name, (await burnedRegister(chainClient, { netuid: NETUID, coldkey: keys.coldkey, hotkey: keys.miner(m.name).address })).uid);
          }
          const commit = async (m: (typeof DEMO_MODELS)[number]) => {
            const hotkey = keys.miner(m.name);
            const published = await publishSyntheticRegistryModel(registryRoot, m.repo, {
              seed: 'seed' in m ? m.seed : m.name,
              ...('dtype' in m ? { dtype: m.dtype } : {}),
              ...('perturb' in m ? { perturb: m.perturb } : {}),
            });
            const committed = await commitReveal(chainClient, { netuid: NETUID, hotkey, repo: published.ref.repo, digest: published.ref.digest });
            log(`demo: ${m.name} ${hotkey.address.slice(0, 10)}… (uid ${uids.get(m.name)}) committed ${published.uri} in block ${committed.blockNumber}, reveal round ${committed.revealRound} — ${m.note}`);
            return { committed, hotkey };
          };
          const [first, ...rest] = DEMO_MODELS;
          const alice = await commit(first);
          await waitForReveal(chainClient, { netuid: NETUID, hotkey: alice.hotkey.address, payload: alice.committed.payload, sinceBlock: alice.committed.blockNumber, pollMs: 500 });
          await Promise.all(rest.map(commit));
        })().catch((error: unknown) => {
          if (!stopping) o.onError(toAlbedoError(error), 'demo miners');
        });

  return {
    backend,
    tokensFile,
    stop: async () => {
      stopping = true;
      reader.stop();
      for (const n of nodes) n.kill('SIGTERM');
      await backend.close();
      await chainClient.close();
      await demo;
      await provider.close();
      await chain.close();
      await cacheGc.stop();
      await registry.close();
      await s3.close();
      await dedup.close();
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
