/**
 * End to end on one machine: the stub engine runs as a real child process under VllmManager, the
 * judge is the real actor + OpenRouter client talking to the provider stand-in over HTTP (with
 * injected 429s and malformed replies), and runEval decides the duel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalInput, StageProgress } from '../core/stage.ts';
import { createJudge } from '../judge/judge-actor.ts';
import { OpenRouterClient } from '../judge/openrouter-client.ts';
import { startJudgeProviderStandin, type JudgeProviderStandin } from '../judge/provider-standin.ts';
import { runEval, runPreEval, type EvalPrompt } from './executors.ts';
import { stubVllmCommand, VllmManager } from './vllm-manager.ts';

const MODELS = ['org/strong-challenger', 'org/plain-king', 'org/broken-challenger'];
let engine: VllmManager;
let provider: JudgeProviderStandin;

beforeAll(async () => {
  engine = new VllmManager({ command: stubVllmCommand({ models: MODELS }), apiKey: 'engine-e2e-key', pollIntervalMs: 50 });
  provider = await startJudgeProviderStandin({ apiKey: 'provider-e2e-key', faults: { rate429Every: 4, malformedEvery: 7 } });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
  await provider.close();
});

const prompts: EvalPrompt[] = [
  'Fix the failing test in tests/test_parser.py: parse_config raises KeyError when the yaml name key is missing.',
  'Add retry with exponential backoff to fetch_manifest in loader.py and keep the timeout configurable.',
  'Rename the helper build_index to create_index across the package and update the docs.',
  'The CLI flag --dry-run is ignored by sync_bucket; make it skip uploads and print the plan.',
  'Write a unit test for slugify that covers unicode input, repeated dashes and empty strings.',
  'Profile the slow endpoint /reports/export and propose a fix for the N+1 query in build_rows.',
].map((content, i) => ({ sampleId: `data/train-00000-of-00001.parquet:3:${i}`, messages: [{ role: 'system', content: 'You are a coding agent.' }, { role: 'user', content }] }));

function duel(challengerModelUri: string, kingModelUri: string) {
  // The stand-in fails 10 of every 28 requests by a global counter; with the default 6 attempts a
  // request exhausted its retries in a few % of runs (flaky). 20 attempts keep every retry path.
  const judge = createJudge({ client: new OpenRouterClient({ apiKey: 'provider-e2e-key', baseUrl: provider.baseUrl, backoffBaseMs: 0, maxAttempts: 20 }) });
  const events: StageProgress[] = [];
  const input: EvalInput = { challengerModelUri, kingModelUri, blockHash: '0xabc123', sampleCount: prompts.length, winMargin: 0.06 };
  const outcome = runEval(input, { chat: engine.chat, judge, emit: async (e) => void events.push(e), signal: new AbortController().signal, prompts, maxTokens: 512 });
  return { outcome, events };
}

describe('duel end to end with real stand-ins', () => {
  it('a strong challenger dethrones a plain king', async () => {
    const { outcome, events } = duel('org/strong-challenger', 'org/plain-king');
    const result = await outcome;
    expect(result.status).toBe('succeeded');
    if (result.status !== 'succeeded') return;
    expect(result.result).toMatchObject({ challengerWon: true, sampleCount: 6, scoredSampleCount: 6, judgeCount: 3, validFraction: 1 });
    expect(result.result.scoreChallenger as number).toBeGreaterThan(0.53);
    expect(result.result.scoreKing).toBe(1 - (result.result.scoreChallenger as number));
    expect(events.map((e) => e.type)).toContain('verdict');
    expect(provider.stats().rateLimited + provider.stats().malformed).toBeGreaterThan(0);
  });

  it('a plain challenger does not dethrone a strong king', async () => {
    const result = await duel('org/plain-king', 'org/strong-challenger').outcome;
    expect(result.status === 'succeeded' && result.result.challengerWon).toBe(false);
  });

  it('a broken challenger loses the duel and fails pre-eval as a MINER fault', async () => {
    const result = await duel('org/broken-challenger', 'org/plain-king').outcome;
    expect(result.status === 'succeeded' && result.result.challengerWon).toBe(false);
    const pre = await runPreEval({ modelUri: 'org/broken-challenger', blockHash: '0xabc123' }, { chat: engine.chat, emit: async () => {}, signal: new AbortController().signal });
    expect(pre.status === 'failed' && pre.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'failed' });
    const ok = await runPreEval({ modelUri: 'org/strong-challenger', blockHash: '0xabc123' }, { chat: engine.chat, emit: async () => {}, signal: new AbortController().signal });
    expect(ok.status).toBe('succeeded');
  });
});
