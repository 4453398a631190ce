import { describe, expect, it } from 'vitest';
import { pyFloatStr, pyFormatFixed, pyMean, pyMedian, pyRound, rationalToDouble } from './py-numbers.ts';

// Expected values were produced with CPython 3 (statistics / format / str).
describe('pyMean (statistics.mean)', () => {
  it('rounds once from the exact sum', () => {
    expect(pyMean([0.1, 0.2, 0.3])).toBe(0.2);
    expect((0.1 + 0.2 + 0.3) / 3).not.toBe(0.2); // why the exact version exists
    expect(pyMean([1, 0.75, 0.25, 0, 0.25])).toBe(0.45);
    expect(pyMean([0.1, 0.1, 0.1, 0.7])).toBe(0.25);
    expect(pyMean([-1, 1])).toBe(0);
    expect(() => pyMean([])).toThrow();
  });

  it('converts exact rationals with ties to even and subnormals', () => {
    expect(rationalToDouble(1n, 3n)).toBe(1 / 3);
    expect(rationalToDouble(1n, 1n << 1074n)).toBe(5e-324);
    expect(rationalToDouble((1n << 53n) + 1n, 1n)).toBe(2 ** 53); // tie ⇒ even
    expect(rationalToDouble((1n << 53n) + 3n, 1n)).toBe(2 ** 53 + 4);
  });
});

describe('pyMedian (statistics.median)', () => {
  it('middle element or float mean of the two middle ones', () => {
    expect(pyMedian([0.45, 1, 0.65])).toBe(0.65);
    expect(pyMedian([0.1, 0.2, 0.3, 0.7])).toBe(0.25);
  });
});

describe('pyFormatFixed / pyFloatStr', () => {
  it('rounds exact binary ties to even', () => {
    expect(pyFormatFixed(0.125, 2)).toBe('0.12');
    expect(pyFormatFixed(0.375, 2)).toBe('0.38');
    expect(pyFormatFixed(1 / 128, 6)).toBe('0.007812');
    expect(pyFormatFixed(2.5, 0)).toBe('2');
    expect(pyFormatFixed(0.015, 2)).toBe('0.01'); // 0.015 is slightly below the tie in binary
  });

  it('prints floats like Python str()', () => {
    expect(pyFloatStr(0.05)).toBe('0.05');
    expect(pyFloatStr(1)).toBe('1.0');
    expect(pyFloatStr(1e-5)).toBe('1e-05');
    expect(pyFloatStr(2.5e-5)).toBe('2.5e-05');
    expect(pyFloatStr(1e16)).toBe('1e+16');
    expect(pyFloatStr(123456789012345)).toBe('123456789012345.0');
    expect(pyFloatStr(0.0001)).toBe('0.0001');
    expect(pyFloatStr(-0)).toBe('-0.0');
  });
});

describe('pyMean where naive float summation differs (values from python3 statistics)', () => {
  it('rounds the exact rational sum once', () => {
    expect(pyMean([0.1, 0.2, 0.3])).toBe(0.2); // st.mean; naive sum/3 == 0.20000000000000004
    expect([0.1, 0.2, 0.3].reduce((a, b) => a + b) / 3).toBe(0.20000000000000004);
    expect(pyMean([1e16, 1, 1, 1])).toBe(2500000000000001); // st.mean == 2500000000000001.0; naive 2500000000000000.0
    expect(pyMean([0.3, 0.3, 0.3, 0.1])).toBe(0.25); // naive 0.24999999999999997
  });
});

describe('pyRound (round(x, n))', () => {
  it('rounds the exact binary value half-to-even', () => {
    // python3: round(0.1234565, 6) == 0.123456 (the double is just below the tie); round(2.6750000000000003, 2) == 2.68
    expect(pyRound(0.1234565, 6)).toBe(0.123456);
    expect(pyRound(2.6750000000000003, 2)).toBe(2.68);
    expect(pyRound(0.7000000000000001, 6)).toBe(0.7);
    expect(pyRound(1 / 3, 6)).toBe(0.333333);
    expect(pyRound(0.0000005, 6)).toBe(0); // 5e-07 is below the tie in binary
    expect(pyRound(0.0000015, 6)).toBe(0.000002);
  });
});
