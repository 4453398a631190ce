/**
 * The embedded dedup backend (spec/validation.md §9.1 "Postgres"): documents in
 * `model_fingerprints`, exact gate by the weights_hash index, kNN by exact-scored cosine top-k over
 * an in-memory matrix (vector-search.ts) that is refreshed incrementally from the `seq` change feed.
 */
import type { Db } from '../../persistence/db.ts';
import type { DivergenceSamples, LayerFingerprint } from '../fingerprint-types.ts';
import {
  assertIndexable,
  type ColdkeyMember,
  DEFAULT_MAX_KNN_DIM,
  type DedupIndex,
  DedupError,
  decodeSamples,
  encodeSamples,
  type ExactMatch,
  type FingerprintDoc,
  type KnnCandidate,
} from './index.ts';
import { VectorSearch } from './vector-search.ts';

/**
 * Rows re-read below the watermark on each refresh: `seq` is taken at INSERT time, so a row with a
 * smaller seq can commit after one with a larger seq (concurrent validators); re-reading a window
 * catches it. Known (uri, seq) pairs are skipped, so the window costs one index range scan.
 * @default 10000
 */
export const DEFAULT_REFRESH_LOOKBACK = 10_000;

export interface PostgresDedupOptions {
  /** @default DEFAULT_MAX_KNN_DIM */
  readonly maxKnnDim?: number;
  /** @default DEFAULT_REFRESH_LOOKBACK */
  readonly refreshLookback?: number;
  /** Scan every row in float64 instead of sketch + rerank (tests, debugging). @default false */
  readonly exact?: boolean;
}

interface Row {
  model_uri: string;
  hotkey: string;
  coldkey: string | null;
  repo: string | null;
  digest: string | null;
  weights_hash: string;
  created_at: Date;
  fingerprint: LayerFingerprint;
  samples: Buffer | null;
  samples_salt: string | null;
}

export class PostgresDedupIndex implements DedupIndex {
  private readonly search = new VectorSearch();
  private readonly seqOf = new Map<string, number>();
  private readonly dimOf = new Map<string, number>();
  private watermark = 0;
  private refreshing: Promise<void> | null = null;
  private readonly maxKnnDim: number;
  private readonly lookback: number;
  private readonly exact: boolean;

  constructor(
    private readonly db: Db,
    options: PostgresDedupOptions = {},
  ) {
    this.maxKnnDim = options.maxKnnDim ?? DEFAULT_MAX_KNN_DIM;
    this.lookback = options.refreshLookback ?? DEFAULT_REFRESH_LOOKBACK;
    this.exact = options.exact ?? false;
  }

  private async query<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
    try {
      const { rows } = await this.db.query(sql, params);
      return rows as T[];
    } catch (cause) {
      throw new DedupError('UNAVAILABLE', `dedup database query failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  }

  async health(): Promise<void> {
    await this.query('SELECT 1 FROM model_fingerprints LIMIT 1', []);
  }

  async findExact(weightsHash: string, excludeHotkey: string): Promise<ExactMatch | null> {
    const rows = await this.query<ExactMatch>(
      'SELECT model_uri, hotkey, coldkey FROM model_fingerprints WHERE weights_hash = $1 AND hotkey IS DISTINCT FROM $2 ORDER BY created_at, model_uri LIMIT 1',
      [weightsHash, excludeHotkey],
    );
    return rows[0] ?? null;
  }

  /** Brings the in-memory matrix up to date with the table (one refresh at a time). */
  async refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const from = Math.max(0, this.watermark - this.lookback);
    const rows = await this.query<{ model_uri: string; dim: number; norm_vector: number[]; seq: string }>(
      'SELECT model_uri, dim, norm_vector, seq FROM model_fingerprints WHERE seq > $1 AND dim IS NOT NULL ORDER BY seq',
      [from],
    );
    for (const row of rows) {
      const seq = Number(row.seq);
      if (this.seqOf.get(row.model_uri) === seq) continue;
      const previousDim = this.dimOf.get(row.model_uri);
      if (previousDim !== undefined && previousDim !== row.dim) (await this.search.dimension(previousDim)).remove(row.model_uri);
      const index = await this.search.dimension(row.dim);
      index.upsert(row.model_uri, row.norm_vector);
      this.dimOf.set(row.model_uri, row.dim);
      this.seqOf.set(row.model_uri, seq);
      if (seq > this.watermark) this.watermark = seq;
    }
  }

  async knn(dim: number, vector: readonly number[], k: number): Promise<KnnCandidate[]> {
    if (dim > this.maxKnnDim) throw new DedupError('TOO_LARGE', `kNN dimension ${dim} exceeds ${this.maxKnnDim}`);
    if (vector.length !== dim) throw new DedupError('BAD_INPUT', `kNN vector has ${vector.length} values for dimension ${dim}`);
    await this.refresh();
    const index = await this.search.dimension(dim);
    const hits = index.search(vector, k, { exact: this.exact });
    if (hits.length === 0) return [];
    const rows = await this.query<Pick<Row, 'model_uri' | 'hotkey' | 'coldkey' | 'fingerprint'>>(
      'SELECT model_uri, hotkey, coldkey, fingerprint FROM model_fingerprints WHERE model_uri = ANY($1)',
      [hits.map((h) => h.id)],
    );
    const byUri = new Map(rows.map((r) => [r.model_uri, r]));
    const out: KnnCandidate[] = [];
    for (const hit of hits) {
      const row = byUri.get(hit.id);
      if (row) out.push({ model_uri: row.model_uri, hotkey: row.hotkey, coldkey: row.coldkey, fingerprint: row.fingerprint, score: hit.score });
    }
    return out;
  }

  async get(modelUri: string): Promise<FingerprintDoc | null> {
    const rows = await this.query<Row>(
      'SELECT model_uri, hotkey, coldkey, repo, digest, weights_hash, created_at, fingerprint, samples, samples_salt FROM model_fingerprints WHERE model_uri = $1',
      [modelUri],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      model_uri: row.model_uri,
      hotkey: row.hotkey,
      coldkey: row.coldkey,
      repo: row.repo ?? '',
      digest: row.digest ?? '',
      weights_hash: row.weights_hash,
      created_at: row.created_at,
      fingerprint: row.fingerprint,
      samples: row.samples && row.samples_salt ? decodeSamples(row.samples, row.fingerprint.layer_keys, row.samples_salt) : null,
    };
  }

  async samples(modelUri: string, salt: string): Promise<DivergenceSamples | null> {
    const rows = await this.query<{ samples: Buffer | null; keys: string[] }>(
      "SELECT samples, ARRAY(SELECT k FROM jsonb_array_elements_text(fingerprint->'layer_keys') WITH ORDINALITY AS t(k, i) ORDER BY i) AS keys FROM model_fingerprints WHERE model_uri = $1 AND samples_salt = $2",
      [modelUri, salt],
    );
    const row = rows[0];
    return row?.samples ? decodeSamples(row.samples, row.keys, salt) : null;
  }

  async byColdkey(coldkey: string, limit: number): Promise<ColdkeyMember[]> {
    return this.query<ColdkeyMember>('SELECT model_uri, hotkey, coldkey FROM model_fingerprints WHERE coldkey = $1 ORDER BY created_at, model_uri LIMIT $2', [
      coldkey,
      limit,
    ]);
  }

  async index(doc: FingerprintDoc): Promise<void> {
    assertIndexable(doc, this.maxKnnDim);
    const fp = doc.fingerprint;
    await this.query(
      `INSERT INTO model_fingerprints (model_uri, hotkey, coldkey, repo, digest, weights_hash, dim, norm_vector, fingerprint, created_at, samples, samples_salt, n_tensors)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ON CONFLICT (model_uri) DO UPDATE SET hotkey = EXCLUDED.hotkey, coldkey = EXCLUDED.coldkey, repo = EXCLUDED.repo, digest = EXCLUDED.digest,
         weights_hash = EXCLUDED.weights_hash, dim = EXCLUDED.dim, norm_vector = EXCLUDED.norm_vector, fingerprint = EXCLUDED.fingerprint,
         created_at = EXCLUDED.created_at, samples = EXCLUDED.samples, samples_salt = EXCLUDED.samples_salt, n_tensors = EXCLUDED.n_tensors,
         seq = nextval(pg_get_serial_sequence('model_fingerprints', 'seq'))`,
      [
        doc.model_uri,
        doc.hotkey,
        doc.coldkey,
        doc.repo,
        doc.digest,
        doc.weights_hash,
        fp.layer_keys.length,
        fp.norm_vector,
        JSON.stringify(fp),
        doc.created_at,
        doc.samples ? encodeSamples(doc.samples.values) : null,
        doc.samples?.salt ?? null,
        doc.samples ? fp.layer_keys.length : null,
      ],
    );
  }

  /** Stops the search's helper threads; the pool belongs to the caller. */
  async close(): Promise<void> {
    await this.search.close();
  }
}
