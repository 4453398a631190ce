/**
 * Node-side work of the PRE_EVAL and EVAL stages, independent of transport: the caller supplies the
 * engine (`ChatFn`), the judge and a progress sink, and gets a {@link StageOutcome}. Fault
 * attribution is decided here and only here: a miner is charged (MINER `failed`) solely when its own
 * model's text fails a pre-eval heuristic; engine, king-side and judge failures never are.
 */
import { createHash } from 'node:crypto';
import { stageFault, type StageFault } from '../core/faults.ts';
import type { EvalInput, EvalVerdict, PreEvalInput, StageOutcome, StageProgress } from '../core/stage.ts';
import { JudgeFault, type JudgeDuelResult, type JudgeGateway } from '../judge/types.ts';
import { marginVerdict } from '../judge/verdict.ts';
import { EngineFault, type ChatFn, type ChatMessage } from './engine.ts';
import { checkResponses, DEFAULT_MAX_REPETITION, DEFAULT_MIN_TOKENS, DEFAULT_MIN_VOCAB_RATIO, stripThinking, type HeuristicResult } from './preeval-heuristics.ts';

export type { ChatFn, ChatMessage, GenerationParams } from './engine.ts';
export type { JudgeGateway } from '../judge/types.ts';

/** `ALBEDO_PREEVAL_SAMPLE_COUNT`. @default 3 */
export const PRE_EVAL_PROMPT_COUNT = 3;
/** `gen_max_tokens` of the SanityRunRequest. @default 2048 */
export const PRE_EVAL_MAX_TOKENS = 2048;
/** preeval.md §3 step 5. @default 0.7 */
export const PRE_EVAL_TEMPERATURE = 0.7;
/** duel.md §4.3. @default 8192 */
export const EVAL_MAX_TOKENS = 8192;
/** duel.md §4.3 (canonical generation config). @default 1.0 */
export const EVAL_TEMPERATURE = 1.0;
/** Concurrent requests per side (`ALBEDO_REMOTE_GENERATION_CONCURRENCY`). @default 128 */
export const EVAL_GENERATION_CONCURRENCY = 128;
/** A `generation_progress` event is emitted every this many finished samples. @default 8 */
export const EVAL_GENERATION_BATCH_SIZE = 8;

/** Dev-only prompts used when no dataset manifest is configured (preeval.md §1 step 2). */
export const DEFAULT_TOY_PROMPTS: readonly string[] = [
  'Write a Python function `is_palindrome(s)` that ignores case and non-alphanumeric characters, and explain how you would test it.',
  'The command `pytest tests/test_parser.py` fails with `KeyError: \'name\'` in parse_config. What do you run or change next to fix the parser?',
  'Implement a JavaScript function `debounce(fn, waitMs)` and show one usage example with a resize event handler.',
];

type Emit = (p: StageProgress) => Promise<void>;

export interface PreEvalDeps {
  readonly chat: ChatFn;
  readonly emit: Emit;
  readonly signal: AbortSignal;
  /** Prompt pool (single user messages); 3 are chosen deterministically from the block hash. @default DEFAULT_TOY_PROMPTS */
  readonly prompts?: readonly string[];
  /** @default DEFAULT_MIN_TOKENS */
  readonly minTokens?: number;
  /** @default DEFAULT_MAX_REPETITION */
  readonly maxRepetition?: number;
  /** @default DEFAULT_MIN_VOCAB_RATIO */
  readonly minVocabRatio?: number;
}

export interface EvalPrompt {
  readonly sampleId: string;
  readonly messages: ChatMessage[];
}

export interface EvalDeps {
  readonly chat: ChatFn;
  readonly judge: JudgeGateway;
  readonly emit: Emit;
  readonly signal: AbortSignal;
  /** Samples in the dispatcher's order; the first `input.sampleCount` are used. */
  readonly prompts: ReadonlyArray<EvalPrompt>;
  readonly attemptKey?: string;
  /** @default EVAL_MAX_TOKENS */
  readonly maxTokens?: number;
  /** @default EVAL_TEMPERATURE */
  readonly temperature?: number;
  /** @default EVAL_GENERATION_CONCURRENCY */
  readonly concurrency?: number;
}

/** First 4 bytes (big-endian) of sha256(text): the reproducible u32 seeds of preeval.md §3 / duel.md §4.3. */
export function u32Seed(text: string): number {
  return createHash('sha256').update(text, 'utf8').digest().readUInt32BE(0);
}

/** Picks `count` prompts reproducibly from the block hash (a pool of ≤ count is used as is, in order). */
export function selectPreEvalPrompts(pool: readonly string[], blockHash: string, count: number = PRE_EVAL_PROMPT_COUNT): string[] {
  if (pool.length <= count) return [...pool];
  return pool
    .map((prompt, i) => ({ prompt, rank: createHash('sha256').update(`${blockHash}:prompt:${i}`).digest('hex') }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
    .slice(0, count)
    .map((entry) => entry.prompt);
}

/** Chat-template fallback of duel.md §5 step 7: the text form of a conversation shown to judges. */
export function renderChatPrompt(messages: readonly ChatMessage[]): string {
  return `${messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>`).join('\n')}\n<|im_start|>assistant\n`;
}

/** Routes each model id to its own engine (king and challenger run on disjoint GPU groups). */
export function routeChatByModel(routes: Readonly<Record<string, ChatFn>>): ChatFn {
  return (model, messages, params, signal) => {
    const chat = Object.hasOwn(routes, model) ? routes[model] : undefined;
    if (!chat) return Promise.reject(new EngineFault(stageFault('INFRA_FAULT', 'worker_error', `no engine serves model ${model}`)));
    return chat(model, messages, params, signal);
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Serialises emits so events arrive in order even when produced by concurrent generations.
 * `post` is fire-and-forget (its failure surfaces at the next `send`/`flush`), `send` waits.
 */
function orderedEmitter(emit: Emit): { post: (p: StageProgress) => void; send: Emit; flush: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  let failure: { error: unknown } | null = null;
  const flush = async () => {
    await chain;
    if (failure) throw failure.error;
  };
  const post = (p: StageProgress) => {
    chain = chain
      .then(() => (failure ? undefined : emit(p)))
      .catch((error: unknown) => {
        failure ??= { error };
      });
  };
  const send = (p: StageProgress) => {
    post(p);
    return flush();
  };
  return { post, send, flush };
}

/** A signal that fires when the caller cancels or when we give up early (first fatal error). */
function linkedAbort(parent: AbortSignal): { signal: AbortSignal; abort: () => void } {
  const local = new AbortController();
  return { signal: AbortSignal.any([parent, local.signal]), abort: () => local.abort(new Error('stage gave up')) };
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Engine trouble in pre-eval is always INFRA, whatever the ChatFn threw. */
function preEvalInfraFault(error: unknown, signal: AbortSignal): StageFault {
  if (signal.aborted) return stageFault('INFRA_FAULT', 'run_cancelled', 'pre-eval cancelled');
  if (error instanceof EngineFault && error.fault.faultClass === 'INFRA_FAULT') return error.fault;
  return stageFault('INFRA_FAULT', 'worker_error', `pre-eval generation failed: ${errorText(error)}`);
}

export async function runPreEval(input: PreEvalInput, deps: PreEvalDeps): Promise<StageOutcome> {
  const { signal } = deps;
  const thresholds = {
    minTokens: deps.minTokens ?? DEFAULT_MIN_TOKENS,
    maxRepetition: deps.maxRepetition ?? DEFAULT_MAX_REPETITION,
    minVocabRatio: deps.minVocabRatio ?? DEFAULT_MIN_VOCAB_RATIO,
  };
  const prompts = selectPreEvalPrompts(deps.prompts ?? DEFAULT_TOY_PROMPTS, input.blockHash);
  if (prompts.length === 0) return { status: 'failed', fault: stageFault('INFRA_FAULT', 'worker_error', 'no pre-eval prompts configured') };
  const events = orderedEmitter(deps.emit);
  // One failed prompt fails the run; stop the sibling generations instead of letting them burn GPU time.
  const work = linkedAbort(signal);
  let responses: string[];
  try {
    await events.send({ type: 'generation_started', data: { modelUri: input.modelUri, promptCount: prompts.length } });
    let completed = 0;
    responses = await Promise.all(
      prompts.map(async (prompt, i) => {
        const text = await deps.chat(
          input.modelUri,
          [{ role: 'user', content: prompt }],
          { maxTokens: PRE_EVAL_MAX_TOKENS, temperature: PRE_EVAL_TEMPERATURE, seed: u32Seed(`${input.blockHash}:${i}`) },
          work.signal,
        );
        completed += 1;
        events.post({ type: 'generation_progress', data: { promptIndex: i, completed, total: prompts.length } });
        return text;
      }),
    );
    await events.flush();
  } catch (error) {
    work.abort();
    return { status: 'failed', fault: preEvalInfraFault(error, signal) };
  }
  const cleaned = responses.map(stripThinking);
  const heuristics = checkResponses(cleaned, thresholds);
  const firstFailure = heuristics.findIndex((h) => !h.passed);
  if (firstFailure !== -1) {
    const h = heuristics[firstFailure] as HeuristicResult;
    return {
      status: 'failed',
      fault: stageFault('MINER_FAULT', 'failed', `heuristic ${h.code}: ${h.reason} (prompt ${firstFailure + 1}/${prompts.length})`),
    };
  }
  return { status: 'succeeded', result: { modelUri: input.modelUri, promptCount: prompts.length, responses: cleaned, heuristics } };
}

type Side = 'challenger' | 'previous_king';
interface Generation {
  readonly text: string;
  readonly error: string | null;
}

const remoteEvalFault = (code: 'remote_worker_failed' | 'remote_run_cancelled' | 'no_valid_generated_pairs', message: string): StageOutcome => ({
  status: 'failed',
  fault: stageFault('REMOTE_EVAL_FAULT', code, message),
});

/** Judge failures are the provider's (or ours), never the miner's: keep PROVIDER class whatever was thrown. */
function judgeFailure(error: unknown): StageFault {
  if (error instanceof JudgeFault && error.fault.faultClass === 'PROVIDER_FAULT') return error.fault;
  return stageFault('PROVIDER_FAULT', 'judge_provider_exhausted', `Judge scoring failed: ${errorText(error)}`);
}

export async function runEval(input: EvalInput, deps: EvalDeps): Promise<StageOutcome> {
  const { signal } = deps;
  if (!Number.isInteger(input.sampleCount) || input.sampleCount < 1) return remoteEvalFault('remote_worker_failed', `invalid sampleCount ${input.sampleCount}`);
  if (deps.prompts.length < input.sampleCount) {
    return remoteEvalFault('remote_worker_failed', `expected ${input.sampleCount} prompts, got ${deps.prompts.length}`);
  }
  const samples = deps.prompts.slice(0, input.sampleCount);
  const events = orderedEmitter(deps.emit);
  const models: Record<Side, string> = { challenger: input.challengerModelUri, previous_king: input.kingModelUri };
  const params = { maxTokens: deps.maxTokens ?? EVAL_MAX_TOKENS, temperature: deps.temperature ?? EVAL_TEMPERATURE };
  const concurrency = deps.concurrency ?? EVAL_GENERATION_CONCURRENCY;

  try {
    await events.send({ type: 'generation_started', data: { sampleCount: samples.length, models } });
    const done = new Array<number>(samples.length).fill(0);
    let generated = 0;
    let kingErrors = 0;
    let chalErrors = 0;
    const generateSide = (side: Side) =>
      mapLimited(samples, concurrency, async (sample, i): Promise<Generation> => {
        let result: Generation;
        try {
          const seed = u32Seed(`${input.blockHash}:${sample.sampleId}:${side}`);
          result = { text: await deps.chat(models[side], sample.messages, { ...params, seed }, signal), error: null };
        } catch (error) {
          if (signal.aborted) throw error;
          // Per-sample errors exclude the pair (duel.md §4.3); they never become a MINER fault.
          result = { text: '', error: errorText(error) };
          if (side === 'previous_king') kingErrors += 1;
          else chalErrors += 1;
        }
        done[i] = (done[i] ?? 0) + 1;
        if (done[i] === 2) {
          generated += 1;
          if (generated % EVAL_GENERATION_BATCH_SIZE === 0 || generated === samples.length) {
            events.post({
              type: 'generation_progress',
              data: { generatedSampleCount: generated, sampleCount: samples.length, kingErrors, chalErrors },
            });
          }
        }
        return result;
      });
    const [challenger, king] = await Promise.all([generateSide('challenger'), generateSide('previous_king')]);
    await events.flush();

    const pairs = samples.flatMap((sample, i) => {
      const c = challenger[i] as Generation;
      const k = king[i] as Generation;
      return c.error === null && k.error === null
        ? [{ sampleId: sample.sampleId, sampleIndex: i, prompt: renderChatPrompt(sample.messages), kingAnswer: k.text, challengerAnswer: c.text }]
        : [];
    });
    if (pairs.length === 0) {
      const firstError = [...king, ...challenger].find((g) => g.error)?.error ?? 'unknown';
      return remoteEvalFault('no_valid_generated_pairs', `no valid generated pairs (king errors ${kingErrors}, challenger errors ${chalErrors}; first: ${firstError})`);
    }

    await events.send({ type: 'scoring_started', data: { validPairs: pairs.length, sampleCount: samples.length } });
    let scored: JudgeDuelResult;
    try {
      scored = await deps.judge.judgeDuel({ ...(deps.attemptKey ? { attemptKey: deps.attemptKey } : {}), samples: pairs, totalSampleCount: samples.length, signal });
    } catch (error) {
      if (signal.aborted) throw error;
      return { status: 'failed', fault: judgeFailure(error) };
    }

    const { challengerWon, winMargin } = marginVerdict({ scoreChallenger: scored.scoreChallenger, scoreKing: scored.scoreKing, margin: input.winMargin });
    const verdict: EvalVerdict = {
      challengerWon,
      scoreChallenger: scored.scoreChallenger,
      scoreKing: scored.scoreKing,
      winMargin,
      sampleCount: samples.length,
      scoredSampleCount: scored.scoredSampleCount,
      judgeCount: scored.judgeCount,
      validFraction: scored.validFraction,
    };
    await events.send({
      type: 'verdict',
      data: {
        ...verdict,
        requiredWinMargin: input.winMargin,
        kingErrors,
        chalErrors,
        judgeErrors: scored.judgeErrors,
        byJudge: scored.byJudge,
        byMetric: scored.byMetric,
        servedJudgeModels: scored.servedModels,
      },
    });
    return { status: 'succeeded', result: { ...verdict } };
  } catch (error) {
    if (signal.aborted) return remoteEvalFault('remote_run_cancelled', 'eval run cancelled');
    return remoteEvalFault('remote_worker_failed', errorText(error));
  }
}
