/**
 * The data shapes shared by the fingerprint engine (validation/fingerprint*.ts), the dedup index
 * (validation/dedup/) and the validation stage. spec/validation.md §8 (fingerprint) and §9.2
 * (divergence samples).
 */

/** `fingerprint.method`. */
export const FINGERPRINT_METHOD = 'layer_norms_v2_with_samples';
/** Samples per tensor in the upstream fingerprint (§8 step 3). */
export const FINGERPRINT_SAMPLES = 16;
/** Sampled weights per tensor for the divergence measure (§9.2: 16 BLAKE2b-512 digests × 16 u32). */
export const DIVERGENCE_SAMPLES = 256;
/** Salt of the stored corpus samples (§9.2). */
export const DIVERGENCE_CORPUS_SALT = 'albedo-div-v1';
/** `ALBEDO_MAX_KNN_DIM`: a larger fingerprint is MINER `fingerprint_too_large`. @default 16000 */
export const DEFAULT_MAX_KNN_DIM = 16_000;

/** The upstream-compatible fingerprint JSON, exactly as §8 step 6 defines it (keys in this order). */
export interface LayerFingerprint {
  readonly method: typeof FINGERPRINT_METHOD;
  /** Tensor names sorted by code point. */
  readonly layer_keys: readonly string[];
  /** sqrt of the NumPy-pairwise float64 sum of squares, per key. */
  readonly norm_vector: readonly number[];
  /** 16 float32 values (as doubles) per key. */
  readonly tensor_samples: readonly (readonly number[])[];
}

/**
 * Divergence samples of one model under one salt: for each key of `keys` (same order as the
 * fingerprint's `layer_keys`), `DIVERGENCE_SAMPLES` float32 values at the §9.2 positions, stored
 * row-major in `values` (`keys.length × DIVERGENCE_SAMPLES`). Tensors with n = 0 hold zeros.
 */
export interface DivergenceSamples {
  readonly salt: string;
  readonly keys: readonly string[];
  readonly values: Float32Array;
}

/** Everything the validation stage needs from one pass over a model directory. */
export interface ModelFingerprint {
  readonly fingerprint: LayerFingerprint;
  /** §8: sha256 hex of the sorted per-file sha256 hex digests joined by "\n". */
  readonly weightsHash: string;
  /** Per-file sha256 (name → hex), from which `weightsHash` was built. */
  readonly fileSha256: Readonly<Record<string, string>>;
  /** Samples for each requested salt (always includes DIVERGENCE_CORPUS_SALT). */
  readonly samples: readonly DivergenceSamples[];
  /** Tensors in the fingerprint (= layer_keys.length). */
  readonly nTensors: number;
  /** Bytes of tensor data read. */
  readonly bytes: number;
}
