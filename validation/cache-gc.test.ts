import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapGenesis } from '../persistence/genesis.ts';
import { ingestInto } from '../tests/support/ingest.ts';
import { freshDatabase, type TestDatabase, testServers } from '../tests/support/pg.ts';
import { randomReveal } from '../tests/support/pipeline-kit.ts';
import { collectModelCache, protectedModelUris } from './cache-gc.ts';
import { ModelCache } from './model-cache.ts';
import { parseModelRef } from './model-ref.ts';
import { LocalDirStore } from './model-store.ts';
import { publishSyntheticModel } from './synthetic-model.ts';

for (const server of testServers()) {
  describe(`model cache GC as a service (spec §5) on ${server.name} Postgres`, () => {
    let t: TestDatabase;
    let root: string;
    beforeAll(async () => {
      t = await freshDatabase(server);
      root = await mkdtemp(join(tmpdir(), 'albedo-cache-gc-'));
    });
    afterAll(async () => {
      await t?.drop();
      await rm(root, { recursive: true, force: true });
    });

    it('keeps the genesis/kings and unfinished submissions, evicts finished ones past the TTL', async () => {
      const store = new LocalDirStore(join(root, 'hub'));
      const cache = new ModelCache({ root: join(root, 'cache'), ttlMs: 60_000 });
      const genesis = await publishSyntheticModel(join(root, 'hub'), 'teutonic/albedo-qwen3.6-35b-genesis', { seed: 'g' });
      await bootstrapGenesis(t.db, { netuid: 97, hotkey: 'genesis-hk', uid: 0, modelUri: genesis.uri });
      const ingest = ingestInto(t);
      const inflight = await publishSyntheticModel(join(root, 'hub'), 'a/albedo-qwen3.6-35b-inflight', { seed: 'a' });
      const lost = await publishSyntheticModel(join(root, 'hub'), 'b/albedo-qwen3.6-35b-lost', { seed: 'b' });
      for (const m of [inflight, lost]) await ingest(randomReveal({ repo: m.ref.repo, digest: m.ref.digest, raw: `v7|${m.uri}` }));
      await t.db.query("UPDATE model_submissions SET state = 'COMPLETE_LOSS' WHERE model_uri = $1", [lost.uri]);

      const dirs = new Map<string, string>();
      for (const m of [genesis, inflight, lost]) {
        const ref = parseModelRef(m.uri, { backends: ['hippius', 'hf'] });
        if (!ref.ok) throw new Error(ref.message);
        dirs.set(m.uri, (await cache.ensureModel(ref.ref, store, await store.listFiles(ref.ref, new AbortController().signal))).dir);
      }
      expect(await protectedModelUris(t.db)).toEqual(new Set([genesis.uri, inflight.uri]));

      const result = await collectModelCache(t.db, cache, Date.now() + 3_600_000);
      expect(result.evicted).toEqual([lost.uri]);
      expect(await stat(dirs.get(lost.uri) as string).catch(() => null)).toBeNull();
      for (const kept of [genesis.uri, inflight.uri]) expect((await stat(dirs.get(kept) as string)).isDirectory()).toBe(true);
    });
  });
}
