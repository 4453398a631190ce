/**
 * Content hash of everything a duel verdict was scored from (stored as `VerdictRecord.scoringInputsHash`):
 * the samples (ids and prompts, in sample order), both model identities, the judge roster, every
 * judge's raw verdict, the protocol version and the code version. Two verdicts with the same hash saw
 * the same inputs; any changed input changes it.
 *
 * Canonical form: `json.dumps(doc, sort_keys=True, separators=(",", ":"))` (chain/compat.ts
 * `canonicalJson`), then sha256 of its bytes (ASCII: strings are `\u`-escaped). Object key order never
 * matters; array order does, on purpose — sample order drives counterbalancing and the bootstrap's
 * index mapping, and roster order picks the judges. Prompts enter as the sha256 of their UTF-8 bytes
 * so the document stays small (128 prompts of tens of kB each).
 */
import { createHash } from 'node:crypto';
import { type CanonicalJsonValue, canonicalJson, hasLoneSurrogate } from '../chain/compat.ts';
import type { JudgeOrder, JudgeSampleRecord } from './types.ts';
import { VerdictError } from './verdict-stats.ts';

/** Version tag inside the hashed document; bump it whenever the document's shape changes. */
export const SCORING_HASH_VERSION = 'albedo-scoring-inputs-v1';

/** `<repo>@<digest>`, e.g. `teutonic/qwen3.6-35b-a3b-genesis@sha256:efd5…`. */
const MODEL_IDENTITY_RE = /^[^\s@]+@[^\s@]+$/;

export interface JudgeVerdictInput {
  /** Requested judge model id. */
  readonly judgeModel: string;
  /** Model the provider reported serving, when known. @default null */
  readonly servedModel?: string | null;
  readonly order: JudgeOrder;
  /** The judge's reply exactly as received (`""` when the call failed). */
  readonly rawVerdict: string;
}

export interface ScoredSampleInput {
  readonly sampleId: string;
  /** The rendered prompt both models answered. */
  readonly prompt: string;
  readonly judgeVerdicts: readonly JudgeVerdictInput[];
}

export interface ScoringInputs {
  readonly protocolVersion: 'v1' | 'v2';
  /** Version of the scoring code (e.g. the package version plus git commit). */
  readonly codeVersion: string;
  /** Challenger identity `<repo>@<digest>`. */
  readonly challenger: string;
  /** Previous king identity `<repo>@<digest>`. */
  readonly king: string;
  /** The judge roster in request order. */
  readonly judgeModels: readonly string[];
  /** Every sample sent to the judges, in sample order. */
  readonly samples: readonly ScoredSampleInput[];
}

function fail(message: string): never {
  throw new VerdictError('invalid_scoring_input', message);
}

function text(value: unknown, what: string, allowEmpty = false): string {
  if (typeof value !== 'string') fail(`${what} must be a string`);
  if (!allowEmpty && value.length === 0) fail(`${what} must not be empty`);
  // A lone surrogate has no UTF-8 form: two different prompts would hash alike after U+FFFD replacement.
  if (hasLoneSurrogate(value)) fail(`${what} contains a lone surrogate`);
  return value;
}

function modelIdentity(value: string, what: string): string {
  if (!MODEL_IDENTITY_RE.test(text(value, what))) fail(`${what} must be <repo>@<digest>, got ${JSON.stringify(value)}`);
  return value;
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

/**
 * The canonical JSON document that {@link scoringInputsHash} hashes (exported to show/debug what is
 * covered). Throws `VerdictError('invalid_scoring_input')` on malformed input.
 */
export function canonicalScoringInputs(inputs: ScoringInputs): string {
  if (inputs.protocolVersion !== 'v1' && inputs.protocolVersion !== 'v2') fail(`unknown protocol version ${JSON.stringify(inputs.protocolVersion)}`);
  if (inputs.judgeModels.length === 0) fail('judgeModels must not be empty');
  const seen = new Set<string>();
  const samples: CanonicalJsonValue[] = inputs.samples.map((sample, i) => {
    const sampleId = text(sample.sampleId, `samples[${i}].sampleId`);
    if (seen.has(sampleId)) fail(`duplicate sample id ${JSON.stringify(sampleId)}`);
    seen.add(sampleId);
    return {
      sampleId,
      promptSha256: sha256Hex(text(sample.prompt, `samples[${i}].prompt`, true)),
      judgeVerdicts: sample.judgeVerdicts.map((v, j) => ({
        judgeModel: text(v.judgeModel, `samples[${i}].judgeVerdicts[${j}].judgeModel`),
        servedModel: v.servedModel == null ? null : text(v.servedModel, `samples[${i}].judgeVerdicts[${j}].servedModel`),
        order: [...v.order],
        rawVerdict: text(v.rawVerdict, `samples[${i}].judgeVerdicts[${j}].rawVerdict`, true),
      })),
    };
  });
  return canonicalJson({
    hashVersion: SCORING_HASH_VERSION,
    protocolVersion: inputs.protocolVersion,
    codeVersion: text(inputs.codeVersion, 'codeVersion'),
    challenger: modelIdentity(inputs.challenger, 'challenger'),
    king: modelIdentity(inputs.king, 'king'),
    judgeModels: inputs.judgeModels.map((m, i) => text(m, `judgeModels[${i}]`)),
    samples,
  });
}

/**
 * `sha256:<hex>` over {@link canonicalScoringInputs}.
 * @example scoringInputsHash({ protocolVersion: 'v1', codeVersion: '0.1.0+abc123', challenger: 'a/b@sha256:…', king: 'c/d@sha256:…', judgeModels, samples })
 */
export function scoringInputsHash(inputs: ScoringInputs): string {
  return `sha256:${sha256Hex(canonicalScoringInputs(inputs))}`;
}

/**
 * The per-sample inputs from the judge's own records plus the prompts (by sample id), so callers hash
 * exactly what the judges saw and said. Every record must have its prompt.
 */
export function scoredSamplesFromRecords(records: readonly JudgeSampleRecord[], promptById: ReadonlyMap<string, string>): ScoredSampleInput[] {
  return records.map((r) => {
    const prompt = promptById.get(r.sampleId);
    if (prompt === undefined) fail(`no prompt for sample ${JSON.stringify(r.sampleId)}`);
    return {
      sampleId: r.sampleId,
      prompt,
      judgeVerdicts: r.judgeResults.map((j) => ({ judgeModel: j.judgeModel, servedModel: j.servedModel, order: j.order, rawVerdict: j.rawVerdict })),
    };
  });
}
