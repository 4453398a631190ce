import { AlbedoError } from '../core/faults.ts';

/**
 * Model references (spec/validation.md §2): `<repo>@<digest>` split at the first `@`; the digest
 * form decides the store — `sha256:<64 hex>` is a Hippius OCI manifest, 40 or 64 lowercase hex is a
 * Hugging Face git revision. Anything else is a mutable ref, rejected unless allowed (dev only).
 */
export type ModelBackend = 'hippius' | 'hf';
export const MODEL_BACKENDS: readonly ModelBackend[] = ['hippius', 'hf'];

export interface ModelRef {
  readonly repo: string;
  /** As written in the uri (`sha256:…`, a 40/64-hex revision, or a mutable ref when allowed). */
  readonly digest: string;
  readonly backend: ModelBackend;
  /** True only for a mutable ref accepted under `ALBEDO_ALLOW_MUTABLE_REF` (dev only). */
  readonly mutable: boolean;
  /** `<repo>@<digest>`. */
  readonly uri: string;
}

/** Longest accepted `model_uri`; a reveal is small, so anything longer is hostile. @default 512 */
export const MAX_MODEL_URI_LENGTH = 512;
/** Longest accepted repo name. @default 256 */
export const MAX_REPO_LENGTH = 256;
/** Longest accepted mutable ref (dev only). @default 128 */
export const MAX_MUTABLE_REF_LENGTH = 128;

/** Repo syntax (§2): lowercase only. `..` and empty segments are additionally refused (paths). */
export const REPO_SYNTAX = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._/-]*$/;
const HIPPIUS_DIGEST = /^sha256:[0-9a-f]{64}$/;
const HF_REVISION = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const MUTABLE_REF = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `ALBEDO_REPO_NAME_PATTERN` default: the challenger naming rule (§2, upstream defect §9.19). */
export const DEFAULT_REPO_NAME_PATTERN_SOURCE = '^[^/]+/albedo-qwen3\\.6-35b-.+$';
export const DEFAULT_REPO_NAME_PATTERN = new RegExp(DEFAULT_REPO_NAME_PATTERN_SOURCE);
/** Host part of `ALBEDO_HIPPIUS_REGISTRY` used in MODEL_MANIFEST uris. */
export const DEFAULT_HIPPIUS_REGISTRY_HOST = 'registry.hippius.com';

export interface ParseModelRefOptions {
  /** `ALBEDO_ALLOW_MUTABLE_REF` (dev only). @default false */
  readonly allowMutableRef?: boolean;
  /** `ALBEDO_MODEL_BACKENDS`. @default both (the executor narrows it to its configuration) */
  readonly backends?: readonly ModelBackend[];
}

export type ParsedModelRef = { readonly ok: true; readonly ref: ModelRef } | { readonly ok: false; readonly message: string };

function clip(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** True for a repo name that is safe as a path: syntax of §2, bounded, no `.`/`..`/empty segment. */
export function isValidRepo(repo: string): boolean {
  if (repo.length === 0 || repo.length > MAX_REPO_LENGTH || !REPO_SYNTAX.test(repo)) return false;
  return repo.split('/').every((seg) => seg.length > 0 && seg !== '.' && seg !== '..');
}

/**
 * Step 1 of validation: parse a `model_uri`. Never throws; a failure is MINER `invalid_ref`.
 * @example parseModelRef('alice/albedo-qwen3.6-35b-x@sha256:' + 'ab'.repeat(32))
 */
export function parseModelRef(uri: unknown, options: ParseModelRefOptions = {}): ParsedModelRef {
  if (typeof uri !== 'string' || uri.length === 0) return { ok: false, message: 'model uri is empty' };
  if (uri.length > MAX_MODEL_URI_LENGTH) return { ok: false, message: `model uri is longer than ${MAX_MODEL_URI_LENGTH} characters` };
  const at = uri.indexOf('@');
  if (at < 0) return { ok: false, message: `model uri ${JSON.stringify(clip(uri))} is not <repo>@<digest>` };
  const repo = uri.slice(0, at);
  const digest = uri.slice(at + 1);
  if (!isValidRepo(repo)) return { ok: false, message: `invalid repo ${JSON.stringify(clip(repo))}: must match ${REPO_SYNTAX.source} without empty, '.' or '..' segments` };
  let backend: ModelBackend;
  let mutable = false;
  if (HIPPIUS_DIGEST.test(digest)) backend = 'hippius';
  else if (HF_REVISION.test(digest)) backend = 'hf';
  else if (options.allowMutableRef && digest.length <= MAX_MUTABLE_REF_LENGTH && MUTABLE_REF.test(digest)) {
    backend = 'hf';
    mutable = true;
  } else {
    return { ok: false, message: `digest ${JSON.stringify(clip(digest))} is not an immutable pin (sha256:<64 hex> or a 40/64-hex revision)` };
  }
  const backends = options.backends ?? MODEL_BACKENDS;
  if (!backends.includes(backend)) return { ok: false, message: `model backend ${backend} is not enabled (ALBEDO_MODEL_BACKENDS=${backends.join(',')})` };
  return { ok: true, ref: { repo, digest, backend, mutable, uri: `${repo}@${digest}` } };
}

/** Returns a copy without the stateful `g`/`y` flags so `test` never depends on `lastIndex`. */
function stateless(pattern: RegExp): RegExp {
  return pattern.global || pattern.sticky ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')) : pattern;
}

/**
 * Step 2: the challenger naming rule (`ALBEDO_REPO_NAME_PATTERN`), enforced by the validator
 * (spec/pipeline.md §9.19). Strict JS `$` semantics (compat §9). Failure is MINER `repo_name`.
 */
export function checkRepoName(repo: string, pattern: RegExp = DEFAULT_REPO_NAME_PATTERN): boolean {
  if (repo.length > MAX_REPO_LENGTH) return false;
  return stateless(pattern).test(repo);
}

/** Compiles `ALBEDO_REPO_NAME_PATTERN`; an invalid pattern is a startup CONFIG error. */
export function compileRepoNamePattern(source: string | undefined): RegExp {
  if (source === undefined || source === '') return DEFAULT_REPO_NAME_PATTERN;
  if (source.length > 1024) throw new AlbedoError('CONFIG', 'ALBEDO_REPO_NAME_PATTERN is longer than 1024 characters');
  try {
    return new RegExp(source);
  } catch (cause) {
    throw new AlbedoError('CONFIG', `ALBEDO_REPO_NAME_PATTERN is not a valid regular expression: ${(cause as Error).message}`, { cause });
  }
}

/** The digest as a single path component: `sha256:<hex>` ⇒ `<hex>`; a revision unchanged. */
export function digestPathComponent(ref: Pick<ModelRef, 'digest'>): string {
  return ref.digest.startsWith('sha256:') ? ref.digest.slice('sha256:'.length) : ref.digest;
}

/**
 * The MODEL_MANIFEST artifact uri (§2): Hippius ⇒ `registry.hippius.com/<repo>@sha256:<hex>`;
 * HF ⇒ `hf://<repo>@<revision>`. Later duels use it as the king's model reference.
 */
export function manifestUri(ref: ModelRef, registryHost: string = DEFAULT_HIPPIUS_REGISTRY_HOST): string {
  return ref.backend === 'hf' ? `hf://${ref.repo}@${ref.digest}` : `${registryHost}/${ref.repo}@${ref.digest}`;
}

export type StorageBackend = 's3' | 'hippius' | 'hf' | 'local-cache';

/** `artifacts.storage_backend` from a uri scheme (spec/pipeline.md §8). */
export function storageBackendOfUri(uri: string): StorageBackend {
  if (uri.startsWith('s3://')) return 's3';
  if (uri.startsWith('file://') || uri.startsWith('local-cache://')) return 'local-cache';
  if (uri.startsWith('hf://')) return 'hf';
  return 'hippius';
}

/** `ALBEDO_HIPPIUS_REGISTRY` (`https://registry.hippius.com`) ⇒ `registry.hippius.com`. */
export function registryHostOf(registryUrl: string): string {
  try {
    const u = new URL(registryUrl);
    return u.port ? `${u.hostname}:${u.port}` : u.hostname;
  } catch {
    throw new AlbedoError('CONFIG', `ALBEDO_HIPPIUS_REGISTRY is not a URL: ${clip(registryUrl)}`);
  }
}
