import { describe, expect, it } from 'vitest';
import { startLocalOpenSearch } from '../../tests/support/opensearch-server.ts';
import {
  DEFAULT_DIVERGENCE_NEIGHBOURS,
  DEFAULT_KNN_CANDIDATES,
  DEFAULT_MAX_KNN_DIM,
  DEFAULT_MIN_DIVERGENCE,
  DEFAULT_OPENSEARCH_INDEX,
  DEFAULT_OPENSEARCH_URL,
  DEFAULT_SIM_THRESHOLD,
  DedupError,
  decodeSamples,
  dedupConfigFromEnv,
  encodeSamples,
} from './index.ts';

describe('dedupConfigFromEnv', () => {
  it('uses the spec/config.md defaults', () => {
    expect(dedupConfigFromEnv({})).toEqual({
      backend: 'postgres',
      opensearch: { url: DEFAULT_OPENSEARCH_URL, user: null, password: null, indexPrefix: DEFAULT_OPENSEARCH_INDEX, verifyTls: true },
      knnCandidates: DEFAULT_KNN_CANDIDATES,
      simThreshold: DEFAULT_SIM_THRESHOLD,
      minDivergence: DEFAULT_MIN_DIVERGENCE,
      sameColdkeyStrict: false,
      maxKnnDim: DEFAULT_MAX_KNN_DIM,
      divergenceNeighbours: DEFAULT_DIVERGENCE_NEIGHBOURS,
    });
    expect([DEFAULT_KNN_CANDIDATES, DEFAULT_SIM_THRESHOLD, DEFAULT_MIN_DIVERGENCE, DEFAULT_MAX_KNN_DIM]).toEqual([20, 0.95, 0.001, 16000]);
  });
  it('reads every variable', () => {
    const c = dedupConfigFromEnv({
      ALBEDO_DEDUP_BACKEND: 'opensearch',
      ALBEDO_OPENSEARCH_URL: 'https://os:9200',
      ALBEDO_OPENSEARCH_USER: 'u',
      ALBEDO_OPENSEARCH_PASSWORD: 'p',
      ALBEDO_OPENSEARCH_INDEX: 'fp',
      ALBEDO_OPENSEARCH_VERIFY_TLS: '0',
      ALBEDO_KNN_CANDIDATES: '30',
      ALBEDO_SIM_THRESHOLD: '0.9',
      ALBEDO_MIN_DIVERGENCE: '0.002',
      ALBEDO_SAME_COLDKEY_STRICT: '1',
      ALBEDO_MAX_KNN_DIM: '5000',
    });
    expect(c).toMatchObject({ backend: 'opensearch', knnCandidates: 30, simThreshold: 0.9, minDivergence: 0.002, sameColdkeyStrict: true, maxKnnDim: 5000 });
    expect(c.opensearch).toEqual({ url: 'https://os:9200', user: 'u', password: 'p', indexPrefix: 'fp', verifyTls: false });
  });
  it('refuses invalid values with a CONFIG error', () => {
    for (const env of [{ ALBEDO_DEDUP_BACKEND: 'redis' }, { ALBEDO_KNN_CANDIDATES: '2.5' }, { ALBEDO_SIM_THRESHOLD: '2' }, { ALBEDO_SAME_COLDKEY_STRICT: 'maybe' }, { ALBEDO_OPENSEARCH_INDEX: 'A*' }]) {
      expect(() => dedupConfigFromEnv(env)).toThrow(DedupError);
    }
  });
});

describe('samples codec', () => {
  it('round-trips float32 little-endian and checks the length', () => {
    const values = Float32Array.from({ length: 512 }, (_, i) => i / 7 - 3);
    const bytes = encodeSamples(values);
    expect(bytes.readFloatLE(4)).toBe(values[1]);
    expect(decodeSamples(bytes, ['a', 'b'], 's').values).toEqual(values);
    expect(() => decodeSamples(bytes, ['a'], 's')).toThrow(DedupError);
  });
});

describe('local OpenSearch stand-in', () => {
  it('caps request bodies and rejects unsupported routes', async () => {
    const server = await startLocalOpenSearch({ maxBodyBytes: 1024 });
    try {
      await fetch(`${server.url}/idx`, { method: 'PUT', body: '{}' });
      const big = await fetch(`${server.url}/idx/_doc/1`, { method: 'PUT', body: JSON.stringify({ x: 'y'.repeat(4096) }), headers: { 'content-type': 'application/json' } }).catch(
        () => null,
      );
      expect(big === null || big.status === 413).toBe(true);
      expect((await fetch(`${server.url}/idx/_bulk`, { method: 'POST', body: '{}' })).status).toBe(400);
      expect((await fetch(`${server.url}/idx/_doc/1`, { method: 'PUT', body: 'not json' })).status).toBe(400);
    } finally {
      await server.close();
    }
  });
});
