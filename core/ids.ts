/**
 * Branded identifiers. A plain string cannot be passed where a `SubmissionId` is expected, so an
 * attempt key can never be confused with a submission id at a call site.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type SubmissionId = Brand<string, 'SubmissionId'>;
export type AttemptKey = Brand<string, 'AttemptKey'>;
export type NodeId = Brand<string, 'NodeId'>;
export type EvalRunId = Brand<string, 'EvalRunId'>;
export type Hotkey = Brand<string, 'Hotkey'>;

/** Pipeline stages that run as stage services (names as in spec/pipeline.md `stage_attempts.stage`). */
export const STAGES = ['HIPPIUS', 'PRE_EVAL', 'EVAL', 'SET_REIGN', 'WEIGHT_SET'] as const;
export type Stage = (typeof STAGES)[number];

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ATTEMPT_KEY_RE = /^([0-9a-f-]{36}):(HIPPIUS|PRE_EVAL|EVAL|SET_REIGN|WEIGHT_SET):([1-9][0-9]{0,5})$/;

export function asSubmissionId(value: string): SubmissionId {
  if (!UUID_RE.test(value)) throw new TypeError(`not a submission id (uuid): ${JSON.stringify(value).slice(0, 80)}`);
  return value as SubmissionId;
}

export function isSubmissionId(value: unknown): value is SubmissionId {
  return typeof value === 'string' && UUID_RE.test(value);
}

/**
 * The idempotency key of one stage attempt: `${submissionId}:${stage}:${n}` (spec/pipeline.md §4.1).
 * Every remote call carries it; a service that sees a known key returns the existing run.
 * @example attemptKey(id, 'EVAL', 2) // "…:EVAL:2"
 */
export function attemptKey(submissionId: SubmissionId, stage: Stage, attemptNumber: number): AttemptKey {
  if (!Number.isInteger(attemptNumber) || attemptNumber < 1) throw new RangeError(`attempt number must be ≥ 1, got ${attemptNumber}`);
  return `${submissionId}:${stage}:${attemptNumber}` as AttemptKey;
}

export function parseAttemptKey(value: string): { submissionId: SubmissionId; stage: Stage; attemptNumber: number } {
  const m = ATTEMPT_KEY_RE.exec(value);
  if (!m) throw new TypeError(`not an attempt key: ${JSON.stringify(value).slice(0, 120)}`);
  return { submissionId: m[1] as SubmissionId, stage: m[2] as Stage, attemptNumber: Number(m[3]) };
}

export function isAttemptKey(value: unknown): value is AttemptKey {
  return typeof value === 'string' && ATTEMPT_KEY_RE.test(value);
}

export function asNodeId(value: string): NodeId {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) throw new TypeError(`node id must be 1-64 chars of [A-Za-z0-9._-]: ${JSON.stringify(value).slice(0, 80)}`);
  return value as NodeId;
}
