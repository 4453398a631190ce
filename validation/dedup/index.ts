/**
 * The dedup index boundary (spec/validation.md §9.1): the interface both backends implement, the
 * stored document, the one error class of the boundary, and the env configuration.
 */
import { DEFAULT_MAX_KNN_DIM, DIVERGENCE_CORPUS_SALT, type DivergenceSamples, type LayerFingerprint, type ModelFingerprint } from '../fingerprint-types.ts';

/** `ALBEDO_DEDUP_BACKEND`. @default 'postgres' */
export const DEFAULT_DEDUP_BACKEND = 'postgres';
export const DEDUP_BACKENDS = ['postgres', 'opensearch'] as const;
export type DedupBackendName = (typeof DEDUP_BACKENDS)[number];
/** `ALBEDO_OPENSEARCH_URL`. @default 'http://127.0.0.1:9200' */
export const DEFAULT_OPENSEARCH_URL = 'http://127.0.0.1:9200';
/** `ALBEDO_OPENSEARCH_INDEX`: index prefix, `_<dim>` is appended. @default 'albedo_fingerprints' */
export const DEFAULT_OPENSEARCH_INDEX = 'albedo_fingerprints';
/** `ALBEDO_OPENSEARCH_VERIFY_TLS`. @default true */
export const DEFAULT_OPENSEARCH_VERIFY_TLS = true;
/** `ALBEDO_KNN_CANDIDATES`: the kNN fan-out of the similarity rule (§9 step 2). @default 20 */
export const DEFAULT_KNN_CANDIDATES = 20;
/** `ALBEDO_SIM_THRESHOLD`: near-duplicate threshold (§9 step 2). @default 0.95 */
export const DEFAULT_SIM_THRESHOLD = 0.95;
/** `ALBEDO_MIN_DIVERGENCE`: divergence floor (§9.2). @default 0.001 */
export const DEFAULT_MIN_DIVERGENCE = 0.001;
/** `ALBEDO_SAME_COLDKEY_STRICT`: double the floor for same-coldkey references. @default false */
export const DEFAULT_SAME_COLDKEY_STRICT = false;
/**
 * `ALBEDO_DIVERGENCE_NEIGHBOURS`: how many nearest references (by norm-vector cosine) the
 * divergence rule compares against, in addition to kings, genesis and same-coldkey models.
 * @default 64
 */
export const DEFAULT_DIVERGENCE_NEIGHBOURS = 64;
/** `ALBEDO_MAX_KNN_DIM`. @default 16000 */
export { DEFAULT_MAX_KNN_DIM };

/** One fingerprinted, validated model as stored in the index. */
export interface FingerprintDoc {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
  readonly repo: string;
  readonly digest: string;
  readonly weights_hash: string;
  /** UTC. */
  readonly created_at: Date;
  readonly fingerprint: LayerFingerprint;
  /** Divergence samples under the corpus salt (`DIVERGENCE_CORPUS_SALT`); null when not available. */
  readonly samples: DivergenceSamples | null;
}

/** The document indexed for a validated (or genesis) model: the corpus-salt samples are stored. */
export function fingerprintDoc(owner: { readonly model_uri: string; readonly hotkey: string; readonly coldkey: string | null; readonly repo: string; readonly digest: string }, fp: ModelFingerprint): FingerprintDoc {
  return {
    ...owner,
    weights_hash: fp.weightsHash,
    created_at: new Date(),
    fingerprint: fp.fingerprint,
    samples: fp.samples.find((s) => s.salt === DIVERGENCE_CORPUS_SALT) ?? null,
  };
}

/** A kNN hit: `score` is the exact float64 `cosine` of the norm vectors (re-ranked). */
export interface KnnCandidate {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
  readonly fingerprint: LayerFingerprint;
  readonly score: number;
}

/** A model of a given coldkey (for the same-coldkey sybil rule). */
export interface ColdkeyMember {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string;
}

export interface ExactMatch {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
}

export interface DedupIndex {
  /** Throws a DedupError when the backend cannot serve requests. */
  health(): Promise<void>;
  /** Any indexed model with this weights_hash and a hotkey other than `excludeHotkey`. */
  findExact(weightsHash: string, excludeHotkey: string): Promise<ExactMatch | null>;
  /** The `k` indexed models of dimension `dim` with the highest norm-vector cosine, best first. */
  knn(dim: number, vector: readonly number[], k: number): Promise<KnnCandidate[]>;
  get(modelUri: string): Promise<FingerprintDoc | null>;
  /** Stored divergence samples of `modelUri` under `salt`, or null (unknown model or other salt). */
  samples(modelUri: string, salt: string): Promise<DivergenceSamples | null>;
  /** Up to `limit` indexed models owned by `coldkey`. */
  byColdkey(coldkey: string, limit: number): Promise<ColdkeyMember[]>;
  /** Stores `doc`; idempotent by `model_uri` (a second call replaces the first). */
  index(doc: FingerprintDoc): Promise<void>;
  close(): Promise<void>;
}

export const DEDUP_ERROR_CODES = ['CONFIG', 'UNAVAILABLE', 'BAD_RESPONSE', 'BAD_INPUT', 'TOO_LARGE'] as const;
export type DedupErrorCode = (typeof DEDUP_ERROR_CODES)[number];

/** The one error class of the dedup boundary. */
export class DedupError extends Error {
  override readonly name = 'DedupError';
  constructor(
    readonly code: DedupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DedupConfig {
  readonly backend: DedupBackendName;
  readonly opensearch: {
    readonly url: string;
    readonly user: string | null;
    readonly password: string | null;
    readonly indexPrefix: string;
    readonly verifyTls: boolean;
  };
  readonly knnCandidates: number;
  readonly simThreshold: number;
  readonly minDivergence: number;
  readonly sameColdkeyStrict: boolean;
  readonly maxKnnDim: number;
  readonly divergenceNeighbours: number;
}

function parseBool(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new DedupError('CONFIG', `${name} must be 0/1/true/false, got ${JSON.stringify(raw)}`);
}

function parseNumber(name: string, raw: string | undefined, fallback: number, opts: { int?: boolean; min: number; max: number }): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (opts.int && !Number.isInteger(value)) || value < opts.min || value > opts.max) {
    throw new DedupError('CONFIG', `${name} must be ${opts.int ? 'an integer' : 'a number'} in [${opts.min}, ${opts.max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Reads the dedup configuration from the environment (spec/config.md); invalid values throw CONFIG. */
export function dedupConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DedupConfig {
  const backend = env.ALBEDO_DEDUP_BACKEND || DEFAULT_DEDUP_BACKEND;
  if (!(DEDUP_BACKENDS as readonly string[]).includes(backend)) {
    throw new DedupError('CONFIG', `ALBEDO_DEDUP_BACKEND must be one of ${DEDUP_BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  }
  const indexPrefix = env.ALBEDO_OPENSEARCH_INDEX || DEFAULT_OPENSEARCH_INDEX;
  // OpenSearch index names: lowercase, no path/wildcard characters; checked here so a typo fails at start.
  if (!/^[a-z0-9][a-z0-9_-]{0,200}$/.test(indexPrefix)) {
    throw new DedupError('CONFIG', `ALBEDO_OPENSEARCH_INDEX must match [a-z0-9][a-z0-9_-]*, got ${JSON.stringify(indexPrefix)}`);
  }
  return {
    backend: backend as DedupBackendName,
    opensearch: {
      url: env.ALBEDO_OPENSEARCH_URL || DEFAULT_OPENSEARCH_URL,
      user: env.ALBEDO_OPENSEARCH_USER || null,
      password: env.ALBEDO_OPENSEARCH_PASSWORD ?? null,
      indexPrefix,
      verifyTls: parseBool('ALBEDO_OPENSEARCH_VERIFY_TLS', env.ALBEDO_OPENSEARCH_VERIFY_TLS, DEFAULT_OPENSEARCH_VERIFY_TLS),
    },
    knnCandidates: parseNumber('ALBEDO_KNN_CANDIDATES', env.ALBEDO_KNN_CANDIDATES, DEFAULT_KNN_CANDIDATES, { int: true, min: 1, max: 1000 }),
    simThreshold: parseNumber('ALBEDO_SIM_THRESHOLD', env.ALBEDO_SIM_THRESHOLD, DEFAULT_SIM_THRESHOLD, { min: 0, max: 1 }),
    minDivergence: parseNumber('ALBEDO_MIN_DIVERGENCE', env.ALBEDO_MIN_DIVERGENCE, DEFAULT_MIN_DIVERGENCE, { min: 0, max: 1 }),
    sameColdkeyStrict: parseBool('ALBEDO_SAME_COLDKEY_STRICT', env.ALBEDO_SAME_COLDKEY_STRICT, DEFAULT_SAME_COLDKEY_STRICT),
    maxKnnDim: parseNumber('ALBEDO_MAX_KNN_DIM', env.ALBEDO_MAX_KNN_DIM, DEFAULT_MAX_KNN_DIM, { int: true, min: 1, max: 1_000_000 }),
    divergenceNeighbours: parseNumber('ALBEDO_DIVERGENCE_NEIGHBOURS', env.ALBEDO_DIVERGENCE_NEIGHBOURS, DEFAULT_DIVERGENCE_NEIGHBOURS, {
      int: true,
      min: 0,
      max: 1000,
    }),
  };
}

/**
 * Opens the configured backend. The Postgres backend needs the application's pool; the modules are
 * imported lazily so a Postgres deployment never loads the OpenSearch client.
 */
export async function openDedupIndex(config: DedupConfig, deps: { db: import('../../persistence/db.ts').Db }): Promise<DedupIndex> {
  if (config.backend === 'opensearch') {
    const { OpenSearchDedupIndex } = await import('./opensearch.ts');
    return new OpenSearchDedupIndex({ ...config.opensearch, maxKnnDim: config.maxKnnDim });
  }
  const { PostgresDedupIndex } = await import('./postgres.ts');
  return new PostgresDedupIndex(deps.db, { maxKnnDim: config.maxKnnDim });
}

/** Caps a stored samples blob: 16,000 tensors × 256 float32. */
export const MAX_SAMPLES_BYTES = DEFAULT_MAX_KNN_DIM * 256 * 4;

/** Samples as stored: float32 little-endian, row-major (`keys.length × 256`). */
export function encodeSamples(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

/** Inverse of {@link encodeSamples}; checks the length against the key count. */
export function decodeSamples(bytes: Uint8Array, keys: readonly string[], salt: string): DivergenceSamples {
  if (bytes.byteLength > MAX_SAMPLES_BYTES || bytes.byteLength !== keys.length * 256 * 4) {
    throw new DedupError('BAD_RESPONSE', `stored samples have ${bytes.byteLength} bytes for ${keys.length} tensors`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
  return { salt, keys, values };
}

/** Checks a document before it is stored (both backends). */
export function assertIndexable(doc: FingerprintDoc, maxKnnDim: number): void {
  const fp = doc.fingerprint;
  const dim = fp.layer_keys.length;
  if (dim === 0 || dim > maxKnnDim) throw new DedupError('TOO_LARGE', `fingerprint dimension ${dim} outside 1..${maxKnnDim}`);
  if (fp.norm_vector.length !== dim) throw new DedupError('BAD_INPUT', `norm_vector has ${fp.norm_vector.length} values for ${dim} keys`);
  if (doc.samples && (doc.samples.keys.length !== dim || doc.samples.values.length !== dim * 256)) {
    throw new DedupError('BAD_INPUT', `samples shape does not match the fingerprint's ${dim} keys`);
  }
  if (!doc.model_uri || !doc.hotkey || !doc.weights_hash) throw new DedupError('BAD_INPUT', 'model_uri, hotkey and weights_hash are required');
}
