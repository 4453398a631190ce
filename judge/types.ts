/**
 * Shared judge types: what the EVAL executor hands to the judge and what it gets back. Kept free of
 * transport details so the executor can talk to an in-process judge or to one behind the score bridge.
 */
import type { StageFault } from '../core/faults.ts';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** The 5 pairwise metrics of duel.md §9.2, in the fixed order used for aggregation. */
export const METRIC_KEYS = ['correctness', 'grounding', 'progress', 'protocol', 'efficiency'] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

/** One duel sample: the conversation (rendered as text) and both replies. */
export interface JudgeDuelSample {
  readonly sampleId: string;
  readonly prompt: string;
  readonly kingAnswer: string;
  readonly challengerAnswer: string;
  /** 0-based index in the full sample list (drives split-half counterbalancing); default: position in `samples`. */
  readonly sampleIndex?: number;
}

export interface JudgeDuelRequest {
  /** Idempotency/trace key of the EVAL attempt; only used for logging and records. */
  readonly attemptKey?: string;
  readonly samples: readonly JudgeDuelSample[];
  /** Length of the full sample list including unjudgeable pairs; default `samples.length`. */
  readonly totalSampleCount?: number;
  readonly signal?: AbortSignal;
}

/** Which side is shown as MODEL 1 / MODEL 2 in one judgement. */
export type JudgeOrder = readonly ['previous_king', 'challenger'] | readonly ['challenger', 'previous_king'];

/** One judge's verdict on one sample in one order (duel.md §9.2 record fields). */
export interface JudgeResult {
  readonly judgeModel: string;
  /** Model id the provider says it served (may differ from the requested id). */
  readonly servedModel: string | null;
  readonly provider: string | null;
  readonly order: JudgeOrder;
  /** Challenger's share per metric: 1 won, 0.5 draw, 0 lost (0 when unparsable). */
  readonly metricScores: Readonly<Record<MetricKey, number>>;
  readonly judgeMean: number;
  readonly parseOk: boolean;
  readonly rawVerdict: string;
  readonly error: string | null;
}

export interface JudgeSampleRecord {
  readonly sampleId: string;
  readonly sampleIndex: number;
  /** Presentation order (duel.md §9.2 record `order`); under `both-orders` the first of the two orders. Always set by createJudge. */
  readonly order?: JudgeOrder;
  readonly judgeResults: readonly JudgeResult[];
  /** `judge_mean` of every parse_ok judge result, in result order (duel.md §9.2 `judge_scores`). */
  readonly judgeScores?: readonly number[];
  /** Mean of the parse_ok judge means, or null when the sample is not fully scored. */
  readonly sampleScore: number | null;
  readonly scored: boolean;
}

export interface JudgeDuelResult {
  readonly scoreChallenger: number;
  /** Zero-sum: exactly `1 − scoreChallenger`. */
  readonly scoreKing: number;
  readonly sampleCount: number;
  readonly scoredSampleCount: number;
  /** scoredSampleCount / sampleCount. */
  readonly validFraction: number;
  readonly judgeCount: number;
  readonly judgeErrors: number;
  readonly byJudge: Readonly<Record<string, number>>;
  readonly byMetric: Readonly<Record<MetricKey, number>>;
  /** Requested judge model id → model id the provider reported serving. */
  readonly servedModels: Readonly<Record<string, string>>;
  readonly records: readonly JudgeSampleRecord[];
}

export interface JudgeGateway {
  judgeDuel(req: JudgeDuelRequest): Promise<JudgeDuelResult>;
}

/** Typed failure of the judge path; the fault is always PROVIDER_FAULT (never charged to a miner). */
export class JudgeFault extends Error {
  override readonly name = 'JudgeFault';
  /** duel.md §9.3 `judge_errors` when the failure is an aggregate one (too few valid samples, scorer exception). */
  readonly judgeErrors: number | undefined;
  constructor(
    readonly fault: StageFault,
    options?: { cause?: unknown; judgeErrors?: number },
  ) {
    super(fault.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.judgeErrors = options?.judgeErrors;
  }
}
