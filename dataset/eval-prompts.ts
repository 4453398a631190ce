/**
 * The eval's prompts from the real dataset path (spec/duel.md §5–§7): the hash-pinned manifest, the
 * configured sampler seeded with the reveal block hash, shard sha256 checks and prompt construction.
 * The GPU eval host uses it in place of the demo prompt pool whenever a dataset is configured.
 */
import { readManifestFile } from './manifest.ts';
import { type ChatMessage, createSampleLoader } from './samples.ts';
import { getSampler, SWE_ZERO_SAMPLER_ID, type SamplerOptions } from './samplers.ts';

export interface DatasetPromptsOptions {
  /** Directory the manifest's shard paths are relative to. */
  readonly datasetRoot: string;
  readonly manifestPath: string;
  /** sha256 pin of the manifest file (`ALBEDO_EVAL_DATASET_MANIFEST_SHA256`); required outside tests. */
  readonly manifestSha256?: string;
  /** Sampling algorithm id. @default 'swe-zero-manifest-sample-v1' (protocol v1) */
  readonly algorithm?: string;
  readonly samplerOptions?: Omit<SamplerOptions, 'sampleCount'>;
}

export interface DatasetPrompt {
  readonly sampleId: string;
  readonly messages: ChatMessage[];
}

/**
 * Loads and pins the manifest once, then returns `(blockHash, sampleCount) → prompts` in sample order.
 * Throws `DatasetError` (pin mismatch, invalid manifest, shard hash mismatch, unreadable rows): the
 * eval host reports those as its own (INFRA-side) failure, never as a miner's.
 */
export async function createDatasetEvalPrompts(o: DatasetPromptsOptions): Promise<(input: { blockHash: string; sampleCount: number }) => Promise<DatasetPrompt[]>> {
  const sampler = getSampler(o.algorithm ?? SWE_ZERO_SAMPLER_ID);
  const file = await readManifestFile(o.manifestPath, o.manifestSha256 === undefined ? {} : { expectedSha256: o.manifestSha256 });
  const manifest = sampler.parseManifest(file.json);
  const loader = createSampleLoader({ datasetRoot: o.datasetRoot, manifest });
  return async ({ blockHash, sampleCount }) => {
    const ids = sampler.sampleIds(manifest, blockHash, { ...o.samplerOptions, sampleCount });
    const samples = await loader.loadAll(ids);
    return samples.map((s) => ({ sampleId: s.sampleId, messages: [...s.messages] }));
  };
}
