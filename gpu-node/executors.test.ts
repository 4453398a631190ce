import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageFault } from '../core/faults.ts';
import type { StageProgress } from '../core/stage.ts';
import { JudgeFault, type JudgeGateway } from '../judge/types.ts';
import { fixedJudge } from '../tests/support/judge.ts';
import { EngineFault } from './engine.ts';
import { DEFAULT_TOY_PROMPTS, renderChatPrompt, routeChatByModel, runEval, runPreEval, selectPreEvalPrompts, type ChatFn, type EvalPrompt } from './executors.ts';
import { createOpenAiChat } from './openai-chat.ts';
import { startStubVllm, type StubVllm } from './stub-vllm.ts';

const KEY = 'exec-test-key';
const BLOCK = '0x5f3c2a';
let stub: StubVllm;
let chat: ChatFn;

beforeAll(async () => {
  stub = await startStubVllm({ apiKey: KEY, servedModels: ['org/plain-1', 'org/strong-1', 'org/broken-1'] });
  chat = createOpenAiChat({ baseUrl: stub.url, apiKey: KEY, requestTimeoutMs: 10_000 });
});
afterAll(() => stub.close());

function recorder() {
  const events: StageProgress[] = [];
  return { events, emit: async (p: StageProgress) => void events.push(p) };
}
const live = () => new AbortController().signal;

describe('selectPreEvalPrompts', () => {
  it('uses a small pool as is and picks reproducibly from a larger one', () => {
    expect(selectPreEvalPrompts(DEFAULT_TOY_PROMPTS, BLOCK)).toEqual([...DEFAULT_TOY_PROMPTS]);
    const pool = ['a', 'b', 'c', 'd', 'e', 'f'];
    const picked = selectPreEvalPrompts(pool, BLOCK);
    expect(picked).toHaveLength(3);
    expect(new Set(picked).size).toBe(3);
    expect(selectPreEvalPrompts(pool, BLOCK)).toEqual(picked);
  });
});

describe('runPreEval', () => {
  it('passes a healthy model and emits progress per prompt', async () => {
    const { events, emit } = recorder();
    const outcome = await runPreEval({ modelUri: 'org/plain-1', blockHash: BLOCK }, { chat, emit, signal: live() });
    expect(outcome.status).toBe('succeeded');
    if (outcome.status !== 'succeeded') return;
    expect(outcome.result.promptCount).toBe(3);
    expect(outcome.result.responses).toHaveLength(3);
    expect(events.map((e) => e.type)).toEqual(['generation_started', 'generation_progress', 'generation_progress', 'generation_progress']);
    expect(events.at(-1)?.data).toMatchObject({ completed: 3, total: 3 });
  });

  it('is reproducible for the same block hash', async () => {
    const a = await runPreEval({ modelUri: 'org/strong-1', blockHash: BLOCK }, { chat, emit: async () => {}, signal: live() });
    const b = await runPreEval({ modelUri: 'org/strong-1', blockHash: BLOCK }, { chat, emit: async () => {}, signal: live() });
    expect(a).toEqual(b);
  });

  it('fails a broken model with MINER failed naming the heuristic', async () => {
    const outcome = await runPreEval({ modelUri: 'org/broken-1', blockHash: BLOCK }, { chat, emit: async () => {}, signal: live() });
    expect(outcome.status).toBe('failed');
    if (outcome.status !== 'failed') return;
    expect(outcome.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'failed', retryable: false });
    expect(outcome.fault.message).toMatch(/^heuristic repetition: repetitive output \(diversity=0\.\d\d\) \(prompt 1\/3\)$/);
  });

  it('honours custom thresholds', async () => {
    const outcome = await runPreEval({ modelUri: 'org/plain-1', blockHash: BLOCK }, { chat, emit: async () => {}, signal: live(), minTokens: 10_000 });
    expect(outcome.status === 'failed' && outcome.fault.message).toMatch(/^heuristic too_short: too short \(\d+ tokens, min=10000\)/);
  });

  it('engine down ⇒ INFRA generation_transport_error, never MINER', async () => {
    const dead = await startStubVllm({ servedModels: ['org/plain-1'] });
    const deadUrl = dead.url;
    await dead.close();
    const deadChat = createOpenAiChat({ baseUrl: deadUrl, requestTimeoutMs: 10_000 });
    const outcome = await runPreEval({ modelUri: 'org/plain-1', blockHash: BLOCK }, { chat: deadChat, emit: async () => {}, signal: live() });
    expect(outcome.status === 'failed' && outcome.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'generation_transport_error', retryable: true });
  });

  it('engine errors (unknown model, odd exceptions, even mislabelled faults) stay INFRA', async () => {
    const unknownModel = await runPreEval({ modelUri: 'org/not-served', blockHash: BLOCK }, { chat, emit: async () => {}, signal: live() });
    expect(unknownModel.status === 'failed' && unknownModel.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error' });
    expect(unknownModel.status === 'failed' && unknownModel.fault.message).toContain('HTTP 404');

    const throwing: ChatFn = async () => {
      throw new TypeError('boom');
    };
    const odd = await runPreEval({ modelUri: 'x', blockHash: BLOCK }, { chat: throwing, emit: async () => {}, signal: live() });
    expect(odd.status === 'failed' && odd.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error' });

    const mislabelled: ChatFn = async () => {
      throw new EngineFault(stageFault('MINER_FAULT', 'failed', 'engine tried to blame the miner'));
    };
    const relabelled = await runPreEval({ modelUri: 'x', blockHash: BLOCK }, { chat: mislabelled, emit: async () => {}, signal: live() });
    expect(relabelled.status === 'failed' && relabelled.fault.faultClass).toBe('INFRA_FAULT');
  });

  it('a cancelled run is INFRA run_cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    const outcome = await runPreEval({ modelUri: 'org/plain-1', blockHash: BLOCK }, { chat, emit: async () => {}, signal: controller.signal });
    expect(outcome.status === 'failed' && outcome.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'run_cancelled' });
  });
});

describe('runEval with a recording judge', () => {
  const prompts: EvalPrompt[] = DEFAULT_TOY_PROMPTS.map((content, i) => ({ sampleId: `data/train-00000-of-00001.parquet:0:${i}`, messages: [{ role: 'user', content }] }));
  const input = { challengerModelUri: 'org/strong-1', kingModelUri: 'org/plain-1', blockHash: BLOCK, sampleCount: 3, winMargin: 0.06 };


  it('generates both sides, hands delimited pairs to the judge and applies the margin rule', async () => {
    const judge = fixedJudge(0.53);
    const { events, emit } = recorder();
    const outcome = await runEval(input, { chat, judge, emit, signal: live(), prompts, attemptKey: 'k' });
    expect(outcome).toMatchObject({
      status: 'succeeded',
      result: { challengerWon: true, scoreChallenger: 0.53, scoreKing: 1 - 0.53, winMargin: 0.53 - (1 - 0.53), sampleCount: 3, scoredSampleCount: 3, judgeCount: 3, validFraction: 1 },
    });
    // A judge without per-sample records: the margin rule alone, no bootstrap bound and no record.
    expect(outcome.status === 'succeeded' && outcome.result).toMatchObject({ winPolicy: 'margin', winLcb: null, verdictRecord: null });
    const req = judge.requests[0]!;
    expect(req.attemptKey).toBe('k');
    expect(req.samples.map((s) => s.sampleId)).toEqual(prompts.map((p) => p.sampleId));
    expect(req.samples[0]?.prompt).toBe(renderChatPrompt(prompts[0]!.messages));
    expect(req.samples[0]?.challengerAnswer).toContain('```python'); // the strong model's reply
    expect(events.map((e) => e.type)).toEqual(['generation_started', 'generation_progress', 'scoring_started', 'verdict']);
  });

  it('a challenger at 0.529 does not clear the 0.06 margin', async () => {
    const outcome = await runEval(input, { chat, judge: fixedJudge(0.529), emit: async () => {}, signal: live(), prompts });
    expect(outcome.status === 'succeeded' && outcome.result.challengerWon).toBe(false);
  });

  it('king-side generation errors exclude pairs and are REMOTE_EVAL, never MINER', async () => {
    const kingDown: ChatFn = async () => {
      throw new EngineFault(stageFault('INFRA_FAULT', 'generation_transport_error', 'king engine down'));
    };
    const routed = routeChatByModel({ 'org/strong-1': chat, 'org/plain-1': kingDown });
    const outcome = await runEval(input, { chat: routed, judge: fixedJudge(0.9), emit: async () => {}, signal: live(), prompts });
    expect(outcome.status === 'failed' && outcome.fault).toMatchObject({ faultClass: 'REMOTE_EVAL_FAULT', code: 'no_valid_generated_pairs', retryable: true });

    // One failing king sample: that pair is dropped, the rest is judged.
    const flakyKing: ChatFn = (model, messages, params, signal) =>
      messages[0]?.content === DEFAULT_TOY_PROMPTS[1] ? Promise.reject(new Error('transient')) : chat(model, messages, params, signal);
    const judge = fixedJudge(0.7);
    const partial = await runEval(input, { chat: routeChatByModel({ 'org/strong-1': chat, 'org/plain-1': flakyKing }), judge, emit: async () => {}, signal: live(), prompts });
    expect(partial.status).toBe('succeeded');
    expect(judge.requests[0]?.samples.map((s) => s.sampleIndex)).toEqual([0, 2]);
    expect(judge.requests[0]?.totalSampleCount).toBe(3);
  });

  it('judge failures are PROVIDER faults', async () => {
    const exhausted: JudgeGateway = {
      judgeDuel: async () => {
        throw new JudgeFault(stageFault('PROVIDER_FAULT', 'scoring_invalid', 'Only 1/3 sample pairs received 3 valid judge scores'));
      },
    };
    const a = await runEval(input, { chat, judge: exhausted, emit: async () => {}, signal: live(), prompts });
    expect(a.status === 'failed' && a.fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'scoring_invalid' });

    const crashing: JudgeGateway = {
      judgeDuel: async () => {
        throw new RangeError('bad');
      },
    };
    const b = await runEval(input, { chat, judge: crashing, emit: async () => {}, signal: live(), prompts });
    expect(b.status === 'failed' && b.fault).toMatchObject({ faultClass: 'PROVIDER_FAULT', code: 'judge_provider_exhausted', message: 'Judge scoring failed: RangeError: bad' });
  });

  it('too few prompts or a cancelled run are REMOTE_EVAL faults', async () => {
    const short = await runEval({ ...input, sampleCount: 5 }, { chat, judge: fixedJudge(0.5), emit: async () => {}, signal: live(), prompts });
    expect(short.status === 'failed' && short.fault).toMatchObject({ faultClass: 'REMOTE_EVAL_FAULT', code: 'remote_worker_failed' });
    const controller = new AbortController();
    controller.abort();
    const cancelled = await runEval(input, { chat, judge: fixedJudge(0.5), emit: async () => {}, signal: controller.signal, prompts });
    expect(cancelled.status === 'failed' && cancelled.fault).toMatchObject({ faultClass: 'REMOTE_EVAL_FAULT', code: 'remote_run_cancelled' });
  });
});
