/**
 * Pure TypeScript port of the ideal-labs `tle` timelock scheme (chain.md §7) on `@noble/curves` BLS12-381
 * and Node's AES-256-GCM. It exists so the chain-compatible format does not hinge on one wasm blob: tests
 * prove it interoperates with `@ideallabs/timelock_wasm_wrapper@1.0.0` in both directions.
 *
 * Scheme (Boneh–Franklin FullIdent over TinyBLS381: identities and signatures in G1, keys and U in G2):
 * - `σ` random 32 bytes, `k` the 32-byte ephemeral secret (the IBE message and the AES key).
 * - `r = H3(σ, k) = sha256(σ ‖ k) mod q` (big-endian), `U = r·G2`.
 * - `v = σ ⊕ H2(e(Q_id, r·pk))` with `H2 = sha256(arkworks Fp12 bytes)`, `w = k ⊕ H4(σ)`, `H4 = sha256`.
 * - body = AES-256-GCM(k, random 12-byte nonce, no AAD) of the plaintext.
 * - decrypt: `σ = v ⊕ H2(e(sig, U))`, `k = w ⊕ H4(σ)`, then require `H3(σ, k)·G2 == U`.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Fp2, Fp12 } from '@noble/curves/abstract/tower.js';
import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import {
  checkDecryptInput,
  checkEncryptInput,
  decodeDrandSignature,
  drandIdentityPoint,
  serializeTimelockCiphertext,
  TimelockError,
  type TimelockEncryptInput,
} from './timelock.ts';

/** Bytes of one arkworks-serialised Fp12 (12 base-field coefficients × 48 bytes). */
export const ARKWORKS_FP12_BYTES = 576;

const FP_BYTES = 48;
const SIGMA_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AES = 'aes-256-gcm';

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function xor32(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/**
 * arkworks `serialize_compressed` of a BLS12-381 Fp12 (what `tle`'s H2 hashes): coefficients in tower
 * order c0.c0.c0, c0.c0.c1, c0.c1.c0, …, c1.c2.c1, each 48 bytes little-endian. noble's tower
 * (Fp2 = Fp[u]/(u²+1), Fp6 = Fp2[v]/(v³−(u+1)), Fp12 = Fp6[w]/(w²−v)) is the same as arkworks'.
 */
export function arkworksFp12Bytes(f: Fp12): Uint8Array {
  const out = new Uint8Array(ARKWORKS_FP12_BYTES);
  let o = 0;
  for (const c6 of [f.c0, f.c1]) {
    for (const c2 of [c6.c0, c6.c1, c6.c2]) {
      for (let x of [c2.c0, c2.c1]) {
        for (let i = 0; i < FP_BYTES; i++) {
          out[o + i] = Number(x & 0xffn);
          x >>= 8n;
        }
        o += FP_BYTES;
      }
    }
  }
  return out;
}

/** `tle`'s H2: sha256 of the arkworks bytes of a pairing value. */
function h2(gt: Fp12): Uint8Array {
  return sha256(arkworksFp12Bytes(gt));
}

/** `tle`'s H3: sha256(σ ‖ message) read big-endian, reduced mod the group order. */
function h3(sigma: Uint8Array, message: Uint8Array): bigint {
  const digest = sha256(sigma, message);
  return BigInt('0x' + Buffer.from(digest).toString('hex')) % bls12_381.fields.Fr.ORDER;
}

/**
 * TypeScript equivalent of `timelockEncrypt` (same arguments, same output layout, decryptable by the
 * wasm and by subtensor). σ and the GCM nonce come from the CSPRNG, so output is not deterministic.
 * Throws `TimelockError`.
 */
export function timelockEncryptNoble(input: TimelockEncryptInput): Uint8Array {
  const { plaintext, secret, publicKeyPoint } = checkEncryptInput(input);
  try {
    const qid = drandIdentityPoint(input.round);
    const sigma = new Uint8Array(randomBytes(SIGMA_BYTES));
    const r = h3(sigma, secret);
    if (r === 0n) throw new Error('degenerate H3 output');
    const u = bls12_381.G2.Point.BASE.multiply(r);
    const gt = bls12_381.pairing(qid, publicKeyPoint.multiply(r));
    const v = xor32(sigma, h2(gt));
    const w = xor32(secret, sha256(sigma));
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    const cipher = createCipheriv(AES, secret, nonce);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return serializeTimelockCiphertext({ u: u.toBytes(true), v, w, aesCiphertext: new Uint8Array(body), nonce });
  } catch (cause) {
    if (cause instanceof TimelockError) throw cause;
    throw new TimelockError('encrypt_failed', 'TypeScript timelock encryption failed', { cause });
  }
}

function decodeU(bytes: Uint8Array): WeierstrassPoint<Fp2> {
  try {
    const point = bls12_381.G2.Point.fromBytes(bytes);
    point.assertValidity();
    if (point.is0()) throw new Error('U is the point at infinity');
    return point;
  } catch (cause) {
    throw new TimelockError('bad_ciphertext', 'U is not a valid compressed G2 point', { cause });
  }
}

/**
 * TypeScript equivalent of `timelockDecrypt`: decrypts a `tle` ciphertext (from the wasm, the chain or
 * {@link timelockEncryptNoble}) with a round's 48-byte drand signature. Throws `TimelockError`
 * (`bad_ciphertext`, `bad_signature`, `oversize`, `decrypt_failed` for a wrong round or tampering).
 */
export function timelockDecryptNoble(ciphertext: Uint8Array, signature: Uint8Array): Uint8Array {
  const parts = checkDecryptInput(ciphertext, signature);
  const sig = decodeDrandSignature(signature);
  if (sig === null) throw new TimelockError('bad_signature', 'signature is not a valid G1 point');
  const u = decodeU(parts.u);
  let key: Uint8Array;
  try {
    const sigma = xor32(parts.v, h2(bls12_381.pairing(sig, u)));
    key = xor32(parts.w, sha256(sigma));
    const r = h3(sigma, key);
    if (r === 0n || !bls12_381.G2.Point.BASE.multiply(r).equals(u)) throw new Error('U check failed');
  } catch (cause) {
    throw new TimelockError('decrypt_failed', 'signature does not open this ciphertext (wrong round?)', { cause });
  }
  try {
    const body = parts.aesCiphertext;
    const decipher = createDecipheriv(AES, key, parts.nonce);
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const out = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    return new Uint8Array(out);
  } catch (cause) {
    throw new TimelockError('decrypt_failed', 'AES-GCM authentication failed', { cause });
  }
}
