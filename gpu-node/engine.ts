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
