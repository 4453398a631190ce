import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.ts';
import { createKernel, KERNEL_ITEM_SIZE, type Kernel, type KernelDtype } from './fingerprint-kernel.ts';
import { f16ToNumber } from './fingerprint-shard.ts';
import { combinePairwiseLeaves, pairwiseLeaves, pairwiseSplit, pairwiseSumSquares } from './pairwise.ts';

const SIZES = [0, 1, 7, 8, 9, 15, 16, 127, 128, 129, 135, 255, 256, 1000, 100_003, 3_001, 77_777, 12_345];

/** Random elements of `dtype` (raw bytes) and their float32 values, with subnormals, ±0, no inf/NaN. */
function randomSpan(dtype: KernelDtype, n: number, seed: number): { raw: Uint8Array; values: Float32Array | Float64Array } {
  const rand = mulberry32(seed);
  const special = (): number | null => {
    const r = rand();
    return r < 0.02 ? 0 : r < 0.04 ? -0 : null;
  };
  if (dtype === 'BF16' || dtype === 'F16') {
    const bits = new Uint16Array(n);
    const values = new Float32Array(n);
    const expBits = dtype === 'BF16' ? 8 : 5;
    const mantBits = 15 - expBits;
    const scratch = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < n; i++) {
      const sp = special();
      const exp = rand() < 0.1 ? 0 : Math.floor(rand() * ((1 << expBits) - 1)); // never all-ones (inf/NaN)
      bits[i] = sp !== null ? (Object.is(sp, -0) ? 0x8000 : 0) : ((rand() < 0.5 ? 0x8000 : 0) | (exp << mantBits) | Math.floor(rand() * (1 << mantBits)));
      const b = bits[i] as number;
      if (dtype === 'F16') values[i] = f16ToNumber(b);
      else {
        scratch.setUint32(0, b << 16);
        values[i] = scratch.getFloat32(0);
      }
    }
    return { raw: new Uint8Array(bits.buffer), values };
  }
  if (dtype === 'F32') {
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const sp = special();
      const exp = rand() < 0.1 ? 0 : Math.floor(rand() * 255);
      bits[i] = sp !== null ? (Object.is(sp, -0) ? 0x80000000 : 0) : ((rand() < 0.5 ? 0x80000000 : 0) | (exp << 23) | Math.floor(rand() * 0x800000)) >>> 0;
    }
    return { raw: new Uint8Array(bits.buffer), values: new Float32Array(bits.buffer) };
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const sp = special();
    // Exponents from f64-subnormal territory up to near float32 max: rounding to f32 matters.
    values[i] = sp ?? (rand() - 0.5) * 2 ** Math.floor(rand() * 300 - 170) * (1 + rand() * 1e-9);
  }
  return { raw: new Uint8Array(values.buffer), values };
}

const DTYPES: KernelDtype[] = ['BF16', 'F16', 'F32', 'F64'];

describe('pairwise reference', () => {
  it('follows the NumPy split rule', () => {
    expect(pairwiseSplit(129)).toBe(64);
    expect(pairwiseSplit(1000)).toBe(496);
    expect(pairwiseSplit(255)).toBe(120);
  });

  it('sums small spans in the documented order', () => {
    // 9 elements: r[0..7] = first 8, then the 9th is added after the tree of r.
    const v = Float32Array.from([2 ** 27, 1, 1, 1, 1, 1, 1, 1, 1.5]);
    const sq = Array.from(v, (x) => x * x);
    const [r0, r1, r2, r3, r4, r5, r6, r7, r8] = sq as [number, number, number, number, number, number, number, number, number];
    expect(pairwiseSumSquares(v)).toBe(r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7)) + r8);
  });
});

describe('WASM kernel', () => {
  let kernel: Kernel;
  const ensure = async (): Promise<Kernel> => {
    kernel ??= await createKernel(8 * 100_003 + 4096);
    return kernel;
  };

  for (const dtype of DTYPES) {
    it(`${dtype}: equals the JS reference bit-exactly for every size and alignment`, async () => {
      const k = await ensure();
      for (const [s, n] of SIZES.entries()) {
        const { raw, values } = randomSpan(dtype, n, 1000 * s + dtype.length);
        const expected = pairwiseSumSquares(values);
        for (const ptr of [0, 3, 64]) {
          k.bytes.set(raw, ptr);
          expect({ n, ptr, sum: k.sumSquares(dtype, ptr, n) }).toEqual({ n, ptr, sum: expected });
        }
      }
    });

    it(`${dtype}: streaming along the pairwise tree equals the one-shot sum`, async () => {
      const k = await ensure();
      const n = 100_003;
      const { raw } = randomSpan(dtype, n, 42);
      k.bytes.set(raw, 0);
      const oneShot = k.sumSquares(dtype, 0, n);
      for (const maxLeaf of [128, 129, 1000, 4096, 65_536]) {
        const leaves = pairwiseLeaves(n, maxLeaf);
        expect(leaves.reduce((a, l) => a + l.count, 0)).toBe(n);
        const sums = leaves.map((l) => k.sumSquares(dtype, l.start * KERNEL_ITEM_SIZE[dtype], l.count));
        expect(combinePairwiseLeaves(n, maxLeaf, sums)).toBe(oneShot);
      }
    });
  }

  it('F64 rounds to float32 first (Math.fround), then squares in f64', async () => {
    const k = await ensure();
    const x = 1 + 2 ** -30; // not a float32: rounds to 1
    const big = 3.5e38; // rounds to float32 +inf
    k.bytes.set(new Uint8Array(Float64Array.from([x]).buffer), 0);
    expect(k.sumSquares('F64', 0, 1)).toBe(1);
    k.bytes.set(new Uint8Array(Float64Array.from([big]).buffer), 0);
    expect(k.sumSquares('F64', 0, 1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('F16 infinities and NaN stay non-finite', async () => {
    const k = await ensure();
    k.bytes.set(new Uint8Array(Uint16Array.from([0x3c00, 0xfc00, 0, 0, 0, 0, 0, 0, 0]).buffer), 0);
    expect(k.sumSquares('F16', 0, 9)).toBe(Number.POSITIVE_INFINITY);
    expect(k.sumSquares('F16', 0, 1)).toBe(1);
    k.bytes.set(new Uint8Array(Uint16Array.from([0x7e00]).buffer), 0);
    expect(k.sumSquares('F16', 0, 1)).toBeNaN();
  });

  it('rejects spans outside its memory', async () => {
    const k = await ensure();
    expect(() => k.sumSquares('BF16', k.bytes.byteLength - 2, 2)).toThrow(RangeError);
  });
});
