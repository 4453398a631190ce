/**
 * A backend process for the crash-recovery suite: started, SIGKILLed and restarted by
 * tests/integration/crash-recovery.test.ts. In-process stages append their attempt key to a side
 * effect log before doing anything, so the suite can prove no key ever ran twice.
 */
import { appendFileSync } from 'node:fs';
import { startBackend } from '../../actors/backend.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from './pipeline-kit.ts';
import { createJudge } from '../../judge/judge-actor.ts';
import { OpenRouterClient } from '../../judge/openrouter-client.ts';
import { openDb } from '../../persistence/db.ts';

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`backend-child needs ${k}`);
  return v;
};

const effects = env('CHAOS_EFFECTS_LOG');
const count = Number(env('CHAOS_SUBMISSIONS'));
const jitter = () => new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 60)));
const logged =
  (result: (ctx: Parameters<InProcessExecutor>[0]) => Record<string, unknown> = () => ({})): InProcessExecutor =>
  async (ctx) => {
    appendFileSync(effects, `${ctx.attemptKey}\n`);
    await jitter(); // widen the window in which a SIGKILL lands mid-stage
    return { outcome: { status: 'succeeded', result: result(ctx) } };
  };

const db = await openDb({ connectionString: env('DATABASE_URL'), max: 10 });
const judge = createJudge({ client: new OpenRouterClient({ apiKey: env('CHAOS_PROVIDER_KEY'), baseUrl: env('CHAOS_PROVIDER_URL'), backoffBaseMs: 10 }) });
const backend = await startBackend({
  db,
  nodeId: 'chaos-backend',
  listen: { port: Number(env('CHAOS_PORT')) },
  tokens: { operator: 'operator-token-0123456789', nodes: { 'chaos-pre': env('CHAOS_PRE_TOKEN'), 'chaos-eval': env('CHAOS_EVAL_TOKEN') } },
  executors: { HIPPIUS: logged(), SET_REIGN: logged(), WEIGHT_SET: logged() },
  judge,
  limits: FAST_LIMITS,
  evalSampleCount: 2,
  // A killed backend's in-flight attempts are adopted by its restart at once (same node id), so a
  // short actor lease only matters for the sweeper; keep the spec's stage leases.
  sweepIntervalMs: 500,
});
// Deterministic reveals: a restart ingests the same ones again, which must change nothing.
for (let i = 0; i < count; i++) {
  const hex = i.toString(16).padStart(4, '0');
  await backend.host.ingest(
    randomReveal({
      hotkey: `chaos-hotkey-${hex}`,
      uid: i + 1,
      blockNumber: 1000 + i,
      blockHash: `0x${hex.repeat(16)}`,
      repo: i % 10 === 0 ? `miner${hex}/albedo-qwen3.6-35b-strong` : `miner${hex}/albedo-qwen3.6-35b-plain`,
      digest: `sha256:${hex.repeat(16)}`,
      raw: `v7|miner${hex}|sha256:${hex.repeat(16)}`,
    }),
  );
}
process.stdout.write(`READY ${backend.url} restored=${backend.restored}\n`);
