import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeEvalArtifacts } from '../gpu-node/eval-artifacts.ts';
import { aggregate } from './judge-actor.ts';
import { ARTIFACT_FILES, judgeResultRows, parseScoringRecordRow, ReplayError, replayArtifactDir, scoringRecordRow, sortedJson } from './replay.ts';
import { scoredSamplesFromRecords, scoringInputsHash } from './scoring-hash.ts';
import { METRIC_KEYS, type JudgeOrder, type JudgeResult, type JudgeSampleRecord, type MetricKey } from './types.ts';
import { decideVerdict, verdictScoresFromDuel } from './verdict.ts';

const root = mkdtempSync(join(tmpdir(), 'albedo-replay-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const JUDGES = ['z-ai/glm-5.1', 'qwen/qwen3.5-397b-a17b', 'deepseek/deepseek-v3.2'];
const ORDER: JudgeOrder = ['previous_king', 'challenger'];

function judgeResult(judgeModel: string, scores: number[], parseOk = true): JudgeResult {
  const metricScores = Object.fromEntries(METRIC_KEYS.map((m, i) => [m, parseOk ? (scores[i] ?? 0) : 0])) as Record<MetricKey, number>;
  const judgeMean = parseOk ? metricScores.correctness / 5 + metricScores.grounding / 5 + metricScores.progress / 5 + metricScores.protocol / 5 + metricScores.efficiency / 5 : 0;
  return { judgeModel, servedModel: parseOk ? judgeModel : null, provider: 'p', order: ORDER, metricScores, judgeMean: Math.round(judgeMean * 10) / 10, parseOk, rawVerdict: parseOk ? '{"correctness":1}' : '', error: parseOk ? null : 'HTTP 500' };
}

/** 8 samples, the challenger mostly ahead; sample 5 lost one judge (unscored). */
function records(): JudgeSampleRecord[] {
  return Array.from({ length: 8 }, (_, i) => {
    const results = JUDGES.map((j, k) => judgeResult(j, [1, (i + k) % 2, 0.5, 1, i % 3 === 0 ? 0 : 1], !(i === 5 && k === 1)));
    const scored = results.every((r) => r.parseOk);
    const mean = scored ? results.reduce((a, r) => a + r.judgeMean, 0) / results.length : null;
    return { sampleId: `s:${i}:1`, sampleIndex: i, order: ORDER, judgeResults: results, scored, sampleScore: mean };
  });
}

async function writeRun(dir: string, recs: JudgeSampleRecord[], policy: 'margin' | 'lcb' = 'lcb') {
  const prompts = new Map(recs.map((r) => [r.sampleId, `prompt ${r.sampleId}`]));
  const duel = aggregate(recs, 3, 0.5);
  const scoringInputs = { protocolVersion: 'v1' as const, codeVersion: 'test', challenger: 'a/b@sha256:1', king: 'c/d@sha256:2', judgeModels: JUDGES };
  const hash = scoringInputsHash({ ...scoringInputs, samples: scoredSamplesFromRecords(recs, prompts) });
  const record = decideVerdict({ evalRunId: 'run-1', sampleSeed: '0xfeed', ...verdictScoresFromDuel(duel), aaMargins: [0.01, -0.02], scoringInputsHash: hash }, { policy, bootstrapReplicates: 500 });
  await writeEvalArtifacts({
    dir,
    evalRunId: 'run-1',
    request: { b: 1, a: 2 },
    events: [{ type: 'generation_started', data: { sampleCount: 8 } }],
    samples: recs.map((r) => ({ sampleId: r.sampleId, prompt: prompts.get(r.sampleId) ?? '', kingOutput: 'k', challengerOutput: 'c', kingError: null, chalError: null })),
    records: recs,
    logs: [['state', 'succeeded']],
    verdict: {
      type: 'verdict',
      eval_run_id: 'run-1',
      state: 'succeeded',
      sample_seed: '0xfeed',
      challenger_won: record.challengerWon,
      score_challenger: duel.scoreChallenger,
      score_king: duel.scoreKing,
      win_margin: record.winMargin,
      win_lcb: record.winLcb,
      win_policy: record.policy,
      judge_count: 3,
      valid_turns: duel.scoredSampleCount,
      total_turns: recs.length,
      scored_sample_count: duel.scoredSampleCount,
      judge_errors: duel.judgeErrors,
      score_breakdown: { by_judge: duel.byJudge, by_metric: duel.byMetric },
      scoring_inputs: { protocol_version: 'v1', code_version: 'test', challenger: scoringInputs.challenger, king: scoringInputs.king, judge_models: JUDGES },
      verdict_record: record,
    },
  });
  return record;
}

describe('artifact formats', () => {
  it('sortedJson sorts keys at every depth; rows round-trip', () => {
    expect(sortedJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
    expect(sortedJson({ b: 1, a: 2 }, 2)).toBe('{\n  "a": 2,\n  "b": 1\n}');
    for (const r of records()) expect(parseScoringRecordRow(JSON.parse(JSON.stringify(scoringRecordRow('run-1', r))), 'row')).toEqual({ ...r, judgeScores: r.judgeResults.filter((j) => j.parseOk).map((j) => j.judgeMean) });
    expect(judgeResultRows('run-1', records())).toHaveLength(24);
    expect(() => parseScoringRecordRow({ sample_id: 's', sample_index: -1, judge_results: [], sample_score: null, scored: false }, 'row')).toThrow(ReplayError);
  });
});

describe('replay', () => {
  it('recomputes aggregation and an lcb verdict exactly, including an unscored sample', async () => {
    const dir = join(root, 'ok');
    const record = await writeRun(dir, records());
    expect(record.validTurns).toBe(7);
    expect(await replayArtifactDir(dir)).toEqual({ match: true });
    expect(readFileSync(join(dir, ARTIFACT_FILES.request), 'utf8')).toBe('{\n  "a": 2,\n  "b": 1\n}\n');
  });

  it('reports the first differing field: a sample score feeds the bootstrap bound, a raw verdict the scoring hash', async () => {
    const dir = join(root, 'sample-score');
    await writeRun(dir, records());
    const file = join(dir, ARTIFACT_FILES.scoring_results);
    const original = readFileSync(file, 'utf8');
    const rows = original.trim().split('\n').map((l) => JSON.parse(l));
    rows[2].sample_score = 0;
    writeFileSync(file, rows.map((r) => sortedJson(r)).join('\n') + '\n');
    const r1 = await replayArtifactDir(dir);
    expect(r1.match).toBe(false);
    expect(r1.firstDifference?.field).toMatch(/^verdict_record\.(challengerWon|meanD|stdevD|winLcb)$/);

    rows[2].sample_score = JSON.parse(original.trim().split('\n')[2] as string).sample_score;
    rows[3].judge_results[0].raw_verdict = '{"correctness":2}';
    writeFileSync(file, rows.map((r) => sortedJson(r)).join('\n') + '\n');
    expect((await replayArtifactDir(dir)).firstDifference?.field).toBe('verdict_record.scoringInputsHash');
  });

  it('a corrupt or incomplete verdict.json, or a missing file, is a ReplayError', async () => {
    const dir = join(root, 'corrupt');
    await writeRun(dir, records(), 'margin');
    const verdictPath = join(dir, ARTIFACT_FILES.verdict);
    const verdict = JSON.parse(readFileSync(verdictPath, 'utf8'));
    writeFileSync(verdictPath, JSON.stringify({ ...verdict, verdict_record: null }));
    await expect(replayArtifactDir(dir)).rejects.toThrow(/verdict\.json\.verdict_record: missing/);
    writeFileSync(verdictPath, JSON.stringify({ ...verdict, state: 'failed' }));
    await expect(replayArtifactDir(dir)).rejects.toThrow(/did not succeed/);
    writeFileSync(verdictPath, '[1,');
    await expect(replayArtifactDir(dir)).rejects.toThrow(ReplayError);
    await expect(replayArtifactDir(join(root, 'absent'))).rejects.toThrow(/missing artifact verdict\.json/);
  });
});
