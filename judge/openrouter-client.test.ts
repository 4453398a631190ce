import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelayMs, MalformedReplyError, OpenRouterClient, type OpenRouterClientOptions } from './openrouter-client.ts';
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

  it('does not retry a rejected key, and never echoes it', async () => {
    const { standin } = await setup();
    const client = new OpenRouterClient({ apiKey: 'wrong-key-value', baseUrl: standin.baseUrl, backoffBaseMs: 0 });
    const error = (await client.completeJson({ model: 'm', messages }, strict).catch((e: unknown) => e)) as JudgeFault;
    expect(error).toBeInstanceOf(JudgeFault);
    expect(error.fault.code).toBe('judge_provider_exhausted');
    expect(error.message).toContain('HTTP 401');
    expect(error.message).not.toContain('wrong-key-value');
    expect(standin.stats().unauthorized).toBe(1);
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

describe('backoffDelayMs', () => {
  it('grows exponentially with jitter, honours Retry-After and the cap', () => {
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: null })).toBe(1500);
    expect(backoffDelayMs({ attempt: 2, baseMs: 1500, maxMs: 60_000, random: 0, retryAfterMs: null })).toBe(4800);
    expect(backoffDelayMs({ attempt: 2, baseMs: 1500, maxMs: 60_000, random: 1, retryAfterMs: null })).toBeCloseTo(7200, 6);
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: 10_000 })).toBe(10_000);
    expect(backoffDelayMs({ attempt: 0, baseMs: 1500, maxMs: 60_000, random: 0.5, retryAfterMs: 3_600_000 })).toBe(60_000);
  });
});
