/**
 * The duel's deterministic eval-set samplers (spec/duel.md §6 and §13), bit-exact with upstream
 * Python: the same manifest and block hash give the same sample ids on the validator backend, the GPU
 * eval host and a miner's laptop. A protocol picks its sampler by algorithm id through {@link SAMPLERS}.
 *
 * Both samplers take the manifest either as parsed JSON (validated here, with the spec's messages, in
 * the spec's order) or as a value from `parseSweZeroManifest` / `parseMultiSourceManifest` (not
 * validated twice).
 */
import { DatasetError } from './errors.ts';
import {
  isMultiSourceManifest,
  isSweZeroManifest,
  type MultiSourceManifest,
  parseMultiSourceManifest,
  parseSweZeroManifest,
  type RowMeta,
  type SweZeroManifest,
} from './manifest.ts';
import { PyRandom } from './py-random.ts';
import { compareCodePoints, pyInt, pyRepr, pyStr, pyTruthy } from '../core/py-compat.ts';

/** §6 algorithm id. */
export const SWE_ZERO_SAMPLER_ID = 'swe-zero-manifest-sample-v1';
/** §13 algorithm id. */
export const MULTI_SOURCE_SAMPLER_ID = 'multi-source-manifest-sample-v1';

export type SamplingAlgorithm = typeof SWE_ZERO_SAMPLER_ID | typeof MULTI_SOURCE_SAMPLER_ID;

/** §6: samples per v1 eval. */
export const DEFAULT_V1_SAMPLE_COUNT = 128;
/** §6: consecutive turns taken from each shuffled v1 row. */
export const DEFAULT_MAX_TURNS_PER_SAMPLE = 10;
/** §13: the v2 function's default `sample_count` (eval requests use 100, config.md). */
export const DEFAULT_V2_SAMPLE_COUNT = 64;

/** Largest `sample_count` accepted (v2 evals use 100; the bound only stops absurd allocations). */
export const MAX_SAMPLE_COUNT = 1_000_000;
/** Largest v1 `max_turns_per_sample` accepted (trajectories have tens of turns). */
export const MAX_TURNS_PER_SAMPLE_CAP = 100_000;

/** §13 step-trim phases. */
export type Phase = 'cold' | 'pre_edit' | 'at_edit';
/** §13 instance families. */
export type Family = 'pr' | 'lm' | 'combine' | 'mechanical';

/**
 * §13 `STEP_TRIM` per constants profile. Upstream changed the shares (and their order) without
 * renaming the algorithm, so an eval records which profile it sampled with.
 */
export const STEP_TRIM_PROFILES = {
  '2026-08-21': [
    ['cold', 65],
    ['pre_edit', 15],
    ['at_edit', 20],
  ],
  'pre-2026-08-21': [
    ['pre_edit', 45],
    ['at_edit', 35],
    ['cold', 20],
  ],
} as const satisfies Record<string, ReadonlyArray<readonly [Phase, number]>>;

export type SamplingProfile = keyof typeof STEP_TRIM_PROFILES;

/** §13: the current upstream constants (config.md `ALBEDO_EVAL_SAMPLING_PROFILE` default for v2). */
export const DEFAULT_SAMPLING_PROFILE: SamplingProfile = '2026-08-21';

/** §13 `FAMILY_MIX`. */
export const FAMILY_MIX: ReadonlyArray<readonly [Family, number]> = [
  ['pr', 50],
  ['lm', 15],
  ['combine', 10],
  ['mechanical', 25],
];
/** §13: at most this many accepted samples per repository. */
export const REPO_CAP = 2;
/** §13: prompts whose prefix exceeds this many characters are skipped. */
export const MAX_PREFIX_CHARS = 54_000;
/** §13: instances in this language do not draw on the non-benchmark budget. */
export const BENCHMARK_LANGUAGE = 'python';
/** §13: share of the eval that may come from non-benchmark languages. */
export const NON_BENCHMARK_FRACTION = 0.3;

function invalidArgument(message: string): DatasetError {
  return new DatasetError('invalid_argument', message);
}

function checkBlockHash(blockHash: string): void {
  if (typeof blockHash !== 'string' || blockHash === '') throw invalidArgument('block_hash is required for eval dataset sampling');
}

function checkCap(value: number, cap: number, name: string): void {
  if (value > cap) throw invalidArgument(`${name} must be at most ${cap}`);
}

// ── v1 ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * §6 `swe_zero_manifest_sample_ids`: shuffle every manifest row with `PyRandom(blockHash)` and take
 * up to `maxTurnsPerSample` consecutive turn ids from each row in shuffled order, `sampleCount` in
 * all. Ids are `"<shard>:<row>:<turn>"`.
 *
 * @example
 * sweZeroManifestSampleIds(manifestJson, '0x5f3c…', 128, 10); // 13 rows: 12 × 10 turns + 8
 */
export function sweZeroManifestSampleIds(
  manifest: unknown,
  blockHash: string,
  sampleCount: number = DEFAULT_V1_SAMPLE_COUNT,
  maxTurnsPerSample: number = DEFAULT_MAX_TURNS_PER_SAMPLE,
): string[] {
  checkBlockHash(blockHash);
  if (!Number.isSafeInteger(sampleCount) || sampleCount < 0) throw invalidArgument('sample_count must be non-negative');
  if (!Number.isSafeInteger(maxTurnsPerSample) || maxTurnsPerSample <= 0) throw invalidArgument('max_turns_per_sample must be positive');
  checkCap(sampleCount, MAX_SAMPLE_COUNT, 'sample_count');
  checkCap(maxTurnsPerSample, MAX_TURNS_PER_SAMPLE_CAP, 'max_turns_per_sample');
  const m: SweZeroManifest = isSweZeroManifest(manifest) ? manifest : parseSweZeroManifest(manifest);
  if (m.shards.length === 0 || sampleCount === 0) return [];

  // Row p of the flat list lives in the last shard whose first flat index is ≤ p (zero-row shards
  // share their start with the next shard and are skipped by taking the last match).
  const starts = new Float64Array(m.shards.length);
  let total = 0;
  m.shards.forEach((s, i) => {
    starts[i] = total;
    total += s.rows;
  });
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  new PyRandom(blockHash).shuffle(order);

  const ids: string[] = [];
  for (let p = 0; p < total && ids.length < sampleCount; p++) {
    const flat = order[p]!;
    let lo = 0;
    let hi = starts.length; // first index with start > flat
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= flat) lo = mid + 1;
      else hi = mid;
    }
    const si = lo - 1;
    const name = m.shards[si]!.name;
    const row = flat - starts[si]!;
    for (let t = 0; t < maxTurnsPerSample && ids.length < sampleCount; t++) ids.push(`${name}:${row}:${t}`);
  }
  return ids;
}

// ── v2 ──────────────────────────────────────────────────────────────────────────────────────────

/** One sampling candidate (§13 step 2), fields already converted with Python semantics. */
interface Candidate {
  readonly asst: number;
  readonly firstEdit: number;
  /** Compared with `===` against family names: a non-string family never matches, as in Python. */
  readonly family: unknown;
  /** `repo_counts` key (Python dict key identity for the JSON value). */
  readonly repoKey: string;
  readonly language: unknown;
  readonly charsAt: number;
  readonly charsPre: number;
  readonly shard: string;
  readonly row: number;
  used: boolean;
}

function metaInt(field: string, value: unknown, where: string): number {
  const n = pyInt(value);
  if (n === null) throw new DatasetError('invalid_manifest', `manifest rows_meta ${where}: ${field} must be an integer, got ${pyRepr(value)}`);
  return n;
}

function toCandidate(meta: RowMeta, iid: string, shard: string, row: number): Candidate {
  const where = `${shard}[${row}]`;
  const repo = pyTruthy(meta.repo) ? meta.repo : iid.split('.')[0]!;
  return {
    asst: metaInt('asst', meta.asst, where),
    firstEdit: metaInt('first_edit', pyTruthy(meta.first_edit) ? meta.first_edit : 0, where),
    family: pyTruthy(meta.family) ? meta.family : 'mechanical',
    repoKey: typeof repo === 'string' ? `s:${repo}` : `r:${pyRepr(repo)}`,
    language: pyTruthy(meta.language) ? meta.language : BENCHMARK_LANGUAGE,
    charsAt: metaInt('chars_at', pyTruthy(meta.chars_at) ? meta.chars_at : 0, where),
    charsPre: metaInt('chars_pre', pyTruthy(meta.chars_pre) ? meta.chars_pre : 0, where),
    shard,
    row,
    used: false,
  };
}

/**
 * §13 step 3 `apportion`: largest-remainder split of `count` by integer shares (float64 arithmetic as
 * in Python; ties in the remainder go to the earlier entry).
 */
export function apportion(shares: readonly number[], count: number): number[] {
  const total = shares.reduce((a, b) => a + b, 0);
  const exact = shares.map((share) => (count * share) / total);
  const out = exact.map((x) => Math.floor(x));
  const remainder = count - out.reduce((a, b) => a + b, 0);
  const byFraction = exact.map((_, i) => i).sort((a, b) => exact[b]! % 1 - exact[a]! % 1 || a - b);
  for (let r = 0; r < remainder && r < byFraction.length; r++) out[byFraction[r]!]! += 1;
  return out;
}

/** One row of the §13 family grid: how many samples each family contributes to one phase. */
export interface GridRow {
  readonly phase: Phase;
  readonly wants: ReadonlyArray<readonly [Family, number]>;
}

/** §13 step 3 `family_grid(count)` for a profile's STEP_TRIM. */
export function familyGrid(count: number, profile: SamplingProfile = DEFAULT_SAMPLING_PROFILE): GridRow[] {
  const stepTrim = STEP_TRIM_PROFILES[profile];
  const phaseWant = apportion(
    stepTrim.map(([, share]) => share),
    count,
  );
  const familyShares = FAMILY_MIX.map(([, share]) => share);
  const allocated = FAMILY_MIX.map(() => 0);
  let cumulative = 0;
  return stepTrim.map(([phase], pi) => {
    cumulative += phaseWant[pi]!;
    const target = apportion(familyShares, cumulative);
    const wants = FAMILY_MIX.map(([family], fi) => {
      const want = Math.max(0, target[fi]! - allocated[fi]!);
      allocated[fi]! += want;
      return [family, want] as const;
    });
    return { phase, wants };
  });
}

/** Python `round(x)` for a float: half to even. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface MultiSourceSampleOptions {
  /** @default DEFAULT_V2_SAMPLE_COUNT */
  readonly sampleCount?: number;
  /** @default DEFAULT_SAMPLING_PROFILE */
  readonly profile?: SamplingProfile;
}

/**
 * §13 `multi-source-manifest-sample-v1`: one candidate per instance id (chosen, then shuffled, with
 * `PyRandom(blockHash)`), then strata filled phase by phase and family by family under the repo cap,
 * the prefix-length cap and the non-benchmark-language budget. Ids come in acceptance order.
 * Throws `infeasible_stratum` when a stratum cannot be filled.
 */
export function multiSourceManifestSampleIds(manifest: unknown, blockHash: string, options: MultiSourceSampleOptions = {}): string[] {
  const sampleCount = options.sampleCount ?? DEFAULT_V2_SAMPLE_COUNT;
  const profile = options.profile ?? DEFAULT_SAMPLING_PROFILE;
  if (!isMultiSourceManifest(manifest) && (typeof manifest !== 'object' || manifest === null || !('sources' in manifest))) {
    throw new DatasetError('invalid_manifest', 'manifest must contain sources');
  }
  checkBlockHash(blockHash);
  if (!Number.isSafeInteger(sampleCount) || sampleCount <= 0) throw invalidArgument('sample_count must be positive');
  checkCap(sampleCount, MAX_SAMPLE_COUNT, 'sample_count');
  if (!Object.hasOwn(STEP_TRIM_PROFILES, profile)) throw invalidArgument(`unknown sampling profile ${JSON.stringify(profile)}`);
  const m: MultiSourceManifest = isMultiSourceManifest(manifest) ? manifest : parseMultiSourceManifest(manifest);

  const rng = new PyRandom(blockHash);
  const groups = new Map<string, Candidate[]>();
  for (const source of m.sources) {
    for (const shard of source.shards) {
      shard.rowsMeta.forEach((meta, row) => {
        if (pyTruthy(meta.blocked)) return;
        const iid = pyStr(meta.iid ?? null);
        let group = groups.get(iid);
        if (!group) {
          group = [];
          groups.set(iid, group);
        }
        group.push(toCandidate(meta, iid, shard.name, row));
      });
    }
  }
  const pool = [...groups.keys()].sort(compareCodePoints).map((iid) => rng.choice(groups.get(iid)!));
  rng.shuffle(pool);

  let budget = roundHalfEven(sampleCount * NON_BENCHMARK_FRACTION);
  const repoCounts = new Map<string, number>();
  const ids: string[] = [];
  for (const { phase, wants } of familyGrid(sampleCount, profile)) {
    for (const [family, want] of wants) {
      let taken = 0;
      for (const c of pool) {
        if (taken === want) break;
        if (c.used || c.family !== family || (repoCounts.get(c.repoKey) ?? 0) >= REPO_CAP) continue;
        const prefixChars = phase === 'cold' ? 0 : phase === 'at_edit' ? c.charsAt : c.charsPre;
        if (prefixChars > MAX_PREFIX_CHARS) continue;
        const benchmark = c.language === BENCHMARK_LANGUAGE;
        if (!benchmark && budget <= 0) continue;
        let turn: number;
        // The cold draw happens before the asst check, so a rejected entry still consumes it.
        if (phase === 'cold') turn = rng.choice([1, 2]);
        else if (c.firstEdit <= 0) turn = 1;
        else if (phase === 'pre_edit') turn = Math.max(1, c.firstEdit - 2);
        else turn = c.firstEdit;
        if (c.asst <= turn) continue;
        c.used = true;
        repoCounts.set(c.repoKey, (repoCounts.get(c.repoKey) ?? 0) + 1);
        if (!benchmark) budget -= 1;
        ids.push(`${c.shard}:${c.row}:${turn}`);
        taken += 1;
      }
      if (taken < want) {
        throw new DatasetError(
          'infeasible_stratum',
          `infeasible stratum: phase=${phase} family=${family} needs ${want}, only ${taken} feasible instances remain (REPO_CAP=${REPO_CAP}, MAX_PREFIX_CHARS=${MAX_PREFIX_CHARS})`,
        );
      }
    }
  }
  return ids;
}

// ── registry ────────────────────────────────────────────────────────────────────────────────────

/** Everything a sampler may be configured with; each sampler reads the fields it knows. */
export interface SamplerOptions {
  readonly sampleCount?: number;
  /** v1 only. @default DEFAULT_MAX_TURNS_PER_SAMPLE */
  readonly maxTurnsPerSample?: number;
  /** v2 only. @default DEFAULT_SAMPLING_PROFILE */
  readonly profile?: SamplingProfile;
}

/** A sampler as a protocol configures it (config.md `ALBEDO_EVAL_SAMPLING_ALGO`). */
export interface Sampler {
  readonly id: SamplingAlgorithm;
  /** The sampling function's own default `sample_count`. */
  readonly defaultSampleCount: number;
  /** Validates parsed manifest JSON for this sampler (throws `DatasetError`). */
  parseManifest(raw: unknown): SweZeroManifest | MultiSourceManifest;
  /** The eval's sample ids, in order. */
  sampleIds(manifest: unknown, blockHash: string, options?: SamplerOptions): string[];
}

/** Samplers by algorithm id. */
export const SAMPLERS: Readonly<Record<SamplingAlgorithm, Sampler>> = Object.freeze({
  [SWE_ZERO_SAMPLER_ID]: {
    id: SWE_ZERO_SAMPLER_ID,
    defaultSampleCount: DEFAULT_V1_SAMPLE_COUNT,
    parseManifest: parseSweZeroManifest,
    sampleIds: (manifest, blockHash, options = {}) =>
      sweZeroManifestSampleIds(manifest, blockHash, options.sampleCount ?? DEFAULT_V1_SAMPLE_COUNT, options.maxTurnsPerSample ?? DEFAULT_MAX_TURNS_PER_SAMPLE),
  },
  [MULTI_SOURCE_SAMPLER_ID]: {
    id: MULTI_SOURCE_SAMPLER_ID,
    defaultSampleCount: DEFAULT_V2_SAMPLE_COUNT,
    parseManifest: parseMultiSourceManifest,
    sampleIds: (manifest, blockHash, options = {}) =>
      multiSourceManifestSampleIds(manifest, blockHash, {
        ...(options.sampleCount === undefined ? {} : { sampleCount: options.sampleCount }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
      }),
  },
});

/** True when `id` names a registered sampler. */
export function isSamplingAlgorithm(id: string): id is SamplingAlgorithm {
  return Object.hasOwn(SAMPLERS, id);
}

/** The sampler registered under `id`; `unknown_algorithm` otherwise. */
export function getSampler(id: string): Sampler {
  if (!isSamplingAlgorithm(id)) {
    throw new DatasetError('unknown_algorithm', `unknown sampling algorithm ${JSON.stringify(id)} (known: ${Object.keys(SAMPLERS).join(', ')})`);
  }
  return SAMPLERS[id];
}

/** True when `profile` names a known v2 constants profile. */
export function isSamplingProfile(profile: string): profile is SamplingProfile {
  return Object.hasOwn(STEP_TRIM_PROFILES, profile);
}
