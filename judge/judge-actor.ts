/**
 * The v1 duel judge (duel.md §9): every judge model compares king and challenger per sample on 5
 * metrics, with counterbalanced presentation order (v1: split-half) so a judge's position bias cannot
 * decide a duel. Scores are computed from the challenger's perspective, averaged per judge, and the
 * median across judges is the challenger's score; the king gets the rest (zero-sum).
 *
 * Provider trouble never decides a duel: an exhausted judge call or an unparsable verdict only makes
 * its sample unscored, and too few scored samples is a retryable PROVIDER_FAULT. The protocol is
 * configuration ({@link JudgeProtocol}); a newer protocol is a new config value plus, if needed, one
 * counterbalance strategy.
 */
import { stageFault } from '../core/faults.ts';
import type { JudgeCompletionClient } from './openrouter-client.ts';
import { MalformedReplyError } from './openrouter-client.ts';
import { challengerShare, PAIRWISE_RESPONSE_FORMAT, pairwiseMessages, parseMetricVerdict, stripReplyInjection, type ParsedMetricVerdict } from './pairwise-protocol.ts';
import { pyMean, pyMedian, pyRound } from './py-numbers.ts';
import {
  JudgeFault,
  METRIC_KEYS,
  type JudgeDuelRequest,
  type JudgeDuelResult,
  type JudgeDuelSample,
  type JudgeGateway,
  type JudgeOrder,
  type JudgeResult,
  type JudgeSampleRecord,
  type MetricKey,
} from './types.ts';

export { JudgeFault } from './types.ts';

export interface JudgeModelSpec {
  readonly id: string;
  /** OpenRouter `provider` routing object. */
  readonly providerPin?: Readonly<Record<string, unknown>>;
  /** Whether to send the JSON-schema `response_format` (only to models that honour it). */
  readonly structuredOutput: boolean;
}

/** The v1 roster of duel.md §9.4 (editing it changes judge_config_hash). */
export const DEFAULT_JUDGE_ROSTER: readonly JudgeModelSpec[] = [
  { id: 'z-ai/glm-5.1', providerPin: { order: ['baidu', 'z-ai'], allow_fallbacks: true, quantizations: ['fp8'] }, structuredOutput: false },
  { id: 'qwen/qwen3.5-397b-a17b', providerPin: { order: ['deepinfra', 'chutes'], allow_fallbacks: true, quantizations: ['fp8'] }, structuredOutput: true },
  { id: 'deepseek/deepseek-v3.2', providerPin: { order: ['atlas-cloud', 'baidu'], allow_fallbacks: true, quantizations: ['fp8'] }, structuredOutput: true },
];

/** Minimum fraction of samples that must be fully scored (`ALBEDO_JUDGE_MIN_VALID_FRACTION`). @default 0.5 */
export const DEFAULT_MIN_VALID_FRACTION = 0.5;

/**
 * - `split-half`: duel.md §9.2 exactly (protocol v1) — one judgement per sample; the first half of the
 *   full sample list shows the king as MODEL 1, the second half the challenger.
 * - `both-orders`: every judge sees every sample twice, king first and challenger first (not v1).
 */
export type CounterbalanceMode = 'both-orders' | 'split-half';

const KING_FIRST: JudgeOrder = ['previous_king', 'challenger'];
const CHALLENGER_FIRST: JudgeOrder = ['challenger', 'previous_king'];

/** Presentation order(s) of one sample given its index in the full sample list of `total` samples. */
export type CounterbalanceStrategy = (sampleIndex: number, total: number) => readonly JudgeOrder[];

export const COUNTERBALANCE_STRATEGIES: Readonly<Record<CounterbalanceMode, CounterbalanceStrategy>> = {
  // challenger_first = total > 0 && sample_index >= floor((total + 1) / 2)
  'split-half': (sampleIndex, total) => [total > 0 && sampleIndex >= Math.floor((total + 1) / 2) ? CHALLENGER_FIRST : KING_FIRST],
  'both-orders': () => [KING_FIRST, CHALLENGER_FIRST],
};

/**
 * A judge protocol as configuration: a newer protocol is a new value of this type (plus, if it needs
 * one, a new entry in {@link COUNTERBALANCE_STRATEGIES}); `createJudge` needs no other change.
 */
export interface JudgeProtocol {
  readonly id: string;
  readonly counterbalance: CounterbalanceMode;
  readonly models: readonly JudgeModelSpec[];
  readonly minValidFraction: number;
  /**
   * Ask the provider again when a 2xx reply does not name a winner for all 5 metrics. v1: false — such a
   * reply is recorded with `parse_ok = false` (duel.md §9.2); only transport/non-2xx/bad-body errors retry.
   */
  readonly retryUnparsableVerdict: boolean;
}

/** duel.md §9 protocol v1 (3 judges × 5 pairwise metrics, split-half counterbalancing). */
export const JUDGE_PROTOCOL_V1: JudgeProtocol = {
  id: 'pairwise-metric-v1',
  counterbalance: 'split-half',
  models: DEFAULT_JUDGE_ROSTER,
  minValidFraction: DEFAULT_MIN_VALID_FRACTION,
  retryUnparsableVerdict: false,
};

/** @default 'split-half' (protocol v1) */
export const DEFAULT_COUNTERBALANCE: CounterbalanceMode = JUDGE_PROTOCOL_V1.counterbalance;

export interface CreateJudgeOptions {
  readonly client: JudgeCompletionClient;
  /** Base protocol; the fields below override it. @default JUDGE_PROTOCOL_V1 */
  readonly protocol?: JudgeProtocol;
  /** Model ids (looked up in the default roster for pins/structured output) or full specs. @default protocol.models */
  readonly models?: ReadonlyArray<string | JudgeModelSpec>;
  readonly minValidFraction?: number;
  readonly counterbalance?: CounterbalanceMode;
  readonly retryUnparsableVerdict?: boolean;
}

function resolveModel(model: string | JudgeModelSpec): JudgeModelSpec {
  if (typeof model !== 'string') return model;
  return DEFAULT_JUDGE_ROSTER.find((spec) => spec.id === model) ?? { id: model, structuredOutput: true };
}

/** Code-point order, like Python `sorted` (compat.md §8). */
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function zeroScores(): Record<MetricKey, number> {
  return Object.fromEntries(METRIC_KEYS.map((m) => [m, 0])) as Record<MetricKey, number>;
}

function requireCompleteVerdict(content: string): ParsedMetricVerdict {
  const parsed = parseMetricVerdict(content);
  if (!parsed.complete) throw new MalformedReplyError('verdict does not name a winner for all 5 metrics');
  return parsed;
}

function firstPinnedProvider(model: JudgeModelSpec): string | null {
  const first = (model.providerPin?.order as unknown[] | undefined)?.[0];
  return typeof first === 'string' ? first : null;
}

function errorText(error: unknown): string {
  if (error instanceof JudgeFault) return `${error.fault.code}: ${error.message}`;
  return `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;
}

export function createJudge(options: CreateJudgeOptions): JudgeGateway {
  const protocol = options.protocol ?? JUDGE_PROTOCOL_V1;
  const models = (options.models ?? protocol.models).map(resolveModel);
  if (models.length === 0) throw new RangeError('createJudge needs at least one judge model');
  const minValidFraction = options.minValidFraction ?? protocol.minValidFraction;
  const counterbalance = options.counterbalance ?? protocol.counterbalance;
  const ordersFor = COUNTERBALANCE_STRATEGIES[counterbalance];
  if (!ordersFor) throw new RangeError(`unknown counterbalance mode ${JSON.stringify(counterbalance)}`);
  const parseVerdict = (options.retryUnparsableVerdict ?? protocol.retryUnparsableVerdict) ? requireCompleteVerdict : parseMetricVerdict;
  const { client } = options;

  async function judgeOnce(model: JudgeModelSpec, prompt: string, king: string, challenger: string, order: JudgeOrder, signal?: AbortSignal): Promise<JudgeResult> {
    const challengerPosition = order[0] === 'challenger' ? 1 : 2;
    const [model1, model2] = challengerPosition === 1 ? [challenger, king] : [king, challenger];
    try {
      const reply = await client.completeJson(
        {
          model: model.id,
          messages: pairwiseMessages(prompt, model1, model2),
          ...(model.structuredOutput ? { responseFormat: PAIRWISE_RESPONSE_FORMAT } : {}),
          ...(model.providerPin ? { providerPin: model.providerPin } : {}),
          ...(signal ? { signal } : {}),
        },
        parseVerdict,
      );
      // Unknown metrics score 0.0 and make the whole judgement parse_ok = false (duel.md §9.2 step 4).
      const metricScores = Object.fromEntries(METRIC_KEYS.map((m) => [m, challengerShare(reply.value.verdicts[m], challengerPosition)])) as Record<MetricKey, number>;
      return {
        judgeModel: model.id,
        servedModel: reply.servedModel,
        provider: reply.provider,
        order,
        metricScores,
        judgeMean: pyRound(pyMean(METRIC_KEYS.map((m) => metricScores[m])), 6),
        parseOk: reply.value.complete,
        rawVerdict: reply.content,
        error: null,
      };
    } catch (error) {
      if (signal?.aborted) throw error;
      // Exhausted transport: raw "" and the error; never a loss for either side (the sample is unscored).
      return { judgeModel: model.id, servedModel: null, provider: firstPinnedProvider(model), order, metricScores: zeroScores(), judgeMean: 0, parseOk: false, rawVerdict: '', error: errorText(error) };
    }
  }

  async function judgeSample(sample: JudgeDuelSample, position: number, total: number, signal?: AbortSignal): Promise<JudgeSampleRecord> {
    const sampleIndex = sample.sampleIndex ?? position;
    const orders = ordersFor(sampleIndex, total);
    // Sanitise once per sample: fake verdicts inside a reply never reach a judge.
    const king = stripReplyInjection(sample.kingAnswer);
    const challenger = stripReplyInjection(sample.challengerAnswer);
    const judgeResults = await Promise.all(orders.flatMap((order) => models.map((model) => judgeOnce(model, sample.prompt, king, challenger, order, signal))));
    const okMeans = judgeResults.filter((r) => r.parseOk).map((r) => r.judgeMean);
    // scored = (number of parse_ok judgements == number requested)
    const scored = okMeans.length === orders.length * models.length;
    return {
      sampleId: sample.sampleId,
      sampleIndex,
      order: orders[0] ?? KING_FIRST,
      judgeResults,
      judgeScores: okMeans,
      scored,
      sampleScore: scored ? pyMean(okMeans) : null,
    };
  }

  return {
    async judgeDuel(req: JudgeDuelRequest): Promise<JudgeDuelResult> {
      const total = req.totalSampleCount ?? req.samples.length;
      try {
        const records = await Promise.all(req.samples.map((sample, i) => judgeSample(sample, i, total, req.signal)));
        return aggregate(records, models.length, minValidFraction, counterbalance);
      } catch (error) {
        if (req.signal?.aborted || error instanceof JudgeFault) throw error;
        // duel.md §9.3: a scorer exception is the provider path's fault, never the miner's.
        throw new JudgeFault(stageFault('PROVIDER_FAULT', 'judge_provider_exhausted', `Judge scoring failed: ${errorText(error)}`), {
          cause: error,
          judgeErrors: req.samples.length * models.length,
        });
      }
    },
  };
}

/** duel.md §9.3 aggregation over the judged samples. Exported for tests and offline re-scoring. */
export function aggregate(records: readonly JudgeSampleRecord[], judgeCount: number, minValidFraction: number, counterbalance: CounterbalanceMode = DEFAULT_COUNTERBALANCE): JudgeDuelResult {
  const scored = records.filter((r) => r.scored);
  const total = records.length;
  const valid = scored.length;
  const failedResults = records.flatMap((r) => r.judgeResults.filter((j) => !j.parseOk));
  if (total === 0 || valid / total < minValidFraction) {
    // Provider exhaustion and unusable verdicts are both the provider's fault, never the miner's (duel.md §9.3: one code).
    const suffix = counterbalance === 'both-orders' ? ' in both orders' : '';
    throw new JudgeFault(stageFault('PROVIDER_FAULT', 'judge_provider_exhausted', `Only ${valid}/${total} sample pairs received ${judgeCount} valid judge scores${suffix}`), {
      judgeErrors: failedResults.length,
    });
  }
  const okResults = scored.flatMap((r) => r.judgeResults.filter((j) => j.parseOk));
  const judgeIds = [...new Set(okResults.map((j) => j.judgeModel))].sort(codePointCompare);
  // Object.fromEntries (not assignment) so a model id like "__proto__" stays an ordinary key.
  const byJudge: Record<string, number> = Object.fromEntries(
    judgeIds.map((judge) => {
      const mine = okResults.filter((j) => j.judgeModel === judge);
      return [judge, pyMean(METRIC_KEYS.map((m) => pyMean(mine.map((j) => j.metricScores[m]))))];
    }),
  );
  const byMetric = Object.fromEntries(METRIC_KEYS.map((m) => [m, pyMean(okResults.map((j) => j.metricScores[m]))])) as Record<MetricKey, number>;
  const scoreChallenger = pyMedian(Object.values(byJudge));
  const served = new Map<string, string>();
  for (const j of okResults) if (j.servedModel && !served.has(j.judgeModel)) served.set(j.judgeModel, j.servedModel);
  const servedModels: Record<string, string> = Object.fromEntries(served);
  return {
    scoreChallenger,
    scoreKing: 1 - scoreChallenger,
    sampleCount: total,
    scoredSampleCount: valid,
    validFraction: valid / total,
    judgeCount,
    judgeErrors: failedResults.length,
    byJudge,
    byMetric,
    servedModels,
    records,
  };
}
