import type { StageFault } from './faults.ts';

/**
 * Terminal outcome of one stage attempt, identical whether the stage ran in-process or on a
 * remote worker. `result` is a small JSON summary; large outputs live in artifacts.
 */
export type StageOutcome =
  | { readonly status: 'succeeded'; readonly result: Readonly<Record<string, unknown>> }
  | { readonly status: 'failed'; readonly fault: StageFault };

/** A progress event a stage emits while running (download bytes, generated samples, …). */
export interface StageProgress {
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Input of the PRE_EVAL stage sent to a GPU node. */
export interface PreEvalInput {
  readonly modelUri: string;
  /** Sampling seed: hash of the reveal block (spec/pipeline.md §T10). */
  readonly blockHash: string;
}

/** Input of the EVAL stage sent to a GPU node. */
export interface EvalInput {
  readonly challengerModelUri: string;
  readonly kingModelUri: string;
  readonly blockHash: string;
  readonly sampleCount: number;
  readonly winMargin: number;
}

/** Result summary of a finished EVAL stage (stored in eval_runs). */
export interface EvalVerdict {
  readonly challengerWon: boolean;
  readonly scoreChallenger: number;
  readonly scoreKing: number;
  readonly winMargin: number;
  readonly sampleCount: number;
  readonly scoredSampleCount: number;
  readonly judgeCount: number;
  readonly validFraction: number;
}
