/**
 * LOCAL STAND-IN for vLLM — NOT an inference engine. A deterministic OpenAI-compatible server so the
 * GPU-node code (process management, generation, heuristics, duels) can run end to end on a laptop
 * or in CI. Replies are a pure function of (model, messages, temperature, seed, max_tokens), and the
 * model name scripts the quality so demos produce both wins and losses:
 *   - name contains `broken` ⇒ one token repeated (fails the pre-eval repetition heuristic);
 *   - name contains `strong` ⇒ a structured, on-topic answer reusing the prompt's words (wins duels);
 *   - anything else        ⇒ a medium, loosely on-topic answer.
 * `/v1/completions` takes a rendered prompt and reads it as one user turn (template markup dropped),
 * so each model answers in the same style on both endpoints.
 * Like vLLM with `--api-key`, the bearer token guards `/v1/*`; `/health` stays open for probes.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerMatches } from '../rpc/auth.ts';
import { DEFAULT_MAX_BODY_BYTES, delay, listen, readJsonBody, sendJson, sendOpenAiError } from './local-http.ts';

export interface StubVllmOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (ephemeral) */
  readonly port?: number;
  /** When set, `/v1/*` requires `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /** Model ids this server pretends to serve (`--served-model-name`). */
  readonly servedModels: string[];
  /** Artificial latency per completion. @default 0 */
  readonly latencyMs?: number;
  /** @default DEFAULT_MAX_BODY_BYTES (1 MiB) */
  readonly maxBodyBytes?: number;
}

export interface StubVllm {
  readonly url: string;
  close(): Promise<void>;
}

/** Word cap applied when a request omits `max_tokens`. @default 256 */
export const STUB_DEFAULT_MAX_TOKENS = 256;

/** A validated chat request as the stub sees it. */
export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  temperature: number;
  seed: number | null;
  maxTokens: number;
}

const GENERIC_WORDS = [
  'first', 'check', 'the', 'current', 'state', 'then', 'update', 'module', 'value', 'result', 'carefully', 'next', 'step',
  'configuration', 'handler', 'test', 'output', 'we', 'should', 'look', 'at', 'code', 'path', 'function', 'error', 'case',
  'input', 'data', 'file', 'change', 'small', 'fix', 'run', 'again', 'verify', 'behaviour', 'expected', 'line', 'call',
];
const BROKEN_TOKENS = ['the', 'lorem', '<unk>', 'assistant', '0'];
const STOP_WORDS = new Set(['this', 'that', 'with', 'from', 'have', 'what', 'your', 'into', 'should', 'would', 'could', 'there', 'their', 'about', 'which', 'please', 'user', 'assistant', 'system']);

/** Deterministic PRNG (sfc32) seeded from a sha256 digest. */
function rngFromDigest(digest: Buffer): () => number {
  let a = digest.readUInt32BE(0);
  let b = digest.readUInt32BE(4);
  let c = digest.readUInt32BE(8);
  let d = digest.readUInt32BE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], rng: () => number): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/** Distinctive words of the last user message, in order of first appearance. */
function promptWords(messages: ChatRequestBody['messages']): string[] {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? messages.at(-1)?.content ?? '';
  const seen = new Set<string>();
  for (const match of lastUser.toLowerCase().matchAll(/[a-z_][a-z0-9_]{3,}/g)) {
    const word = match[0];
    if (!STOP_WORDS.has(word)) seen.add(word);
  }
  return [...seen];
}

function randomWords(count: number, rng: () => number): string {
  return Array.from({ length: count }, () => pick(GENERIC_WORDS, rng)).join(' ');
}

/** Cuts `text` after `maxWords` whitespace-separated words, keeping the original layout. */
function capWords(text: string, maxWords: number): { text: string; truncated: boolean } {
  const re = /\S+/g;
  let count = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    count += 1;
    if (count === maxWords) {
      const end = m.index + m[0].length;
      return { text: text.slice(0, end), truncated: /\S/.test(text.slice(end)) };
    }
  }
  return { text: maxWords <= 0 ? '' : text, truncated: maxWords <= 0 && text.length > 0 };
}

/** The scripted reply; exported so tests can state expectations without a server. */
export function stubReplyText(req: ChatRequestBody): { text: string; finishReason: 'stop' | 'length' } {
  // Greedy decoding ignores the seed, as a real engine would.
  const digest = createHash('sha256')
    .update(JSON.stringify([req.model, req.messages, req.temperature, req.temperature === 0 ? null : req.seed]))
    .digest();
  const rng = rngFromDigest(digest);
  const words = promptWords(req.messages);
  const topic = (i: number) => words[i % Math.max(1, words.length)] ?? pick(GENERIC_WORDS, rng);
  const name = req.model.toLowerCase();
  let text: string;
  if (name.includes('broken')) {
    const token = pick(BROKEN_TOKENS, rng);
    text = Array.from({ length: 40 + Math.floor(rng() * 60) }, () => token).join(' ');
  } else if (name.includes('strong')) {
    const fn = topic(0).replace(/[^a-z0-9_]/g, '_');
    text = [
      `Plan for ${topic(0)} and ${topic(1)}:`,
      `1. Inspect ${topic(0)} where ${topic(2)} is handled and confirm the ${topic(1)} behaviour.`,
      `2. Apply the smallest change to ${topic(3)} so that ${topic(4)} stays consistent.`,
      `3. Run the tests covering ${topic(5)} and ${topic(0)}.`,
      '',
      '```python',
      `def handle_${fn}(${topic(1).replace(/[^a-z0-9_]/g, '_')}):`,
      `    # keeps ${topic(2)} and ${topic(6)} in sync`,
      `    return ${topic(3).replace(/[^a-z0-9_]/g, '_')}`,
      '```',
      '',
      `This addresses ${topic(0)} directly, ${randomWords(8 + Math.floor(rng() * 40), rng)}, and leaves ${topic(7)} untouched.`,
    ].join('\n');
  } else {
    text = `I will ${pick(['check', 'look at', 'inspect'], rng)} ${topic(0)}. ${randomWords(15 + Math.floor(rng() * 45), rng)}. Then return the result.`;
  }
  const capped = capWords(text, req.maxTokens);
  return { text: capped.text, finishReason: capped.truncated ? 'length' : 'stop' };
}

/** Chat-template markup (`<|im_start|>`, `<|im_end|>`, …): not words of the conversation. */
const SPECIAL_TOKEN = /<\|[^|<>]{1,64}\|>/g;

/**
 * A `/v1/completions` prompt as the scripted model reads it: one user turn holding the prompt text
 * without template markup, so a model's reply style (broken / strong / plain) is the same on both
 * endpoints and the demo outcomes do not depend on which one the node uses.
 */
export function completionAsChat(prompt: string): ChatRequestBody['messages'] {
  return [{ role: 'user', content: prompt.replace(SPECIAL_TOKEN, ' ') }];
}

/** A validated `/v1/completions` request: the chat fields plus the raw prompt and §4.3 extras. */
export interface CompletionRequestBody extends ChatRequestBody {
  readonly prompt: string;
  readonly stopTokenIds: readonly number[];
}

/** Longest `stop_token_ids` list accepted. @default 64 */
export const STUB_MAX_STOP_TOKEN_IDS = 64;

function parseCompletionBody(body: unknown): CompletionRequestBody | string {
  if (typeof body !== 'object' || body === null) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.prompt !== 'string' || b.prompt.length === 0) return '`prompt` must be a non-empty string (token-id prompts are not supported by the stub)';
  for (const key of ['top_p', 'top_k'] as const) {
    if (b[key] !== undefined && (typeof b[key] !== 'number' || !Number.isFinite(b[key]))) return `\`${key}\` must be a number`;
  }
  const stop = b.stop_token_ids ?? [];
  if (!Array.isArray(stop) || stop.length > STUB_MAX_STOP_TOKEN_IDS || !stop.every((t) => Number.isInteger(t) && (t as number) >= 0)) {
    return `\`stop_token_ids\` must be at most ${STUB_MAX_STOP_TOKEN_IDS} non-negative integers`;
  }
  const chat = parseChatBody({ ...b, messages: completionAsChat(b.prompt) });
  if (typeof chat === 'string') return chat;
  return { ...chat, prompt: b.prompt, stopTokenIds: stop as number[] };
}

function parseChatBody(body: unknown): ChatRequestBody | string {
  if (typeof body !== 'object' || body === null) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.length === 0) return '`model` must be a non-empty string';
  if (!Array.isArray(b.messages) || b.messages.length === 0) return '`messages` must be a non-empty array';
  const messages: ChatRequestBody['messages'] = [];
  for (const m of b.messages as unknown[]) {
    const role = (m as { role?: unknown })?.role;
    const content = (m as { content?: unknown })?.content;
    if (typeof role !== 'string' || typeof content !== 'string') return 'each message needs string `role` and `content`';
    messages.push({ role, content });
  }
  if (b.stream === true) return 'streaming is not supported by the stub';
  const temperature = b.temperature === undefined ? 1 : b.temperature;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) return '`temperature` must be a non-negative number';
  const seed = b.seed === undefined || b.seed === null ? null : b.seed;
  if (seed !== null && !Number.isInteger(seed)) return '`seed` must be an integer';
  const maxTokens = b.max_tokens === undefined || b.max_tokens === null ? STUB_DEFAULT_MAX_TOKENS : b.max_tokens;
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1) return '`max_tokens` must be a positive integer';
  return { model: b.model, messages, temperature, seed: seed as number | null, maxTokens: maxTokens as number };
}

/** What differs between the chat and the text completion responses. */
interface ResponseShape<T> {
  readonly idPrefix: string;
  readonly object: string;
  readonly promptTokens: (request: T) => number;
  readonly choice: (text: string, finishReason: 'stop' | 'length') => Record<string, unknown>;
}

/** Whitespace-separated words: the stub's token count. */
function wordCount(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

export async function startStubVllm(options: StubVllmOptions): Promise<StubVllm> {
  const served = new Set(options.servedModels);
  if (served.size === 0) throw new RangeError('startStubVllm needs at least one served model');
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let completionCounter = 0;

  /** Both generation endpoints: the 400/404 checks, the latency, the scripted reply and its token counts. */
  async function complete<T extends ChatRequestBody>(res: ServerResponse, parsed: T | string, shape: ResponseShape<T>): Promise<void> {
    if (typeof parsed === 'string') return sendOpenAiError(res, 400, parsed, 'BadRequestError');
    if (!served.has(parsed.model)) return sendOpenAiError(res, 404, `The model \`${parsed.model}\` does not exist.`, 'NotFoundError');
    await delay(options.latencyMs ?? 0);
    const { text, finishReason } = stubReplyText(parsed);
    const promptTokens = shape.promptTokens(parsed);
    const completionTokens = wordCount(text);
    completionCounter += 1;
    return sendJson(res, 200, {
      id: `${shape.idPrefix}-${completionCounter}`,
      object: shape.object,
      created: 0,
      model: parsed.model,
      choices: [shape.choice(text, finishReason)],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://stub').pathname;
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200).end();
      return;
    }
    if (!path.startsWith('/v1/')) return sendOpenAiError(res, 404, `no route ${path}`, 'not_found_error');
    if (options.apiKey && !bearerMatches(req.headers.authorization, options.apiKey)) {
      req.resume();
      return sendOpenAiError(res, 401, 'invalid or missing API key', 'authentication_error');
    }
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: [...served].map((id) => ({ id, object: 'model', created: 0, owned_by: 'albedo-stub-vllm', root: id, parent: null, max_model_len: 8192 })),
      });
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      return complete(res, parseChatBody(await readJsonBody(req, maxBody)), {
        idPrefix: 'chatcmpl-stub',
        object: 'chat.completion',
        promptTokens: (chat) => chat.messages.reduce((n, m) => n + wordCount(m.content), 0),
        choice: (text, finishReason) => ({ index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason, logprobs: null }),
      });
    }
    if (req.method === 'POST' && path === '/v1/completions') {
      return complete(res, parseCompletionBody(await readJsonBody(req, maxBody)), {
        idPrefix: 'cmpl-stub',
        object: 'text_completion',
        promptTokens: (completion) => wordCount(completion.prompt),
        choice: (text, finishReason) => ({ index: 0, text, finish_reason: finishReason, logprobs: null, stop_reason: null }),
      });
    }
    req.resume();
    return sendOpenAiError(res, 404, `no route ${req.method} ${path}`, 'not_found_error');
  }

  const server = await listen(options.host ?? '127.0.0.1', options.port ?? 0, handle);
  return { url: server.url, close: () => server.close() };
}
