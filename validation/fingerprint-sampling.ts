import { createHash } from 'node:crypto';
import { DIVERGENCE_SAMPLES, FINGERPRINT_SAMPLES } from './fingerprint-types.ts';

/**
 * Which elements of a tensor are sampled: spec/validation.md §8 step 3 (the 16 upstream samples)
 * and §9.2 (the 256 divergence samples per salt). Node's `blake2b512` is BLAKE2b with a 64-byte
 * digest and no key, which is what both rules use.
 */

const U32_PER_DIGEST = 16;
const DIVERGENCE_DIGESTS = DIVERGENCE_SAMPLES / U32_PER_DIGEST;

function digestIndices(message: string, n: number, out: Float64Array, at: number): void {
  const h = createHash('blake2b512').update(message, 'utf8').digest();
  for (let i = 0; i < U32_PER_DIGEST; i++) out[at + i] = n === 0 ? 0 : h.readUInt32BE(4 * i) % n;
}

/** §8 step 3: 16 indices `u32_be(blake2b512(key)[4i..]) mod n` (zeros when n = 0). */
export function fingerprintSampleIndices(key: string, n: number): Float64Array {
  const out = new Float64Array(FINGERPRINT_SAMPLES);
  digestIndices(key, n, out, 0);
  return out;
}

/** §9.2: 256 indices from the digests of `key:salt:j`, j = 0..15 (zeros when n = 0). */
export function divergenceSampleIndices(key: string, salt: string, n: number): Float64Array {
  const out = new Float64Array(DIVERGENCE_SAMPLES);
  for (let j = 0; j < DIVERGENCE_DIGESTS; j++) digestIndices(`${key}:${salt}:${j}`, n, out, j * U32_PER_DIGEST);
  return out;
}
