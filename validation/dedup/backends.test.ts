import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase, testServers } from '../../tests/support/pg.ts';
import { mulberry32 } from '../../core/prng.ts';
import { type LocalOpenSearch, startLocalOpenSearch } from '../../tests/support/opensearch-server.ts';
import { DIVERGENCE_CORPUS_SALT } from '../fingerprint-types.ts';
import { type DedupCandidate, type DedupDecision, decideDedup } from './decide.ts';
import { type DedupIndex, DedupError, type FingerprintDoc } from './index.ts';
import { dimensionIndexBody, exactGateQuery, knnQuery, OpenSearchDedupIndex, SAMPLES_INDEX_BODY } from './opensearch.ts';
import { PostgresDedupIndex } from './postgres.ts';
import { baseModel, fingerprintOf, perturb, type SyntheticModel, samplesOf } from './synthetic-fingerprints.ts';

const TENSORS = 100;
const ELEMENTS = 2048;
const random = mulberry32(2026);
const base = baseModel(random, TENSORS, ELEMENTS);
const otherBase = baseModel(random, TENSORS, ELEMENTS);
/** Indexed: a genuine fine-tune of the base (hotkey A, coldkey CA) and of another base (hotkey B). */
const kingModel = perturb(base, random, 1e-2);
const otherModel = perturb(otherBase, random, 1e-2);
/** The live-only genesis (not in the index), compared under the block-hash salt. */
const genesisModel = perturb(base, random, 2e-2);
const BLOCK_SALT = '0xabc123blockhash';

function doc(uri: string, hotkey: string, coldkey: string | null, model: SyntheticModel, weightsHash: string): FingerprintDoc {
  return {
    model_uri: uri,
    hotkey,
    coldkey,
    repo: `org/${uri.split('/').pop()}`,
    digest: `sha256:${weightsHash}`,
    weights_hash: weightsHash,
    created_at: new Date('2026-01-02T03:04:05.000Z'),
    fingerprint: fingerprintOf(model),
    samples: samplesOf(model),
  };
}

function candidate(uri: string, hotkey: string, coldkey: string | null, model: SyntheticModel, weightsHash: string): DedupCandidate {
  return { model_uri: uri, hotkey, coldkey, weights_hash: weightsHash, fingerprint: fingerprintOf(model), samples: [samplesOf(model), samplesOf(model, BLOCK_SALT)] };
}

const live = [{ model_uri: 'hf://genesis/model', hotkey: 'hk-genesis', coldkey: 'ck-genesis', samples: samplesOf(genesisModel, BLOCK_SALT) }];

const scenarios: Record<string, { c: DedupCandidate; strict?: boolean; check: (d: DedupDecision) => void }> = {
  'exact weights, different hotkey ⇒ duplicate': {
    c: candidate('hf://x/exact', 'hk-X', 'ck-X', kingModel, 'wh-king'),
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.code).toBe('duplicate');
      expect(d.fault.faultClass).toBe('MINER_FAULT');
      expect(d.fault.message).toBe('duplicate of hf://a/king: exact weights match (weights_hash)');
      expect(d.detail).toMatchObject({ reason: 'exact_weights_match', similarity: 1, exact_weights_match: true, duplicate_of_hotkey: 'hk-A' });
    },
  },
  'exact weights, same hotkey ⇒ not a duplicate of itself': {
    c: candidate('hf://a/again', 'hk-A', 'ck-A', perturb(kingModel, mulberry32(5), 1e-2), 'wh-king'),
    check: (d) => expect(d.ok).toBe(true),
  },
  'same weights re-hashed (similarity 1) ⇒ duplicate with 6-decimal message': {
    c: candidate('hf://x/copy', 'hk-X', 'ck-X', kingModel, 'wh-other-files'),
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.message).toBe('duplicate of hf://a/king: similarity 1.000000 >= 0.95 threshold');
      expect(d.detail).toMatchObject({ reason: 'similarity', similarity: 1, candidates_checked: 3, exact_weights_match: false });
    },
  },
  '0.3 % noise on 6 % of tensors: passes the upstream similarity rule, caught as too_similar': {
    c: candidate('hf://x/noisy', 'hk-X', 'ck-X', perturb(kingModel, mulberry32(11), 3e-3, 0.06), 'wh-noisy'),
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.code).toBe('too_similar');
      expect(d.detail?.similarity).toBeLessThan(0.95);
      expect(d.detail).toMatchObject({ reason: 'divergence', duplicate_of: 'hf://a/king', divergence: 0, same_coldkey: false });
      expect(d.fault.message).toMatch(/^too similar to hf:\/\/a\/king: weight divergence 0\.000e\+0 < 0\.001 minimum$/);
    },
  },
  '0.3 % noise on 45 % of tensors: similarity ≈ 0.55, still too_similar': {
    c: candidate('hf://x/noisy45', 'hk-X', 'ck-X', perturb(kingModel, mulberry32(12), 3e-3, 0.45), 'wh-noisy45'),
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.code).toBe('too_similar');
      expect(d.detail!.similarity).toBeLessThan(0.6);
    },
  },
  'a genuine fine-tune (1e-2 relative on every tensor) passes': {
    c: candidate('hf://x/finetune', 'hk-X', 'ck-X', perturb(kingModel, mulberry32(13), 1e-2), 'wh-ft'),
    check: (d) => {
      expect(d.ok).toBe(true);
      if (!d.ok) return;
      expect(d.detail.divergence).toBeGreaterThan(0.005);
      expect(d.detail.nearest_model_uri).toBe('hf://a/king');
      expect(d.detail.candidates_checked).toBe(3);
    },
  },
  'a noisy copy of the genesis (live reference under the block-hash salt) ⇒ too_similar': {
    c: candidate('hf://x/genesis-copy', 'hk-X', 'ck-X', perturb(genesisModel, mulberry32(14), 3e-3, 0.06), 'wh-gc'),
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.code).toBe('too_similar');
      expect(d.detail?.duplicate_of).toBe('hf://genesis/model');
    },
  },
  'same-coldkey sybil with D between the floor and twice it: passes when not strict': {
    c: candidate('hf://s/sybil', 'hk-S', 'ck-A', perturb(kingModel, mulberry32(15), 1.5e-3), 'wh-sybil'),
    check: (d) => expect(d.ok).toBe(true),
  },
  'same-coldkey sybil with D between the floor and twice it: too_similar when strict': {
    c: candidate('hf://s/sybil', 'hk-S', 'ck-A', perturb(kingModel, mulberry32(15), 1.5e-3), 'wh-sybil'),
    strict: true,
    check: (d) => {
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.fault.code).toBe('too_similar');
      expect(d.detail).toMatchObject({ same_coldkey: true, duplicate_of_coldkey: 'ck-A', duplicate_of_hotkey: 'hk-A' });
      expect(d.fault.message).toContain('same coldkey ck-A');
      expect(d.fault.message).toContain('strict floor doubled');
    },
  },
};

async function seed(index: DedupIndex): Promise<void> {
  await index.index(doc('hf://a/king', 'hk-A', 'ck-A', kingModel, 'wh-king'));
  await index.index(doc('hf://b/other', 'hk-B', 'ck-B', otherModel, 'wh-other'));
  // A legacy row without samples: kNN and similarity see it, divergence skips it.
  await index.index({ ...doc('hf://c/legacy', 'hk-C', null, perturb(otherModel, mulberry32(3), 5e-2), 'wh-legacy'), samples: null });
  // Idempotent: indexing the same model_uri again replaces, never duplicates.
  await index.index(doc('hf://a/king', 'hk-A', 'ck-A', kingModel, 'wh-king'));
}

async function runAll(index: DedupIndex): Promise<Record<string, DedupDecision>> {
  const out: Record<string, DedupDecision> = {};
  for (const [name, s] of Object.entries(scenarios)) out[name] = await decideDedup(s.c, index, { sameColdkeyStrict: s.strict ?? false }, live);
  return out;
}

const decisionsByBackend: Record<string, Record<string, DedupDecision>> = {};

for (const server of testServers()) {
  describe(`Postgres dedup backend (${server.name})`, () => {
    let database: TestDatabase;
    let index: PostgresDedupIndex;
    beforeAll(async () => {
      database = await freshDatabase(server);
      index = new PostgresDedupIndex(database.db);
      await seed(index);
      decisionsByBackend[`postgres-${server.name}`] = await runAll(index);
    });
    afterAll(async () => {
      await index?.close();
      await database?.drop();
    });

    for (const [name, s] of Object.entries(scenarios)) it(name, () => s.check(decisionsByBackend[`postgres-${server.name}`]![name]!));

    it('stores one row per model_uri and round-trips documents and samples', async () => {
      const { rows } = await database.db.query('SELECT count(*)::int AS n FROM model_fingerprints');
      expect(rows[0].n).toBe(3);
      const stored = await index.get('hf://a/king');
      const expected = doc('hf://a/king', 'hk-A', 'ck-A', kingModel, 'wh-king');
      expect(stored).toEqual(expected);
      expect(await index.samples('hf://a/king', 'other-salt')).toBeNull();
      expect(await index.samples('hf://c/legacy', DIVERGENCE_CORPUS_SALT)).toBeNull();
      expect(await index.get('hf://nope')).toBeNull();
    });

    it('exact and fast kNN modes agree, and rows inserted by another process are picked up', async () => {
      const exact = new PostgresDedupIndex(database.db, { exact: true });
      const fp = fingerprintOf(kingModel);
      expect(await exact.knn(TENSORS, fp.norm_vector, 3)).toEqual(await index.knn(TENSORS, fp.norm_vector, 3));
      await exact.index(doc('hf://d/late', 'hk-D', 'ck-D', kingModel, 'wh-late'));
      const hits = await index.knn(TENSORS, fp.norm_vector, 5);
      expect(hits.map((h) => h.model_uri)).toContain('hf://d/late');
      expect(hits[0]!.score).toBe(1);
    });

    it('a broken database is INFRA dedup_backend_failed', async () => {
      const broken = await freshDatabase(server, { migrate: false });
      const decision = await decideDedup(scenarios['a genuine fine-tune (1e-2 relative on every tensor) passes']!.c, new PostgresDedupIndex(broken.db));
      await broken.drop();
      expect(decision.ok).toBe(false);
      if (!decision.ok) {
        expect(decision.fault.faultClass).toBe('INFRA_FAULT');
        expect(decision.fault.code).toBe('dedup_backend_failed');
        expect(decision.fault.retryable).toBe(true);
      }
    });
  });
}

describe('OpenSearch dedup backend (local stand-in)', () => {
  let server: LocalOpenSearch;
  let index: OpenSearchDedupIndex;
  const prefix = 'albedo_fingerprints';
  beforeAll(async () => {
    server = await startLocalOpenSearch({
      auth: { user: 'albedo', password: 's3cret' },
      expectedIndexBody: (name) => (name === `${prefix}_samples` ? SAMPLES_INDEX_BODY : /_(\d+)$/.test(name) ? dimensionIndexBody(Number(name.split('_').pop())) : undefined),
    });
    index = new OpenSearchDedupIndex({ url: server.url, user: 'albedo', password: 's3cret' });
    await index.health();
    await seed(index);
    decisionsByBackend.opensearch = await runAll(index);
  });
  afterAll(async () => {
    await index?.close();
    await server?.close();
  });

  for (const [name, s] of Object.entries(scenarios)) it(name, () => s.check(decisionsByBackend.opensearch![name]!));

  it('creates the per-dimension index with exactly the spec body', () => {
    const create = server.requests.find((r) => r.method === 'PUT' && r.path === `/${prefix}_${TENSORS}`);
    expect(create?.body).toEqual({
      settings: { index: { knn: true } },
      mappings: {
        properties: {
          key: { type: 'keyword' },
          hotkey: { type: 'keyword' },
          coldkey: { type: 'keyword' },
          repo: { type: 'keyword' },
          digest: { type: 'keyword' },
          model_uri: { type: 'keyword' },
          weights_hash: { type: 'keyword' },
          created_at: { type: 'date' },
          norm_vector: { type: 'knn_vector', dimension: TENSORS, method: { name: 'hnsw', space_type: 'cosinesimil', engine: 'lucene' } },
          fingerprint: { type: 'object', enabled: false },
        },
      },
    });
    expect(server.requests.filter((r) => r.method === 'PUT' && r.path === `/${prefix}_${TENSORS}`)).toHaveLength(1);
  });

  it('writes documents with the spec body under id = model_uri', () => {
    const put = server.requests.find((r) => (r.method === 'PUT' || r.method === 'POST') && r.path === `/${prefix}_${TENSORS}/_doc/${encodeURIComponent('hf://a/king')}`);
    const fp = fingerprintOf(kingModel);
    expect(put?.body).toEqual({
      key: 'hf://a/king',
      hotkey: 'hk-A',
      coldkey: 'ck-A',
      repo: 'org/king',
      digest: 'sha256:wh-king',
      model_uri: 'hf://a/king',
      created_at: '2026-01-02T03:04:05.000Z',
      norm_vector: fp.norm_vector,
      fingerprint: JSON.parse(JSON.stringify(fp)),
      weights_hash: 'wh-king',
    });
    expect(server.indices.get(`${prefix}_${TENSORS}`)!.docs.size).toBe(3);
  });

  it('sends exactly the spec exact-gate and kNN query bodies', () => {
    const c = scenarios['0.3 % noise on 6 % of tensors: passes the upstream similarity rule, caught as too_similar']!.c;
    const searches = server.requests.filter((r) => r.path.endsWith('/_search'));
    expect(searches.map((r) => r.body)).toContainEqual(exactGateQuery('wh-noisy', 'hk-X'));
    expect(exactGateQuery('H', 'HK')).toEqual({ size: 1, query: { bool: { filter: [{ term: { weights_hash: 'H' } }], must_not: [{ term: { hotkey: 'HK' } }] } } });
    expect(knnQuery([1, 2], 20)).toEqual({ size: 20, _source: ['key', 'hotkey', 'coldkey', 'model_uri', 'fingerprint'], query: { knn: { norm_vector: { vector: [1, 2], k: 20 } } } });
    expect(searches.map((r) => r.body)).toContainEqual(knnQuery(c.fingerprint.norm_vector, 20));
    // The divergence neighbourhood (ALBEDO_DIVERGENCE_NEIGHBOURS) is a separate, wider query.
    expect(searches.map((r) => r.body)).toContainEqual(knnQuery(c.fingerprint.norm_vector, 64));
  });

  it('refuses wrong credentials and reports an unhealthy cluster as DedupError', async () => {
    const wrong = new OpenSearchDedupIndex({ url: server.url, user: 'albedo', password: 'nope' });
    await expect(wrong.health()).rejects.toBeInstanceOf(DedupError);
    await wrong.close();
    server.failWith(503);
    const decision = await decideDedup(scenarios['a genuine fine-tune (1e-2 relative on every tensor) passes']!.c, index);
    server.failWith(0);
    expect(decision.ok || decision.fault.code).toBe('dedup_backend_failed');
  });
});

describe('both backends', () => {
  it('make the same decisions on the same data', () => {
    const names = Object.keys(decisionsByBackend);
    expect(names.length).toBeGreaterThanOrEqual(2);
    for (const name of names.slice(1)) expect(decisionsByBackend[name]).toEqual(decisionsByBackend[names[0]!]);
  });
});
