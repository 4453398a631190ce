/**
 * Node-side work of the PRE_EVAL and EVAL stages, independent of transport: the caller supplies the
 * engine (`ChatFn`), the judge and a progress sink, and gets a {@link StageOutcome}. Fault
 * attribution is decided here and only here: a miner is charged (MINER `failed`) solely when its own
 * model's text fails a pre-eval heuristic; engine, king-side and judge failures never are.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stageFault, type StageFault } from '../core/faults.ts';
import type { EvalInput, EvalVerdict, PreEvalInput, StageOutcome, StageProgress } from '../core/stage.ts';
import { JudgeFault, type JudgeDuelResult, type JudgeGateway } from '../judge/types.ts';
import { scoredSamplesFromRecords, scoringInputsHash } from '../judge/scoring-hash.ts';
import { decideVerdict, marginVerdict, type VerdictConfig, VerdictError, type VerdictRecord, verdictScoresFromDuel, WIN_POLICIES, type WinPolicy } from '../judge/verdict.ts';
import { FALLBACK_CHAT_RENDERER } from '../dataset/chat-template.ts';
import { renderFallbackChatTemplate } from '../dataset/samples.ts';
import { type GeneratedSampleRow, writeEvalArtifacts } from './eval-artifacts.ts';
import { EngineFault, EVAL_STOP_TOKEN_IDS, EVAL_TOP_K, EVAL_TOP_P, type ChatFn, type ChatMessage, type CompletionFn } from './engine.ts';
import { evalArtifactPrefix, uploadEvalArtifacts } from './artifact-upload.ts';
import type { ArtifactStore } from '../persistence/artifact-store.ts';
import { checkResponses, DEFAULT_MAX_REPETITION, DEFAULT_MIN_TOKENS, DEFAULT_MIN_VOCAB_RATIO, stripThinking, type HeuristicResult } from './preeval-heuristics.ts';

export type { ChatFn, ChatMessage, CompletionFn, CompletionParams, GenerationParams } from './engine.ts';
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
  /**
   * The prompt text rendered from `messages` (duel.md §5 step 7; dataset/chat-template.ts
   * `withRenderedPrompts`): what the judges see and the artifacts record.
   * @default the §5 fallback rendering of `messages`
   */
  readonly prompt?: string;
  /** sha256 of the chat template `prompt` was rendered with; null for the fallback. @default null */
  readonly templateSha256?: string | null;
}

export interface EvalDeps {
  /** Chat generation: the fallback path, used for samples without a pinned-template rendering. */
  readonly chat: ChatFn;
  /**
   * Raw-prompt generation (`/v1/completions`, duel.md §4.3), used for every sample whose `prompt` was
   * rendered with the pinned template (`templateSha256` set). @default none (chat for every sample)
   */
  readonly complete?: CompletionFn;
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
  /**
   * The eval run id (duel.md §2), part of the bootstrap seed (§12). @default the input's `evalRunId`,
   * else `attemptKey`, else `"local"`
   */
  readonly evalRunId?: string;
  /**
   * Verdict rules; `margin` always comes from `input.winMargin`.
   * @default verdictConfigFromEnv(process.env) (`ALBEDO_WIN_POLICY`, `ALBEDO_WIN_ALPHA`, `ALBEDO_WIN_DELTA0`, `ALBEDO_WIN_BOOTSTRAP_B`)
   */
  readonly verdictConfig?: Partial<VerdictConfig>;
  /** `mean(d)` of recent A/A duels, oldest first (noise floor, duel.md §12). @default [] */
  readonly aaMargins?: readonly number[];
  /**
   * Spool directory for this run's artifacts (duel.md §11). @default `$ALBEDO_REMOTE_ARTIFACT_SPOOL_DIR/<evalRunId>`
   * when that variable is set, else no artifacts are written
   */
  readonly artifactDir?: string;
  /** Version of the scoring code, hashed into `scoringInputsHash`. @default EVAL_CODE_VERSION */
  readonly codeVersion?: string;
  /**
   * Where the spooled artifacts are uploaded (duel.md §11); the verdict then lists the stored URIs.
   * An upload failure fails the run as INFRA (retried). @default null (the local spool only)
   */
  readonly artifactStore?: ArtifactStore | null;
  /**
   * The run's `artifact_prefix` (duel.md §2). @default the input's `artifactPrefix` / `artifact_prefix`,
   * else `evalArtifactPrefix` of `ALBEDO_EVAL_ARTIFACT_PREFIX`, the attempt key and the eval run id
   */
  readonly artifactPrefix?: string;
  /** Remove the spool after a successful upload (`ALBEDO_REMOTE_CLEANUP_LOCAL_ARTIFACTS`). @default false */
  readonly cleanupLocalArtifacts?: boolean;
}

/** `albedo@<package version>`: the code version hashed into every verdict's `scoringInputsHash`. */
export const EVAL_CODE_VERSION = `albedo@${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;

/** The allowed per-metric challenger shares of the v1 judge (duel.md §10 `allowed_scores`). */
const ALLOWED_SCORES = [0, 0.5, 1] as const;

/** Verdict settings from the environment (spec/config.md); unset variables keep the defaults. */
export function verdictConfigFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<VerdictConfig> {
  const out: { -readonly [K in keyof VerdictConfig]?: VerdictConfig[K] } = {};
  const policy = env.ALBEDO_WIN_POLICY?.trim();
  if (policy) {
    if (!(WIN_POLICIES as readonly string[]).includes(policy)) throw new VerdictError('invalid_config', `ALBEDO_WIN_POLICY must be one of ${WIN_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
    out.policy = policy as WinPolicy;
  }
  const number = (name: string): number | undefined => {
    const raw = env[name]?.trim();
    if (!raw) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new VerdictError('invalid_config', `${name} must be a number, got ${JSON.stringify(raw)}`);
    return value;
  };
  const alpha = number('ALBEDO_WIN_ALPHA');
  const delta0 = number('ALBEDO_WIN_DELTA0');
  const replicates = number('ALBEDO_WIN_BOOTSTRAP_B');
  if (alpha !== undefined) out.alpha = alpha;
  if (delta0 !== undefined) out.delta0 = delta0;
  if (replicates !== undefined) out.bootstrapReplicates = replicates;
  return out;
}

/**
 * Model identity for `scoringInputsHash` (`<repo>@<digest>`). Dev and test refs without a digest
 * (e.g. `org/plain-1`) are hashed as `<ref>@unpinned`; the identity used is recorded in verdict.json.
 */
export function scoringIdentity(modelUri: string): string {
  return /^[^\s@]+@[^\s@]+$/.test(modelUri) ? modelUri : `${modelUri.replace(/[\s@]/g, '_') || 'unknown'}@unpinned`;
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

/**
 * The §5 step 7 fallback (dataset/samples.ts), kept under its old name for existing callers; prompts
 * are rendered by a dataset/chat-template.ts `ChatPromptRenderer`.
 */
export const renderChatPrompt: (messages: readonly ChatMessage[]) => string = renderFallbackChatTemplate;

/** Routes each model id to its own engine (king and challenger run on disjoint GPU groups). */
export function routeChatByModel(routes: Readonly<Record<string, ChatFn>>): ChatFn {
  return (model, messages, params, signal) => {
    const chat = Object.hasOwn(routes, model) ? routes[model] : undefined;
    if (!chat) return Promise.reject(new EngineFault(stageFault('INFRA_FAULT', 'worker_error', `no engine serves model ${model}`)));
    return chat(model, messages, params, signal);
  };
}

/** {@link routeChatByModel} for raw-prompt completions. */
export function routeCompletionByModel(routes: Readonly<Record<string, CompletionFn>>): CompletionFn {
  return (model, prompt, params, signal) => {
    const complete = Object.hasOwn(routes, model) ? routes[model] : undefined;
    if (!complete) return Promise.reject(new EngineFault(stageFault('INFRA_FAULT', 'worker_error', `no engine serves model ${model}`)));
    return complete(model, prompt, params, signal);
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

/** Requested judge models in roster order (first appearance across the records). */
function judgeRoster(records: JudgeDuelResult['records']): string[] {
  return [...new Set(records.flatMap((r) => r.judgeResults.map((j) => j.judgeModel)))];
}

/** The run's `artifact_prefix`: given, else from the request, else derived (duel.md §2). */
function artifactPrefixOf(deps: EvalDeps, input: EvalInput, evalRunId: string): string {
  if (deps.artifactPrefix) return deps.artifactPrefix;
  const fromRequest = input as EvalInput & { artifactPrefix?: unknown; artifact_prefix?: unknown };
  const requested = fromRequest.artifactPrefix ?? fromRequest.artifact_prefix;
  if (typeof requested === 'string' && requested !== '') return requested;
  const root = process.env.ALBEDO_EVAL_ARTIFACT_PREFIX?.trim();
  return evalArtifactPrefix({ ...(root ? { rootPrefix: root } : {}), attemptKey: deps.attemptKey ?? null, evalRunId });
}

/**
 * Uploads the spool and returns the stored URIs; any failure (store down, bad prefix) is INFRA, so
 * the run is retried and never charged to the miner. The spool is removed only after a full upload.
 */
async function uploadSpool(
  deps: EvalDeps,
  input: EvalInput,
  spoolDir: string,
  evalRunId: string,
): Promise<{ artifacts: Record<string, string>; artifactMetadata: Record<string, unknown> } | { fault: StageFault }> {
  let uploaded: Awaited<ReturnType<typeof uploadEvalArtifacts>>;
  try {
    uploaded = await uploadEvalArtifacts(deps.artifactStore!, { spoolDir, artifactPrefix: artifactPrefixOf(deps, input, evalRunId), evalRunId });
  } catch (error) {
    return { fault: stageFault('INFRA_FAULT', 'worker_error', `eval artifact upload failed: ${errorText(error)}`) };
  }
  if (deps.cleanupLocalArtifacts) await rm(spoolDir, { recursive: true, force: true });
  return { artifacts: { ...uploaded.artifacts }, artifactMetadata: { ...uploaded.artifactMetadata } };
}

export async function runEval(input: EvalInput, deps: EvalDeps): Promise<StageOutcome> {
  const { signal } = deps;
  if (!Number.isInteger(input.sampleCount) || input.sampleCount < 1) return remoteEvalFault('remote_worker_failed', `invalid sampleCount ${input.sampleCount}`);
  if (deps.prompts.length < input.sampleCount) {
    return remoteEvalFault('remote_worker_failed', `expected ${input.sampleCount} prompts, got ${deps.prompts.length}`);
  }
  const samples = deps.prompts.slice(0, input.sampleCount);
  // duel.md §5 step 7: one rendering per sample, shared by the judges, the artifacts and the scoring hash.
  const promptTexts = samples.map((s) => s.prompt ?? FALLBACK_CHAT_RENDERER.render(s.messages));
  const templateShas = [...new Set(samples.map((s) => (s.prompt === undefined ? FALLBACK_CHAT_RENDERER.templateSha256 : (s.templateSha256 ?? null))))];
  if (templateShas.length > 1) return remoteEvalFault('remote_worker_failed', `the eval's prompts were rendered with ${templateShas.length} different chat templates`);
  const chatTemplateSha256 = templateShas[0] ?? null;
  // Every event is kept for progress.jsonl (duel.md §11), in the order it was emitted.
  const hostEvents: StageProgress[] = [];
  const events = orderedEmitter(async (p) => {
    hostEvents.push(p);
    await deps.emit(p);
  });
  const models: Record<Side, string> = { challenger: input.challengerModelUri, previous_king: input.kingModelUri };
  const params = { maxTokens: deps.maxTokens ?? EVAL_MAX_TOKENS, temperature: deps.temperature ?? EVAL_TEMPERATURE };
  const concurrency = deps.concurrency ?? EVAL_GENERATION_CONCURRENCY;
  const inputRunId = (input as EvalInput & { evalRunId?: unknown }).evalRunId;
  const evalRunId = deps.evalRunId ?? (typeof inputRunId === 'string' && inputRunId ? inputRunId : (deps.attemptKey ?? 'local'));
  const usesCompletions = (sample: EvalPrompt): boolean => deps.complete !== undefined && sample.prompt !== undefined && typeof sample.templateSha256 === 'string';
  const generationPath = samples.some(usesCompletions) ? 'completions' : 'chat';

  try {
    const verdictConfig = { ...(deps.verdictConfig ?? verdictConfigFromEnv(process.env)), margin: input.winMargin };
    const spool = process.env.ALBEDO_REMOTE_ARTIFACT_SPOOL_DIR?.trim();
    const artifactDir = deps.artifactDir ?? (spool ? join(spool, evalRunId.replace(/[^A-Za-z0-9_.:-]/g, '_')) : undefined);

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
          // duel.md §4.3: the pinned rendering goes to the engine as is; chat messages only on the fallback path.
          const text =
            usesCompletions(sample)
              ? await deps.complete!(models[side], sample.prompt!, { ...params, seed, topP: EVAL_TOP_P, topK: EVAL_TOP_K, stopTokenIds: EVAL_STOP_TOKEN_IDS }, signal)
              : await deps.chat(models[side], sample.messages, { ...params, seed }, signal);
          result = { text, error: null };
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
        ? [{ sampleId: sample.sampleId, sampleIndex: i, prompt: promptTexts[i]!, kingAnswer: k.text, challengerAnswer: c.text }]
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

    // The verdict (duel.md §10, §12): both rules are computed for every eval, the policy decides.
    const scoringInputs = {
      protocolVersion: 'v1' as const,
      codeVersion: deps.codeVersion ?? EVAL_CODE_VERSION,
      challenger: scoringIdentity(models.challenger),
      king: scoringIdentity(models.previous_king),
      judgeModels: judgeRoster(scored.records),
    };
    let record: VerdictRecord | null = null;
    if (scored.records.length > 0) {
      const promptById = new Map(pairs.map((p) => [p.sampleId, p.prompt]));
      const hash = scoringInputsHash({ ...scoringInputs, samples: scoredSamplesFromRecords(scored.records, promptById) });
      try {
        record = decideVerdict(
          { evalRunId, sampleSeed: input.blockHash, ...verdictScoresFromDuel(scored), aaMargins: deps.aaMargins ?? [], scoringInputsHash: hash },
          verdictConfig,
        );
      } catch (error) {
        if (error instanceof VerdictError && (error.code === 'too_few_valid_samples' || error.code === 'empty_sample')) {
          return { status: 'failed', fault: stageFault('PROVIDER_FAULT', 'scoring_invalid', error.message) };
        }
        throw error;
      }
    } else if ((verdictConfig.policy ?? 'margin') !== 'margin') {
      // A judge without per-sample records cannot feed the bootstrap; only the margin rule works without them.
      return remoteEvalFault('remote_worker_failed', `the judge returned no per-sample records; win policy ${verdictConfig.policy} needs them`);
    }
    const { challengerWon, winMargin } = record ?? marginVerdict({ scoreChallenger: scored.scoreChallenger, scoreKing: scored.scoreKing, margin: input.winMargin });
    const winLcb = record?.winLcb ?? null;
    const winPolicy = record?.policy ?? 'margin';
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

    let artifacts: { artifacts: Record<string, string>; artifactMetadata: Record<string, unknown> } = { artifacts: {}, artifactMetadata: {} };
    if (artifactDir !== undefined) {
      const rows: GeneratedSampleRow[] = samples.map((sample, i) => {
        const c = challenger[i] as Generation;
        const k = king[i] as Generation;
        return {
          sampleId: sample.sampleId,
          prompt: promptTexts[i]!,
          kingOutput: k.error === null ? k.text : null,
          challengerOutput: c.error === null ? c.text : null,
          kingError: k.error,
          chalError: c.error,
        };
      });
      const counterbalance = scored.records.some((r) => new Set(r.judgeResults.map((j) => j.order[0])).size > 1) ? 'both-orders' : 'split-half';
      const written = await writeEvalArtifacts({
        dir: artifactDir,
        evalRunId,
        // Prompt provenance: the template the prompts were rendered with and each prompt's sha256 (the texts are in the transcript).
        request: {
          ...input,
          evalRunId,
          attemptKey: deps.attemptKey ?? null,
          sampleIds: samples.map((s) => s.sampleId),
          chatTemplateSha256,
          generationPath,
          promptSha256s: promptTexts.map((text) => createHash('sha256').update(text, 'utf8').digest('hex')),
        },
        events: hostEvents,
        samples: rows,
        records: scored.records,
        logs: [
          ['remote_run_id', deps.attemptKey ?? evalRunId],
          ['eval_run_id', evalRunId],
          ['state', 'succeeded'],
          ['events', hostEvents.length + 1],
          ['king_vllm_errors', kingErrors],
          ['chal_vllm_errors', chalErrors],
          ['judge_errors', scored.judgeErrors],
        ],
        verdict: {
          type: 'verdict',
          eval_run_id: evalRunId,
          state: 'succeeded',
          challenger_won: challengerWon,
          score_challenger: scored.scoreChallenger,
          score_king: scored.scoreKing,
          win_margin: winMargin,
          win_lcb: winLcb,
          win_policy: winPolicy,
          judge_count: scored.judgeCount,
          allowed_scores: [...ALLOWED_SCORES],
          valid_turns: scored.scoredSampleCount,
          total_turns: samples.length,
          generated_sample_count: samples.length,
          scored_sample_count: scored.scoredSampleCount,
          king_vllm_errors: kingErrors,
          chal_vllm_errors: chalErrors,
          judge_errors: scored.judgeErrors,
          required_win_margin: input.winMargin,
          gpu_topology: null,
          score_breakdown: { by_judge: scored.byJudge, by_metric: scored.byMetric },
          served_judge_models: scored.servedModels,
          sample_seed: input.blockHash,
          counterbalance,
          scoring_inputs: {
            protocol_version: scoringInputs.protocolVersion,
            code_version: scoringInputs.codeVersion,
            challenger: scoringInputs.challenger,
            king: scoringInputs.king,
            judge_models: scoringInputs.judgeModels,
          },
          verdict_record: record,
          fault_class: null,
          fault_code: null,
          fault_message: null,
          retryable: false,
        },
      });
      artifacts = { artifacts: written.artifacts, artifactMetadata: written.artifactMetadata };
      if (deps.artifactStore) {
        const uploaded = await uploadSpool(deps, input, artifactDir, evalRunId);
        if ('fault' in uploaded) return { status: 'failed', fault: uploaded.fault };
        artifacts = uploaded;
      }
    }

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
        evalRunId,
        winLcb,
        winPolicy,
        validTurns: scored.scoredSampleCount,
        totalTurns: samples.length,
        verdictRecord: record,
        artifacts: artifacts.artifacts,
        artifactMetadata: artifacts.artifactMetadata,
      },
    });
    return {
      status: 'succeeded',
      result: {
        ...verdict,
        winLcb,
        winPolicy,
        validTurns: scored.scoredSampleCount,
        totalTurns: samples.length,
        kingVllmErrors: kingErrors,
        chalVllmErrors: chalErrors,
        judgeErrors: scored.judgeErrors,
        scoringInputsHash: record?.scoringInputsHash ?? null,
        verdictRecord: record,
        artifacts: artifacts.artifacts,
        artifactMetadata: artifacts.artifactMetadata,
      },
    };
  } catch (error) {
    if (signal.aborted) return remoteEvalFault('remote_run_cancelled', 'eval run cancelled');
    return remoteEvalFault('remote_worker_failed', errorText(error));
  }
}
