/**
 * A {@link ChatFn} over an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM or the stand-in),
 * and a {@link CompletionFn} over `/v1/completions`.
 * Failures are classified once, here, so executors never guess: timeout ⇒ `generation_timeout`,
 * connection problems ⇒ `generation_transport_error`, error status or bad body ⇒ `worker_error`,
 * caller abort ⇒ `run_cancelled` — all INFRA.
 */
import { stageFault } from '../core/faults.ts';
import { EngineFault, type ChatFn, type CompletionFn } from './engine.ts';
import { readBoundedBody } from '../core/io.ts';

/** Replies larger than this are rejected as malformed. @default 16 MiB */
export const DEFAULT_MAX_ENGINE_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface OpenAiChatOptions {
  /** Origin of the engine, or a getter (the engine may not be started when the ChatFn is built). */
  readonly baseUrl: string | (() => string);
  readonly apiKey?: string;
  /** Per-request timeout. */
  readonly requestTimeoutMs: number;
  /** @default DEFAULT_MAX_ENGINE_RESPONSE_BYTES */
  readonly maxResponseBytes?: number;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return `${error.name}: ${error.message}${cause instanceof Error ? ` (${cause.message})` : ''}`;
}

/** Body as text, or null when it exceeds `maxBytes`. */
async function readBoundedText(response: Response, maxBytes: number): Promise<string | null> {
  const body = await readBoundedBody(response, maxBytes);
  return body === null ? null : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}

function errorDetail(text: string | null): string {
  try {
    const message = (JSON.parse(text ?? '') as { error?: { message?: unknown } })?.error?.message;
    return typeof message === 'string' ? `: ${message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

/** POSTs `body` to `<base><path>` and returns the parsed JSON; every failure is an INFRA {@link EngineFault}. */
async function postEngine(options: OpenAiChatOptions, path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_ENGINE_RESPONSE_BYTES;
  let base: string;
  try {
    base = typeof options.baseUrl === 'function' ? options.baseUrl() : options.baseUrl;
  } catch (error) {
    // e.g. the engine was stopped: to the caller that is just an unreachable engine
    throw new EngineFault(stageFault('INFRA_FAULT', 'generation_transport_error', `engine unreachable: ${describe(error)}`), null, { cause: error });
  }
  const timeout = AbortSignal.timeout(options.requestTimeoutMs);
  let response: Response;
  let text: string | null;
  try {
    response = await fetch(`${base.replace(/\/+$/, '')}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, timeout]),
    });
    text = await readBoundedText(response, maxBytes);
  } catch (error) {
    if (signal.aborted) throw new EngineFault(stageFault('INFRA_FAULT', 'run_cancelled', 'generation cancelled'), null, { cause: error });
    if (timeout.aborted) {
      throw new EngineFault(stageFault('INFRA_FAULT', 'generation_timeout', `engine did not answer within ${options.requestTimeoutMs} ms`), null, { cause: error });
    }
    throw new EngineFault(stageFault('INFRA_FAULT', 'generation_transport_error', `engine unreachable: ${describe(error)}`), null, { cause: error });
  }
  if (!response.ok) {
    throw new EngineFault(stageFault('INFRA_FAULT', 'worker_error', `engine returned HTTP ${response.status}${errorDetail(text)}`), response.status);
  }
  try {
    return JSON.parse(text ?? '') as unknown;
  } catch {
    return undefined;
  }
}

export function createOpenAiChat(options: OpenAiChatOptions): ChatFn {
  return async (model, messages, params, signal) => {
    const body = { model, messages, max_tokens: params.maxTokens, temperature: params.temperature, ...(params.seed !== undefined ? { seed: params.seed } : {}) };
    const parsed = (await postEngine(options, '/v1/chat/completions', body, signal)) as { choices?: Array<{ message?: { content?: unknown } }> } | undefined;
    const content = parsed?.choices?.[0]?.message?.content;
    if (typeof content !== 'string') throw new EngineFault(stageFault('INFRA_FAULT', 'worker_error', 'engine returned a malformed completion'));
    return content;
  };
}

/**
 * A {@link CompletionFn} over `/v1/completions` (duel.md §4.3): the rendered prompt goes as is, the
 * result is `choices[0].text` raw (reasoning included). Same failure classes as the chat call.
 */
export function createOpenAiCompletion(options: OpenAiChatOptions): CompletionFn {
  return async (model, prompt, params, signal) => {
    const body = {
      model,
      prompt,
      max_tokens: params.maxTokens,
      temperature: params.temperature,
      ...(params.topP !== undefined ? { top_p: params.topP } : {}),
      ...(params.topK !== undefined ? { top_k: params.topK } : {}),
      ...(params.stopTokenIds !== undefined ? { stop_token_ids: [...params.stopTokenIds] } : {}),
      ...(params.seed !== undefined ? { seed: params.seed } : {}),
    };
    const parsed = (await postEngine(options, '/v1/completions', body, signal)) as { choices?: Array<{ text?: unknown }> } | undefined;
    const text = parsed?.choices?.[0]?.text;
    if (typeof text !== 'string') throw new EngineFault(stageFault('INFRA_FAULT', 'worker_error', 'engine returned a malformed completion'));
    return text;
  };
}
