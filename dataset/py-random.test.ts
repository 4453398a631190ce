/**
 * PyRandom against CPython: every vector in tests/fixtures/pyrandom/vectors.json was produced by
 * `random.Random(seed)` on CPython 3.11 (tests/fixtures/pyrandom/gen.py), plus the worked example of
 * spec/duel.md §7.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PyRandom, seedKeyWords } from './py-random.ts';

interface SeedVectors {
  seed: string;
  key_words: number[];
  u32_head: number[];
  u32_around_twist: number[];
  u32_2000_sha256: string;
  bits: { k: number; values: string[] }[];
  bits_zero: [number, number];
  randbelow: { n: number; values: number[] }[];
  shuffle: { n: number; result: number[]; next_u32: number }[];
  random: string[];
  sample: { n: number; k: number; next_u32: number; result?: number[]; result_sha256?: string }[];
  sample_strings: { population: string[]; k: number; result: string[] };
  choice: { letters: string[]; one_two: number[] };
  randrange: { args: number[]; values: number[] }[];
}

interface Vectors {
  python: string;
  seeds: SeedVectors[];
  big_shuffle: { seed: string; n: number; sha256: string; head: number[] };
}

const vectors = JSON.parse(
  readFileSync(new URL('../tests/fixtures/pyrandom/vectors.json', import.meta.url), 'utf8'),
) as Vectors;

/** Same digest as gen.py's `digest_list`. */
function digestList(values: ArrayLike<number>): string {
  return createHash('sha256').update(Array.from(values).join(',')).digest('hex');
}

describe('PyRandom: spec/duel.md §7 worked example', () => {
  it('derives 19 key words for "example-seed"', () => {
    expect(seedKeyWords('example-seed')).toHaveLength(19);
  });

  it('first three getrandbits(32)', () => {
    const rng = new PyRandom('example-seed');
    expect([rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32)]).toEqual([
      3512137176, 552613210, 3433516881,
    ]);
  });

  it('shuffle([0..5]) = [0,5,3,2,4,1]', () => {
    const x = [0, 1, 2, 3, 4, 5];
    new PyRandom('example-seed').shuffle(x);
    expect(x).toEqual([0, 5, 3, 2, 4, 1]);
  });
});

describe.each(vectors.seeds.map((v) => [v.seed.length > 70 ? `${v.seed.slice(0, 20)}… (${v.seed.length})` : JSON.stringify(v.seed), v] as const))(
  'PyRandom(%s) matches CPython',
  (_label, v) => {
    it('key words', () => {
      expect(Array.from(seedKeyWords(v.seed))).toEqual(v.key_words);
    });

    it('getrandbits(32) stream across two twists', () => {
      const rng = new PyRandom(v.seed);
      const u32 = Array.from({ length: 2000 }, () => rng.getrandbits(32));
      expect(u32.slice(0, 8)).toEqual(v.u32_head);
      expect(u32.slice(620, 630)).toEqual(v.u32_around_twist);
      expect(digestList(u32)).toBe(v.u32_2000_sha256);
    });

    it('getrandbits(k) for k in {1,7,31,32,33,53,64,65,200}, as number (k ≤ 53) and bigint', () => {
      const asBig = new PyRandom(v.seed);
      const asNumber = new PyRandom(v.seed);
      for (const { k, values } of v.bits) {
        for (const expected of values) {
          expect(asBig.getrandbitsBig(k).toString()).toBe(expected);
          if (k <= 53) expect(asNumber.getrandbits(k)).toBe(Number(expected));
          else asNumber.getrandbitsBig(k);
        }
      }
      expect([asBig.getrandbits(0), asBig.getrandbits(32)]).toEqual(v.bits_zero);
      expect(asBig.getrandbitsBig(0)).toBe(0n);
    });

    it('randbelow(n) including n = 1, 2^32 ± 1 and 2^53', () => {
      const rng = new PyRandom(v.seed);
      for (const { n, values } of v.randbelow) {
        expect(values.map(() => rng.randbelow(n))).toEqual(values);
      }
    });

    it('shuffle (arrays and typed arrays), then the stream continues in sync', () => {
      for (const { n, result, next_u32 } of v.shuffle) {
        const rng = new PyRandom(v.seed);
        const x = Array.from({ length: n }, (_, i) => i);
        rng.shuffle(x);
        expect(x).toEqual(result);
        expect(rng.getrandbits(32)).toBe(next_u32);

        const typed = Uint32Array.from({ length: n }, (_, i) => i);
        new PyRandom(v.seed).shuffle(typed);
        expect(Array.from(typed)).toEqual(result);
      }
    });

    it('random() is the exact float', () => {
      const rng = new PyRandom(v.seed);
      for (const repr of v.random) expect(rng.random()).toBe(Number.parseFloat(repr));
    });

    it('sample(range(n), k): pool and set branches', () => {
      for (const c of v.sample) {
        const rng = new PyRandom(v.seed);
        const got = rng.sampleRange(c.n, c.k);
        if (c.result) expect(got).toEqual(c.result);
        else expect(digestList(got)).toBe(c.result_sha256);
        expect(rng.getrandbits(32)).toBe(c.next_u32);
        if (c.n <= 1000) {
          const viaArray = new PyRandom(v.seed).sample(
            Array.from({ length: c.n }, (_, i) => i),
            c.k,
          );
          expect(viaArray).toEqual(got);
        }
      }
      const s = v.sample_strings;
      expect(new PyRandom(v.seed).sample(s.population, s.k)).toEqual(s.result);
    });

    it('choice', () => {
      const rng = new PyRandom(v.seed);
      expect(v.choice.letters.map(() => rng.choice('abcdef'))).toEqual(v.choice.letters);
      expect(v.choice.one_two.map(() => rng.choice([1, 2]))).toEqual(v.choice.one_two);
    });

    it('randrange with one, two and three arguments', () => {
      const rng = new PyRandom(v.seed);
      for (const { args, values } of v.randrange) {
        const [a, b, c] = args as [number, number?, number?];
        expect(values.map(() => rng.randrange(a, b, c))).toEqual(values);
      }
    });
  },
);

describe('PyRandom: large shuffles', () => {
  it(`shuffle of ${vectors.big_shuffle.n} indices matches CPython`, () => {
    const { seed, n, sha256, head } = vectors.big_shuffle;
    const x = new Uint32Array(n);
    for (let i = 0; i < n; i++) x[i] = i;
    new PyRandom(seed).shuffle(x);
    expect(Array.from(x.subarray(0, 5))).toEqual(head);
    expect(digestList(x)).toBe(sha256);
  });
  // The 12 M-row shuffle (timing included) runs once, in dataset/samplers.test.ts.
});

describe('PyRandom: argument errors', () => {
  const rng = new PyRandom('errors');
  it.each([
    ['randbelow(0)', () => rng.randbelow(0)],
    ['randbelow(2^53 + 2)', () => rng.randbelow(2 ** 53 + 2)],
    ['randbelow(1.5)', () => rng.randbelow(1.5)],
    ['getrandbits(-1)', () => rng.getrandbits(-1)],
    ['getrandbits(54)', () => rng.getrandbits(54)],
    ['choice([])', () => rng.choice([])],
    ['randrange(0)', () => rng.randrange(0)],
    ['randrange(5, 5)', () => rng.randrange(5, 5)],
    ['randrange(0, 10, 0)', () => rng.randrange(0, 10, 0)],
    ['sample k > n', () => rng.sample([1, 2], 3)],
    ['lone surrogate seed', () => new PyRandom('a\ud800b')],
  ])('%s throws RangeError', (_name, fn) => {
    expect(fn).toThrow(RangeError);
  });
});
