/**
 * One fault type at every boundary (spec/pipeline.md §5). Retryability is derived from the class,
 * never trusted from a remote payload: MINER faults are terminal, all others are retryable.
 */
export const FAULT_CLASSES = ['MINER_FAULT', 'INFRA_FAULT', 'REMOTE_EVAL_FAULT', 'PROVIDER_FAULT', 'CHAIN_FAULT', 'UNKNOWN_FAULT'] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/** Closed union of fault codes used by the spine; stage issues extend this list, never free text. */
export const FAULT_CODES = [
  // chain reader
  'hotkey_reused', 'hotkey_swap',
  // validation (MINER)
  'invalid_ref', 'repo_name', 'repo_not_found', 'empty_repo', 'file_manifest', 'weight_dtype', 'safetensors_header',
  'architecture', 'incomplete_repo', 'safetensors_index', 'fingerprint_too_large', 'duplicate', 'too_similar',
  'hotkey_already_validated', 'hotkey_banned', 'chat_template_hash', 'metadata_hash', 'non_finite_weights',
  // validation (INFRA)
  'list_files_failed', 'preflight_failed', 'download_config_failed', 'architecture_read_failed', 'download_failed',
  'fingerprint_failed', 'weights_hash_failed', 'dedup_backend_failed', 'dedup_index_failed', 'unexpected',
  'validation_lease_expired',
  // pre-eval
  'failed', 'injection', 'worker_unreachable', 'worker_busy', 'judges_failed', 'judges_unavailable',
  'pre_eval_lease_expired', 'download_timeout', 'vllm_boot_failed', 'generation_timeout', 'generation_transport_error',
  'worker_error', 'run_cancelled', 'worker_fault',
  // eval
  'insufficient_valid_samples', 'no_valid_generated_pairs', 'remote_worker_failed', 'remote_run_cancelled',
  'remote_stream_broken', 'eval_attempt_lease_expired', 'judge_provider_exhausted', 'scoring_invalid',
  'missing_active_lead_king', 'eval_retry_limit_exceeded', 'unknown_remote_failure',
  // set-reign
  'missing_winning_eval_run', 'challenger_model_hash_mismatch', 'missing_active_reign', 'missing_challenger_model_artifact',
  'stale_winning_eval', 'set_reign_lease_expired',
  // weights
  'weight_set_exception', 'weight_set_rate_limited', 'weight_set_rejected', 'weight_set_not_included', 'weight_set_timeout',
  'weight_set_lease_expired',
  // spine (new): our own crashes, deadlines and operator actions — never a miner's fault
  'executor_lost', 'stage_deadline_exceeded', 'queue_deadline_exceeded', 'operator_cancelled', 'no_worker_available', 'claim_superseded',
] as const;
export type FaultCode = (typeof FAULT_CODES)[number];

export interface StageFault {
  readonly faultClass: FaultClass;
  readonly code: FaultCode;
  readonly message: string;
  /** Derived from `faultClass` by {@link stageFault}; never copied from a remote verdict. */
  readonly retryable: boolean;
  /** False for our own shutdowns, busy workers and operator actions (spec §3 "Not counted"). */
  readonly countsAgainstBudget: boolean;
}

/** Codes that never count as a strike against a hotkey (spec/pipeline.md §5). */
export const BOOKKEEPING_CODES: ReadonlySet<FaultCode> = new Set([
  'hotkey_already_validated', 'hotkey_banned', 'hotkey_reused', 'hotkey_swap', 'duplicate', 'invalid_ref',
]);

/** Codes whose attempts do not consume the stage's retry budget. */
const BUDGET_FREE_CODES: ReadonlySet<FaultCode> = new Set([
  'worker_busy', 'executor_lost', 'operator_cancelled', 'no_worker_available', 'claim_superseded', 'missing_active_lead_king',
]);

const MAX_MESSAGE = 2000;

/**
 * Builds a fault; the only constructor, so `retryable` is always consistent with the class.
 * @example stageFault('INFRA_FAULT', 'download_failed', 'hub returned 503 three times')
 */
export function stageFault(faultClass: FaultClass, code: FaultCode, message: string): StageFault {
  return {
    faultClass,
    code,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message,
    retryable: faultClass !== 'MINER_FAULT',
    countsAgainstBudget: !BUDGET_FREE_CODES.has(code),
  };
}

export function isFaultClass(value: unknown): value is FaultClass {
  return typeof value === 'string' && (FAULT_CLASSES as readonly string[]).includes(value);
}

export function isFaultCode(value: unknown): value is FaultCode {
  return typeof value === 'string' && (FAULT_CODES as readonly string[]).includes(value);
}

/**
 * Classifies a fault reported by a remote worker (spec §5): unknown classes become UNKNOWN_FAULT,
 * unknown codes `unknown_remote_failure`, and retryability comes from the class alone.
 */
export function classifyRemoteFault(raw: { faultClass?: unknown; code?: unknown; message?: unknown }): StageFault {
  const faultClass = isFaultClass(raw.faultClass) ? raw.faultClass : 'UNKNOWN_FAULT';
  const code = isFaultCode(raw.code) ? raw.code : 'unknown_remote_failure';
  const message = typeof raw.message === 'string' && raw.message.length > 0 ? raw.message : 'Remote stage failed';
  return stageFault(faultClass, code, message);
}

/**
 * The error class of the backend boundary. `code` is a closed union; anything thrown that is not an
 * AlbedoError is normalised by {@link toAlbedoError} so stack traces never leak to clients.
 */
export const ALBEDO_ERROR_CODES = ['CONFIG', 'DATABASE_UNREACHABLE', 'UNAUTHORIZED', 'NOT_FOUND', 'CONFLICT', 'STALE_EPOCH', 'BAD_INPUT', 'INTERNAL'] as const;
export type AlbedoErrorCode = (typeof ALBEDO_ERROR_CODES)[number];

export class AlbedoError extends Error {
  override readonly name = 'AlbedoError';
  constructor(
    readonly code: AlbedoErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function toAlbedoError(cause: unknown): AlbedoError {
  if (cause instanceof AlbedoError) return cause;
  const message = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : 'unknown error';
  return new AlbedoError('INTERNAL', message, { cause });
}
