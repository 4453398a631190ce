/**
 * The validation `fault.json` (spec/validation.md §10): uploaded to
 * `<bucket>/hippius_validation/<hotkey>/<digest with ':'→'_'>/fault.json` as
 * `{model_uri, hotkey, block_number, fault_class, fault_code, fault_message, ...fault_detail}` and
 * recorded as a `VALIDATION_FAULT` artifact; the caller stores the returned `faultUri` as
 * `result_summary.fault_uri` on the attempt. Public-read per `ALBEDO_PUBLIC_ARTIFACT_TYPES`.
 */
import { createHash } from 'node:crypto';
import type { StageFault } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { compareCodePoints, PyFloat, pyJsonDumps } from '../core/py-compat.ts';
import { type ArtifactRecord, type ArtifactStore, ArtifactStoreError, joinArtifactKey } from '../persistence/artifact-store.ts';
import { type ArtifactRow, artifactRowOf, type Queryable, recordArtifact } from '../persistence/artifacts.ts';

/** Key root of validation faults (spec/validation.md §10). */
export const VALIDATION_FAULT_KEY_ROOT = 'hippius_validation';
export const VALIDATION_FAULT_FILE = 'fault.json';
export const VALIDATION_FAULT_CONTENT_TYPE = 'application/json';
/** Longest hotkey accepted as a key component (SS58 addresses are 47–48 characters). @default 64 */
export const MAX_FAULT_HOTKEY_LENGTH = 64;
/** Longest digest component (`sha256_<64 hex>` is 71; a dev mutable ref is ≤ 128). @default 160 */
export const MAX_FAULT_DIGEST_COMPONENT_LENGTH = 160;
/** Deepest nesting serialised; fault details are shallow, so deeper input is hostile. @default 32 */
export const MAX_FAULT_JSON_DEPTH = 32;

/** Codes whose `fault_detail` is the dedup detail (spec/validation.md §9: all three dedup rules). */
export const DEDUP_FAULT_CODES: ReadonlySet<string> = new Set(['duplicate', 'too_similar']);

const HOTKEY_COMPONENT = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const DIGEST_COMPONENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** spec/validation.md §9 fault detail. */
export interface DedupFaultDetail {
  readonly reason: string;
  readonly similarity: number | PyFloat | null;
  readonly threshold: number | PyFloat | null;
  readonly duplicate_of: string | null;
  readonly duplicate_of_hotkey: string | null;
  readonly duplicate_of_coldkey: string | null;
  readonly same_coldkey: boolean | null;
  readonly candidates_checked: number | null;
  readonly exact_weights_match: boolean | null;
  readonly divergence: number | PyFloat | null;
  readonly [extra: string]: unknown;
}

export interface ValidationFaultInput {
  readonly modelUri: string;
  readonly hotkey: string;
  /** The digest as written in the model uri (`sha256:<hex>` or a revision). */
  readonly digest: string;
  readonly blockNumber: number | null;
  readonly fault: Pick<StageFault, 'faultClass' | 'code' | 'message'>;
  /** The dedup detail; used for `duplicate` / `too_similar`. @default null */
  readonly dedupDetail?: Readonly<Record<string, unknown>> | null;
  /** The attempt's `result_summary`, written as `details` for every other fault. @default null */
  readonly resultSummary?: unknown;
}

/** §9 detail fields that are Python floats upstream: `1` must print as `1.0`, as Python writes it. */
const DEDUP_FLOAT_FIELDS = ['similarity', 'threshold', 'divergence'] as const;

function asPythonFloats(detail: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...detail };
  for (const field of DEDUP_FLOAT_FIELDS) {
    const v = out[field];
    if (typeof v === 'number') out[field] = new PyFloat(v);
  }
  return out;
}

/**
 * The fault document. Base fields win over detail keys of the same name (a detail can never rewrite
 * `hotkey` or `fault_code`); the documented §9 detail keys never collide, so the output equals upstream's.
 */
export function validationFaultBody(input: ValidationFaultInput): Record<string, unknown> {
  const useDedup = DEDUP_FAULT_CODES.has(input.fault.code) && input.dedupDetail != null;
  const detail: Readonly<Record<string, unknown>> = useDedup ? asPythonFloats(input.dedupDetail as Readonly<Record<string, unknown>>) : { details: input.resultSummary ?? null };
  return {
    ...detail,
    model_uri: input.modelUri,
    hotkey: input.hotkey,
    block_number: input.blockNumber,
    fault_class: input.fault.faultClass,
    fault_code: input.fault.code,
    fault_message: input.fault.message,
  };
}

/**
 * The digest as one key component: `:` → `_` (spec §10). A digest that still is not a safe component
 * (only possible for an `invalid_ref` fault, whose digest is whatever the miner wrote) becomes
 * `unparsed_<first 16 hex of its sha256>`, so every miner fault still gets a stable, harmless key.
 */
export function faultDigestComponent(digest: string): string {
  const component = digest.replaceAll(':', '_');
  if (component.length > 0 && component.length <= MAX_FAULT_DIGEST_COMPONENT_LENGTH && DIGEST_COMPONENT.test(component)) return component;
  return `unparsed_${createHash('sha256').update(digest, 'utf8').digest('hex').slice(0, 16)}`;
}

/** `hippius_validation/<hotkey>/<digest ':'→'_'>/fault.json`; an unsafe hotkey is `invalid_key`. */
export function validationFaultKey(hotkey: string, digest: string): string {
  if (hotkey.length === 0 || hotkey.length > MAX_FAULT_HOTKEY_LENGTH || !HOTKEY_COMPONENT.test(hotkey)) {
    throw new ArtifactStoreError('invalid_key', `hotkey ${JSON.stringify(hotkey.slice(0, 80))} is not a safe key component`);
  }
  return joinArtifactKey(VALIDATION_FAULT_KEY_ROOT, hotkey, faultDigestComponent(digest), VALIDATION_FAULT_FILE);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof PyFloat) && !(value instanceof Date);
}

/**
 * Python `json.dumps(value, sort_keys=True, indent=2)` (spec/compat.md §2): newline + 2 spaces per
 * level, `,` between items, `": "` after keys, `[]` / `{}` for empty containers, no trailing newline;
 * scalars and strings exactly as {@link pyJsonDumps} (ensure_ascii, Python float repr). core/py-compat
 * has no indent support, so the container layout lives here and the scalar rules stay there.
 */
export function pyJsonDumpsIndent2(value: unknown): string {
  const walk = (v: unknown, depth: number): string => {
    if (depth > MAX_FAULT_JSON_DEPTH) throw new ArtifactStoreError('too_large', `fault document nests deeper than ${MAX_FAULT_JSON_DEPTH} levels`);
    const pad = '  '.repeat(depth + 1);
    const close = '  '.repeat(depth);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((item) => pad + walk(item, depth + 1)).join(',\n')}\n${close}]`;
    }
    if (isPlainObject(v)) {
      const keys = Object.keys(v).sort(compareCodePoints);
      if (keys.length === 0) return '{}';
      return `{\n${keys.map((k) => `${pad}${pyJsonDumps(k)}: ${walk(v[k], depth + 1)}`).join(',\n')}\n${close}}`;
    }
    return pyJsonDumps(v);
  };
  return walk(value, 0);
}

export interface UploadValidationFaultInput extends ValidationFaultInput {
  readonly submissionId: SubmissionId;
  readonly stageAttemptId?: string | null;
}

export interface UploadedValidationFault {
  /** Store as `result_summary.fault_uri` on the attempt. */
  readonly faultUri: string;
  readonly record: ArtifactRecord;
  readonly row: ArtifactRow;
}

/**
 * Uploads `fault.json` (no database work): call it before the transaction that finalises the attempt,
 * so no transaction stays open across network I/O. The key names the latest fault of one (hotkey,
 * digest), so a re-run that words the fault differently replaces the object instead of failing as an
 * immutability conflict.
 */
export function putValidationFault(store: ArtifactStore, input: ValidationFaultInput): Promise<ArtifactRecord> {
  const key = validationFaultKey(input.hotkey, input.digest);
  const body = pyJsonDumpsIndent2(validationFaultBody(input));
  return store.put(key, body, { contentType: VALIDATION_FAULT_CONTENT_TYPE, artifactType: 'VALIDATION_FAULT', replace: true });
}

/** Records the uploaded `fault.json` as a `VALIDATION_FAULT` row (idempotent; a replaced object updates its row). */
export async function recordValidationFault(q: Queryable, record: ArtifactRecord, ids: { readonly submissionId: SubmissionId; readonly stageAttemptId?: string | null }): Promise<ArtifactRow> {
  const { row } = await recordArtifact(q, artifactRowOf(record, { submissionId: ids.submissionId, stageAttemptId: ids.stageAttemptId ?? null }), { replace: true });
  return row;
}

/**
 * {@link putValidationFault} then {@link recordValidationFault} (in `q`'s transaction when given one).
 * @example const { faultUri } = await uploadValidationFault(store, db, { submissionId, modelUri, hotkey, digest, blockNumber, fault });
 */
export async function uploadValidationFault(store: ArtifactStore, q: Queryable, input: UploadValidationFaultInput): Promise<UploadedValidationFault> {
  const record = await putValidationFault(store, input);
  const row = await recordValidationFault(q, record, input);
  return { faultUri: record.uri, record, row };
}
