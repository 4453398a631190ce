/**
 * OpenSearch dedup backend (spec/validation.md §9.1), index-compatible with upstream: one index per
 * dimension `<prefix>_<dim>` created with exactly the spec's mapping, documents with exactly the
 * spec's body, and exactly the spec's exact-gate and kNN query bodies. kNN hits (HNSW, approximate)
 * are re-ranked with the exact float64 `cosine`.
 *
 * Divergence samples live in a sidecar index `<prefix>_samples` (document id = model_uri, field
 * `samples` of type `binary`: base64 float32 LE, stored in _source only, never indexed). Not inside
 * the per-dimension documents because (1) the spec's mapping must stay exactly upstream's, and an
 * unmapped field would be dynamically mapped as analysed text (a 3 MB base64 string through the
 * standard analyser); (2) the spec's kNN body returns the whole `fingerprint` object, so samples
 * hidden in it would ship ≈ 3 MB × 20 per kNN. The sidecar also records `dim`, so `get(model_uri)`
 * knows which per-dimension index holds the document.
 */
import { Client } from '@opensearch-project/opensearch';
import type { DivergenceSamples, LayerFingerprint } from '../fingerprint-types.ts';
import {
  assertIndexable,
  type ColdkeyMember,
  DEFAULT_MAX_KNN_DIM,
  DEFAULT_OPENSEARCH_INDEX,
  DEFAULT_OPENSEARCH_URL,
  DEFAULT_OPENSEARCH_VERIFY_TLS,
  type DedupIndex,
  DedupError,
  decodeSamples,
  encodeSamples,
  type ExactMatch,
  type FingerprintDoc,
  type KnnCandidate,
  MAX_SAMPLES_BYTES,
} from './index.ts';
import { cosine } from './similarity.ts';

/** Request timeout of the client. @default 30000 */
export const DEFAULT_OPENSEARCH_TIMEOUT_MS = 30_000;

export interface OpenSearchDedupOptions {
  /** @default DEFAULT_OPENSEARCH_URL */
  readonly url?: string;
  readonly user?: string | null;
  readonly password?: string | null;
  /** @default DEFAULT_OPENSEARCH_INDEX */
  readonly indexPrefix?: string;
  /** @default DEFAULT_OPENSEARCH_VERIFY_TLS */
  readonly verifyTls?: boolean;
  /** @default DEFAULT_MAX_KNN_DIM */
  readonly maxKnnDim?: number;
  /** @default DEFAULT_OPENSEARCH_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** The spec's per-dimension index body, verbatim. */
export function dimensionIndexBody(dim: number): object {
  return {
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
        norm_vector: { type: 'knn_vector', dimension: dim, method: { name: 'hnsw', space_type: 'cosinesimil', engine: 'lucene' } },
        fingerprint: { type: 'object', enabled: false },
      },
    },
  };
}

/** The sidecar index of divergence samples (ours; `dynamic: false` so nothing else gets mapped). */
export const SAMPLES_INDEX_BODY = {
  mappings: {
    dynamic: false,
    properties: {
      model_uri: { type: 'keyword' },
      hotkey: { type: 'keyword' },
      coldkey: { type: 'keyword' },
      dim: { type: 'integer' },
      salt: { type: 'keyword' },
      samples: { type: 'binary' },
    },
  },
} as const;

export function exactGateQuery(weightsHash: string, hotkey: string): object {
  return { size: 1, query: { bool: { filter: [{ term: { weights_hash: weightsHash } }], must_not: [{ term: { hotkey } }] } } };
}

export function knnQuery(vector: readonly number[], k: number): object {
  return { size: k, _source: ['key', 'hotkey', 'coldkey', 'model_uri', 'fingerprint'], query: { knn: { norm_vector: { vector: [...vector], k } } } };
}

interface Hit<T> {
  _id: string;
  _source?: T;
}
interface SearchBody<T> {
  hits?: { hits?: Hit<T>[] };
}

function statusOf(error: unknown): number | undefined {
  const meta = (error as { meta?: { statusCode?: number } } | null)?.meta;
  return typeof meta?.statusCode === 'number' ? meta.statusCode : undefined;
}

function errorType(error: unknown): string | undefined {
  const body = (error as { meta?: { body?: { error?: { type?: string } } } } | null)?.meta?.body;
  return body?.error?.type;
}

export class OpenSearchDedupIndex implements DedupIndex {
  private readonly client: Client;
  private readonly prefix: string;
  private readonly maxKnnDim: number;
  private readonly knownIndices = new Set<string>();

  constructor(options: OpenSearchDedupOptions = {}) {
    const url = options.url ?? DEFAULT_OPENSEARCH_URL;
    this.prefix = options.indexPrefix ?? DEFAULT_OPENSEARCH_INDEX;
    this.maxKnnDim = options.maxKnnDim ?? DEFAULT_MAX_KNN_DIM;
    this.client = new Client({
      node: url,
      ...(options.user ? { auth: { username: options.user, password: options.password ?? '' } } : {}),
      ssl: { rejectUnauthorized: options.verifyTls ?? DEFAULT_OPENSEARCH_VERIFY_TLS },
      requestTimeout: options.timeoutMs ?? DEFAULT_OPENSEARCH_TIMEOUT_MS,
      maxRetries: 0,
    });
  }

  private dimIndex(dim: number): string {
    return `${this.prefix}_${dim}`;
  }

  private get samplesIndex(): string {
    return `${this.prefix}_samples`;
  }

  /** Runs one client call, turning transport/HTTP failures into DedupError('UNAVAILABLE'). */
  private async call<T>(what: string, fn: () => Promise<{ body: unknown }>): Promise<T> {
    try {
      return (await fn()).body as T;
    } catch (cause) {
      const status = statusOf(cause);
      // Never include the client's error text verbatim: it can echo the node URL with credentials.
      throw new DedupError('UNAVAILABLE', `opensearch ${what} failed${status ? ` (HTTP ${status}${errorType(cause) ? ` ${errorType(cause)}` : ''})` : ''}`, { cause });
    }
  }

  async health(): Promise<void> {
    const body = await this.call<{ status?: string }>('cluster health', () => this.client.cluster.health({}));
    if (body.status !== 'green' && body.status !== 'yellow') throw new DedupError('UNAVAILABLE', `opensearch cluster status ${String(body.status)}`);
  }

  private async ensureIndex(name: string, body: object): Promise<void> {
    if (this.knownIndices.has(name)) return;
    const exists = await this.call<boolean>(`exists ${name}`, () => this.client.indices.exists({ index: name }));
    if (!exists) {
      try {
        await this.client.indices.create({ index: name, body: body as never });
      } catch (cause) {
        // Another validator created it between our HEAD and PUT.
        if (errorType(cause) !== 'resource_already_exists_exception') {
          throw new DedupError('UNAVAILABLE', `opensearch create ${name} failed (HTTP ${statusOf(cause) ?? '?'})`, { cause });
        }
      }
    }
    this.knownIndices.add(name);
  }

  async findExact(weightsHash: string, excludeHotkey: string): Promise<ExactMatch | null> {
    const body = await this.call<SearchBody<ExactMatch>>('exact gate', () =>
      this.client.search({ index: `${this.prefix}_*`, body: exactGateQuery(weightsHash, excludeHotkey) as never }),
    );
    const source = body.hits?.hits?.[0]?._source;
    return source ? { model_uri: source.model_uri, hotkey: source.hotkey, coldkey: source.coldkey ?? null } : null;
  }

  async knn(dim: number, vector: readonly number[], k: number): Promise<KnnCandidate[]> {
    if (dim > this.maxKnnDim) throw new DedupError('TOO_LARGE', `kNN dimension ${dim} exceeds ${this.maxKnnDim}`);
    if (vector.length !== dim) throw new DedupError('BAD_INPUT', `kNN vector has ${vector.length} values for dimension ${dim}`);
    type Source = { model_uri: string; hotkey: string; coldkey?: string | null; fingerprint: LayerFingerprint };
    let body: SearchBody<Source>;
    try {
      body = (await this.client.search({ index: this.dimIndex(dim), body: knnQuery(vector, k) as never })).body as SearchBody<Source>;
    } catch (cause) {
      if (errorType(cause) === 'index_not_found_exception') return []; // nothing of this dimension yet
      throw new DedupError('UNAVAILABLE', `opensearch kNN failed (HTTP ${statusOf(cause) ?? '?'})`, { cause });
    }
    const out: KnnCandidate[] = [];
    for (const hit of body.hits?.hits ?? []) {
      const s = hit._source;
      if (!s?.fingerprint || !Array.isArray(s.fingerprint.norm_vector)) throw new DedupError('BAD_RESPONSE', `kNN hit ${hit._id} has no fingerprint`);
      out.push({ model_uri: s.model_uri, hotkey: s.hotkey, coldkey: s.coldkey ?? null, fingerprint: s.fingerprint, score: cosine(vector, s.fingerprint.norm_vector) });
    }
    // HNSW order is approximate: re-rank by the exact cosine (ties by model_uri).
    out.sort((a, b) => b.score - a.score || (a.model_uri < b.model_uri ? -1 : a.model_uri > b.model_uri ? 1 : 0));
    return out;
  }

  private async getSource<T>(index: string, id: string): Promise<T | null> {
    try {
      const body = (await this.client.get({ index, id })).body as { found?: boolean; _source?: T };
      return body.found && body._source ? body._source : null;
    } catch (cause) {
      if (statusOf(cause) === 404) return null;
      throw new DedupError('UNAVAILABLE', `opensearch get failed (HTTP ${statusOf(cause) ?? '?'})`, { cause });
    }
  }

  private async sidecar(modelUri: string) {
    return this.getSource<{ dim: number; salt: string | null; samples: string | null }>(this.samplesIndex, modelUri);
  }

  async get(modelUri: string): Promise<FingerprintDoc | null> {
    const side = await this.sidecar(modelUri);
    if (!side) return null;
    type Source = Omit<FingerprintDoc, 'created_at' | 'samples'> & { created_at: string };
    const source = await this.getSource<Source>(this.dimIndex(side.dim), modelUri);
    if (!source) return null;
    return {
      model_uri: source.model_uri,
      hotkey: source.hotkey,
      coldkey: source.coldkey ?? null,
      repo: source.repo,
      digest: source.digest,
      weights_hash: source.weights_hash,
      created_at: new Date(source.created_at),
      fingerprint: source.fingerprint,
      samples: side.samples && side.salt ? this.decode(side.samples, source.fingerprint.layer_keys, side.salt) : null,
    };
  }

  private decode(base64: string, keys: readonly string[], salt: string): DivergenceSamples {
    if (base64.length > (MAX_SAMPLES_BYTES * 4) / 3 + 4) throw new DedupError('BAD_RESPONSE', 'stored samples exceed the cap');
    return decodeSamples(Buffer.from(base64, 'base64'), keys, salt);
  }

  async samples(modelUri: string, salt: string): Promise<DivergenceSamples | null> {
    const side = await this.sidecar(modelUri);
    if (!side?.samples || side.salt !== salt) return null;
    const source = await this.getSource<{ fingerprint: LayerFingerprint }>(this.dimIndex(side.dim), modelUri);
    return source ? this.decode(side.samples, source.fingerprint.layer_keys, salt) : null;
  }

  async byColdkey(coldkey: string, limit: number): Promise<ColdkeyMember[]> {
    type Source = { model_uri: string; hotkey: string; coldkey: string };
    let body: SearchBody<Source>;
    try {
      body = (
        await this.client.search({
          index: this.samplesIndex,
          body: { size: limit, _source: ['model_uri', 'hotkey', 'coldkey'], query: { bool: { filter: [{ term: { coldkey } }] } } } as never,
        })
      ).body as SearchBody<Source>;
    } catch (cause) {
      if (errorType(cause) === 'index_not_found_exception') return [];
      throw new DedupError('UNAVAILABLE', `opensearch coldkey search failed (HTTP ${statusOf(cause) ?? '?'})`, { cause });
    }
    return (body.hits?.hits ?? []).flatMap((h) => (h._source ? [{ model_uri: h._source.model_uri, hotkey: h._source.hotkey, coldkey: h._source.coldkey }] : []));
  }

  async index(doc: FingerprintDoc): Promise<void> {
    assertIndexable(doc, this.maxKnnDim);
    const dim = doc.fingerprint.layer_keys.length;
    const name = this.dimIndex(dim);
    await this.ensureIndex(name, dimensionIndexBody(dim));
    await this.ensureIndex(this.samplesIndex, SAMPLES_INDEX_BODY);
    const body = {
      key: doc.model_uri,
      hotkey: doc.hotkey,
      coldkey: doc.coldkey,
      repo: doc.repo,
      digest: doc.digest,
      model_uri: doc.model_uri,
      created_at: doc.created_at.toISOString(),
      norm_vector: doc.fingerprint.norm_vector,
      fingerprint: doc.fingerprint,
      weights_hash: doc.weights_hash,
    };
    // wait_for: the next validation must see this document (exact gate, kNN) without forcing a
    // refresh of the whole index on every write.
    await this.call(`index ${name}`, () => this.client.index({ index: name, id: doc.model_uri, body, refresh: 'wait_for' }));
    const sidecar = {
      model_uri: doc.model_uri,
      hotkey: doc.hotkey,
      coldkey: doc.coldkey,
      dim,
      salt: doc.samples?.salt ?? null,
      samples: doc.samples ? encodeSamples(doc.samples.values).toString('base64') : null,
    };
    await this.call(`index ${this.samplesIndex}`, () => this.client.index({ index: this.samplesIndex, id: doc.model_uri, body: sidecar, refresh: 'wait_for' }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
