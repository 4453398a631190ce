/** Python value formatting against CPython output (tests/fixtures/pyrandom/gen_prompts.py). */
import { describe, expect, it } from 'vitest';
import { loadPromptFixtures, parsePyFloat } from '../dataset/test-helpers.ts';
import { compareCodePoints, PyFloat, pyEquals, pyFloatRepr, pyInt, pyJsonDumps, pyJsonLoads, pyRepr, pyStrRepr, pyTruthy } from './py-compat.ts';

const fixtures = loadPromptFixtures();

describe('py-compat against CPython', () => {
  it(`repr(float) for ${fixtures.float_repr.length} floats (edges, random bit patterns, all magnitudes)`, () => {
    for (const repr of fixtures.float_repr) expect(pyFloatRepr(parsePyFloat(repr))).toBe(repr);
  });

  it('repr(str) and repr of containers', () => {
    for (const [s, repr, containerRepr] of fixtures.str_repr) {
      expect(pyStrRepr(s)).toBe(repr);
      expect(pyRepr([s, { [s]: s }])).toBe(containerRepr);
    }
  });

  it('json.dumps(row, sort_keys=True)', () => {
    for (const [value, dumped] of fixtures.json_dumps) expect(pyJsonDumps(value)).toBe(dumped);
  });

  it('json.loads keeps floats as floats, big ints exact, NaN/Infinity accepted', () => {
    for (const [text, value] of fixtures.json_loads) expect(pyJsonLoads(text)).toEqual(value);
    expect(() => pyJsonLoads('{"a": 1,}')).toThrow();
    expect(() => pyJsonLoads('"tab\there"')).toThrow(/control character/);
    expect(() => pyJsonLoads('[1] x')).toThrow(/Extra data/);
    expect(pyJsonLoads('{"__proto__": 1}')).toHaveProperty('__proto__', 1);
  });
});

describe('py-compat semantics', () => {
  it('code-point order puts astral characters after U+FFFF', () => {
    const sorted = ['\u{1F600}', '\uFF5A', 'a', 'É'].sort(compareCodePoints);
    expect(sorted).toEqual(['a', 'É', '\uFF5A', '\u{1F600}']);
    expect(['b', 'ab', 'a'].sort(compareCodePoints)).toEqual(['a', 'ab', 'b']);
  });

  it('truthiness, int() and == mirror Python', () => {
    expect([null, 0, '', [], {}, false, new PyFloat(0)].map(pyTruthy)).toEqual([false, false, false, false, false, false, false]);
    expect([1, 'x', [0], { a: 1 }, true, new PyFloat(Number.NaN)].map(pyTruthy)).toEqual([true, true, true, true, true, true]);
    expect([pyInt(' 12 '), pyInt('-3'), pyInt('1_000'), pyInt(2.9), pyInt(-2.9), pyInt(true), pyInt('1.5'), pyInt(null), pyInt([])]).toEqual([
      12,
      -3,
      1000,
      2,
      -2,
      1,
      null,
      null,
      null,
    ]);
    expect([pyEquals(true, 1), pyEquals('1', 1), pyEquals(1, 1), pyEquals(null, 0)]).toEqual([true, false, true, false]);
  });
});
