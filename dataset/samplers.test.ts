/**
 * Both duel samplers against the Python reference (tests/fixtures/pyrandom/gen_samplers.py, a literal
 * transcription of spec/duel.md §6 and §13 on CPython's random.Random), plus the §6 worked example.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DatasetError } from './errors.ts';
import { parseMultiSourceManifest, parseSweZeroManifest } from './manifest.ts';
import {
  apportion,
  familyGrid,
  getSampler,
  MULTI_SOURCE_SAMPLER_ID,
  multiSourceManifestSampleIds,
  SAMPLERS,
  type SamplingProfile,
  SWE_ZERO_SAMPLER_ID,
  sweZeroManifestSampleIds,
} from './samplers.ts';

/** Either the ids themselves or, for long lists, count + head + sha256 of the ids joined by `\n`. */
interface Outcome {
  ids?: string[];
  ids_count?: number;
  ids_head?: string[];
  ids_sha256?: string;
  error?: string;
}

interface Fixtures {
  v1: { name: string; manifest: unknown; cases: ({ seed: string; sample_count: number; max_turns: number } & Outcome)[] }[];
  v1_big: { manifest: unknown; seed: string; sample_count: number; max_turns: number; ids: string[] };
  v1_errors: ({ name: string; manifest: unknown; seed: string; sample_count: number; max_turns: number } & Outcome)[];
  v2: { name: string; manifest: unknown; cases: ({ seed: string; sample_count: number; profile: SamplingProfile } & Outcome)[] }[];
  v2_errors: ({ name: string; manifest: unknown; seed: string; sample_count: number } & Outcome)[];
}

const fixtures = JSON.parse(readFileSync(new URL('../tests/fixtures/pyrandom/samplers.json', import.meta.url), 'utf8')) as Fixtures;

function expectOutcome(run: () => string[], expected: Outcome): void {
  if (expected.error !== undefined) {
    let thrown: unknown;
    try {
      run();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DatasetError);
    expect((thrown as DatasetError).message).toBe(expected.error);
    return;
  }
  const ids = run();
  if (expected.ids) {
    expect(ids).toEqual(expected.ids);
    return;
  }
  expect(ids).toHaveLength(expected.ids_count!);
  expect(ids.slice(0, expected.ids_head!.length)).toEqual(expected.ids_head);
  expect(createHash('sha256').update(ids.join('\n')).digest('hex')).toBe(expected.ids_sha256);
}

const label = (seed: string) => (seed.length > 24 ? `${seed.slice(0, 12)}…` : JSON.stringify(seed));

describe('swe-zero-manifest-sample-v1 (§6)', () => {
  it('reproduces the §6 worked example', () => {
    const manifest = {
      shards: [
        { name: 'data/train-00000-of-00002.parquet', rows: 3 },
        { name: 'data/train-00001-of-00002.parquet', rows: 2 },
      ],
      total_rows: 5,
    };
    expect(sweZeroManifestSampleIds(manifest, 'example-seed', 7, 3)).toEqual([
      'data/train-00000-of-00002.parquet:0:0',
      'data/train-00000-of-00002.parquet:0:1',
      'data/train-00000-of-00002.parquet:0:2',
      'data/train-00001-of-00002.parquet:1:0',
      'data/train-00001-of-00002.parquet:1:1',
      'data/train-00001-of-00002.parquet:1:2',
      'data/train-00001-of-00002.parquet:0:0',
    ]);
  });

  for (const { name, manifest, cases } of fixtures.v1) {
    it(`matches Python on "${name}" (${cases.length} cases)`, () => {
      const parsed = cases.some((c) => c.error !== undefined) ? null : parseSweZeroManifest(manifest);
      for (const c of cases) {
        expectOutcome(() => sweZeroManifestSampleIds(manifest, c.seed, c.sample_count, c.max_turns), c);
        // A pre-validated manifest gives the same ids.
        if (parsed) expectOutcome(() => sweZeroManifestSampleIds(parsed, c.seed, c.sample_count, c.max_turns), c);
      }
    });
  }

  it('matches Python at SWE-ZERO scale (12,000,003 rows in 300 shards, some empty): one 12 M shuffle', () => {
    const { manifest, seed, sample_count, max_turns, ids } = fixtures.v1_big;
    const started = performance.now();
    const got = sweZeroManifestSampleIds(manifest, seed, sample_count, max_turns);
    const ms = performance.now() - started;
    console.info(`[samplers] v1 sampling over 12,000,003 rows (Uint32Array shuffle) took ${ms.toFixed(0)} ms`);
    expect(got).toEqual(ids);
    // 12 full rows of 10 turns + 8 turns of the 13th (§6 "consequences").
    expect(new Set(got.map((id) => id.slice(0, id.lastIndexOf(':')))).size).toBe(13);
  });

  it.each(fixtures.v1_errors.map((e) => [e.name, e] as const))('rejects: %s (Python message)', (_name, e) => {
    expectOutcome(() => sweZeroManifestSampleIds(e.manifest, e.seed, e.sample_count, e.max_turns), e);
  });

  it('caps absurd counts instead of allocating', () => {
    const manifest = { shards: [{ name: 'data/train-0.parquet', rows: 1 }] };
    expect(() => sweZeroManifestSampleIds(manifest, 'x', 10_000_000, 10)).toThrow(/sample_count must be at most/);
    expect(() => sweZeroManifestSampleIds(manifest, 'x', 1.5, 10)).toThrow('sample_count must be non-negative');
    expect(() => sweZeroManifestSampleIds({ shards: [{ name: 'data/train-0.parquet', rows: 200_000_000 }] }, 'x')).toThrow(
      expect.objectContaining({ code: 'manifest_too_large' }),
    );
  });

  it('does not trust a hand-built manifest shaped like a validated one', () => {
    const forged = { format: 'swe-zero-v1', shards: [{ name: '../../etc/passwd', rows: 1, sha256: null }], totalRows: 1 };
    expect(() => sweZeroManifestSampleIds(forged, 'x')).toThrow('manifest shards must be data/train-*.parquet files');
  });
});

describe('multi-source-manifest-sample-v1 (§13)', () => {
  it('apportion: largest remainder, ties to the earlier entry (values from gen_samplers.apportion)', () => {
    expect(apportion([65, 15, 20], 100)).toEqual([65, 15, 20]);
    expect(apportion([65, 15, 20], 10)).toEqual([7, 1, 2]);
    expect(apportion([50, 15, 10, 25], 7)).toEqual([3, 1, 1, 2]);
    expect(apportion([50, 15, 10, 25], 1)).toEqual([1, 0, 0, 0]);
    expect(apportion([1, 1, 1], 2)).toEqual([1, 1, 0]);
    expect(apportion([1, 1, 1], 1)).toEqual([1, 0, 0]);
  });

  it('familyGrid sums to the phase apportionment', () => {
    for (const profile of ['2026-08-21', 'pre-2026-08-21'] as const) {
      for (const count of [1, 10, 64, 100, 137]) {
        const grid = familyGrid(count, profile);
        expect(grid.map((r) => r.phase)).toEqual(profile === '2026-08-21' ? ['cold', 'pre_edit', 'at_edit'] : ['pre_edit', 'at_edit', 'cold']);
        expect(grid.flatMap((r) => r.wants.map(([, w]) => w)).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(count);
      }
    }
  });

  for (const { name, manifest, cases } of fixtures.v2) {
    describe(`matches Python on "${name}"`, () => {
      const parsed = parseMultiSourceManifest(manifest);
      it.each(cases.map((c) => [label(c.seed), c.sample_count, c.profile, c] as const))('seed %s, count %i, profile %s', (_s, _n, _p, c) => {
        expectOutcome(() => multiSourceManifestSampleIds(manifest, c.seed, { sampleCount: c.sample_count, profile: c.profile }), c);
        expectOutcome(() => multiSourceManifestSampleIds(parsed, c.seed, { sampleCount: c.sample_count, profile: c.profile }), c);
      });
    });
  }

  it.each(fixtures.v2_errors.map((e) => [e.name, e] as const))('rejects: %s (Python message)', (_name, e) => {
    expectOutcome(() => multiSourceManifestSampleIds(e.manifest, e.seed, { sampleCount: e.sample_count }), e);
  });

  it('sorts sources by code point and keeps shard order', () => {
    const parsed = parseMultiSourceManifest(fixtures.v2[0]!.manifest);
    expect(parsed.sources.map((s) => s.name)).toEqual(['alpha', 'beta', 'zeta-src', 'Émile']);
  });

  it('rejects an unknown profile and a non-integer rows_meta field', () => {
    const manifest = fixtures.v2[0]!.manifest;
    expect(() => multiSourceManifestSampleIds(manifest, 'x', { profile: 'nope' as SamplingProfile })).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    );
    const bad = {
      sources: [{ name: 's', shards: [{ name: 'data/train-0.parquet', rows: 1, rows_meta: [{ iid: 'a.1', asst: 'lots' }] }] }],
    };
    expect(() => multiSourceManifestSampleIds(bad, 'x', { sampleCount: 1 })).toThrow(/asst must be an integer/);
  });
});

describe('SAMPLERS registry', () => {
  it('picks a sampler by algorithm id and forwards options', () => {
    const v1 = fixtures.v1[1]!;
    const c = v1.cases[0]!;
    expectOutcome(() => getSampler(SWE_ZERO_SAMPLER_ID).sampleIds(v1.manifest, c.seed, { sampleCount: c.sample_count, maxTurnsPerSample: c.max_turns }), c);
    const v2 = fixtures.v2[0]!;
    const d = v2.cases.find((x) => x.error === undefined && x.sample_count === 64)!;
    expectOutcome(() => SAMPLERS[MULTI_SOURCE_SAMPLER_ID].sampleIds(v2.manifest, d.seed, { sampleCount: d.sample_count, profile: d.profile }), d);
    expect(SAMPLERS[SWE_ZERO_SAMPLER_ID].defaultSampleCount).toBe(128);
    expect(SAMPLERS[MULTI_SOURCE_SAMPLER_ID].defaultSampleCount).toBe(64);
  });

  it('unknown ids are a DatasetError', () => {
    expect(() => getSampler('random-v9')).toThrow(expect.objectContaining({ code: 'unknown_algorithm' }));
    expect(() => getSampler('toString')).toThrow(expect.objectContaining({ code: 'unknown_algorithm' }));
  });
});
