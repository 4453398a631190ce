/**
 * Dataset manifests (spec/duel.md §6 for v1, §13 for v2): load the hash-pinned file, check the pin on
 * its raw bytes, and validate the JSON into an immutable, normalised value the samplers and the
 * shard reader share. Validation messages that §6 spells out are reproduced verbatim.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DatasetError } from './errors.ts';
import { compareCodePoints, pyEquals } from '../core/py-compat.ts';

/**
 * Largest manifest file read at all. The v1 SWE-ZERO manifest is a few hundred KiB; a v2 manifest
 * carries one `rows_meta` object (~200 bytes) per row, so 256 MiB allows ~1 M rows while staying well
 * below V8's string limit (512 MiB) for `JSON.parse`.
 */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/** Most shards one manifest may list (SWE-ZERO has a few hundred). */
export const MAX_MANIFEST_SHARDS = 100_000;

/**
 * Most rows a manifest may declare in total. The v1 sampler shuffles a `Uint32Array` of every row
 * (4 bytes each): 100 M rows is 400 MB, ≈ 8× SWE-ZERO's 12 M. Also keeps every row index a small integer.
 */
export const MAX_MANIFEST_ROWS = 100_000_000;

/** Most sources a v2 manifest may list. */
export const MAX_MANIFEST_SOURCES = 1_000;

/** §6: v1 shard names. */
const V1_SHARD_PREFIX = 'data/train-';
const V1_SHARD_SUFFIX = '.parquet';

/** §13: v2 shard names, optionally under one source directory. */
export const V2_SHARD_NAME_RE = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*\/)?data\/train-[A-Za-z0-9_.-]*\.parquet$/;

const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

/** One shard of a v1 manifest, in manifest order. */
export interface ManifestShard {
  /** `name`, or `path` when `name` is not a non-empty string (§6 step 2). */
  readonly name: string;
  readonly rows: number;
  /** Lower-case hex sha256 of the shard file, when the manifest lists one. */
  readonly sha256: string | null;
}

/** A validated v1 (`swe-zero-manifest-sample-v1`) manifest. Only {@link parseSweZeroManifest} makes one. */
export interface SweZeroManifest {
  readonly format: 'swe-zero-v1';
  readonly shards: readonly ManifestShard[];
  readonly totalRows: number;
}

/** One `rows_meta` entry as stored (§13); interpreted by the v2 sampler with Python semantics. */
export type RowMeta = Readonly<Record<string, unknown>>;

/** One shard of a v2 source, in manifest order. */
export interface MultiSourceShard extends ManifestShard {
  /** Exactly `rows` entries, one per row in index order. */
  readonly rowsMeta: readonly RowMeta[];
}

/** One v2 source. */
export interface ManifestSource {
  readonly name: string;
  readonly shards: readonly MultiSourceShard[];
  readonly totalRows: number;
}

/** A validated v2 (`multi-source-manifest-sample-v1`) manifest. Only {@link parseMultiSourceManifest} makes one. */
export interface MultiSourceManifest {
  readonly format: 'multi-source-v1';
  readonly version: unknown;
  /** Sorted by name in code-point order (§13), as the sampler walks them. */
  readonly sources: readonly ManifestSource[];
  readonly totalRows: number;
}

export type Manifest = SweZeroManifest | MultiSourceManifest;

/**
 * Manifests built by this module. A plain object with the same fields is not trusted: the samplers
 * re-validate anything not in this set, so a hand-built value cannot skip §6 / §13 validation.
 */
const validated = new WeakSet<object>();

/** True for a manifest returned by {@link parseSweZeroManifest} (not forgeable by shape). */
export function isSweZeroManifest(value: unknown): value is SweZeroManifest {
  return typeof value === 'object' && value !== null && validated.has(value) && (value as Manifest).format === 'swe-zero-v1';
}

/** True for a manifest returned by {@link parseMultiSourceManifest} (not forgeable by shape). */
export function isMultiSourceManifest(value: unknown): value is MultiSourceManifest {
  return typeof value === 'object' && value !== null && validated.has(value) && (value as Manifest).format === 'multi-source-v1';
}

function invalid(message: string): DatasetError {
  return new DatasetError('invalid_manifest', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** Python `isinstance(v, int) and not isinstance(v, bool)`, within the row cap. */
function isRowCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function shardSha256(entry: Record<string, unknown>, name: string): string | null {
  const raw = entry.sha256;
  if (raw === undefined || raw === null || raw === '') return null;
  const hex = typeof raw === 'string' ? normaliseSha256(raw) : '';
  if (!SHA256_HEX_RE.test(hex)) throw invalid(`manifest shard ${name} has an invalid sha256`);
  return hex;
}

function checkRowCap(total: number): void {
  if (total > MAX_MANIFEST_ROWS) {
    throw new DatasetError('manifest_too_large', `manifest declares ${total} rows, more than the cap of ${MAX_MANIFEST_ROWS}`);
  }
}

/** `total_rows` when present (JSON `null` counts as absent), compared with Python `!=` semantics. */
function checkDeclaredTotal(declared: unknown, sum: number, message: string): void {
  if (declared !== undefined && declared !== null && !pyEquals(declared, sum)) throw invalid(message);
}

/**
 * §6 step 2: validates a parsed v1 manifest. Messages are the spec's; the spec leaves two of them
 * open (entry not an object, bad `rows`), for which this module words its own.
 *
 * Deviation: JSON `3.0` is the number 3 after `JSON.parse`, so `"rows": 3.0` is accepted where
 * Python rejects the float. Pinned manifests are written by `json.dump` of ints, so this never
 * changes a sample.
 */
export function parseSweZeroManifest(raw: unknown): SweZeroManifest {
  if (!isObject(raw)) throw invalid('manifest must be a JSON object');
  const entries = raw.shards;
  if (!Array.isArray(entries)) throw invalid('manifest.shards must be a list');
  if (entries.length > MAX_MANIFEST_SHARDS) {
    throw new DatasetError('manifest_too_large', `manifest lists ${entries.length} shards, more than the cap of ${MAX_MANIFEST_SHARDS}`);
  }
  const shards: ManifestShard[] = [];
  let sum = 0;
  for (const entry of entries) {
    if (!isObject(entry)) throw invalid('manifest shards must be objects');
    const name = typeof entry.name === 'string' && entry.name !== '' ? entry.name : entry.path;
    if (typeof name !== 'string' || !name.startsWith(V1_SHARD_PREFIX) || !name.endsWith(V1_SHARD_SUFFIX)) {
      throw invalid('manifest shards must be data/train-*.parquet files');
    }
    if (!isRowCount(entry.rows)) throw invalid(`manifest shard ${name} rows must be a non-negative integer`);
    sum += entry.rows;
    checkRowCap(sum);
    shards.push(Object.freeze({ name, rows: entry.rows, sha256: shardSha256(entry, name) }));
  }
  checkDeclaredTotal(raw.total_rows, sum, 'manifest total_rows does not match shard rows');
  const manifest: SweZeroManifest = Object.freeze({ format: 'swe-zero-v1', shards: Object.freeze(shards), totalRows: sum });
  validated.add(manifest);
  return manifest;
}

/**
 * §13 validation of a parsed v2 manifest: `sources` present, a non-empty list of objects with unique
 * non-empty names; shard names match {@link V2_SHARD_NAME_RE}; `rows` integers ≥ 0; `rows_meta` a list
 * of `rows` objects; declared source and manifest totals equal the shard sums. Sources come back sorted
 * by name (code-point order), shards in manifest order.
 */
export function parseMultiSourceManifest(raw: unknown): MultiSourceManifest {
  if (!isObject(raw) || !('sources' in raw)) throw invalid('manifest must contain sources');
  const entries = raw.sources;
  if (!Array.isArray(entries) || entries.length === 0) throw invalid('manifest sources must be a non-empty list');
  if (entries.length > MAX_MANIFEST_SOURCES) {
    throw new DatasetError('manifest_too_large', `manifest lists ${entries.length} sources, more than the cap of ${MAX_MANIFEST_SOURCES}`);
  }
  const names = new Set<string>();
  const sources: ManifestSource[] = [];
  let shardCount = 0;
  let total = 0;
  for (const entry of entries) {
    if (!isObject(entry)) throw invalid('manifest sources must be objects');
    const name = entry.name;
    if (typeof name !== 'string' || name === '') throw invalid('manifest source name must be a non-empty string');
    if (names.has(name)) throw invalid(`manifest source names must be unique: ${name}`);
    names.add(name);
    if (!Array.isArray(entry.shards)) throw invalid(`manifest source ${name} shards must be a list`);
    shardCount += entry.shards.length;
    if (shardCount > MAX_MANIFEST_SHARDS) {
      throw new DatasetError('manifest_too_large', `manifest lists more than the cap of ${MAX_MANIFEST_SHARDS} shards`);
    }
    const shards: MultiSourceShard[] = [];
    let sourceSum = 0;
    for (const shard of entry.shards) {
      if (!isObject(shard)) throw invalid(`manifest source ${name} shards must be objects`);
      const shardName = typeof shard.name === 'string' && shard.name !== '' ? shard.name : shard.path;
      if (typeof shardName !== 'string' || !V2_SHARD_NAME_RE.test(shardName)) {
        throw invalid('manifest shards must be [<dir>/]data/train-*.parquet files');
      }
      if (!isRowCount(shard.rows)) throw invalid(`manifest shard ${shardName} rows must be a non-negative integer`);
      const rowsMeta = shard.rows_meta;
      if (!Array.isArray(rowsMeta) || rowsMeta.length !== shard.rows) {
        throw invalid(`manifest shard ${shardName} rows_meta must be a list of length rows (${shard.rows})`);
      }
      for (const meta of rowsMeta) if (!isObject(meta)) throw invalid(`manifest shard ${shardName} rows_meta entries must be objects`);
      sourceSum += shard.rows;
      checkRowCap(total + sourceSum);
      shards.push(Object.freeze({ name: shardName, rows: shard.rows, sha256: shardSha256(shard, shardName), rowsMeta: Object.freeze(rowsMeta as RowMeta[]) }));
    }
    checkDeclaredTotal(entry.total_rows, sourceSum, `manifest source ${name} total_rows does not match shard rows`);
    total += sourceSum;
    sources.push(Object.freeze({ name, shards: Object.freeze(shards), totalRows: sourceSum }));
  }
  checkDeclaredTotal(raw.total_rows, total, 'manifest total_rows does not match shard rows');
  sources.sort((a, b) => compareCodePoints(a.name, b.name));
  const manifest: MultiSourceManifest = Object.freeze({ format: 'multi-source-v1', version: raw.version, sources: Object.freeze(sources), totalRows: total });
  validated.add(manifest);
  return manifest;
}

/** A configured pin → bare lower-case hex: trims, drops an optional `sha256:` prefix (§6). */
export function normaliseSha256(pin: string): string {
  const trimmed = pin.trim();
  return (trimmed.toLowerCase().startsWith('sha256:') ? trimmed.slice('sha256:'.length) : trimmed).toLowerCase();
}

/** sha256 hex of raw bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * §6 pin check on the manifest file's raw bytes. Throws
 * `dataset manifest hash mismatch: expected E, got A` (E = the pin without its `sha256:` prefix).
 */
export function verifyManifestPin(bytes: Uint8Array, expected: string): void {
  const want = normaliseSha256(expected);
  const got = sha256Hex(bytes);
  if (got !== want) throw new DatasetError('manifest_hash_mismatch', `dataset manifest hash mismatch: expected ${want}, got ${got}`);
}

export interface ReadManifestOptions {
  /** sha256 pin of the raw bytes (`sha256:` prefix allowed); unchecked when absent. */
  readonly expectedSha256?: string;
  /** @default MAX_MANIFEST_BYTES */
  readonly maxBytes?: number;
}

/** A manifest file as read: raw bytes' digest and the parsed JSON (not yet validated). */
export interface ManifestFile {
  readonly sha256: string;
  readonly byteLength: number;
  readonly json: unknown;
}

/**
 * Reads a manifest file (refusing files over the cap before reading them), checks the pin on the raw
 * bytes and parses the JSON. Validation is left to {@link parseSweZeroManifest} /
 * {@link parseMultiSourceManifest} (or the samplers), so the same bytes can serve either format.
 */
export async function readManifestFile(path: string, options: ReadManifestOptions = {}): Promise<ManifestFile> {
  const maxBytes = options.maxBytes ?? MAX_MANIFEST_BYTES;
  let bytes: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) {
        throw new DatasetError('manifest_too_large', `dataset manifest ${path} is ${size} bytes, more than the cap of ${maxBytes}`);
      }
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError('manifest_unreadable', `cannot read dataset manifest ${path}: ${(error as Error).message}`, { cause: error });
  }
  // A file that grew between stat and read is still refused.
  if (bytes.length > maxBytes) throw new DatasetError('manifest_too_large', `dataset manifest ${path} is more than the cap of ${maxBytes} bytes`);
  if (options.expectedSha256 !== undefined) verifyManifestPin(bytes, options.expectedSha256);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new DatasetError('manifest_unreadable', `dataset manifest ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return { sha256: sha256Hex(bytes), byteLength: bytes.length, json };
}

/** {@link readManifestFile} + {@link parseSweZeroManifest}. */
export async function loadSweZeroManifest(path: string, options: ReadManifestOptions = {}): Promise<SweZeroManifest> {
  return parseSweZeroManifest((await readManifestFile(path, options)).json);
}

/** {@link readManifestFile} + {@link parseMultiSourceManifest}. */
export async function loadMultiSourceManifest(path: string, options: ReadManifestOptions = {}): Promise<MultiSourceManifest> {
  return parseMultiSourceManifest((await readManifestFile(path, options)).json);
}
