/**
 * The contract between stage executors and an inference engine. Executors only see `ChatFn`, so the
 * same code runs against vLLM, the local stand-in, or anything OpenAI-compatible.
 */
import type { StageFault } from '../core/faults.ts';
import type { ChatMessage } from '../judge/types.ts';

export type { ChatMessage } from '../judge/types.ts';

export interface GenerationParams {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly seed?: number;
}

/** One chat completion; resolves with the reply text or rejects (ideally with an {@link EngineFault}). */
export type ChatFn = (model: string, messages: ChatMessage[], params: GenerationParams, signal: AbortSignal) => Promise<string>;

/** `<|im_end|>` of the genesis tokenizer: the stop token of every eval completion (duel.md §4.3). */
export const EVAL_STOP_TOKEN_IDS: readonly number[] = [248046];
/** duel.md §4.3 canonical sampling (`generation_config.json`). @default 0.95 */
export const EVAL_TOP_P = 0.95;
/** duel.md §4.3 canonical sampling. @default 20 */
export const EVAL_TOP_K = 20;

/** Sampling of a raw-prompt completion: the chat params plus the §4.3 extras. */
export interface CompletionParams extends GenerationParams {
  /** @default engine default (unset in the request) */
  readonly topP?: number;
  /** @default engine default (unset in the request) */
  readonly topK?: number;
  /** @default none */
  readonly stopTokenIds?: readonly number[];
}

/**
 * One raw-prompt completion (`POST /v1/completions`, duel.md §4.3): the prompt is already rendered with
 * the pinned chat template, so the engine's own (miner-supplied) template never shapes it.
 */
export type CompletionFn = (model: string, prompt: string, params: CompletionParams, signal: AbortSignal) => Promise<string>;

/**
 * An engine-side failure (boot, timeout, transport, HTTP error). Always INFRA: the engine is our
 * machinery, so its failures are never charged to a miner.
 */
export class EngineFault extends Error {
  override readonly name = 'EngineFault';
  constructor(
    readonly fault: StageFault,
    /** HTTP status when the engine answered with an error status. */
    readonly httpStatus: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(fault.message, options);
  }
}
