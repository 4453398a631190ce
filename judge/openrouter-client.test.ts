import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelayMs, MalformedReplyError, OpenRouterClient, parseRetryAfterMs, type OpenRouterClientOptions } from './openrouter-client.ts';
import { PAIRWISE_RESPONSE_FORMAT, pairwiseMessages, parseMetricVerdict } from './pairwise-protocol.ts';
import { startJudgeProviderStandin, type JudgeProviderStandin, type JudgeProviderStandinOptions } from './provider-standin.ts';
import { JudgeFault } from './types.ts';

const KEY = 'or-test-key';
let standin: JudgeProviderStandin | undefined;
afterEach(async () => {
  await standin?.close();
  standin = undefined;
});

async function setup(standinOptions: Partial<JudgeProviderStandinOptions> = {}, clientOptions: Partial<OpenRouterClientOptions> = {}) {
  standin = await startJudgeProviderStandin({ apiKey: KEY, ...standinOptions });
  // Backoff base 0 ms: retries happen immediately, the tests never sleep.
  const client = new OpenRouterClient({ apiKey: KEY, baseUrl: standin.baseUrl, backoffBaseMs: 0, ...clientOptions });
  return { standin, client };
}

const messages = pairwiseMessages('user: rename the config loader', 'I will rename load_config and update callers.\n```python\ndef load_settings(): pass\n```', 'ok');
const strict = (content: string) => {
  const parsed = parseMetricVerdict(content);
  if (!parsed.complete) throw new MalformedReplyError('incomplete verdict');
  return parsed.verdicts;
};

describe('OpenRouterClient against the provider stand-in', () => {
  it('returns the parsed verdict, served model and pinned provider', async () => {
    const { client } = await setup();
    const reply = await client.completeJson(
      { model: 'qwen/qwen3.5-397b-a17b', messages, responseFormat: PAIRWISE_RESPONSE_FORMAT, providerPin: { order: ['deepinfra', 'chutes'] } },
      strict,
    );
    expect(reply.servedModel).toBe('qwen/qwen3.5-397b-a17b');
    expect(reply.provider).toBe('deepinfra');
    expect(reply.attempts).toBe(1);
    expect(reply.value.correctness).toBe('model_1');
    expect(JSON.parse(reply.content)).toEqual(expect.objectContaining({ correctness: 1 }));
  });

  it('parses the default JSON object when no parser is given', async () => {
    const { client } = await setup();
    const reply = await client.completeJson({ model: 'm', messages, responseFormat: PAIRWISE_RESPONSE_FORMAT });
    expect(Object.keys(reply.value).sort()).toEqual(['correctness', 'efficiency', 'grounding', 'progress', 'protocol']);
  });

  it('retries injected 429s and succeeds', async () => {
    const { client, standin } = await setup({ faults: { rate429Every: 2 } });
    const replies = await Promise.all(Array.from({ length: 6 }, () => client.completeJson({ model: 'm', messages, responseFormat: PAIRWISE_RESPONSE_FORMAT }, strict)));
    expect(replies.every((r) => r.value.correctness === 'model_1')).toBe(true);
    expect(standin.stats().rateLimited).toBeGreaterThan(0);
    expect(replies.some((r) => r.attempts > 1)).toBe(true);
  });

  it('retries malformed verdicts and succeeds', async () => {
    const { client, standin } = await setup({ faults: { malformedEvery: 2 } });
    const replies = await Promise.all(Array.from({ length: 6 }, () => client.completeJson({ model: 'm', messages }, strict)));
    expect(replies.every((r) => r.value.correctness === 'model_1')).toBe(true);
    expect(standin.stats().malformed).toBeGreaterThan(0);
  });

  it('gives up with PROVIDER_FAULT judge_provider_exhausted after maxAttempts', async () => {
    const { client, standin } = await setup({ faults: { rate429Every: 1 } }, { maxAttempts: 3 });
    const error = await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JudgeFault);
    expect((error as JudgeFault).fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'judge_provider_exhausted', retryable: true });
    expect((error as JudgeFault).message).toContain('after 3 attempts');
    expect(standin.stats().received).toBe(3);
  });

  it('retries every non-2xx (duel.md §9.4), including a rejected key, and never echoes the key', async () => {
    const { standin } = await setup();
    const client = new OpenRouterClient({ apiKey: 'wrong-key-value', baseUrl: standin.baseUrl, backoffBaseMs: 0, maxAttempts: 3 });
    const error = (await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e)) as JudgeFault;
    expect(error).toBeInstanceOf(JudgeFault);
    expect(error.fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'judge_provider_exhausted', retryable: true });
    expect(error.message).toContain('HTTP 401');
    expect(error.message).not.toContain('wrong-key-value');
    expect(standin.stats().unauthorized).toBe(3);
  });

  it('treats a connection failure as retryable transport error', async () => {
    const { standin } = await setup();
    const deadUrl = standin.baseUrl;
    await standin.close();
    const client = new OpenRouterClient({ apiKey: KEY, baseUrl: deadUrl, backoffBaseMs: 0, maxAttempts: 2 });
    const error = (await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e)) as JudgeFault;
    expect(error.fault.code).toBe('judge_provider_exhausted');
    expect(error.message).toContain('transport error');
  });

  it('caps in-flight requests per model with its semaphore', async () => {
    const { client, standin } = await setup({ faults: { latencyMs: 20 } }, { maxConcurrencyPerModel: 2 });
    await Promise.all(Array.from({ length: 6 }, () => client.completeJson({ model: 'one-model', messages }, strict)));
    expect(standin.stats().peakInFlight).toBeLessThanOrEqual(2);
    expect(standin.stats().completed).toBe(6);
  });

  it('honours caller cancellation without converting it into a fault', async () => {
    const { client } = await setup();
    const controller = new AbortController();
    controller.abort(new Error('operator cancelled'));
    const error = await client.completeJson({ model: 'm', messages, signal: controller.signal }, strict).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(JudgeFault);
    expect((error as Error).message).toBe('operator cancelled');
  });
});

/** Records the backoff sleeps instead of waiting (a fake clock for the retry loop). */
function recordingSleep() {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
}

describe('OpenRouterClient retry schedule (observed sleeps, no real waiting)', () => {
  it('backs off 1.5 s × 2^attempt × U(0.8, 1.2) over 6 attempts on 5xx, then gives up', async () => {
    const { sleep, sleeps } = recordingSleep();
    const { client, standin } = await setup({ faults: { status5xxEvery: 1 } }, { backoffBaseMs: undefined, random: () => 0.5, sleep });
    const error = (await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e)) as JudgeFault;
    expect(error.fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'judge_provider_exhausted', retryable: true });
    expect(error.message).toContain('after 6 attempts: HTTP 502');
    expect(standin.stats()).toMatchObject({ received: 6, serverErrors: 6 });
    // U(0.8, 1.2) at random() = 0.5 is exactly 1.0.
    expect(sleeps).toEqual([1500, 3000, 6000, 12000, 24000]);
  });

  it('jitter bounds: random() = 0 ⇒ ×0.8, random() → 1 ⇒ ×1.2', async () => {
    const { sleep, sleeps } = recordingSleep();
    const { client } = await setup({ faults: { status5xxEvery: 1 } }, { backoffBaseMs: undefined, maxAttempts: 3, random: () => 0, sleep });
    await client.completeJson({ model: 'm', messages }, strict).catch(() => undefined);
    expect(sleeps).toEqual([1200, 2400]);
    expect(backoffDelayMs({ attempt: 1, baseMs: 1500, maxMs: 60_000, random: 1, retryAfterMs: null })).toBeCloseTo(3600, 9);
  });

  it('sleeps at least Retry-After (delta-seconds) after a 429, then succeeds', async () => {
    const { sleep, sleeps } = recordingSleep();
    // Request 2 of every 2 is a 429 with Retry-After: 7.
    const { client, standin } = await setup({ faults: { rate429Every: 2, retryAfter: '7' } }, { backoffBaseMs: undefined, random: () => 0, sleep });
    await client.completeJson({ model: 'm', messages }, strict); // request 1: ok
    const reply = await client.completeJson({ model: 'm', messages }, strict); // request 2: 429, request 3: ok
    expect(reply.attempts).toBe(2);
    expect(standin.stats().rateLimited).toBe(1);
    expect(sleeps).toEqual([7000]); // max(1.5 s × 0.8, 7 s)
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const { sleep, sleeps } = recordingSleep();
    const now = Date.UTC(2026, 10, 25, 19, 0, 0);
    const retryAfter = new Date(now + 30_000).toUTCString(); // "Wed, 25 Nov 2026 19:00:30 GMT"
    const { client } = await setup({ faults: { rate429Every: 1, retryAfter } }, { backoffBaseMs: undefined, maxAttempts: 2, random: () => 0, sleep, now: () => now });
    await client.completeJson({ model: 'm', messages }, strict).catch(() => undefined);
    expect(sleeps).toEqual([30_000]);
  });

  it('keeps the exponential backoff when it exceeds Retry-After', async () => {
    const { sleep, sleeps } = recordingSleep();
    const { client } = await setup({ faults: { rate429Every: 1, retryAfter: '1' } }, { backoffBaseMs: undefined, maxAttempts: 4, random: () => 0.5, sleep });
    await client.completeJson({ model: 'm', messages }, strict).catch(() => undefined);
    expect(sleeps).toEqual([1500, 3000, 6000]);
  });

  it('retries a malformed JSON body and a hung request (per-attempt timeout) as transport errors', async () => {
    const { sleep, sleeps } = recordingSleep();
    const { client, standin } = await setup({ faults: { malformedEvery: 3, hangEvery: 4 } }, { requestTimeoutMs: 200, sleep, random: () => 0.5 });
    // Requests 1, 2 ok; 3 malformed body; 4 hangs until the 200 ms client timeout; 5 ok.
    await client.completeJson({ model: 'm', messages }, strict);
    await client.completeJson({ model: 'm', messages }, strict);
    const reply = await client.completeJson({ model: 'm', messages }, strict);
    expect(reply.attempts).toBe(3);
    expect(standin.stats()).toMatchObject({ malformed: 1, hung: 1 });
    expect(sleeps).toHaveLength(2);
  });

  it('a request that never answers times out per attempt and exhausts as a PROVIDER fault', async () => {
    const { client, standin } = await setup({ faults: { hangEvery: 1 } }, { requestTimeoutMs: 200, maxAttempts: 2 });
    const error = (await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e)) as JudgeFault;
    expect(error.fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'judge_provider_exhausted', retryable: true });
    expect(error.message).toContain('timed out after 200 ms');
    expect(standin.stats().hung).toBe(2);
  });

  it('reads content given as text parts and sends the duel.md §9.4 request body', async () => {
    const { client, standin } = await setup({ contentAsParts: true });
    const pin = { order: ['deepinfra', 'chutes'], allow_fallbacks: true, quantizations: ['fp8'] };
    const reply = await client.completeJson({ model: 'qwen/qwen3.5-397b-a17b', messages, responseFormat: PAIRWISE_RESPONSE_FORMAT, providerPin: pin }, strict);
    expect(reply.value.correctness).toBe('model_1');
    const bare = await client.completeJson({ model: 'x/no-pin', messages }, strict);
    expect(bare.provider).toBe('albedo-standin'); // the provider the response names
    const [first, second] = standin.requests();
    expect(first).toEqual({
      model: 'qwen/qwen3.5-397b-a17b',
      messages,
      temperature: 0,
      max_tokens: 768,
      reasoning: { enabled: false, exclude: true },
      provider: { ...pin, require_parameters: true },
      response_format: PAIRWISE_RESPONSE_FORMAT,
    });
    expect(second).not.toHaveProperty('response_format');
    expect(second).not.toHaveProperty('provider');
  });
});

describe('parseRetryAfterMs', () => {
  it('reads delta-seconds and HTTP dates, ignores junk', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfterMs('7', now)).toBe(7000);
    expect(parseRetryAfterMs(' 2.5 ', now)).toBe(2500);
    expect(parseRetryAfterMs(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfterMs(new Date(now - 5000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfterMs('0x10', now)).toBeNull();
    expect(parseRetryAfterMs('', now)).toBeNull();
    expect(parseRetryAfterMs(null, now)).toBeNull();
  });
});

describe('backoffDelayMs', () => {
  it('grows exponentially with jitter, honours Retry-After and the cap', () => {
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: null })).toBe(1500);
    expect(backoffDelayMs({ attempt: 2, baseMs: 1500, maxMs: 60_000, random: 0, retryAfterMs: null })).toBe(4800);
    expect(backoffDelayMs({ attempt: 2, baseMs: 1500, maxMs: 60_000, random: 1, retryAfterMs: null })).toBeCloseTo(7200, 6);
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: 10_000 })).toBe(10_000);
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: 3_600_000 })).toBe(60_000);
  });
});
