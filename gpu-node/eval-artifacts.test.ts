/**
 * An eval through the in-process GPU node path (stub vLLM child process under VllmManager, the real
 * judge actor over the provider stand-in) writes the run artifacts of duel.md §11, and the replay
 * recomputes exactly the recorded verdict from them.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalInput, StageProgress } from '../core/stage.ts';
import { createJudge } from '../judge/judge-actor.ts';
import { OpenRouterClient } from '../judge/openrouter-client.ts';
import { type JudgeProviderStandin, startJudgeProviderStandin } from '../judge/provider-standin.ts';
import { ARTIFACT_FILES, replayArtifactDir } from '../judge/replay.ts';
import { type EvalPrompt, runEval } from './executors.ts';
import { stubVllmCommand, VllmManager } from './vllm-manager.ts';

const CHALLENGER = 'org/strong-challenger@sha256:' + 'c'.repeat(64);
const KING = 'org/plain-king@sha256:' + 'a'.repeat(64);
const EVAL_RUN_ID = '3b0f8f5e-7d1c-4c59-9a57-1f2e3d4c5b6a';
const BLOCK = '0x' + 'ab'.repeat(32);

const prompts: EvalPrompt[] = [
  'Fix the failing test in tests/test_parser.py: parse_config raises KeyError when the yaml name key is missing.',
  'Add retry with exponential backoff to fetch_manifest in loader.py and keep the timeout configurable.',
  'Rename the helper build_index to create_index across the package and update the docs.',
  'The CLI flag --dry-run is ignored by sync_bucket; make it skip uploads and print the plan.',
  'Write a unit test for slugify that covers unicode input, repeated dashes and empty strings.',
  'Profile the slow endpoint /reports/export and propose a fix for the N+1 query in build_rows.',
].map((content, i) => ({ sampleId: `data/train-00000-of-00001.parquet:7:${i}`, messages: [{ role: 'system', content: 'You are a coding agent.' }, { role: 'user', content }] }));

let engine: VllmManager;
let provider: JudgeProviderStandin;
const root = mkdtempSync(join(tmpdir(), 'albedo-artifacts-'));

beforeAll(async () => {
  engine = new VllmManager({ command: stubVllmCommand({ models: [CHALLENGER, KING] }), apiKey: 'engine-artifacts-key', pollIntervalMs: 50 });
  provider = await startJudgeProviderStandin({ apiKey: 'provider-artifacts-key' });
  await engine.start();
}, 60_000);
afterAll(async () => {
  await engine?.stop();
  await provider?.close();
  rmSync(root, { recursive: true, force: true });
});

/** Runs one eval into `dir` with the given verdict policy. */
async function evalIntoDir(dir: string, policy: 'margin' | 'margin+lcb' | 'lcb' = 'margin') {
  const judge = createJudge({ client: new OpenRouterClient({ apiKey: 'provider-artifacts-key', baseUrl: provider.baseUrl, backoffBaseMs: 0 }) });
  const events: StageProgress[] = [];
  const input: EvalInput = { challengerModelUri: CHALLENGER, kingModelUri: KING, blockHash: BLOCK, sampleCount: prompts.length, winMargin: 0.06 };
  const outcome = await runEval(input, {
    chat: engine.chat,
    judge,
    emit: async (e) => void events.push(e),
    signal: new AbortController().signal,
    prompts,
    maxTokens: 512,
    attemptKey: 'sub-1:EVAL:1',
    evalRunId: EVAL_RUN_ID,
    artifactDir: dir,
    verdictConfig: { policy, bootstrapReplicates: 2000 },
  });
  return { outcome, events };
}

const lines = (dir: string, file: string) =>
  readFileSync(join(dir, file), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

describe('eval run artifacts', () => {
  it('an eval writes all eight artifacts, verdict.json with their sha256, sizes and file:// URIs, and the verdict event carries them', async () => {
    const dir = join(root, 'run-1');
    const { outcome, events } = await evalIntoDir(dir, 'margin+lcb');
    expect(outcome.status).toBe('succeeded');
    if (outcome.status !== 'succeeded') return;
    expect(readdirSync(dir).sort()).toEqual(Object.values(ARTIFACT_FILES).sort());

    const verdict = JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.verdict), 'utf8'));
    expect(verdict).toMatchObject({ type: 'verdict', state: 'succeeded', eval_run_id: EVAL_RUN_ID, sample_seed: BLOCK, win_policy: 'margin+lcb', total_turns: 6, required_win_margin: 0.06 });
    expect(verdict.verdict_record).toMatchObject({ policy: 'margin+lcb', bootstrapSeed: `${BLOCK}:${EVAL_RUN_ID}:bootstrap`, bootstrapReplicates: 2000 });
    expect(verdict.win_lcb).toBe(verdict.verdict_record.winLcb);
    expect(verdict.verdict_record.scoringInputsHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const [name, meta] of Object.entries(verdict.artifact_metadata) as [string, { uri: string; sha256: string; size_bytes: number }][]) {
      const bytes = readFileSync(fileURLToPath(meta.uri));
      expect(meta.sha256, name).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      expect(meta.size_bytes).toBe(bytes.byteLength);
      expect(verdict.artifacts[name]).toBe(meta.uri);
    }
    expect(verdict.artifacts.verdict).toMatch(/^file:\/\/.*verdict\.json$/);

    // The result and the verdict event carry what eval_runs needs, and everything the hooks already read.
    expect(outcome.result).toMatchObject({ winPolicy: 'margin+lcb', winLcb: verdict.win_lcb, scoringInputsHash: verdict.verdict_record.scoringInputsHash, totalTurns: 6 });
    for (const key of ['scoreChallenger', 'scoreKing', 'winMargin', 'challengerWon', 'scoredSampleCount', 'judgeCount', 'sampleCount']) expect(outcome.result).toHaveProperty(key);
    const event = events.at(-1);
    expect(event?.type).toBe('verdict');
    expect(event?.data).toMatchObject({ winLcb: verdict.win_lcb, winPolicy: 'margin+lcb', artifacts: verdict.artifacts });

    // Sorted-key compact JSONL, one object per line; progress has every event before the verdict, 1-based.
    const progress = lines(dir, ARTIFACT_FILES.progress).map((l) => JSON.parse(l));
    expect(progress.map((p) => p.sequence)).toEqual(progress.map((_, i) => i + 1));
    expect(progress.map((p) => p.type)).toEqual(events.slice(0, -1).map((e) => e.type));
    for (const file of [ARTIFACT_FILES.progress, ARTIFACT_FILES.scoring_results, ARTIFACT_FILES.judge_results, ARTIFACT_FILES.generated_samples, ARTIFACT_FILES.transcript]) {
      for (const line of lines(dir, file)) {
        const keys = Object.keys(JSON.parse(line));
        expect(keys).toEqual([...keys].sort());
        expect(line).not.toContain('\n');
      }
    }
    expect(lines(dir, ARTIFACT_FILES.generated_samples)).toHaveLength(6);
    expect(lines(dir, ARTIFACT_FILES.scoring_results)).toHaveLength(6);
    // One row per judge result of every sample.
    const perSample = lines(dir, ARTIFACT_FILES.scoring_results).map((l) => JSON.parse(l).judge_results.length as number);
    expect(lines(dir, ARTIFACT_FILES.judge_results)).toHaveLength(perSample.reduce((a, b) => a + b, 0));
    expect(perSample[0]).toBeGreaterThanOrEqual(3);
    expect(readFileSync(join(dir, ARTIFACT_FILES.request), 'utf8')).toMatch(/^\{\n {2}"attemptKey": "sub-1:EVAL:1",/);
    expect(readFileSync(join(dir, ARTIFACT_FILES.remote_logs), 'utf8')).toContain(`eval_run_id=${EVAL_RUN_ID}\nstate=succeeded\n`);

    expect(await replayArtifactDir(dir)).toEqual({ match: true });
  }, 60_000);

  it('the replay finds a tampered judge score, a tampered judge-results row and a reformatted file', async () => {
    const dir = join(root, 'run-2');
    const { outcome } = await evalIntoDir(dir);
    expect(outcome.status).toBe('succeeded');
    const scoringPath = join(dir, ARTIFACT_FILES.scoring_results);
    const original = readFileSync(scoringPath, 'utf8');

    // One metric score of one judge in scoring-results.jsonl.
    const rows = original.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const judged = rows[0].judge_results[0];
    judged.metric_scores.correctness = judged.metric_scores.correctness === 1 ? 0 : 1;
    writeFileSync(scoringPath, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const tampered = await replayArtifactDir(dir);
    expect(tampered.match).toBe(false);
    expect(tampered.firstDifference?.field).toMatch(/^(score_challenger|score_breakdown\.by_judge\.)/);
    writeFileSync(scoringPath, original);
    expect(await replayArtifactDir(dir)).toEqual({ match: true });

    // One row of judge-results.jsonl.
    const judgePath = join(dir, ARTIFACT_FILES.judge_results);
    const judgeOriginal = readFileSync(judgePath, 'utf8');
    const judgeRows = judgeOriginal.split('\n').filter(Boolean);
    const row = JSON.parse(judgeRows[4] as string);
    row.metric_scores.progress = row.metric_scores.progress === 0 ? 0.5 : 0;
    judgeRows[4] = JSON.stringify(row);
    writeFileSync(judgePath, judgeRows.join('\n') + '\n');
    expect(await replayArtifactDir(dir)).toMatchObject({ match: false, firstDifference: { field: 'judge_results[4].metric_scores' } });
    writeFileSync(judgePath, judgeOriginal);

    // Same content, different bytes: only the sha256 catches it.
    writeFileSync(scoringPath, original.replace(/,"/g, ', "'));
    expect((await replayArtifactDir(dir)).firstDifference?.field).toBe('artifact_metadata.scoring_results.sha256');
  }, 60_000);
});

describe('verdict configuration of the eval host', () => {
  it('reads the policy and bootstrap settings from the environment and rejects bad values', async () => {
    const { verdictConfigFromEnv, scoringIdentity } = await import('./executors.ts');
    expect(verdictConfigFromEnv({})).toEqual({});
    expect(verdictConfigFromEnv({ ALBEDO_WIN_POLICY: 'margin+lcb', ALBEDO_WIN_ALPHA: '0.1', ALBEDO_WIN_DELTA0: '0.01', ALBEDO_WIN_BOOTSTRAP_B: '2000' })).toEqual({
      policy: 'margin+lcb',
      alpha: 0.1,
      delta0: 0.01,
      bootstrapReplicates: 2000,
    });
    expect(() => verdictConfigFromEnv({ ALBEDO_WIN_POLICY: 'coin' })).toThrow(/ALBEDO_WIN_POLICY must be one of margin, margin\+lcb, lcb/);
    expect(() => verdictConfigFromEnv({ ALBEDO_WIN_ALPHA: 'x' })).toThrow(/ALBEDO_WIN_ALPHA must be a number/);
    expect(scoringIdentity(CHALLENGER)).toBe(CHALLENGER);
    expect(scoringIdentity('org/plain-1')).toBe('org/plain-1@unpinned');
  });
});
