import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeepCheckOptions, runDeepChecks } from './deep-checks.ts';
import { type LocalHub, startLocalHub } from './local-hub.ts';
import { ModelCache } from './model-cache.ts';
import { HfHubStore, LocalDirStore, type ModelStore } from './model-store.ts';
import { encodeSafetensors, publishSyntheticModel } from './synthetic-model.ts';
import type { PublishedSyntheticModel } from './synthetic-model.ts';
import { writeFile } from 'node:fs/promises';

/** Steps 7, 8 and 10 (spec/validation.md §1): each fault code they can produce, from real files and a real HTTP hub. */

const signal = () => new AbortController().signal;
let root: string;
let seq = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'albedo-deep-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function publish(options: Parameters<typeof publishSyntheticModel>[2] = {}): Promise<PublishedSyntheticModel> {
  seq += 1;
  return publishSyntheticModel(join(root, 'hub'), `m${seq}/albedo-qwen3.6-35b-deep`, { seed: `deep-${seq}`, ...options });
}

async function deep(model: PublishedSyntheticModel, store: ModelStore, extra: Partial<DeepCheckOptions> = {}) {
  const files = await store.listFiles(model.ref, signal());
  return runDeepChecks({
    store,
    cache: new ModelCache({ root: join(root, `cache-${seq}`) }),
    ref: model.ref,
    files,
    stall: { stallMs: 5_000, stallRetries: 1 },
    threads: 1,
    signal: signal(),
    ...extra,
  });
}

describe('runDeepChecks', () => {
  it('passes a good model: cached copy, headers on disk, fingerprint with samples under the extra salt', async () => {
    const m = await publish();
    const r = await deep(m, new LocalDirStore(join(root, 'hub')), { salts: ['0xblockhash'] });
    expect(r.fault).toBeNull();
    expect(r.checks.map((c) => [c.name, c.status])).toEqual([
      ['download', 'passed'],
      ['disk_headers', 'passed'],
      ['fingerprint', 'passed'],
    ]);
    expect(r.fingerprint?.nTensors).toBe(8);
    expect(r.fingerprint?.samples.map((s) => s.salt)).toEqual(['albedo-div-v1', '0xblockhash']);
    // The weights hash reuses the downloader's verified sha256 (one read of each byte).
    expect(Object.keys(r.fingerprint?.fileSha256 ?? {})).toEqual(Object.keys(r.marker?.files ?? {}).filter((f) => f.endsWith('.safetensors')));
  });

  it('incomplete_repo (MINER): a listing without safetensors leaves none on disk', async () => {
    const m = await publish();
    const store = new LocalDirStore(join(root, 'hub'));
    const files = (await store.listFiles(m.ref, signal())).filter((f) => !f.path.endsWith('.safetensors'));
    const r = await deep(m, store, { files });
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'incomplete_repo' });
    expect(r.checks.map((c) => c.status)).toEqual(['failed', 'skipped', 'skipped']);
  });

  it('fingerprint_too_large (MINER): more tensors than ALBEDO_MAX_KNN_DIM', async () => {
    const m = await publish();
    const r = await deep(m, new LocalDirStore(join(root, 'hub')), { maxKnnDim: 7 });
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'fingerprint_too_large', message: 'fingerprint dimension 8 exceeds ALBEDO_MAX_KNN_DIM 7' });
  });

  it('non_finite_weights (MINER): a bf16 +inf makes the norm infinite; the fault names the tensor', async () => {
    const m = await publish({ shards: 1 });
    const inf = new Uint8Array([0x80, 0x7f, 0, 0]); // bf16 +inf, then 0
    await writeFile(join(m.dir, 'model.safetensors'), encodeSafetensors([{ name: 'lm_head.weight', dtype: 'BF16', shape: [2], data: inf }]));
    const r = await deep(m, new LocalDirStore(join(root, 'hub')));
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'non_finite_weights' });
    expect(r.fault?.message).toContain('lm_head.weight');
  });

  describe('over HTTP', () => {
    let hub: LocalHub;
    beforeAll(async () => {
      hub = await startLocalHub({ root: join(root, 'hub') });
    });
    afterAll(async () => {
      await hub.close();
    });

    it('download_failed (INFRA, never the miner): every shard request answered 500', async () => {
      const m = await publish({ backend: 'hf' });
      const store = new HfHubStore({ endpoint: hub.url });
      hub.setInterceptor((req) => (req.kind === 'resolve' && req.path?.endsWith('.safetensors') ? 500 : undefined));
      try {
        const r = await deep(m, store, { cache: new ModelCache({ root: join(root, 'cache-http'), download: { partRetries: 1, backoffBaseMs: 1, backoffMaxMs: 2 } }) });
        expect(r.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'download_failed' });
      } finally {
        hub.setInterceptor(undefined);
      }
    });
  });
});
