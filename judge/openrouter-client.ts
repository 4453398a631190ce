/**
 * OpenRouter-compatible chat-completions client for judge calls (duel.md §9.4). Every failure mode of
 * a hosted provider (rate limits, 5xx, timeouts, dropped connections, malformed JSON) is retried with
 * jittered exponential backoff; when the attempts run out the caller gets a PROVIDER_FAULT, so a
 * provider outage is never charged to a miner.
 */
import { stageFault } from '../core/faults.ts';
import { Semaphore } from './semaphore.ts';
import { JudgeFault, type ChatMessage } from './types.ts';
import { scanJsonObjects } from './json-scan.ts';
import { abortableSleep, readBoundedBody } from '../core/io.ts';

/** @default 'https://openrouter.ai/api' (requests go to `${baseUrl}/v1/chat/completions`) */
export const DEFAULT_OPENROUTER_BASE_URL = 'https://openrouter.ai/api';
/** Per-attempt timeout. @default 90_000 */
export const DEFAULT_JUDGE_REQUEST_TIMEOUT_MS = 90_000;
/** Total attempts per call: `ALBEDO_JUDGE_RETRY_COUNT` (5) + 1. @default 6 */
export const DEFAULT_JUDGE_MAX_ATTEMPTS = 6;
/** Backoff before retry n (0-based) is `base · 2^n · U(0.8, 1.2)`. @default 1_500 */
export const DEFAULT_JUDGE_BACKOFF_BASE_MS = 1_500;
/** Ceiling for one backoff sleep, also caps a hostile or huge `Retry-After`. @default 60_000 */
export const DEFAULT_JUDGE_MAX_BACKOFF_MS = 60_000;
/** One semaphore per judge model. @default 8 */
export const DEFAULT_JUDGE_MAX_CONCURRENCY_PER_MODEL = 8;
/** @default 0 */
export const DEFAULT_JUDGE_TEMPERATURE = 0;
/** @default 768 */
export const DEFAULT_JUDGE_MAX_TOKENS = 768;
/** Provider responses larger than this are treated as a bad body (and retried). @default 4 MiB */
export const DEFAULT_JUDGE_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface OpenRouterClientOptions {
  /** Sent as `Authorization: Bearer …`; never logged or echoed in errors. */
  readonly apiKey: string;
  readonly baseUrl?: string;
  readonly requestTimeoutMs?: number;
  readonly maxAttempts?: number;
  readonly backoffBaseMs?: number;
  readonly maxBackoffMs?: number;
  readonly maxConcurrencyPerModel?: number;
  readonly temperature?: number;
  readonly maxTokens?: number;
  readonly maxResponseBytes?: number;
  /** Jitter source in [0, 1); injectable for reproducible tests. @default Math.random */
  readonly random?: () => number;
  /** Backoff sleep; injectable so tests can observe the delays instead of waiting. @default abortable setTimeout */
  readonly sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  /** Clock for HTTP-date `Retry-After` values. @default Date.now */
  readonly now?: () => number;
}

export interface JudgeCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  /** e.g. a `{type: 'json_schema', json_schema: …}` object; omitted for judges without structured output. */
  readonly responseFormat?: Readonly<Record<string, unknown>>;
  /** OpenRouter `provider` routing object (order, allow_fallbacks, quantizations); `require_parameters` is added. */
  readonly providerPin?: Readonly<Record<string, unknown>>;
  readonly temperature?: number;
  readonly signal?: AbortSignal;
}

export interface JudgeCompletion<T> {
  readonly value: T;
  readonly content: string;
  /** Model id the provider reports having served (`model` field), else the requested id. */
  readonly servedModel: string;
  /** Provider reported in the response, else the first pinned provider, else null. */
  readonly provider: string | null;
  readonly attempts: number;
}

/** What the judge actor needs from a client; the OpenRouter client is one implementation. */
export interface JudgeCompletionClient {
  completeJson<T>(request: JudgeCompletionRequest, parse: (content: string) => T): Promise<JudgeCompletion<T>>;
}

/** Thrown by a `parse` callback to say "the reply is unusable, ask again". */
export class MalformedReplyError extends Error {
  override readonly name = 'MalformedReplyError';
}

/** Default `parse`: the whole content as a JSON object, else the last JSON object found inside it. */
export function parseJsonObjectReply(content: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(content);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the embedded-object scan
  }
  const found = scanJsonObjects(content).objects.at(-1);
  if (!found) throw new MalformedReplyError('reply contains no JSON object');
  return found;
}

/** Outcome of one HTTP attempt that did not produce a usable reply. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** `Retry-After` in ms: delta-seconds (RFC 9110; fractional tolerated) or an HTTP date; null when absent or unparsable. */
export function parseRetryAfterMs(header: string | null, now: number): number | null {
  const text = header?.trim();
  if (!text) return null;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const body = await readBoundedBody(response, maxBytes);
  if (body === null) throw new AttemptFailure(`response exceeds ${maxBytes} bytes`, true);
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}

/** `choices[0].message.content` as text: a string, or the concatenated text parts. */
function extractContent(body: unknown): string | null {
  const choice = (body as { choices?: Array<{ message?: { content?: unknown } }> } | null)?.choices?.[0];
  const content = choice?.message?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part: unknown) => (typeof (part as { text?: unknown })?.text === 'string' ? (part as { text: string }).text : '')).join('');
  }
  return null;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

/** Backoff wait that rejects when the duel is cancelled, so a retry loop stops at once. */
async function sleep(ms: number, signal: AbortSignal | undefined, impl: (ms: number, signal: AbortSignal | undefined) => Promise<void>): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  await impl(ms, signal);
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Sleep before retrying after failed attempt `attempt` (0-based): `base · 2^attempt · U(0.8, 1.2)`,
 * at least the server's `Retry-After`, never more than `maxMs`.
 */
export function backoffDelayMs(p: { attempt: number; baseMs: number; maxMs: number; random: number; retryAfterMs: number | null }): number {
  const exponential = p.baseMs * 2 ** p.attempt * (0.8 + 0.4 * p.random);
  return Math.min(p.maxMs, Math.max(exponential, p.retryAfterMs ?? 0));
}

export class OpenRouterClient implements JudgeCompletionClient {
  private readonly endpoint: string;
  private readonly semaphores = new Map<string, Semaphore>();
  private readonly opts: Required<Omit<OpenRouterClientOptions, 'baseUrl'>>;

  constructor(options: OpenRouterClientOptions) {
    if (!options.apiKey) throw new TypeError('OpenRouterClient requires an apiKey');
    this.endpoint = `${(options.baseUrl ?? DEFAULT_OPENROUTER_BASE_URL).replace(/\/+$/, '')}/v1/chat/completions`;
    this.opts = {
      apiKey: options.apiKey,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_JUDGE_REQUEST_TIMEOUT_MS,
      maxAttempts: Math.max(1, options.maxAttempts ?? DEFAULT_JUDGE_MAX_ATTEMPTS),
      backoffBaseMs: options.backoffBaseMs ?? DEFAULT_JUDGE_BACKOFF_BASE_MS,
      maxBackoffMs: options.maxBackoffMs ?? DEFAULT_JUDGE_MAX_BACKOFF_MS,
      maxConcurrencyPerModel: options.maxConcurrencyPerModel ?? DEFAULT_JUDGE_MAX_CONCURRENCY_PER_MODEL,
      temperature: options.temperature ?? DEFAULT_JUDGE_TEMPERATURE,
      maxTokens: options.maxTokens ?? DEFAULT_JUDGE_MAX_TOKENS,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_JUDGE_MAX_RESPONSE_BYTES,
      random: options.random ?? Math.random,
      sleep: options.sleep ?? ((ms, signal) => abortableSleep(ms, signal)),
      now: options.now ?? Date.now,
    };
  }

  async completeJson<T = Record<string, unknown>>(
    request: JudgeCompletionRequest,
    parse: (content: string) => T = parseJsonObjectReply as (content: string) => T,
  ): Promise<JudgeCompletion<T>> {
    const { signal } = request;
    let lastError = 'no attempt made';
    for (let attempt = 0; attempt < this.opts.maxAttempts; attempt += 1) {
      if (signal?.aborted) throw abortError(signal);
      try {
        const reply = await this.attemptOnce(request);
        try {
          return { ...reply, value: parse(reply.content), attempts: attempt + 1 };
        } catch (error) {
          throw new AttemptFailure(`malformed reply: ${error instanceof Error ? error.message : String(error)}`, true);
        }
      } catch (error) {
        if (signal?.aborted) throw abortError(signal);
        const failure = error instanceof AttemptFailure ? error : new AttemptFailure(`transport error: ${describe(error)}`, true);
        lastError = failure.message;
        if (!failure.retryable) {
          throw new JudgeFault(stageFault('PROVIDER_FAULT', 'judge_provider_exhausted', `judge ${request.model} rejected: ${failure.message}`), { cause: error });
        }
        if (attempt + 1 < this.opts.maxAttempts) await sleep(this.backoffMs(attempt, failure.retryAfterMs), signal, this.opts.sleep);
      }
    }
    throw new JudgeFault(
      stageFault('PROVIDER_FAULT', 'judge_provider_exhausted', `judge ${request.model} failed after ${this.opts.maxAttempts} attempts: ${lastError}`),
    );
  }

  private backoffMs(attempt: number, retryAfter: number | null): number {
    return backoffDelayMs({ attempt, baseMs: this.opts.backoffBaseMs, maxMs: this.opts.maxBackoffMs, random: this.opts.random(), retryAfterMs: retryAfter });
  }

  private semaphoreFor(model: string): Semaphore {
    let semaphore = this.semaphores.get(model);
    if (!semaphore) {
      semaphore = new Semaphore(this.opts.maxConcurrencyPerModel);
      this.semaphores.set(model, semaphore);
    }
    return semaphore;
  }

  /** One HTTP round trip; holds the model's semaphore only while the request is in flight. */
  private async attemptOnce(request: JudgeCompletionRequest): Promise<Omit<JudgeCompletion<never>, 'value' | 'attempts'>> {
    const release = await this.semaphoreFor(request.model).acquire(request.signal);
    const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
    try {
      const body: Record<string, unknown> = {
        model: request.model,
        messages: request.messages,
        temperature: request.temperature ?? this.opts.temperature,
        max_tokens: this.opts.maxTokens,
        reasoning: { enabled: false, exclude: true },
      };
      if (request.providerPin) body.provider = { ...request.providerPin, require_parameters: true };
      if (request.responseFormat) body.response_format = request.responseFormat;
      let response: Response;
      let text: string;
      try {
        response = await fetch(this.endpoint, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.opts.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal,
        });
        text = await readBounded(response, this.opts.maxResponseBytes);
      } catch (error) {
        if (error instanceof AttemptFailure) throw error;
        if (timeout.aborted && !request.signal?.aborted) throw new AttemptFailure(`timed out after ${this.opts.requestTimeoutMs} ms`, true);
        throw error;
      }
      if (response.status === 429) throw new AttemptFailure('HTTP 429 rate limited', true, parseRetryAfterMs(response.headers.get('retry-after'), this.opts.now()));
      // duel.md §9.4: every non-2xx is retried (a 4xx can be a transient routing/provider failure upstream).
      if (response.status < 200 || response.status >= 300) throw new AttemptFailure(`HTTP ${response.status}${errorSnippet(text)}`, true);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new AttemptFailure('bad body: not JSON', true);
      }
      if ((parsed as { error?: unknown })?.error) throw new AttemptFailure(`provider error in body${errorSnippet(text)}`, true);
      const content = extractContent(parsed);
      if (content === null) throw new AttemptFailure('bad body: no choices[0].message.content', true);
      const servedModel = (parsed as { model?: unknown }).model;
      const provider = (parsed as { provider?: unknown }).provider;
      const pinnedFirst = (request.providerPin?.order as unknown[] | undefined)?.[0];
      return {
        content,
        servedModel: typeof servedModel === 'string' && servedModel ? servedModel : request.model,
        provider: typeof provider === 'string' && provider ? provider : typeof pinnedFirst === 'string' ? pinnedFirst : null,
      };
    } finally {
      release();
    }
  }
}

/** A short provider error message for diagnostics; request data (and the key) are never included. */
function errorSnippet(text: string): string {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    return typeof message === 'string' ? `: ${message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? ` (${cause.message})` : '';
    return `${error.name}: ${error.message}${causeText}`;
  }
  return String(error);
}
