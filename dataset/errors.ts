/**
 * The one error type of the dataset boundary (manifests, samplers, parquet shards, prompt
 * construction). Messages that spec/duel.md §6 spells out are reproduced verbatim, because validators
 * and upstream tooling compare them; the `code` lets callers branch without parsing text.
 */

export type DatasetErrorCode =
  /** A sampler argument is out of range: empty block hash, negative count, unknown profile. */
  | 'invalid_argument'
  /** No sampler is registered under the requested algorithm id. */
  | 'unknown_algorithm'
  /** The manifest JSON does not have the shape §6 / §13 require (the message says which rule). */
  | 'invalid_manifest'
  /** The manifest file's sha256 differs from the configured pin. */
  | 'manifest_hash_mismatch'
  /** The manifest file, or one of its counts, exceeds a size cap. */
  | 'manifest_too_large'
  /** The manifest file could not be read or is not JSON. */
  | 'manifest_unreadable'
  /** The v2 sampler cannot fill a (phase, family) stratum (§13 step 4). */
  | 'infeasible_stratum'
  /** A sample id does not parse as `<shard>:<row>:<turn>` (§5). */
  | 'invalid_sample_id'
  /** A sample id names a shard the manifest does not list. */
  | 'shard_not_in_manifest'
  /** The manifest lists no sha256 for a shard that must be verified before reading. */
  | 'shard_hash_missing'
  /** A shard file's sha256 differs from the manifest's. */
  | 'shard_hash_mismatch'
  /** A shard file could not be opened or read. */
  | 'shard_unreadable'
  /** The shard is not a readable parquet file (truncated, corrupt footer, corrupt pages). */
  | 'invalid_parquet'
  /** The shard uses a compression codec this runtime cannot decode. */
  | 'unsupported_codec'
  /** The requested row is past the shard's last row. */
  | 'row_out_of_range';

/**
 * The only error the `dataset/` functions throw for bad input or bad files (PyRandom argument misuse
 * aside, which is a `RangeError`). Library exceptions (hyparquet, fs) are wrapped with `cause`.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  readonly code: DatasetErrorCode;

  constructor(code: DatasetErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Narrowing guard usable across module copies (matches by `name`, like the CLI does). */
export function isDatasetError(error: unknown): error is DatasetError {
  return error instanceof Error && error.name === 'DatasetError' && typeof (error as { code?: unknown }).code === 'string';
}
