/**
 * Eval run artifacts (duel.md §11): their file names, row formats and sorted-key JSON, and the
 * offline replay that recomputes a run's aggregation (duel.md §9.3, via the judge actor's own
 * `aggregate`) and its verdict (`decideVerdict` with the parameters recorded in verdict.json) and
 * compares them field by field with what the host recorded.
 *
 * The writer (gpu-node/eval-artifacts.ts) and the reader (this file, `albedo verify`) share the row
 * converters below, so the format has exactly one definition.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregate, type CounterbalanceMode, DEFAULT_COUNTERBALANCE } from './judge-actor.ts';
import { pyMean } from './py-numbers.ts';
import { scoredSamplesFromRecords, scoringInputsHash, type ScoringInputs } from './scoring-hash.ts';
import { METRIC_KEYS, type JudgeDuelResult, type JudgeOrder, type JudgeResult, type JudgeSampleRecord, type MetricKey } from './types.ts';
import { decideVerdict, type VerdictRecord, WIN_POLICIES, type WinPolicy } from './verdict.ts';

/** Artifact name → file, in the order they are written (verdict.json last: it holds the others' URIs). */
export const ARTIFACT_FILES = {
  request: 'request.json',
  progress: 'progress.jsonl',
  generated_samples: 'generated-samples.jsonl',
  transcript: 'duel-transcript.jsonl',
  scoring_results: 'scoring-results.jsonl',
  judge_results: 'judge-results.jsonl',
  remote_logs: 'remote-logs.txt',
  verdict: 'verdict.json',
} as const;
export type ArtifactName = keyof typeof ARTIFACT_FILES;

/** `artifacts.artifact_type` of each artifact (persistence/migrations/001_pipeline.sql). */
export const ARTIFACT_TYPES: Readonly<Record<ArtifactName, string>> = {
  request: 'EVAL_REQUEST',
  progress: 'REMOTE_PROGRESS',
  generated_samples: 'GENERATED_SAMPLES',
  transcript: 'EVAL_TRANSCRIPT',
  scoring_results: 'SCORING_RESULTS',
  judge_results: 'JUDGE_RESULTS',
  remote_logs: 'REMOTE_LOGS',
  verdict: 'EVAL_VERDICT',
};

export const ARTIFACT_CONTENT_TYPES: Readonly<Record<ArtifactName, string>> = {
  request: 'application/json',
  progress: 'application/x-ndjson',
  generated_samples: 'application/x-ndjson',
  transcript: 'application/x-ndjson',
  scoring_results: 'application/x-ndjson',
  judge_results: 'application/x-ndjson',
  remote_logs: 'text/plain; charset=utf-8',
  verdict: 'application/json',
};

/** Upper bound of one artifact file accepted by the replay (and by `albedo verify` downloads). @default 256 MiB */
export const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

/** Malformed, missing or inconsistent artifacts: the replay cannot even start. */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

// ── sorted-key JSON ─────────────────────────────────────────────────────────────────────────────

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return Object.fromEntries(keys.map((k) => [k, sortKeysDeep((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** JSON with every object's keys sorted (UTF-16 order), compact or indented. */
export function sortedJson(value: unknown, indent?: number): string {
  return JSON.stringify(sortKeysDeep(value), null, indent);
}

/** One compact sorted-key object per line, each line ending in `\n`. */
export function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => `${sortedJson(r)}\n`).join('');
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ── row formats ─────────────────────────────────────────────────────────────────────────────────

export function judgeResultRow(j: JudgeResult): Record<string, unknown> {
  return {
    judge_model: j.judgeModel,
    served_model: j.servedModel,
    provider: j.provider,
    order: [...j.order],
    metric_scores: { ...j.metricScores },
    judge_mean: j.judgeMean,
    parse_ok: j.parseOk,
    raw_verdict: j.rawVerdict,
    error: j.error,
  };
}

/** A scoring record (duel.md §9.2) as a `scoring-results.jsonl` row. */
export function scoringRecordRow(evalRunId: string, r: JudgeSampleRecord): Record<string, unknown> {
  return {
    eval_run_id: evalRunId,
    sample_id: r.sampleId,
    sample_index: r.sampleIndex,
    order: [...(r.order ?? r.judgeResults[0]?.order ?? [])],
    judge_results: r.judgeResults.map(judgeResultRow),
    judge_scores: r.judgeResults.filter((j) => j.parseOk).map((j) => j.judgeMean),
    sample_score: r.sampleScore,
    scored: r.scored,
  };
}

/** One `judge-results.jsonl` row per judge result: `{eval_run_id, sample_id, order, sample_score, …judge result}`. */
export function judgeResultRows(evalRunId: string, records: readonly JudgeSampleRecord[]): Record<string, unknown>[] {
  return records.flatMap((r) => r.judgeResults.map((j) => ({ ...judgeResultRow(j), eval_run_id: evalRunId, sample_id: r.sampleId, sample_score: r.sampleScore })));
}

type Obj = Record<string, unknown>;

function bad(where: string, what: string): never {
  throw new ReplayError(`${where}: ${what}`);
}
function obj(v: unknown, where: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(where, 'expected a JSON object');
  return v as Obj;
}
function str(v: unknown, where: string): string {
  if (typeof v !== 'string') bad(where, 'expected a string');
  return v;
}
function strOrNull(v: unknown, where: string): string | null {
  return v === null ? null : str(v, where);
}
function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(where, 'expected a finite number');
  return v;
}
function numOrNull(v: unknown, where: string): number | null {
  return v === null ? null : num(v, where);
}
function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') bad(where, 'expected true or false');
  return v;
}
function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) bad(where, 'expected an array');
  return v;
}
function order(v: unknown, where: string): JudgeOrder {
  const a = arr(v, where);
  if (a.length === 2 && a[0] === 'previous_king' && a[1] === 'challenger') return ['previous_king', 'challenger'];
  if (a.length === 2 && a[0] === 'challenger' && a[1] === 'previous_king') return ['challenger', 'previous_king'];
  return bad(where, 'expected ["previous_king","challenger"] or ["challenger","previous_king"]');
}

export function parseJudgeResultRow(v: unknown, where: string): JudgeResult {
  const o = obj(v, where);
  const scores = obj(o.metric_scores, `${where}.metric_scores`);
  const metricScores = Object.fromEntries(METRIC_KEYS.map((m) => [m, num(scores[m], `${where}.metric_scores.${m}`)])) as Record<MetricKey, number>;
  return {
    judgeModel: str(o.judge_model, `${where}.judge_model`),
    servedModel: strOrNull(o.served_model, `${where}.served_model`),
    provider: strOrNull(o.provider, `${where}.provider`),
    order: order(o.order, `${where}.order`),
    metricScores,
    judgeMean: num(o.judge_mean, `${where}.judge_mean`),
    parseOk: bool(o.parse_ok, `${where}.parse_ok`),
    rawVerdict: str(o.raw_verdict, `${where}.raw_verdict`),
    error: strOrNull(o.error, `${where}.error`),
  };
}

export function parseScoringRecordRow(v: unknown, where: string): JudgeSampleRecord {
  const o = obj(v, where);
  const index = num(o.sample_index, `${where}.sample_index`);
  if (!Number.isSafeInteger(index) || index < 0) bad(`${where}.sample_index`, 'expected a non-negative integer');
  const judgeResults = arr(o.judge_results, `${where}.judge_results`).map((j, i) => parseJudgeResultRow(j, `${where}.judge_results[${i}]`));
  return {
    sampleId: str(o.sample_id, `${where}.sample_id`),
    sampleIndex: index,
    ...(judgeResults.length > 0 ? { order: order(o.order, `${where}.order`) } : {}),
    judgeResults,
    ...(o.judge_scores === undefined ? {} : { judgeScores: arr(o.judge_scores, `${where}.judge_scores`).map((x, i) => num(x, `${where}.judge_scores[${i}]`)) }),
    sampleScore: numOrNull(o.sample_score, `${where}.sample_score`),
    scored: bool(o.scored, `${where}.scored`),
  };
}

function parseJsonText(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    return bad(where, `not valid JSON (${(error as Error).message})`);
  }
}

function parseJsonl(text: string, file: string): unknown[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line, i) => parseJsonText(line, `${file} line ${i + 1}`));
}

// ── replay ──────────────────────────────────────────────────────────────────────────────────────

export interface ReplayDifference {
  /** Path of the field in verdict.json terms, e.g. `score_challenger` or `verdict_record.winLcb`. */
  readonly field: string;
  readonly recorded: unknown;
  readonly recomputed: unknown;
}

export interface ReplayResult {
  readonly match: boolean;
  readonly firstDifference?: ReplayDifference;
}

/** Reads one artifact file's bytes by file name (a directory, a download, …). */
export type ArtifactReader = (file: string) => Promise<Uint8Array>;

/** Reads artifact files from a local directory, refusing files over {@link MAX_ARTIFACT_BYTES}. */
export function directoryReader(dir: string): ArtifactReader {
  return async (file) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, file));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ReplayError(code === 'ENOENT' ? `missing artifact ${file} in ${dir}` : `cannot read ${join(dir, file)}: ${(error as Error).message}`);
    }
    if (bytes.byteLength > MAX_ARTIFACT_BYTES) throw new ReplayError(`${file} is larger than ${MAX_ARTIFACT_BYTES} bytes`);
    return bytes;
  };
}

/** Values are equal when their sorted-key JSON is (numbers compare as float64, -0 as 0). */
function same(a: unknown, b: unknown): boolean {
  return sortedJson(a ?? null) === sortedJson(b ?? null);
}

/** The parsed verdict.json fields the replay needs. */
export interface RecordedVerdict {
  readonly raw: Obj;
  readonly evalRunId: string;
  readonly sampleSeed: string;
  readonly judgeCount: number;
  readonly verdictRecord: VerdictRecord;
  readonly scoringInputs: Omit<ScoringInputs, 'samples'>;
  readonly counterbalance: CounterbalanceMode;
  readonly artifactMetadata: Obj;
}

export function parseVerdictJson(bytes: Uint8Array): RecordedVerdict {
  const raw = obj(parseJsonText(Buffer.from(bytes).toString('utf8'), ARTIFACT_FILES.verdict), ARTIFACT_FILES.verdict);
  const where = ARTIFACT_FILES.verdict;
  if (raw.state !== 'succeeded') bad(`${where}.state`, `the run did not succeed (state ${JSON.stringify(raw.state)}): there is no verdict to replay`);
  if (raw.verdict_record === null || raw.verdict_record === undefined) bad(`${where}.verdict_record`, 'missing: the run recorded no verdict parameters to replay');
  const record = obj(raw.verdict_record, `${where}.verdict_record`);
  const policy = str(record.policy, `${where}.verdict_record.policy`);
  if (!(WIN_POLICIES as readonly string[]).includes(policy)) bad(`${where}.verdict_record.policy`, `unknown policy ${JSON.stringify(policy)}`);
  for (const key of ['requiredWinMargin', 'minValidFraction', 'alpha', 'bootstrapReplicates', 'configuredDelta0', 'aaWindow', 'totalTurns']) num(record[key], `${where}.verdict_record.${key}`);
  for (const [i, m] of arr(record.aaMargins, `${where}.verdict_record.aaMargins`).entries()) num(m, `${where}.verdict_record.aaMargins[${i}]`);
  str(record.scoringInputsHash, `${where}.verdict_record.scoringInputsHash`);
  const si = obj(raw.scoring_inputs, `${where}.scoring_inputs`);
  const protocolVersion = str(si.protocol_version, `${where}.scoring_inputs.protocol_version`);
  if (protocolVersion !== 'v1') bad(`${where}.scoring_inputs.protocol_version`, `only v1 runs can be replayed (got ${JSON.stringify(protocolVersion)})`);
  // A verdict without the field was written by a protocol-v1 host, whose default is split-half (duel.md §9.2).
  const counterbalance = raw.counterbalance === undefined ? DEFAULT_COUNTERBALANCE : str(raw.counterbalance, `${where}.counterbalance`);
  if (counterbalance !== 'both-orders' && counterbalance !== 'split-half') bad(`${where}.counterbalance`, `unknown mode ${JSON.stringify(counterbalance)}`);
  return {
    raw,
    evalRunId: str(raw.eval_run_id, `${where}.eval_run_id`),
    sampleSeed: str(raw.sample_seed, `${where}.sample_seed`),
    judgeCount: num(raw.judge_count, `${where}.judge_count`),
    verdictRecord: record as unknown as VerdictRecord,
    scoringInputs: {
      protocolVersion: 'v1',
      codeVersion: str(si.code_version, `${where}.scoring_inputs.code_version`),
      challenger: str(si.challenger, `${where}.scoring_inputs.challenger`),
      king: str(si.king, `${where}.scoring_inputs.king`),
      judgeModels: arr(si.judge_models, `${where}.scoring_inputs.judge_models`).map((m, i) => str(m, `${where}.scoring_inputs.judge_models[${i}]`)),
    },
    counterbalance,
    artifactMetadata: raw.artifact_metadata === undefined ? {} : obj(raw.artifact_metadata, `${where}.artifact_metadata`),
  };
}

/** Fields of the verdict event recomputed from an aggregation and a verdict record, in comparison order. */
function verdictFields(duel: JudgeDuelResult, record: VerdictRecord, totalSamples: number): [string, unknown][] {
  return [
    ['score_challenger', duel.scoreChallenger],
    ['score_king', duel.scoreKing],
    ['win_margin', duel.scoreChallenger - duel.scoreKing],
    ...Object.entries(duel.byJudge).map(([j, v]): [string, unknown] => [`score_breakdown.by_judge.${j}`, v]),
    ...Object.entries(duel.byMetric).map(([m, v]): [string, unknown] => [`score_breakdown.by_metric.${m}`, v]),
    ['scored_sample_count', duel.scoredSampleCount],
    ['valid_turns', duel.scoredSampleCount],
    ['total_turns', totalSamples],
    ['judge_errors', duel.judgeErrors],
    ...Object.entries(record).map(([k, v]): [string, unknown] => [`verdict_record.${k}`, v]),
    ['challenger_won', record.challengerWon],
    ['win_lcb', record.winLcb],
    ['win_policy', record.policy],
  ];
}

function lookup(raw: Obj, path: string): unknown {
  // Judge model ids contain '/' and '.', so by_judge keys are looked up whole after the prefix.
  for (const prefix of ['score_breakdown.by_judge.', 'score_breakdown.by_metric.', 'verdict_record.']) {
    if (path.startsWith(prefix)) {
      const [parent, child] = prefix === 'verdict_record.' ? ['verdict_record', undefined] : ['score_breakdown', prefix.split('.')[1]];
      let node = raw[parent as string] as Obj | undefined;
      if (child !== undefined) node = (node?.[child] as Obj | undefined) ?? undefined;
      return node?.[path.slice(prefix.length)];
    }
  }
  return raw[path];
}

/**
 * Recomputes aggregation and verdict from the artifacts and compares them with verdict.json. Throws
 * {@link ReplayError} when an artifact is missing or malformed (the verdict.json included).
 */
export async function replayArtifacts(read: ArtifactReader): Promise<ReplayResult> {
  const verdictBytes = await read(ARTIFACT_FILES.verdict);
  const recorded = parseVerdictJson(verdictBytes);
  const files = new Map<string, Uint8Array>();
  const load = async (name: ArtifactName) => {
    const bytes = await read(ARTIFACT_FILES[name]);
    files.set(name, bytes);
    return Buffer.from(bytes).toString('utf8');
  };
  const scoringRows = parseJsonl(await load('scoring_results'), ARTIFACT_FILES.scoring_results);
  const records = scoringRows.map((row, i) => parseScoringRecordRow(row, `${ARTIFACT_FILES.scoring_results} line ${i + 1}`));
  const judgeRows = parseJsonl(await load('judge_results'), ARTIFACT_FILES.judge_results);
  const generated = parseJsonl(await load('generated_samples'), ARTIFACT_FILES.generated_samples).map((row, i) => obj(row, `${ARTIFACT_FILES.generated_samples} line ${i + 1}`));
  const promptById = new Map<string, string>();
  for (const [i, row] of generated.entries()) {
    const at = `${ARTIFACT_FILES.generated_samples} line ${i + 1}`;
    promptById.set(str(row.sample_id, `${at}.sample_id`), str(row.prompt, `${at}.prompt`));
  }

  const { verdictRecord: rec } = recorded;
  let duel: JudgeDuelResult;
  let recomputed: VerdictRecord;
  try {
    duel = aggregate(records, recorded.judgeCount, rec.minValidFraction, recorded.counterbalance);
    const hash = scoringInputsHash({ ...recorded.scoringInputs, samples: scoredSamplesFromRecords(records, promptById) });
    const sampleScores = records.flatMap((r) => (r.scored && r.sampleScore !== null ? [r.sampleScore] : []));
    recomputed = decideVerdict(
      { evalRunId: recorded.evalRunId, sampleSeed: recorded.sampleSeed, scoreChallenger: duel.scoreChallenger, sampleScores, totalTurns: records.length, aaMargins: rec.aaMargins, scoringInputsHash: hash },
      {
        policy: rec.policy as WinPolicy,
        margin: rec.requiredWinMargin,
        minValidFraction: rec.minValidFraction,
        alpha: rec.alpha,
        bootstrapReplicates: rec.bootstrapReplicates,
        delta0: rec.configuredDelta0,
        aaWindow: rec.aaWindow,
      },
    );
  } catch (error) {
    // The recorded run succeeded; artifacts that no longer aggregate to a verdict are a mismatch.
    return { match: false, firstDifference: { field: 'state', recorded: recorded.raw.state, recomputed: `failed (${(error as Error).message})` } };
  }

  const difference = (field: string, was: unknown, now: unknown): ReplayResult | null => (same(was, now) ? null : { match: false, firstDifference: { field, recorded: was ?? null, recomputed: now ?? null } });

  // 1. The verdict and its aggregation, field by field.
  const recordedJudges = Object.keys(obj((recorded.raw.score_breakdown as Obj | undefined)?.by_judge ?? {}, 'score_breakdown.by_judge'));
  const d0 = difference('score_breakdown.by_judge (judges)', recordedJudges, Object.keys(duel.byJudge));
  for (const [field, value] of verdictFields(duel, recomputed, generated.length)) {
    const d = difference(field, lookup(recorded.raw, field), value);
    if (d) return d;
  }
  if (d0) return d0;

  // 2. Each record's derived values agree with its own judge results.
  for (const [i, r] of records.entries()) {
    const at = `scoring_results[${i}]`;
    for (const [j, res] of r.judgeResults.entries()) {
      if (!res.parseOk) continue;
      const d = difference(`${at}.judge_results[${j}].judge_mean`, res.judgeMean, pyMean(METRIC_KEYS.map((m) => res.metricScores[m])));
      if (d) return d;
    }
    if (r.judgeScores !== undefined) {
      const d = difference(`${at}.judge_scores`, r.judgeScores, r.judgeResults.filter((j) => j.parseOk).map((j) => j.judgeMean));
      if (d) return d;
    }
    const scored = r.judgeResults.length > 0 && r.judgeResults.every((j) => j.parseOk);
    const d1 = difference(`${at}.scored`, r.scored, scored);
    if (d1) return d1;
    const d2 = difference(`${at}.sample_score`, r.sampleScore, scored ? pyMean(r.judgeResults.map((j) => j.judgeMean)) : null);
    if (d2) return d2;
  }

  // 3. judge-results.jsonl is exactly the flattening of scoring-results.jsonl.
  const expectedJudgeRows = judgeResultRows(recorded.evalRunId, records);
  for (let i = 0; i < Math.max(judgeRows.length, expectedJudgeRows.length); i += 1) {
    const was = (judgeRows[i] ?? null) as Obj | null;
    const now = (expectedJudgeRows[i] ?? null) as Obj | null;
    if (was === null || now === null) return { match: false, firstDifference: { field: `judge_results[${i}]`, recorded: was, recomputed: now } };
    for (const key of new Set([...Object.keys(now), ...Object.keys(was)].sort())) {
      const d = difference(`judge_results[${i}].${key}`, was[key], now[key]);
      if (d) return d;
    }
  }

  // 4. Byte-level integrity of every file the replay read (a reformatted file changes nothing above).
  for (const [name, bytes] of files) {
    const meta = recorded.artifactMetadata[name] as Obj | undefined;
    if (meta === undefined) continue;
    const d = difference(`artifact_metadata.${name}.sha256`, meta.sha256, `sha256:${sha256Hex(bytes)}`) ?? difference(`artifact_metadata.${name}.size_bytes`, meta.size_bytes, bytes.byteLength);
    if (d) return d;
  }
  return { match: true };
}

/** {@link replayArtifacts} over a local artifact directory. */
export function replayArtifactDir(dir: string): Promise<ReplayResult> {
  return replayArtifacts(directoryReader(dir));
}
