import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CanonicalJsonValue, canonicalJson, compareCodePoints, roundHalfEven, utf8DecodeIgnore, utf8DecodeStrict } from './compat.ts';

interface Golden {
  utf8: Array<{ hex: string; decoded: string }>;
  canonical: Array<{ value: CanonicalJsonValue; canonical: string }>;
}
const golden = JSON.parse(readFileSync(new URL('./testdata/compat_golden.json', import.meta.url), 'utf8')) as Golden;

describe('roundHalfEven (Python round)', () => {
  it.each([
    [2.5, 2],
    [3.5, 4],
    [0.5, 0],
    [1.5, 2],
    [32767.5, 32768],
    [49151.25, 49151],
    [0.49999999999999994, 0],
    [65534.5, 65534],
    [-2.5, -2],
    [-0.5, 0],
    [7, 7],
  ])('round(%d) = %d', (x, y) => {
    expect(roundHalfEven(x)).toBe(y);
  });
  it('rejects non-finite input', () => {
    expect(() => roundHalfEven(Number.NaN)).toThrow(RangeError);
  });
});

describe('utf8DecodeIgnore (bytes.decode("utf-8", errors="ignore"))', () => {
  it('drops invalid sequences without inserting U+FFFD', () => {
    expect(utf8DecodeIgnore(Uint8Array.of(0x61, 0xff, 0x62))).toBe('ab');
    expect(utf8DecodeIgnore(Uint8Array.of(0xe2, 0x82, 0x61))).toBe('a'); // truncated 3-byte seq
    expect(utf8DecodeIgnore(Uint8Array.of(0xed, 0xa0, 0x80))).toBe(''); // surrogate
    expect(utf8DecodeIgnore(Uint8Array.of(0xc0, 0xaf))).toBe(''); // overlong
    expect(utf8DecodeIgnore(Uint8Array.of(0xef, 0xbf, 0xbd))).toBe('\ufffd'); // a real U+FFFD is kept
    expect(utf8DecodeIgnore(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61))).toBe('\ufeffa'); // BOM kept
    expect(utf8DecodeIgnore(Uint8Array.of(0xf0, 0x9f, 0x98, 0x80))).toBe('😀');
  });
  it(`matches CPython on ${golden.utf8.length} recorded random byte strings`, () => {
    for (const c of golden.utf8) {
      expect(utf8DecodeIgnore(Buffer.from(c.hex, 'hex')), c.hex).toBe(c.decoded);
    }
  });
  it('equals strict decoding on valid UTF-8', () => {
    const s = 'v7|ns/ré🚀|\u0000\u007f';
    const bytes = new TextEncoder().encode(s);
    expect(utf8DecodeIgnore(bytes)).toBe(s);
    expect(utf8DecodeStrict(bytes)).toBe(s);
    expect(() => utf8DecodeStrict(Uint8Array.of(0xff))).toThrow();
  });
});

describe('canonicalJson (json.dumps sort_keys, compact, ensure_ascii)', () => {
  it('escapes like Python', () => {
    expect(canonicalJson('\u007f\u00e9😀\u0000"\\/\n')).toBe('"\\u007f\\u00e9\\ud83d\\ude00\\u0000\\"\\\\/\\n"');
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
  });
  it('sorts keys by code point, not UTF-16 unit', () => {
    expect(compareCodePoints('\uffff', '😀')).toBe(-1);
    expect(canonicalJson({ '😀': 1, '\uffff': 2 })).toBe('{"\\uffff":2,"\\ud83d\\ude00":1}');
  });
  it('refuses floats', () => {
    expect(() => canonicalJson(0.5)).toThrow(TypeError);
  });
  it(`matches CPython on ${golden.canonical.length} recorded random values`, () => {
    for (const c of golden.canonical) expect(canonicalJson(c.value)).toBe(c.canonical);
  });
});
