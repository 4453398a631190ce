import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { divergenceSampleIndices, fingerprintSampleIndices } from './fingerprint-sampling.ts';

describe('sample indices', () => {
  it('§8 step 3: big-endian u32 words of blake2b512(key) mod n', () => {
    const h = createHash('blake2b512').update('model.layers.0.weight').digest();
    const want = Array.from({ length: 16 }, (_, i) => h.readUInt32BE(4 * i) % 1000);
    expect(Array.from(fingerprintSampleIndices('model.layers.0.weight', 1000))).toEqual(want);
  });

  it('n = 0 gives zeros; indices stay below n', () => {
    expect(Array.from(fingerprintSampleIndices('k', 0))).toEqual(new Array(16).fill(0));
    expect(Array.from(divergenceSampleIndices('k', 's', 0))).toEqual(new Array(256).fill(0));
    for (const n of [1, 7, 2 ** 32 + 5]) for (const i of divergenceSampleIndices('k', 's', n)) expect(i).toBeLessThan(n);
  });

  it('§9.2: digest j of `key:salt:j` gives indices 16j..16j+15', () => {
    const idx = divergenceSampleIndices('w', 'albedo-div-v1', 99_991);
    expect(idx).toHaveLength(256);
    const h = createHash('blake2b512').update('w:albedo-div-v1:15', 'utf8').digest();
    expect(Array.from(idx.subarray(240))).toEqual(Array.from({ length: 16 }, (_, i) => h.readUInt32BE(4 * i) % 99_991));
    expect(Array.from(divergenceSampleIndices('w', 'other', 99_991))).not.toEqual(Array.from(idx));
  });
});
