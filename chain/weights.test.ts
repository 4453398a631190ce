import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizeWeightsU16, resolveVersionKey, sdkVersionKey, weightsRateLimitAllows } from './weights.ts';

interface GoldenCase {
  uids: number[];
  weights: string[];
  outUids: number[];
  outWeights: number[];
}
const golden = JSON.parse(readFileSync(new URL('./testdata/weights_golden.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

describe('normalizeWeightsU16 (chain.md §6.1)', () => {
  it('spec examples', () => {
    // 0.25 / 0.5 × 65535 = 32767.5 exactly ⇒ half-even 32768
    expect(normalizeWeightsU16([0, 1, 2], [0.5, 0.25, 0.25])).toEqual({ uids: [0, 1, 2], weights: [65535, 32768, 32768] });
    // float32(0.3) / float32(0.4) × 65535 = 49151.2512… ⇒ 49151
    expect(normalizeWeightsU16([0, 1, 2], [0.4, 0.3, 0.3])).toEqual({ uids: [0, 1, 2], weights: [65535, 49151, 49151] });
  });

  it('hand-computed cases', () => {
    // single weight ⇒ max
    expect(normalizeWeightsU16([7], [1])).toEqual({ uids: [7], weights: [65535] });
    // equal split ⇒ all max (5-king split 2000 bps each)
    expect(normalizeWeightsU16([0, 3, 4, 5, 9], [0.2, 0.2, 0.2, 0.2, 0.2]).weights).toEqual([65535, 65535, 65535, 65535, 65535]);
    // 0.7/0.2/0.1: f32(0.2)/f32(0.7)·65535 = 18724.286… ⇒ 18724; f32(0.1)/f32(0.7)·65535 = 9362.143… ⇒ 9362
    expect(normalizeWeightsU16([0, 1, 2], [0.7, 0.2, 0.1]).weights).toEqual([65535, 18724, 9362]);
    // 0.1/0.6·65535 would be 10922.5 in exact arithmetic; float32 inputs give 10922.4997… ⇒ 10922
    expect(normalizeWeightsU16([0, 1], [0.6, 0.1]).weights).toEqual([65535, 10922]);
    // 0.0001/0.9999·65535 = 6.554… ⇒ 7
    expect(normalizeWeightsU16([0, 1], [0.9999, 0.0001])).toEqual({ uids: [0, 1], weights: [65535, 7] });
    // 1e-6·65535 = 0.0655 ⇒ 0 ⇒ dropped together with its uid
    expect(normalizeWeightsU16([5, 6], [1, 1e-6])).toEqual({ uids: [5], weights: [65535] });
    // uid order is kept (burn uid first, then ascending — the caller orders them)
    expect(normalizeWeightsU16([0, 2, 1], [0.25, 0.5, 0.25])).toEqual({ uids: [0, 2, 1], weights: [32768, 65535, 32768] });
    // weights need not sum to 1: only ratios to the max matter
    expect(normalizeWeightsU16([1, 2], [3, 1]).weights).toEqual([65535, 21845]);
  });

  it('empty and all-zero inputs send nothing', () => {
    expect(normalizeWeightsU16([], [])).toEqual({ uids: [], weights: [] });
    expect(normalizeWeightsU16([0, 1], [0, 0])).toEqual({ uids: [], weights: [] });
  });

  it('rejects invalid input', () => {
    expect(() => normalizeWeightsU16([0], [0.5, 0.5])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([65536], [1])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([-1], [1])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([1.5], [1])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([0], [-0.1])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([0], [Number.NaN])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([0], [Number.POSITIVE_INFINITY])).toThrow(RangeError);
    expect(() => normalizeWeightsU16([0], [1e39])).toThrow(RangeError);
  });

  it(`matches the Python SDK rule (numpy float32) on ${golden.cases.length} recorded random vectors`, () => {
    for (const c of golden.cases) {
      const got = normalizeWeightsU16(c.uids, c.weights.map(Number));
      expect(got, JSON.stringify(c)).toEqual({ uids: c.outUids, weights: c.outWeights });
    }
  });
});

describe('rate limit and version key (chain.md §6.2)', () => {
  it('requires current − lastUpdate > rateLimit', () => {
    expect(weightsRateLimitAllows(200, null, 100)).toBe(true);
    expect(weightsRateLimitAllows(200, 100, 100)).toBe(false);
    expect(weightsRateLimitAllows(201, 100, 100)).toBe(true);
    expect(weightsRateLimitAllows(5, 5, 0)).toBe(false);
    expect(weightsRateLimitAllows(6, 5, 0)).toBe(true);
  });
  it('version key: configured, SDK convention, raised to the chain key', () => {
    expect(sdkVersionKey('10.3.0')).toBe(10003000);
    expect(resolveVersionKey({})).toBe(10003000);
    expect(resolveVersionKey({ configured: 5 })).toBe(5);
    expect(resolveVersionKey({ configured: 5, chainKey: 9 })).toBe(9);
    expect(resolveVersionKey({ sdkVersion: '9.1.2', chainKey: 0 })).toBe(9001002);
    expect(() => sdkVersionKey('main')).toThrow(RangeError);
  });
});
