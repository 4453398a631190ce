/**
 * duel.md §4.3: pinned-template prompts are generated through `/v1/completions` (the rendered text as
 * is, the canonical stop token and sampling); samples without a pinned rendering keep the chat path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedJudge } from '../tests/support/judge.ts';
import { type CompletionParams, EngineFault, EVAL_STOP_TOKEN_IDS } from './engine.ts';
import { type ChatFn, type CompletionFn, type EvalPrompt, renderChatPrompt, routeCompletionByModel, runEval } from './executors.ts';
import { createOpenAiChat, createOpenAiCompletion } from './openai-chat.ts';
import { completionAsChat, startStubVllm, type StubVllm, stubReplyText } from './stub-vllm.ts';

const KEY = 'completions-test-key';
let stub: StubVllm;
let chat: ChatFn;
let complete: CompletionFn;

beforeAll(async () => {
  stub = await startStubVllm({ apiKey: KEY, servedModels: ['org/plain-1', 'org/strong-1'] });
  chat = createOpenAiChat({ baseUrl: stub.url, apiKey: KEY, requestTimeoutMs: 10_000 });
  complete = createOpenAiCompletion({ baseUrl: stub.url, apiKey: KEY, requestTimeoutMs: 10_000 });
});
afterAll(() => stub.close());

const live = () => new AbortController().signal;
const PROMPT = '<|im_start|>user\nFix the failing parser test in parse_config when the yaml key is missing<|im_end|>\n<|im_start|>assistant\n';

describe('stub vLLM /v1/completions', () => {
  it('answers a rendered prompt with an OpenAI text completion, deterministically', async () => {
    const body = { model: 'org/strong-1', prompt: PROMPT, max_tokens: 200, temperature: 1, top_p: 0.95, top_k: 20, stop_token_ids: [248046], seed: 7 };
    const post = async (b: unknown) => {
      const r = await fetch(`${stub.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
      return { status: r.status, json: (await r.json()) as { object: string; choices: Array<{ text: string }> } };
    };
    const a = await post(body);
    expect(a.status).toBe(200);
    expect(a.json.object).toBe('text_completion');
    expect(a.json.choices[0]?.text).toContain('```python'); // the strong model's style, as on the chat endpoint
    expect((await post(body)).json.choices[0]?.text).toBe(a.json.choices[0]?.text);
    // The prompt is read as one user turn without template markup.
    expect(a.json.choices[0]?.text).toBe(stubReplyText({ model: 'org/strong-1', messages: completionAsChat(PROMPT), temperature: 1, seed: 7, maxTokens: 200 }).text);
    expect(a.json.choices[0]?.text).not.toContain('im_start');
  });

  it('refuses malformed requests with 400 and unknown models with 404', async () => {
    const post = (b: unknown) => fetch(`${stub.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
    expect((await post({ model: 'org/plain-1', prompt: '' })).status).toBe(400);
    expect((await post({ model: 'org/plain-1', prompt: [1, 2, 3] })).status).toBe(400);
    expect((await post({ model: 'org/plain-1', prompt: 'x', stop_token_ids: Array.from({ length: 65 }, () => 1) })).status).toBe(400);
    expect((await post({ model: 'org/plain-1', prompt: 'x', stop_token_ids: [-1] })).status).toBe(400);
    expect((await post({ model: 'org/plain-1', prompt: 'x', top_p: 'high' })).status).toBe(400);
    expect((await post({ model: 'org/unknown', prompt: 'x' })).status).toBe(404);
  });
});

describe('createOpenAiCompletion', () => {
  it('returns choices[0].text, and engine errors are INFRA EngineFaults', async () => {
    expect(await complete('org/plain-1', PROMPT, { maxTokens: 50, temperature: 0 }, live())).toEqual(expect.any(String));
    const missing = await complete('org/unknown', PROMPT, { maxTokens: 50, temperature: 0 }, live()).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(EngineFault);
    expect((missing as EngineFault).fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error' });
    expect((missing as EngineFault).httpStatus).toBe(404);
    const unreachable = createOpenAiCompletion({ baseUrl: 'http://127.0.0.1:1', requestTimeoutMs: 5_000 });
    const down = await unreachable('org/plain-1', PROMPT, { maxTokens: 5, temperature: 0 }, live()).catch((e: unknown) => e);
    expect((down as EngineFault).fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'generation_transport_error' });
  });
});

describe('runEval generation path', () => {
  const judge = fixedJudge(0.7);
  const input = { challengerModelUri: 'org/strong-1', kingModelUri: 'org/plain-1', blockHash: '0x77', sampleCount: 2, winMargin: 0.06 };
  const messages = [[{ role: 'user' as const, content: 'Fix the KeyError in parse_config.' }], [{ role: 'user' as const, content: 'Add a retry to fetch_manifest.' }]];

  /** Wraps the real engine calls to see which endpoint each sample used. */
  function recording() {
    const calls: { chat: string[]; complete: Array<{ prompt: string; params: CompletionParams }> } = { chat: [], complete: [] };
    const recChat: ChatFn = (model, msgs, params, signal) => {
      calls.chat.push(msgs.at(-1)?.content ?? '');
      return chat(model, msgs, params, signal);
    };
    const recComplete: CompletionFn = (model, prompt, params, signal) => {
      calls.complete.push({ prompt, params });
      return complete(model, prompt, params, signal);
    };
    return { calls, recChat, recComplete };
  }

  it('pinned-template prompts go to /v1/completions as rendered, with the §4.3 stop token and sampling', async () => {
    const pinned: EvalPrompt[] = messages.map((m, i) => ({ sampleId: `data/train-00000-of-00001.parquet:0:${i}`, messages: m, prompt: `PINNED ${renderChatPrompt(m)}`, templateSha256: 'a'.repeat(64) }));
    const { calls, recChat, recComplete } = recording();
    judge.requests.length = 0;
    const outcome = await runEval(input, { chat: recChat, complete: recComplete, judge, emit: async () => {}, signal: live(), prompts: pinned });
    expect(outcome.status).toBe('succeeded');
    expect(calls.chat).toEqual([]);
    expect(calls.complete.map((c) => c.prompt).sort()).toEqual([...pinned, ...pinned].map((p) => p.prompt!).sort());
    expect(calls.complete[0]?.params).toMatchObject({ maxTokens: 8192, temperature: 1, topP: 0.95, topK: 20, stopTokenIds: EVAL_STOP_TOKEN_IDS });
    expect(judge.requests[0]?.samples[0]?.prompt).toBe(pinned[0]!.prompt);
    expect(judge.requests[0]?.samples[0]?.challengerAnswer).toContain('```python');
  });

  it('fallback prompts (no pinned template) keep the chat path, even with a completion engine', async () => {
    const fallback: EvalPrompt[] = messages.map((m, i) => ({ sampleId: `data/train-00000-of-00001.parquet:0:${i}`, messages: m }));
    const { calls, recChat, recComplete } = recording();
    const outcome = await runEval(input, { chat: recChat, complete: recComplete, judge, emit: async () => {}, signal: live(), prompts: fallback });
    expect(outcome.status).toBe('succeeded');
    expect(calls.complete).toEqual([]);
    expect(calls.chat.sort()).toEqual([...messages, ...messages].map((m) => m[0]!.content).sort());
  });

  it('routes completions by model and refuses an unserved one as INFRA', async () => {
    const routed = routeCompletionByModel({ 'org/plain-1': complete });
    expect(await routed('org/plain-1', PROMPT, { maxTokens: 5, temperature: 0 }, live())).toEqual(expect.any(String));
    const refused = await routed('org/other', PROMPT, { maxTokens: 5, temperature: 0 }, live()).catch((e: unknown) => e);
    expect((refused as EngineFault).fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error' });
  });
});
