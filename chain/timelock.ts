/**
 * drand quicknet timelock encryption for subtensor (chain.md §4, §6.2 step 5, §7).
 *
 * Subtensor decrypts commitments and CRv4 weight commits with the ideal-labs `tle` scheme (Boneh–Franklin
 * IBE on BLS12-381 with the drand round signature as the identity key, AES-256-GCM for the body). This
 * module wraps the reference implementation compiled to wasm (`@ideallabs/timelock_wasm_wrapper@1.0.0`,
 * pinned because later sources changed the ciphertext layout), parses the ciphertext layout, verifies
 * drand signatures and computes reveal rounds. A pure TypeScript port of the same scheme lives in
 * `timelock-noble.ts`; the two are tested to interoperate in both directions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initSync, tld, tle } from '@ideallabs/timelock_wasm_wrapper';
import type { Fp2 } from '@noble/curves/abstract/tower.js';
import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { scaleEncodeString } from './reveal.ts';

/**
 * drand quicknet beacon parameters (chain.md §4 step 4; subtensor's `DefaultBeaconConfig`). Subtensor only
 * stores pulses of this beacon, so anything we encrypt must target its key and its round clock.
 */
export const DRAND_QUICKNET = Object.freeze({
  /** G2 public key, 96-byte compressed (ZCash/arkworks encoding), hex. */
  publicKeyHex:
    '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a',
  /** drand chain hash identifying the beacon. */
  chainHash: '52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971',
  /** Unix time of round 1 (round r is emitted at genesisTime + (r − 1)·period). */
  genesisTime: 1692803367,
  /** Seconds between rounds. */
  periodSeconds: 3,
} as const);

/** Subtensor's target block time in seconds; reveal rounds convert block distances to drand rounds with it. */
export const BLOCK_TIME_SECONDS = 12;

/**
 * Hash-to-G1 domain separation tag of drand's `bls-unchained-g1-rfc9380` scheme. The identity point of a
 * round must be hashed with exactly this DST, or the round signature is not the IBE secret key.
 */
export const DRAND_G1_DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_';

/** The body cipher suite tag the `tle` scheme writes (and subtensor expects) at the end of every ciphertext. */
export const TIMELOCK_CIPHER_SUITE = 'AES_GCM_';

/**
 * Fixed bytes a ciphertext adds to the plaintext: U 96 + v 8+32 + w 8+32 + body length 8 + {ct length 8 +
 * GCM tag 16 + nonce 8+12} + suite 8+8. Lets callers check the chain's size limits before encrypting.
 */
export const TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES = 244;

/** Largest ciphertext the chain accepts in a `Data::TimelockEncrypted` commitment (chain.md §1). */
export const CHAIN_COMMITMENT_CIPHERTEXT_LIMIT = 1024;

/** Largest `commit` accepted by `commitTimelockedMechanismWeights` (chain.md §1, `Bytes(≤5000)`). */
export const CHAIN_WEIGHTS_COMMIT_LIMIT = 5000;

/**
 * Hard cap on ciphertexts we parse, encrypt or decrypt. Above both chain limits (so any real commit fits)
 * yet small enough that hostile input cannot make us allocate or pair anything large.
 */
export const MAX_TIMELOCK_CIPHERTEXT_BYTES = 8192;

/** Largest plaintext that still fits {@link MAX_TIMELOCK_CIPHERTEXT_BYTES}. */
export const MAX_TIMELOCK_PLAINTEXT_BYTES = MAX_TIMELOCK_CIPHERTEXT_BYTES - TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES;

const U_BYTES = 96;
const SCALAR_BYTES = 32;
const NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;
const SIGNATURE_BYTES = 48;
const SECRET_BYTES = 32;
const CURVE = 'bls12_381';
const U64_MAX = (1n << 64n) - 1n;

/** Why a timelock operation failed; closed so callers can switch exhaustively. */
export type TimelockErrorCode =
  /** An argument has the wrong type, length or range (e.g. a 31-byte ephemeral secret, a negative round). */
  | 'bad_input'
  /** The public key is not a valid compressed G2 point of the prime-order subgroup. */
  | 'bad_public_key'
  /** The ciphertext does not have the §7 layout or its U point does not decode. */
  | 'bad_ciphertext'
  /** The signature is not 48 bytes or does not decode to a G1 point. */
  | 'bad_signature'
  /** Input larger than {@link MAX_TIMELOCK_CIPHERTEXT_BYTES} / {@link MAX_TIMELOCK_PLAINTEXT_BYTES}. */
  | 'oversize'
  /** Encryption failed inside the implementation. */
  | 'encrypt_failed'
  /** Well-formed input that does not decrypt: wrong round's signature, tampered ciphertext. */
  | 'decrypt_failed'
  /** The wasm module could not be located or instantiated. */
  | 'wasm_unavailable';

/**
 * The only error this module's encrypt/decrypt/parse functions throw, so callers never have to handle
 * wasm panics, noble exceptions or `RangeError`s from hostile input. Messages never contain secrets.
 */
export class TimelockError extends Error {
  override readonly name = 'TimelockError';
  readonly code: TimelockErrorCode;

  constructor(code: TimelockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * SCALE `String` encoding (compact length ‖ UTF-8), the plaintext framing of a commitment reveal (chain.md
 * §4 step 2). Re-exported from `reveal.ts` so encode and decode share one implementation.
 */
export const encodeScaleString: (s: string) => Uint8Array = scaleEncodeString;

function toU64(round: number | bigint, what: string): bigint {
  if (typeof round === 'number') {
    if (!Number.isSafeInteger(round) || round < 0) throw new TimelockError('bad_input', `${what}: not a u64: ${round}`);
    return BigInt(round);
  }
  if (typeof round !== 'bigint' || round < 0n || round > U64_MAX) {
    throw new TimelockError('bad_input', `${what}: not a u64: ${String(round)}`);
  }
  return round;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * The drand message of a round, `sha256(u64_be(round))`: the IBE identity we encrypt to, and the message the
 * beacon signs for that round. Throws `TimelockError('bad_input')` for a non-u64 round.
 */
export function drandIdentity(round: number | bigint): Uint8Array {
  const be = new Uint8Array(8);
  new DataView(be.buffer).setBigUint64(0, toU64(round, 'round'), false);
  return sha256(be);
}

/** Hash-to-G1 of a round's drand message: the IBE public key of that round (its secret key is the signature). */
export function drandIdentityPoint(round: number | bigint): WeierstrassPoint<bigint> {
  return bls12_381.G1.hashToCurve(drandIdentity(round), { DST: DRAND_G1_DST }) as WeierstrassPoint<bigint>;
}

const quicknetKeyBytes = hexToBytes(DRAND_QUICKNET.publicKeyHex);
let lastValidKey: { bytes: Uint8Array; point: WeierstrassPoint<Fp2> } | null = null;

function hexToBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes and validates a beacon public key (96-byte compressed G2, in the prime-order subgroup, not the
 * identity). Needed because the wasm `tle` silently accepts garbage keys and would produce ciphertexts
 * nobody can decrypt. Throws `TimelockError('bad_public_key')`.
 */
export function decodeDrandPublicKey(publicKey: Uint8Array = quicknetKeyBytes): WeierstrassPoint<Fp2> {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== U_BYTES) {
    throw new TimelockError('bad_public_key', `public key must be ${U_BYTES} bytes`);
  }
  if (lastValidKey !== null && bytesEqual(lastValidKey.bytes, publicKey)) return lastValidKey.point;
  let point: WeierstrassPoint<Fp2>;
  try {
    point = bls12_381.G2.Point.fromBytes(publicKey);
    point.assertValidity();
  } catch (cause) {
    throw new TimelockError('bad_public_key', 'public key is not a valid compressed G2 point', { cause });
  }
  if (point.is0()) throw new TimelockError('bad_public_key', 'public key is the point at infinity');
  lastValidKey = { bytes: Uint8Array.from(publicKey), point };
  return point;
}

/** Decodes a 48-byte compressed G1 signature; `null` when it is not a valid non-identity subgroup point. */
export function decodeDrandSignature(signature: Uint8Array): WeierstrassPoint<bigint> | null {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return null;
  try {
    const point = bls12_381.G1.Point.fromBytes(signature);
    point.assertValidity();
    return point.is0() ? null : point;
  } catch {
    return null;
  }
}

/**
 * Checks a drand quicknet round signature: `e(sig, G2) == e(H(sha256(u64_be(round))), pk)`. Lets the
 * validator trust a pulse (and thus a decryption key) fetched from an untrusted relay. Returns `false`,
 * never throws, for malformed signatures, keys or rounds.
 */
export function verifyDrandSignature(
  round: number | bigint,
  signature: Uint8Array,
  publicKey: Uint8Array = quicknetKeyBytes,
): boolean {
  try {
    const sig = decodeDrandSignature(signature);
    if (sig === null) return false;
    const pk = decodeDrandPublicKey(publicKey);
    const hm = drandIdentityPoint(round);
    const gt = bls12_381.pairingBatch([
      { g1: sig.negate(), g2: bls12_381.G2.Point.BASE },
      { g1: hm, g2: pk },
    ]);
    return bls12_381.fields.Fp12.eql(gt, bls12_381.fields.Fp12.ONE);
  } catch {
    return false;
  }
}

/** A `tle` ciphertext split into its fields (chain.md §7 layout, arkworks compressed serialisation). */
export interface TimelockCiphertextParts {
  /** `r·G2`, 96-byte compressed G2 point (not decoded by the parser). */
  readonly u: Uint8Array;
  /** `σ ⊕ H2(e(Q_id, r·pk))`, 32 bytes. */
  readonly v: Uint8Array;
  /** `ephemeralSecret ⊕ H4(σ)`, 32 bytes. */
  readonly w: Uint8Array;
  /** AES-256-GCM output: encrypted plaintext ‖ 16-byte tag. */
  readonly aesCiphertext: Uint8Array;
  /** 12-byte AES-GCM nonce. */
  readonly nonce: Uint8Array;
  /** Always {@link TIMELOCK_CIPHER_SUITE}. */
  readonly cipherSuite: typeof TIMELOCK_CIPHER_SUITE;
  /** Plaintext length implied by the layout (`aesCiphertext.length − 16`). */
  readonly plaintextLength: number;
}

class Reader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw new TimelockError('bad_ciphertext', `truncated ${what}: need ${n}, have ${this.remaining}`);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** u64-LE length prefix, bounded by the bytes left so a forged length never drives an allocation. */
  length(what: string): number {
    const raw = new DataView(this.take(8, `${what} length`).buffer).getBigUint64(0, true);
    if (raw > BigInt(this.remaining)) {
      throw new TimelockError('bad_ciphertext', `${what} length ${raw} exceeds the ${this.remaining} bytes left`);
    }
    return Number(raw);
  }

  vec(what: string, expected?: number): Uint8Array {
    const n = this.length(what);
    if (expected !== undefined && n !== expected) {
      throw new TimelockError('bad_ciphertext', `${what} length ${n}, expected ${expected}`);
    }
    return this.take(n, what);
  }
}

/**
 * Parses a `tle` ciphertext with strict bounds checks (exact field lengths, no trailing bytes). Structural
 * only: U is checked for the compressed-point flag but not decoded. Lets callers inspect and size-check
 * chain commitments and keeps malformed input away from the wasm. Throws `TimelockError`
 * (`bad_ciphertext` | `oversize` | `bad_input`).
 */
export function parseTimelockCiphertext(bytes: Uint8Array): TimelockCiphertextParts {
  if (!(bytes instanceof Uint8Array)) throw new TimelockError('bad_input', 'ciphertext must be a Uint8Array');
  if (bytes.length > MAX_TIMELOCK_CIPHERTEXT_BYTES) {
    throw new TimelockError('oversize', `ciphertext of ${bytes.length} bytes exceeds ${MAX_TIMELOCK_CIPHERTEXT_BYTES}`);
  }
  const r = new Reader(bytes);
  const u = r.take(U_BYTES, 'U');
  if (((u[0] ?? 0) & 0x80) === 0) throw new TimelockError('bad_ciphertext', 'U is not a compressed G2 point');
  const v = r.vec('v', SCALAR_BYTES);
  const w = r.vec('w', SCALAR_BYTES);
  const bodyLength = r.length('body');
  const body = new Reader(r.take(bodyLength, 'body'));
  const aesCiphertext = body.vec('body ciphertext');
  if (aesCiphertext.length < GCM_TAG_BYTES) throw new TimelockError('bad_ciphertext', 'body ciphertext shorter than the GCM tag');
  const nonce = body.vec('nonce', NONCE_BYTES);
  if (body.remaining !== 0) throw new TimelockError('bad_ciphertext', `${body.remaining} trailing bytes in body`);
  const suite = r.vec('cipher suite', TIMELOCK_CIPHER_SUITE.length);
  if (Buffer.from(suite).toString('latin1') !== TIMELOCK_CIPHER_SUITE) {
    throw new TimelockError('bad_ciphertext', 'unknown cipher suite');
  }
  if (r.remaining !== 0) throw new TimelockError('bad_ciphertext', `${r.remaining} trailing bytes`);
  return {
    u,
    v,
    w,
    aesCiphertext,
    nonce,
    cipherSuite: TIMELOCK_CIPHER_SUITE,
    plaintextLength: aesCiphertext.length - GCM_TAG_BYTES,
  };
}

function u64le(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Inverse of {@link parseTimelockCiphertext}: writes the §7 layout byte-for-byte as arkworks does, so the
 * TypeScript port produces ciphertexts the chain (and the wasm) can read.
 */
export function serializeTimelockCiphertext(
  parts: Pick<TimelockCiphertextParts, 'u' | 'v' | 'w' | 'aesCiphertext' | 'nonce'>,
): Uint8Array {
  const { u, v, w, aesCiphertext, nonce } = parts;
  if (u.length !== U_BYTES || v.length !== SCALAR_BYTES || w.length !== SCALAR_BYTES || nonce.length !== NONCE_BYTES) {
    throw new TimelockError('bad_input', 'ciphertext part has the wrong length');
  }
  if (aesCiphertext.length < GCM_TAG_BYTES) throw new TimelockError('bad_input', 'AES ciphertext shorter than the tag');
  const body = concat([u64le(aesCiphertext.length), aesCiphertext, u64le(nonce.length), nonce]);
  const suite = new TextEncoder().encode(TIMELOCK_CIPHER_SUITE);
  return concat([u, u64le(v.length), v, u64le(w.length), w, u64le(body.length), body, u64le(suite.length), suite]);
}

/** Arguments of {@link timelockEncrypt} (and the TypeScript port's `timelockEncryptNoble`). */
export interface TimelockEncryptInput {
  /** drand quicknet round whose signature will decrypt the ciphertext. */
  readonly round: number | bigint;
  /** Bytes to hide; at most {@link MAX_TIMELOCK_PLAINTEXT_BYTES}. */
  readonly plaintext: Uint8Array;
  /** 32-byte AES key (also the IBE message). Defaults to fresh CSPRNG bytes; pass one only in tests. */
  readonly ephemeralSecret?: Uint8Array;
  /** Beacon public key, 96-byte compressed G2. Defaults to quicknet's. */
  readonly publicKey?: Uint8Array;
}

/** Validated arguments shared by the wasm and TypeScript encryptors. */
export interface CheckedEncryptInput {
  readonly identity: Uint8Array;
  readonly plaintext: Uint8Array;
  readonly secret: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly publicKeyPoint: WeierstrassPoint<Fp2>;
}

/**
 * Validates {@link TimelockEncryptInput} once for both implementations (sizes, secret length, key validity)
 * and draws the default ephemeral secret. Throws `TimelockError`.
 */
export function checkEncryptInput(input: TimelockEncryptInput): CheckedEncryptInput {
  const { round, plaintext, ephemeralSecret, publicKey = quicknetKeyBytes } = input;
  if (!(plaintext instanceof Uint8Array)) throw new TimelockError('bad_input', 'plaintext must be a Uint8Array');
  if (plaintext.length > MAX_TIMELOCK_PLAINTEXT_BYTES) {
    throw new TimelockError('oversize', `plaintext of ${plaintext.length} bytes exceeds ${MAX_TIMELOCK_PLAINTEXT_BYTES}`);
  }
  if (ephemeralSecret !== undefined && (!(ephemeralSecret instanceof Uint8Array) || ephemeralSecret.length !== SECRET_BYTES)) {
    throw new TimelockError('bad_input', `ephemeral secret must be ${SECRET_BYTES} bytes`);
  }
  const identity = drandIdentity(round);
  const publicKeyPoint = decodeDrandPublicKey(publicKey);
  const secret = ephemeralSecret ?? new Uint8Array(randomBytes(SECRET_BYTES));
  return { identity, plaintext, secret, publicKey, publicKeyPoint };
}

let wasmReady = false;

function ensureWasm(): void {
  if (wasmReady) return;
  try {
    const path = createRequire(import.meta.url).resolve('@ideallabs/timelock_wasm_wrapper/timelock_wasm_wrapper_bg.wasm');
    initSync({ module: readFileSync(path) });
  } catch (cause) {
    throw new TimelockError('wasm_unavailable', 'could not load the timelock wasm module', { cause });
  }
  wasmReady = true;
}

/** Copies a wasm-returned JS array into bytes, rejecting anything that is not an array of octets. */
function wasmBytes(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (!Array.isArray(value)) return null;
  const out = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) return null;
    out[i] = b;
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Encrypts to a drand quicknet round with the reference `tle` wasm, producing exactly what subtensor's
 * `Data::TimelockEncrypted` / CRv4 commits expect. Output length is `plaintext.length + 244`.
 * Throws `TimelockError`.
 */
export function timelockEncrypt(input: TimelockEncryptInput): Uint8Array {
  const checked = checkEncryptInput(input);
  ensureWasm();
  let raw: unknown;
  try {
    raw = tle(checked.identity, checked.plaintext, checked.secret, checked.publicKey, CURVE);
  } catch (cause) {
    // The wasm's messages name the failing argument, never its value.
    throw new TimelockError('encrypt_failed', `tle failed: ${errorText(cause)}`, { cause });
  }
  const out = wasmBytes(raw);
  if (out === null || out.length !== checked.plaintext.length + TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES) {
    throw new TimelockError('encrypt_failed', 'tle returned an unexpected value');
  }
  parseTimelockCiphertext(out);
  return out;
}

/**
 * Validates decrypt arguments shared by both implementations: size cap, layout, signature length.
 * Throws `TimelockError`.
 */
export function checkDecryptInput(ciphertext: Uint8Array, signature: Uint8Array): TimelockCiphertextParts {
  const parts = parseTimelockCiphertext(ciphertext);
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    throw new TimelockError('bad_signature', `signature must be ${SIGNATURE_BYTES} bytes`);
  }
  return parts;
}

/**
 * Decrypts a `tle` ciphertext with a round's drand signature (48-byte compressed G1) using the reference
 * wasm, e.g. to check our own commit before sending it. Every failure, including wasm errors, becomes a
 * `TimelockError`: `bad_ciphertext`, `bad_signature`, `oversize`, `decrypt_failed` (e.g. wrong round).
 */
export function timelockDecrypt(ciphertext: Uint8Array, signature: Uint8Array): Uint8Array {
  const parts = checkDecryptInput(ciphertext, signature);
  ensureWasm();
  let raw: unknown;
  try {
    raw = tld(ciphertext, signature, CURVE);
  } catch (cause) {
    const text = errorText(cause);
    if (/sig_vec/i.test(text)) throw new TimelockError('bad_signature', 'signature is not a valid G1 point', { cause });
    if (/deserializ/i.test(text)) throw new TimelockError('bad_ciphertext', `ciphertext rejected: ${text}`, { cause });
    throw new TimelockError('decrypt_failed', `decryption failed: ${text}`, { cause });
  }
  const out = wasmBytes(raw);
  if (out === null || out.length !== parts.plaintextLength) {
    throw new TimelockError('decrypt_failed', 'tld returned an unexpected value');
  }
  return out;
}

function checkNonNegativeInteger(value: number, what: string, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TimelockError('bad_input', `${what} must be an integer in [0, ${max}], got ${value}`);
  }
}

/** Python's `round()` (half to even) for the block-count term, matching the SDK's reveal-round formula. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Reveal round for a miner commitment (chain.md §4 step 3, the Python SDK's formula):
 * `floor(((floor(now) − genesis) + round(blocks × 12)) / 3)`. The clock is injected so callers and tests
 * control time. Throws `TimelockError('bad_input')` for a time before quicknet genesis or bad numbers.
 */
export function commitRevealRound(nowUnixSeconds: number, blocksUntilReveal = 1): number {
  if (!Number.isFinite(nowUnixSeconds) || nowUnixSeconds < DRAND_QUICKNET.genesisTime) {
    throw new TimelockError('bad_input', `now must be a Unix time after quicknet genesis, got ${nowUnixSeconds}`);
  }
  if (!Number.isFinite(blocksUntilReveal) || blocksUntilReveal < 0) {
    throw new TimelockError('bad_input', `blocksUntilReveal must be a finite non-negative number, got ${blocksUntilReveal}`);
  }
  const elapsed = Math.floor(nowUnixSeconds) - DRAND_QUICKNET.genesisTime;
  return Math.floor((elapsed + roundHalfEven(blocksUntilReveal * BLOCK_TIME_SECONDS)) / DRAND_QUICKNET.periodSeconds);
}

/** Arguments of {@link weightsRevealRound}; all chain values as read at `currentBlock`. */
export interface WeightsRevealRoundInput {
  /** Wall clock, Unix seconds. */
  readonly nowUnixSeconds: number;
  /** Current block number. */
  readonly currentBlock: number;
  /** Subnet id (u16). */
  readonly netuid: number;
  /** Mechanism id (u8); 0 for the main mechanism. */
  readonly mecid?: number;
  /** `Tempo(netuid)`. */
  readonly tempo: number;
  /** The subnet's `RevealPeriodEpochs` hyperparameter. */
  readonly revealPeriodEpochs: number;
}

/**
 * drand round for a CRv4 weights commit (chain.md §6.2 step 5): the round due a few blocks after the
 * first block of the reveal epoch, so the chain has the pulse when it tries to reveal. With
 * `n = mecid·4096 + netuid + 1`, `t = tempo + 1`: `first = (floor((cur + n)/t) + revealPeriod)·t − n`,
 * `secs = (first + 3 − cur)·12`, `round = max(1, floor((now + secs − genesis)/3))`.
 * Throws `TimelockError('bad_input')` for out-of-range arguments.
 */
export function weightsRevealRound(input: WeightsRevealRoundInput): number {
  const { nowUnixSeconds, currentBlock, netuid, mecid = 0, tempo, revealPeriodEpochs } = input;
  if (!Number.isFinite(nowUnixSeconds) || nowUnixSeconds < 0) {
    throw new TimelockError('bad_input', `now must be a finite Unix time, got ${nowUnixSeconds}`);
  }
  checkNonNegativeInteger(currentBlock, 'currentBlock');
  checkNonNegativeInteger(netuid, 'netuid', 0xffff);
  checkNonNegativeInteger(mecid, 'mecid', 0xff);
  checkNonNegativeInteger(tempo, 'tempo', 0xffff);
  checkNonNegativeInteger(revealPeriodEpochs, 'revealPeriodEpochs', 0xffff_ffff);
  const n = mecid * 4096 + netuid + 1;
  const t = tempo + 1;
  const first = (Math.floor((currentBlock + n) / t) + revealPeriodEpochs) * t - n;
  const secs = (first + 3 - currentBlock) * BLOCK_TIME_SECONDS;
  const round = Math.floor((Math.floor(nowUnixSeconds) + secs - DRAND_QUICKNET.genesisTime) / DRAND_QUICKNET.periodSeconds);
  return Math.max(1, round);
}
