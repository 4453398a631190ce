import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatasetEvalPrompts } from './eval-prompts.ts';
import { sweZeroManifestSampleIds } from './samplers.ts';
import { type SyntheticDataset, writeSyntheticDataset } from './synthetic.ts';

const SEED = `0x${'ab'.repeat(32)}`;

describe('eval prompts from the (synthetic) dataset through the production path', () => {
  let dir: string;
  let data: SyntheticDataset;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'albedo-dataset-'));
    data = await writeSyntheticDataset(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('samples the v1 ids for the block hash, in order, and builds chat prompts from the parquet rows', async () => {
    const prompts = await createDatasetEvalPrompts({ datasetRoot: dir, manifestPath: data.manifestPath, manifestSha256: data.manifestSha256 });
    const out = await prompts({ blockHash: SEED, sampleCount: 12 });
    const manifest = { shards: [0, 1].map((s) => ({ name: `data/train-0000${s}-of-00002.parquet`, rows: 8 })), total_rows: 16 };
    expect(out.map((p) => p.sampleId)).toEqual(sweZeroManifestSampleIds(manifest, SEED, 12, 10));
    for (const p of out) {
      const turn = Number(p.sampleId.split(':').at(-1));
      // §5 step 4: turn t < 5 (assistant turns in a row) ends before the t-th assistant step (system + task +
      // 2 per step); otherwise source_index = min(t, len(turns) − 1) over the 12 turns.
      expect(p.messages.length).toBe(turn < 5 ? 2 + 2 * turn : Math.min(turn, 11));
      expect(p.messages[0]?.role).toBe('system');
      expect(p.messages[1]?.role).toBe('user');
    }
    expect(await prompts({ blockHash: SEED, sampleCount: 12 })).toEqual(out);
  });

  it('refuses a manifest that does not match its pin, and a shard whose bytes changed', async () => {
    await expect(createDatasetEvalPrompts({ datasetRoot: dir, manifestPath: data.manifestPath, manifestSha256: 'cd'.repeat(32) })).rejects.toThrow(/^dataset manifest hash mismatch: expected c/);
    const other = mkdtempSync(join(tmpdir(), 'albedo-dataset-'));
    try {
      const copy = await writeSyntheticDataset(other);
      writeFileSync(join(other, 'data/train-00000-of-00002.parquet'), 'not parquet any more');
      const prompts = await createDatasetEvalPrompts({ datasetRoot: other, manifestPath: copy.manifestPath, manifestSha256: copy.manifestSha256 });
      await expect(prompts({ blockHash: SEED, sampleCount: 40 })).rejects.toThrow(/sha256 mismatch/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
