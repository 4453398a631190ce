/**
 * `albedo eval-set`: the sample ids a duel seeded with a given block hash will use, computed with the
 * validators' own samplers (dataset/samplers.ts, bit-exact with upstream Python), so a miner can
 * reproduce an eval set offline. Needs only the manifest file; no chain or network access.
 */
import { DatasetError } from '../../dataset/errors.ts';
import { readManifestFile } from '../../dataset/manifest.ts';
import {
  DEFAULT_MAX_TURNS_PER_SAMPLE,
  DEFAULT_SAMPLING_PROFILE,
  getSampler,
  isSamplingProfile,
  MAX_SAMPLE_COUNT,
  MAX_TURNS_PER_SAMPLE_CAP,
  SAMPLERS,
  type SamplingProfile,
  SWE_ZERO_SAMPLER_ID,
  STEP_TRIM_PROFILES,
} from '../../dataset/samplers.ts';
import type { CommandSpec } from '../cli.ts';
import { SettingError, UsageError } from '../env.ts';

/** A decimal integer flag in [min, max], or a setting error naming the flag. */
function intFlag(name: string, value: string, min: number, max: number): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new SettingError(`--${name} must be an integer ${min}..${max} (got ${JSON.stringify(value.slice(0, 40))})`);
  }
  return Number(value);
}

export const evalSetCommand: CommandSpec = {
  name: 'eval-set',
  summary: 'print the eval sample ids a block hash selects from a dataset manifest',
  synopsis: '--manifest <file> --seed <block-hash> [--algo <id>] [--count N] [--max-turns N] [--json] [flags]',
  description: [
    'Runs the validators\' deterministic sampler on a local copy of the dataset manifest with the block hash',
    'as the seed (used verbatim as a string, e.g. 0x…) and prints one sample id "<shard>:<row>:<turn>" per',
    'line, in eval order; --json prints them as one JSON array instead. With --manifest-sha256 the file\'s',
    'sha256 must equal the pin (a "sha256:" prefix is accepted). The manifest\'s sha256 goes to stderr.',
  ].join('\n'),
  flags: {
    manifest: { type: 'string', placeholder: '<file>', description: 'dataset manifest JSON', required: true },
    seed: { type: 'string', placeholder: '<block-hash>', description: 'seed string, normally the eval block hash', required: true },
    algo: { type: 'string', placeholder: '<id>', description: `sampling algorithm: ${Object.keys(SAMPLERS).join(' or ')}`, default: SWE_ZERO_SAMPLER_ID },
    count: { type: 'string', placeholder: '<n>', description: 'number of sample ids (default: the algorithm\'s, 128 for v1, 64 for v2)' },
    'max-turns': { type: 'string', placeholder: '<n>', description: `turns per row, ${SWE_ZERO_SAMPLER_ID} only`, default: String(DEFAULT_MAX_TURNS_PER_SAMPLE) },
    profile: {
      type: 'string',
      placeholder: '<name>',
      description: `constants profile of multi-source-manifest-sample-v1: ${Object.keys(STEP_TRIM_PROFILES).join(' or ')}`,
      default: DEFAULT_SAMPLING_PROFILE,
    },
    'manifest-sha256': { type: 'string', placeholder: '<hex>', description: 'required sha256 of the manifest file' },
    json: { type: 'boolean', description: 'print a JSON array instead of one id per line' },
  },

  async run(ctx, flags) {
    const manifestPath = flags.required('manifest');
    const seed = flags.required('seed');
    const algo = flags.string('algo') ?? SWE_ZERO_SAMPLER_ID;
    let sampler: ReturnType<typeof getSampler>;
    try {
      sampler = getSampler(algo);
    } catch (error) {
      if (error instanceof DatasetError) throw new UsageError(error.message);
      throw error;
    }
    const count = flags.string('count');
    const sampleCount = count === undefined ? undefined : intFlag('count', count, 0, MAX_SAMPLE_COUNT);
    const maxTurnsFlag = flags.string('max-turns');
    const profileFlag = flags.string('profile');
    let maxTurnsPerSample: number | undefined;
    let profile: SamplingProfile | undefined;
    if (sampler.id === SWE_ZERO_SAMPLER_ID) {
      if (profileFlag !== undefined) throw new UsageError(`--profile applies to the multi-source sampler only, not ${sampler.id}`);
      if (maxTurnsFlag !== undefined) maxTurnsPerSample = intFlag('max-turns', maxTurnsFlag, 1, MAX_TURNS_PER_SAMPLE_CAP);
    } else {
      if (maxTurnsFlag !== undefined) throw new UsageError(`--max-turns applies to ${SWE_ZERO_SAMPLER_ID} only`);
      if (profileFlag !== undefined) {
        if (!isSamplingProfile(profileFlag)) throw new SettingError(`--profile must be one of ${Object.keys(STEP_TRIM_PROFILES).join(', ')}`);
        profile = profileFlag;
      }
    }
    const pin = flags.string('manifest-sha256');
    const file = await readManifestFile(manifestPath, pin === undefined ? {} : { expectedSha256: pin });
    ctx.status(`manifest sha256: ${file.sha256}`);
    const ids = sampler.sampleIds(file.json, seed, { sampleCount, maxTurnsPerSample, profile });
    if (flags.boolean('json')) ctx.out(JSON.stringify(ids));
    else if (ids.length > 0) ctx.out(ids.join('\n'));
    return 0;
  },
};
