/**
 * LOCAL STAND-IN for an OpenRouter-compatible judge provider — NOT an LLM. Serves
 * `POST /api/v1/chat/completions` so the judge client and actor can be exercised end to end without
 * network access or API spend. Its pairwise verdict is a deterministic function of the conversation
 * and the two replies it is shown as MODEL 1 / MODEL 2 (lexical grounding in the prompt, structure,
 * degenerate repetition); it never learns which side is the king. Faults can be injected: 429s with a
 * chosen `Retry-After`, 5xx, malformed JSON bodies, replies that are not a verdict (wrong schema),
 * requests that never answer (client timeouts) and latency, plus an optional bias towards MODEL 1 to
 * show why order is counterbalanced. Fault counters are 1-based over all accepted requests.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { delay, listen, readJsonBody, sendJson, sendOpenAiError } from '../gpu-node/local-http.ts';
import { bearerMatches } from '../rpc/auth.ts';
import { pySplit } from '../gpu-node/py-text.ts';
import { METRIC_KEYS, type MetricKey } from './types.ts';

/** Judge prompts carry whole conversations, so the cap is larger than the stub engine's. @default 8 MiB */
export const STANDIN_DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Score differences at or below this are called a draw. @default 0.02 */
export const STANDIN_DRAW_EPSILON = 0.02;

export interface JudgeProviderStandinOptions {
  /** Required bearer token (OpenRouter always authenticates). */
  readonly apiKey: string;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 */
  readonly port?: number;
  readonly faults?: {
    /** Every n-th request (1-based, counted across all models) answers 429 with `Retry-After: <retryAfter>`. */
    readonly rate429Every?: number;
    /** `Retry-After` header value sent with injected 429s (delta-seconds or an HTTP date). @default '0' */
    readonly retryAfter?: string;
    /** Every n-th request answers HTTP 502. */
    readonly status5xxEvery?: number;
    /** Every n-th request answers 200 with a body that is not valid JSON (a "bad body"). */
    readonly malformedEvery?: number;
    /** Every n-th request answers a well-formed completion whose content is not a verdict (wrong schema / truncated JSON / prose). */
    readonly wrongSchemaEvery?: number;
    /** Every n-th request is never answered (the client's per-attempt timeout must fire). */
    readonly hangEvery?: number;
    /** Added latency per request. */
    readonly latencyMs?: number;
  };
  /** Serve `message.content` as an array of text parts instead of a string (as some providers do). @default false */
  readonly contentAsParts?: boolean;
  /** Added to MODEL 1's quality on every metric (0 = unbiased; ≥ 2 = always prefers MODEL 1). @default 0 */
  readonly positionBias?: number;
  /** @default STANDIN_DEFAULT_MAX_BODY_BYTES */
  readonly maxBodyBytes?: number;
}

export interface JudgeProviderStandinStats {
  readonly received: number;
  readonly unauthorized: number;
  readonly rateLimited: number;
  readonly serverErrors: number;
  readonly malformed: number;
  readonly wrongSchema: number;
  readonly hung: number;
  readonly completed: number;
  /** Highest number of requests in flight at once (shows the client's concurrency cap working). */
  readonly peakInFlight: number;
  /** The same, per requested model id. */
  readonly peakInFlightByModel: Readonly<Record<string, number>>;
}

export interface JudgeProviderStandin {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** What to configure as the OpenRouter base URL (`${url}/api`). */
  readonly baseUrl: string;
  stats(): JudgeProviderStandinStats;
  /** JSON bodies of the accepted requests, oldest first (at most the last 1000). */
  requests(): readonly Record<string, unknown>[];
  close(): Promise<void>;
}

interface AnswerFeatures {
  readonly tokens: number;
  readonly degenerate: boolean;
  /** Share of (up to 8) distinctive prompt words the answer reuses. */
  readonly grounding: number;
  /** Code fence, numbered steps, bullets. */
  readonly structure: number;
  readonly vocabulary: number;
}

function distinctiveWords(text: string): Set<string> {
  return new Set(Array.from(text.toLowerCase().matchAll(/[a-z_][a-z0-9_]{3,}/g), (m) => m[0]));
}

export function answerFeatures(answer: string, prompt: string): AnswerFeatures {
  const tokens = pySplit(answer);
  if (tokens.length === 0) return { tokens: 0, degenerate: true, grounding: 0, structure: 0, vocabulary: 0 };
  const trigrams = new Set<string>();
  for (let i = 0; i + 2 < tokens.length; i += 1) trigrams.add(`${tokens[i]}\u0001${tokens[i + 1]}\u0001${tokens[i + 2]}`);
  const degenerate = tokens.length >= 3 && trigrams.size / (tokens.length - 2) < 0.5;
  const promptWords = distinctiveWords(prompt);
  let reused = 0;
  for (const word of distinctiveWords(answer)) if (promptWords.has(word)) reused += 1;
  const structure = Math.min(1, (/```/.test(answer) ? 0.5 : 0) + (/^\s*\d+\.\s/m.test(answer) ? 0.3 : 0) + (/^\s*[-*]\s/m.test(answer) ? 0.2 : 0));
  return {
    tokens: tokens.length,
    degenerate,
    grounding: Math.min(1, reused / 8),
    structure,
    vocabulary: new Set(tokens.map((t) => t.toLowerCase())).size / tokens.length,
  };
}

/** Per-metric quality in [0, 1]; degenerate text scores zero everywhere. */
export function metricQualities(f: AnswerFeatures): Record<MetricKey, number> {
  if (f.degenerate) return { correctness: 0, grounding: 0, progress: 0, protocol: 0, efficiency: 0 };
  const length = Math.min(1, f.tokens / 120);
  return {
    correctness: 0.5 * f.grounding + 0.3 * f.structure + 0.2 * length,
    grounding: f.grounding,
    progress: 0.5 * f.structure + 0.5 * length,
    protocol: f.structure,
    efficiency: f.vocabulary - (f.tokens > 300 ? 0.3 : 0),
  };
}

const USER_LAYOUT = {
  conversation: 'CONVERSATION SO FAR:\n------\n',
  model1: '\n------\n\nMODEL 1 candidate next turn:\n------\n',
  model2: '\n------\n\nMODEL 2 candidate next turn:\n------\n',
  end: '\n------\n\nCompare MODEL 1 and MODEL 2',
};

/** Splits the duel.md §9.2 user message back into its parts; null if it is not in that layout. */
export function splitPairwisePrompt(text: string): { prompt: string; model1: string; model2: string } | null {
  const c = text.indexOf(USER_LAYOUT.conversation);
  const end = text.lastIndexOf(USER_LAYOUT.end);
  const m1 = c === -1 ? -1 : text.indexOf(USER_LAYOUT.model1, c);
  const m2 = end === -1 ? -1 : text.lastIndexOf(USER_LAYOUT.model2, end);
  if (c === -1 || m1 === -1 || m2 === -1 || end === -1 || !(m1 < m2 && m2 < end)) return null;
  return {
    prompt: text.slice(c + USER_LAYOUT.conversation.length, m1),
    model1: text.slice(m1 + USER_LAYOUT.model1.length, m2),
    model2: text.slice(m2 + USER_LAYOUT.model2.length, end),
  };
}

/** The verdict for one pairwise request: 1 = MODEL 1 better, 2 = MODEL 2 better, 0 = draw. */
export function standinVerdict(userText: string, positionBias = 0): Record<MetricKey, 0 | 1 | 2> {
  const parts = splitPairwisePrompt(userText);
  const draw = Object.fromEntries(METRIC_KEYS.map((m) => [m, 0])) as Record<MetricKey, 0 | 1 | 2>;
  if (!parts) return draw;
  const q1 = metricQualities(answerFeatures(parts.model1, parts.prompt));
  const q2 = metricQualities(answerFeatures(parts.model2, parts.prompt));
  return Object.fromEntries(
    METRIC_KEYS.map((m) => {
      const d = q1[m] + positionBias - q2[m];
      return [m, Math.abs(d) <= STANDIN_DRAW_EPSILON ? 0 : d > 0 ? 1 : 2];
    }),
  ) as Record<MetricKey, 0 | 1 | 2>;
}

const MALFORMED_BODIES = ['{"id": "gen-truncated", "choices": [{"message": {"content": "{\\"correctness\\": 1', '<html>502 Bad Gateway</html>'];
const WRONG_SCHEMA_CONTENTS = [
  '{"correctness": 1, "grounding": ',
  'I think MODEL 1 is somewhat better overall, but it depends.',
  '{"winner": "MODEL 1", "confidence": 0.7}',
];

export async function startJudgeProviderStandin(options: JudgeProviderStandinOptions): Promise<JudgeProviderStandin> {
  if (!options.apiKey) throw new TypeError('the judge provider stand-in requires an apiKey');
  const maxBody = options.maxBodyBytes ?? STANDIN_DEFAULT_MAX_BODY_BYTES;
  const stats = { received: 0, unauthorized: 0, rateLimited: 0, serverErrors: 0, malformed: 0, wrongSchema: 0, hung: 0, completed: 0, peakInFlight: 0 };
  let inFlight = 0;
  const inFlightByModel = new Map<string, number>();
  const peakByModel = new Map<string, number>();
  const bodies: Record<string, unknown>[] = [];
  const every = (k: number | undefined, n: number) => k !== undefined && k > 0 && n % k === 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://standin').pathname;
    if (req.method !== 'POST' || path !== '/api/v1/chat/completions') {
      req.resume();
      return sendOpenAiError(res, 404, `no route ${req.method} ${path}`, 'not_found');
    }
    if (!bearerMatches(req.headers.authorization, options.apiKey)) {
      stats.unauthorized += 1;
      req.resume();
      return sendOpenAiError(res, 401, 'No auth credentials found', 'authentication_error');
    }
    const body = (await readJsonBody(req, maxBody)) as Record<string, unknown> | null;
    const model = body?.model;
    const messages = body?.messages;
    if (typeof model !== 'string' || model.length === 0 || !Array.isArray(messages)) {
      return sendOpenAiError(res, 400, '`model` (string) and `messages` (array) are required', 'invalid_request_error');
    }
    const format = body?.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
    if (format !== undefined && (format?.type !== 'json_schema' || typeof format.json_schema?.schema !== 'object')) {
      return sendOpenAiError(res, 400, 'only response_format {type: "json_schema", json_schema: {schema}} is supported', 'invalid_request_error');
    }
    stats.received += 1;
    const n = stats.received;
    const faults = options.faults ?? {};
    // In flight = accepted and not yet answered (latency included), so the peak shows the client's cap.
    bodies.push(body as Record<string, unknown>);
    if (bodies.length > 1000) bodies.shift();
    inFlight += 1;
    stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
    const mine = (inFlightByModel.get(model) ?? 0) + 1;
    inFlightByModel.set(model, mine);
    peakByModel.set(model, Math.max(peakByModel.get(model) ?? 0, mine));
    try {
      await delay(faults.latencyMs ?? 0);
      if (every(faults.hangEvery, n)) {
        stats.hung += 1;
        await new Promise<void>((resolve) => res.once('close', () => resolve()));
        return;
      }
      if (every(faults.rate429Every, n)) {
        stats.rateLimited += 1;
        return sendOpenAiError(res, 429, 'Rate limit exceeded (injected by stand-in)', 'rate_limit_exceeded', { 'retry-after': faults.retryAfter ?? '0' });
      }
      if (every(faults.status5xxEvery, n)) {
        stats.serverErrors += 1;
        return sendOpenAiError(res, 502, 'Upstream provider error (injected by stand-in)', 'server_error');
      }
      if (every(faults.malformedEvery, n)) {
        stats.malformed += 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(MALFORMED_BODIES[n % MALFORMED_BODIES.length]);
        return;
      }
      answer(res, n, body as Record<string, unknown>, model, messages as Array<{ role?: unknown; content?: unknown }>, format, every(faults.wrongSchemaEvery, n));
    } finally {
      inFlight -= 1;
      inFlightByModel.set(model, (inFlightByModel.get(model) ?? 1) - 1);
    }
  }

  function answer(
    res: ServerResponse,
    n: number,
    body: Record<string, unknown>,
    model: string,
    messages: Array<{ role?: unknown; content?: unknown }>,
    format: unknown,
    wrongSchema: boolean,
  ): void {
    const userText = [...messages].reverse().find((m) => m?.role === 'user')?.content;
    let content: string;
    if (wrongSchema) {
      stats.wrongSchema += 1;
      content = WRONG_SCHEMA_CONTENTS[n % WRONG_SCHEMA_CONTENTS.length] as string;
    } else {
      const verdict = standinVerdict(typeof userText === 'string' ? userText : '', options.positionBias ?? 0);
      content = format
        ? JSON.stringify(verdict)
        : // Without structured output real judges wrap JSON in prose; exercise that parse path too.
          `Comparing both candidates metric by metric.\n\`\`\`json\n${JSON.stringify(
            Object.fromEntries(METRIC_KEYS.map((m) => [m, ['draw', 'model_1', 'model_2'][verdict[m]]])),
            null,
            1,
          )}\n\`\`\``;
    }
    stats.completed += 1;
    const pinned = (body.provider as { order?: unknown } | undefined)?.order;
    sendJson(res, 200, {
      id: `gen-standin-${createHash('sha256').update(`${n}`).digest('hex').slice(0, 16)}`,
      object: 'chat.completion',
      created: 0,
      model,
      provider: Array.isArray(pinned) && typeof pinned[0] === 'string' ? pinned[0] : 'albedo-standin',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: options.contentAsParts ? [{ type: 'text', text: content.slice(0, 7) }, { type: 'text', text: content.slice(7) }] : content },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  }

  const server = await listen(options.host ?? '127.0.0.1', options.port ?? 0, handle);
  return {
    url: server.url,
    baseUrl: `${server.url}/api`,
    stats: () => ({ ...stats, peakInFlightByModel: Object.fromEntries(peakByModel) }),
    requests: () => [...bodies],
    close: () => server.close(),
  };
}
