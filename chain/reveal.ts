/**
 * Reveal parsing and payload hashing (spec/chain.md §2, §2.1). Pure; shared by the chain reader,
 * the miner CLI, the local stand-in chain and the later subtensor client.
 */
import { createHash } from 'node:crypto';
import { canonicalJson, hasLoneSurrogate, utf8DecodeIgnore, utf8DecodeStrict } from './compat.ts';

/** The only payload version this protocol accepts (chain.md §2). */
export const REVEAL_VERSION = 'v7';

/**
 * Upper bound on revealed bytes / payload strings we decode at all. Real v7 payloads are ~100 bytes
 * and the timelock ciphertext is capped at 1024 bytes by the chain; chain.md §2.1 states real payloads
 * are ≤ 16 KiB. Anything larger is refused before decoding.
 */
export const MAX_REVEAL_BYTES = 16 * 1024;

/** chain.md §2: the digest must match this whole string (JS `$` does not accept a trailing newline). */
export const DIGEST_RE = /^(?:sha256:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{64})$/;

/** validation.md §2: lowercase repository reference. Applied at ingest only in `strict` mode. */
export const REPO_REF_RE = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._/-]*$/;

export interface Reveal {
  readonly version: 'v7';
  readonly repo: string;
  readonly digest: string;
  /** `repo + "@" + digest` (chain.md §2). */
  readonly modelUri: string;
}

export type RevealRejectCode =
  | 'bad_input'
  | 'empty'
  | 'oversize'
  | 'malformed_prefix'
  | 'invalid_utf8'
  | 'malformed'
  | 'unknown_version'
  | 'bad_repo'
  | 'bad_digest';

export type ParseRevealResult =
  | {
      readonly ok: true;
      readonly reveal: Reveal;
      /** The decoded payload string (`v7|repo|digest`), e.g. for the reader's high-water mark. */
      readonly payload: string;
      /** Non-fatal findings, e.g. a compact length that differs from the remaining bytes (§2.1 step 3). */
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly code: RevealRejectCode; readonly reason: string };

export interface ParseRevealOptions {
  /**
   * How a `Uint8Array` is framed. `scale` (default): a `RevealedCommitments` entry, SCALE string =
   * compact length prefix + UTF-8 (§2.1). `raw`: the non-timelocked `Raw<n>` fallback, plain UTF-8
   * without a prefix. Ignored for string input.
   */
  readonly framing?: 'scale' | 'raw';
  /**
   * `ignore` (default, chain.md §2.1 step 3 / compat.md §6): invalid UTF-8 sequences are dropped like
   * Python's `errors="ignore"`, matching upstream. `fatal`: any invalid UTF-8 rejects the reveal
   * (`TextDecoder` with `fatal: true`) — stricter than upstream.
   */
  readonly utf8?: 'ignore' | 'fatal';
  /**
   * `ingest` (default, chain.md §2): the repo only needs a `/`; stricter name checks happen in
   * validation (MINER `repo_name`). `strict`: additionally require the lowercase ref regex of
   * validation.md §2 (miner CLI pre-flight, tools).
   */
  readonly repoCheck?: 'ingest' | 'strict';
}

function reject(code: RevealRejectCode, reason: string): ParseRevealResult {
  return { ok: false, code, reason };
}

/** Decoded SCALE compact prefix: total prefix length and the declared value. */
export function scaleCompactPrefix(raw: Uint8Array): { offset: number; declared: bigint } | null {
  const b0 = raw[0];
  if (b0 === undefined) return null;
  const mode = b0 & 3;
  // chain.md §2.1 step 2; mode 3 is 1 + (b0 >> 2) + 4 bytes (upstream used 4 — a bug we do not copy).
  const offset = mode === 0 ? 1 : mode === 1 ? 2 : mode === 2 ? 4 : 1 + (b0 >> 2) + 4;
  if (offset > raw.length) return null;
  let declared = 0n;
  if (mode === 3) {
    for (let k = offset - 1; k >= 1; k--) declared = (declared << 8n) | BigInt(raw[k] as number);
  } else {
    let v = 0;
    for (let k = offset - 1; k >= 0; k--) v = v * 256 + (raw[k] as number);
    declared = BigInt(Math.floor(v / 4));
  }
  return { offset, declared };
}

/** SCALE compact encoding of a non-negative integer < 2^30 (enough for any payload we produce). */
export function scaleCompact(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`compact: not a non-negative integer: ${n}`);
  if (n < 1 << 6) return Uint8Array.of(n << 2);
  if (n < 1 << 14) {
    const v = (n << 2) | 1;
    return Uint8Array.of(v & 0xff, (v >> 8) & 0xff);
  }
  if (n < 1 << 30) {
    const v = n * 4 + 2;
    return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  throw new RangeError(`compact: ${n} too large for this encoder`);
}

/** SCALE encoding of a `String`: compact byte length ‖ UTF-8 (chain.md §4 step 2). */
export function scaleEncodeString(s: string): Uint8Array {
  const utf8 = new TextEncoder().encode(s);
  const prefix = scaleCompact(utf8.length);
  const out = new Uint8Array(prefix.length + utf8.length);
  out.set(prefix, 0);
  out.set(utf8, prefix.length);
  return out;
}

/**
 * Decodes revealed bytes into the payload string per chain.md §2.1 (or the raw fallback), without
 * interpreting the payload.
 */
export function decodeRevealBytes(
  bytes: Uint8Array,
  options: Pick<ParseRevealOptions, 'framing' | 'utf8'> = {},
): { ok: true; payload: string; warnings: string[] } | { ok: false; code: RevealRejectCode; reason: string } {
  if (!(bytes instanceof Uint8Array)) return { ok: false, code: 'bad_input', reason: 'reveal bytes must be a Uint8Array' };
  if (bytes.length === 0) return { ok: false, code: 'empty', reason: 'empty reveal' };
  if (bytes.length > MAX_REVEAL_BYTES) {
    return { ok: false, code: 'oversize', reason: `reveal is ${bytes.length} bytes, cap is ${MAX_REVEAL_BYTES}` };
  }
  const warnings: string[] = [];
  let body = bytes;
  if ((options.framing ?? 'scale') === 'scale') {
    const prefix = scaleCompactPrefix(bytes);
    if (prefix === null) return { ok: false, code: 'malformed_prefix', reason: 'truncated SCALE compact length prefix' };
    body = bytes.subarray(prefix.offset);
    if (prefix.declared !== BigInt(body.length)) {
      warnings.push(`SCALE length prefix declares ${prefix.declared} bytes but ${body.length} follow; decoding the rest`);
    }
  }
  if ((options.utf8 ?? 'ignore') === 'fatal') {
    try {
      return { ok: true, payload: utf8DecodeStrict(body), warnings };
    } catch {
      return { ok: false, code: 'invalid_utf8', reason: 'reveal is not valid UTF-8' };
    }
  }
  return { ok: true, payload: utf8DecodeIgnore(body), warnings };
}

function preview(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(cut);
}

/**
 * Parses a reveal: bytes of a `RevealedCommitments` entry (SCALE string, §2.1) or an already decoded
 * payload string, into `v7|<repo>|<digest>` (§2). Never throws; every rejection carries a code and a
 * human reason. Rejected payloads are *ignored* by the chain reader (they never become submissions).
 *
 * Ingest deviation from upstream (documented): a repo containing U+0000 is rejected, because Postgres
 * `text`/`jsonb` cannot store it.
 *
 * @example parseReveal('v7|ns/albedo-qwen3.6-35b-x|' + 'a'.repeat(40)) // { ok: true, reveal: {…} }
 */
export function parseReveal(input: Uint8Array | string, options: ParseRevealOptions = {}): ParseRevealResult {
  let payload: string;
  let warnings: readonly string[] = [];
  if (typeof input === 'string') {
    // UTF-8 length ≥ UTF-16 length, so this cheap guard never lets an oversize payload through.
    if (input.length > MAX_REVEAL_BYTES || Buffer.byteLength(input, 'utf8') > MAX_REVEAL_BYTES) {
      return reject('oversize', `payload exceeds ${MAX_REVEAL_BYTES} bytes`);
    }
    if (hasLoneSurrogate(input)) return reject('malformed', 'payload contains an unpaired surrogate');
    if (input.length === 0) return reject('empty', 'empty payload');
    payload = input;
  } else {
    const decoded = decodeRevealBytes(input, options);
    if (!decoded.ok) return reject(decoded.code, decoded.reason);
    payload = decoded.payload;
    warnings = decoded.warnings;
  }
  const parts = payload.split('|');
  const version = parts[0] ?? '';
  if (version !== REVEAL_VERSION) return reject('unknown_version', `unsupported payload version ${preview(version)}`);
  if (parts.length !== 3) return reject('malformed', `expected 3 "|"-separated parts, got ${parts.length}`);
  const repo = parts[1] ?? '';
  const digest = parts[2] ?? '';
  if (!repo.includes('/')) return reject('bad_repo', `repo must contain "/": ${preview(repo)}`);
  if (repo.includes('\u0000')) return reject('bad_repo', 'repo contains NUL');
  if ((options.repoCheck ?? 'ingest') === 'strict' && !REPO_REF_RE.test(repo)) {
    return reject('bad_repo', `repo does not match ${REPO_REF_RE.source}: ${preview(repo)}`);
  }
  if (!DIGEST_RE.test(digest)) return reject('bad_digest', `digest is not sha256:<64 hex>, 40 hex or 64 hex: ${preview(digest)}`);
  return { ok: true, reveal: { version: 'v7', repo, digest, modelUri: `${repo}@${digest}` }, payload, warnings };
}

/** Formats the reveal string a miner commits (inverse of {@link parseReveal}); throws if invalid. */
export function formatReveal(repo: string, digest: string): string {
  const s = `${REVEAL_VERSION}|${repo}|${digest}`;
  const parsed = parseReveal(s, { repoCheck: 'strict' });
  if (!parsed.ok) throw new RangeError(`invalid reveal: ${parsed.reason}`);
  return s;
}

/** Digest ⇒ model backend (validation.md §2). */
export function digestBackend(digest: string): 'hippius' | 'hf' | null {
  if (!DIGEST_RE.test(digest)) return null;
  return digest.startsWith('sha256:') ? 'hippius' : 'hf';
}

/** `commit_payload` stored on `chain_commits` (chain.md §2). */
export interface CommitPayload {
  readonly version: 'v7';
  readonly repo: string;
  readonly digest: string;
  readonly author_hotkey: string;
  readonly spoofed: false;
}

export function commitPayload(reveal: Pick<Reveal, 'repo' | 'digest'>, authorHotkey: string): CommitPayload {
  return { version: 'v7', repo: reveal.repo, digest: reveal.digest, author_hotkey: authorHotkey, spoofed: false };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * `payload_hash = sha256_hex(canonical_json(commit_payload))` (chain.md §2): lowercase hex, no prefix.
 * @example payloadHash({repo: 'example/albedo-qwen3.6-35b-demo', digest: 'sha256:' + '0'.repeat(64)}, '5ExampleHotkey')
 *   // 'ff830d416660f374e8238a9f007cffa30123015a4da77a3ff54a3e91dc08c9e3'
 */
export function payloadHash(reveal: Pick<Reveal, 'repo' | 'digest'>, authorHotkey: string): string {
  const p = commitPayload(reveal, authorHotkey);
  return sha256Hex(canonicalJson({ ...p }));
}

/** `model_submissions.idempotency_key` of a chain reveal: `chain:<netuid>:<hotkey>:<payload_hash>` (pipeline.md). */
export function submissionIdempotencyKey(netuid: number, hotkey: string, hash: string): string {
  return `chain:${netuid}:${hotkey}:${hash}`;
}

/** Genesis submission key: `genesis:<netuid>:<hotkey>:<sha256_hex(reveal string)>` (coronation.md §4). */
export function genesisIdempotencyKey(netuid: number, hotkey: string, revealString: string): string {
  return `genesis:${netuid}:${hotkey}:${sha256Hex(revealString)}`;
}
