import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, startBackend } from '../../actors/backend.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from '../support/pipeline-kit.ts';
import { GpuNodeAgent } from '../../gpu-node/agent.ts';
import { demoEvalPrompts } from '../../gpu-node/demo-prompts.ts';
import { routeChatByModel, routeCompletionByModel } from '../../gpu-node/executors.ts';
import { S3ArtifactStore } from '../../persistence/artifact-store.ts';
import { type S3Standin, startS3Standin } from '../../persistence/s3-standin.ts';
import { stubVllmCommand, VllmManager } from '../../gpu-node/vllm-manager.ts';
import { createJudge } from '../../judge/judge-actor.ts';
import { OpenRouterClient } from '../../judge/openrouter-client.ts';
import { startJudgeProviderStandin } from '../../judge/provider-standin.ts';
import { bootstrapGenesis } from '../../persistence/genesis.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { waitFor } from '../support/wait.ts';

const PROVIDER_KEY = 'provider-key-0123456789';
const ok: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });

describe('GPU nodes dial out, run PRE_EVAL and EVAL on stub vLLM, and the judge actor decides', () => {
  let t: TestDatabase;
  let backend: Backend;
  let provider: Awaited<ReturnType<typeof startJudgeProviderStandin>>;
  const dir = mkdtempSync(join(tmpdir(), 'albedo-node-'));
  const agents: GpuNodeAgent[] = [];
  let s3: S3Standin;
  let artifactStore: S3ArtifactStore;
  const startAgent = async (role: 'PRE_EVAL' | 'EVAL', token: string) => {
    const agent = new GpuNodeAgent({
      backendUrl: backend.url,
      token,
      role,
      gpuCount: 8,
      stateDir: join(dir, role),
      sideEffectLog: join(dir, 'effects.log'),
      evalPrompts: demoEvalPrompts,
      heartbeatMs: 200,
      // The eval node uploads its run artifacts (duel.md §11) to the S3 stand-in.
      ...(role === 'EVAL' ? { artifactStore } : {}),
      startEngine: async (models, signal) => {
        const managers = models.map((m) => new VllmManager({ command: stubVllmCommand({ models: [m] }), startupTimeoutMs: 30_000, pollIntervalMs: 50 }));
        await Promise.all(managers.map((m) => m.start(signal)));
        return {
          chat: routeChatByModel(Object.fromEntries(models.map((m, i) => [m, managers[i]!.chat]))),
          complete: routeCompletionByModel(Object.fromEntries(models.map((m, i) => [m, managers[i]!.complete]))),
          stop: async () => void (await Promise.all(managers.map((m) => m.stop()))),
        };
      },
    });
    await agent.start();
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    t = await freshDatabase(testServers()[0]!);
    await bootstrapGenesis(t.db, { netuid: 97, hotkey: 'genesis', uid: 0, modelUri: 'teutonic/albedo-qwen3.6-35b-genesis@sha256:' + 'e'.repeat(64) });
    provider = await startJudgeProviderStandin({ apiKey: PROVIDER_KEY });
    s3 = await startS3Standin({ bucket: 'albedo-artifacts' });
    artifactStore = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, forcePathStyle: true });
    const judge = createJudge({ client: new OpenRouterClient({ apiKey: PROVIDER_KEY, baseUrl: provider.baseUrl, backoffBaseMs: 10 }) });
    backend = await startBackend({
      db: t.db,
      nodeId: 'node-test',
      tokens: { operator: 'operator-token-0123456789', nodes: { 'pre-1': 'pre-node-token-0123456789', 'eval-1': 'eval-node-token-0123456789' } },
      executors: { HIPPIUS: ok, SET_REIGN: ok, WEIGHT_SET: ok },
      judge,
      limits: FAST_LIMITS,
      evalSampleCount: 6,
    });
    await startAgent('PRE_EVAL', 'pre-node-token-0123456789');
    await startAgent('EVAL', 'eval-node-token-0123456789');
  }, 120_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await backend?.close();
    await provider?.close();
    artifactStore?.close();
    await s3?.close();
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a strong challenger is crowned, a plain one loses, a broken one fails pre-eval as a MINER fault', async () => {
    const strong = await backend.host.ingest(randomReveal({ repo: 'alice/albedo-qwen3.6-35b-strong' }));
    const broken = await backend.host.ingest(randomReveal({ repo: 'bob/albedo-qwen3.6-35b-broken' }));
    const state = async (id: string) => (await t.db.query('SELECT state, fault_code FROM model_submissions WHERE id = $1', [id])).rows[0];
    await waitFor(async () => (await state(strong.id)).state === 'COMPLETE_CORONATED', { timeoutMs: 90_000, what: 'strong crowned' });
    await waitFor(async () => (await state(broken.id)).state === 'TERMINAL_INVALID', { timeoutMs: 90_000, what: 'broken rejected' });
    expect((await state(broken.id)).fault_code).toBe('failed');
    const run = (await t.db.query('SELECT state, challenger_won, score_challenger, score_king, remote_host_id FROM eval_runs WHERE submission_id = $1', [strong.id])).rows[0];
    expect(run).toMatchObject({ state: 'SUCCEEDED', challenger_won: true, remote_host_id: 'eval-1' });
    expect(Number(run.score_challenger)).toBeGreaterThan(Number(run.score_king));
    // The uploaded run artifacts were recorded with the verdict, one row per stored object.
    const stored = await t.db.query<{ artifact_type: string; uri: string; stage_attempt_id: string | null }>(
      `SELECT a.artifact_type, a.uri, a.stage_attempt_id FROM artifacts a JOIN eval_runs er ON er.stage_attempt_id = a.stage_attempt_id WHERE er.submission_id = $1 ORDER BY a.artifact_type`,
      [strong.id],
    );
    expect(stored.rows.map((r) => r.artifact_type)).toEqual(['EVAL_REQUEST', 'EVAL_TRANSCRIPT', 'EVAL_VERDICT', 'GENERATED_SAMPLES', 'JUDGE_RESULTS', 'REMOTE_LOGS', 'REMOTE_PROGRESS', 'SCORING_RESULTS']);
    expect(stored.rows.every((r) => r.uri.startsWith(`s3://albedo-artifacts/submissions/${strong.id}/eval/`))).toBe(true);
    const verdictUri = stored.rows.find((r) => r.artifact_type === 'EVAL_VERDICT')?.uri ?? '';
    expect(JSON.parse(Buffer.from(await artifactStore.get(verdictUri)).toString('utf8')).artifacts.verdict).toBe(verdictUri);
    const sanity = await t.db.query('SELECT passed FROM sanity_results WHERE submission_id = $1', [broken.id]);
    expect(sanity.rows).toEqual([{ passed: false }]);
    const effects = readFileSync(join(dir, 'effects.log'), 'utf8').trim().split('\n');
    expect(new Set(effects).size).toBe(effects.length);
  });

  it('a GPU node with a wrong token is refused at the upgrade and never registers', async () => {
    const logs: string[] = [];
    const hostsBefore = (await t.db.query('SELECT count(*)::int AS n FROM remote_gpu_hosts')).rows[0].n;
    const intruder = new GpuNodeAgent({
      backendUrl: backend.url,
      token: 'stolen-or-guessed-token-0000',
      role: 'EVAL',
      gpuCount: 8,
      stateDir: join(dir, 'intruder'),
      evalPrompts: demoEvalPrompts,
      startEngine: async () => {
        throw new Error('must never be asked to run anything');
      },
      log: (l) => logs.push(l),
    });
    await expect(intruder.start()).rejects.toThrow(/refused this node's token \(HTTP 401\)/);
    await intruder.stop();
    expect((await t.db.query('SELECT count(*)::int AS n FROM remote_gpu_hosts')).rows[0].n).toBe(hostsBefore);
  });

  it('a backend socket drop mid-run loses nothing: the node re-sends until acknowledged', async () => {
    const plain = await backend.host.ingest(randomReveal({ repo: 'carol/albedo-qwen3.6-35b-plain' }));
    await waitFor(async () => (await t.db.query("SELECT 1 FROM stage_attempts WHERE submission_id = $1 AND stage = 'PRE_EVAL'", [plain.id])).rowCount);
    backend.rpc.dropAll();
    await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state IN ('COMPLETE_LOSS','COMPLETE_CORONATED')", [plain.id])).rowCount, { timeoutMs: 90_000 });
    const attempts = await t.db.query("SELECT stage, count(*)::int AS n FROM stage_attempts WHERE submission_id = $1 GROUP BY stage ORDER BY stage", [plain.id]);
    expect(attempts.rows.every((r) => r.n === 1)).toBe(true);
  });
});
