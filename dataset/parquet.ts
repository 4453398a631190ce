/**
 * Reading single rows of the dataset's parquet shards (spec/duel.md §5 step 1) with hyparquet, a
 * maintained, dependency-free pure-JS reader: no native build on the GPU hosts or miners' machines.
 *
 * - Each shard's sha256 is checked against the manifest before its first read; the result is cached per
 *   path + mtime + size, so a replaced file is verified again.
 * - A row is read by index across row groups: only the footer and the row group (pages, when the file
 *   has an offset index) holding the row are fetched, never the whole file.
 * - Values come back as Python's pyarrow `to_pylist()` would give them, as far as the prompt code can
 *   observe: JSON-annotated columns stay strings (pyarrow does not parse them), float columns are
 *   wrapped in {@link PyFloat} so `3.0` prints as Python prints it, maps become `[key, value]` pairs.
 * - Every failure is a `DatasetError` (`shard_unreadable`, `invalid_parquet`, `unsupported_codec`,
 *   `row_out_of_range`, `shard_hash_mismatch`); hyparquet and fs exceptions are wrapped as `cause`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import zlib from 'node:zlib';
import { type AsyncBuffer, type Compressors, type FileMetaData, parquetMetadataAsync, parquetReadObjects, parquetSchema, type SchemaTree } from 'hyparquet';
import { DatasetError } from './errors.ts';
import { PyFloat } from '../core/py-compat.ts';

/** A row as read: column name → Python-equivalent value. */
export type ParquetRow = Readonly<Record<string, unknown>>;

/** Parsed footers kept per reader (an eval touches ~13 shards; SWE-ZERO has a few hundred). */
export const DEFAULT_FOOTER_CACHE_SIZE = 64;

type Decompress = (input: Uint8Array, outputLength: number) => Uint8Array;

function fromZlib(fn: (input: Uint8Array) => Buffer): Decompress {
  return (input) => {
    const out = fn(input);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  };
}

/**
 * Codecs beyond hyparquet's built-in UNCOMPRESSED and SNAPPY (the `datasets` / pyarrow default), all
 * from node:zlib so no extra dependency ships: GZIP, BROTLI, and ZSTD where the runtime has it
 * (Node ≥ 22.15; not Node 20). LZ4 / LZ4_RAW / LZO shards fail with `unsupported_codec`.
 */
export const DEFAULT_PARQUET_COMPRESSORS: Compressors = (() => {
  const codecs: Compressors = {
    GZIP: fromZlib((input) => zlib.gunzipSync(input)),
    BROTLI: fromZlib((input) => zlib.brotliDecompressSync(input)),
  };
  const zstd = (zlib as unknown as Record<string, unknown>).zstdDecompressSync;
  if (typeof zstd === 'function') codecs.ZSTD = fromZlib((input) => (zstd as (b: Uint8Array) => Buffer)(input));
  return codecs;
})();

const utf8 = new TextDecoder();

/** pyarrow reads JSON-annotated byte arrays as `str`; hyparquet would `JSON.parse` them. */
const PYARROW_PARSERS = { jsonFromBytes: (bytes: Uint8Array): unknown => utf8.decode(bytes) };

// ── shard hashes ────────────────────────────────────────────────────────────────────────────────

/** Streaming sha256 of a file (shards are hundreds of MB; never loaded whole). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

function unreadable(path: string, error: unknown): DatasetError {
  return new DatasetError('shard_unreadable', `cannot read dataset shard ${path}: ${(error as Error).message ?? String(error)}`, { cause: error });
}

/** Verifies shard files against their manifest sha256 once per path + mtime + size. */
export interface ShardVerifier {
  /** Resolves when the file's sha256 is `expected` (lower-case hex); `shard_hash_mismatch` otherwise. */
  verify(path: string, expected: string): Promise<void>;
}

/**
 * A {@link ShardVerifier} with its own cache. Concurrent calls for the same file share one hash pass;
 * a failed verification is not cached (a repaired file is checked again on the next call).
 */
export function createShardVerifier(): ShardVerifier {
  const verified = new Map<string, Promise<void>>();
  return {
    async verify(path, expected) {
      let info: Awaited<ReturnType<typeof stat>>;
      try {
        info = await stat(path);
      } catch (error) {
        throw unreadable(path, error);
      }
      const key = `${path}\0${info.mtimeMs}\0${info.size}\0${expected}`;
      let pending = verified.get(key);
      if (!pending) {
        pending = (async () => {
          let actual: string;
          try {
            actual = await sha256File(path);
          } catch (error) {
            throw unreadable(path, error);
          }
          if (actual !== expected) {
            throw new DatasetError('shard_hash_mismatch', `dataset shard ${path} sha256 mismatch: manifest says ${expected}, file has ${actual}`);
          }
        })();
        verified.set(key, pending);
        pending.catch(() => verified.delete(key));
      }
      return pending;
    },
  };
}

// ── rows ────────────────────────────────────────────────────────────────────────────────────────

function isListLike(node: SchemaTree): boolean {
  const child = node.children[0];
  return node.element.converted_type === 'LIST' && node.children.length === 1 && !!child && child.children.length <= 1 && child.element.repetition_type === 'REPEATED';
}

function isMapLike(node: SchemaTree): boolean {
  const child = node.children[0];
  return node.element.converted_type === 'MAP' && node.children.length === 1 && !!child && child.children.length === 2 && child.element.repetition_type === 'REPEATED';
}

/** One value of `node` (its repetition already resolved) → the Python-equivalent value. */
function convertOne(value: unknown, node: SchemaTree): unknown {
  if (value === null || value === undefined) return null;
  if (isListLike(node)) {
    const repeated = node.children[0]!;
    const element = repeated.children.length === 1 ? repeated.children[0]! : repeated;
    return Array.isArray(value) ? value.map((v) => convertOne(v, element)) : value;
  }
  if (isMapLike(node)) {
    const valueNode = node.children[0]!.children.find((c) => c.element.name === 'value');
    if (typeof value !== 'object') return value;
    return Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, valueNode ? convertOne(v, valueNode) : v]);
  }
  if (node.children.length > 0) {
    if (node.element.logical_type?.type === 'VARIANT' || typeof value !== 'object') return value;
    const struct = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const child of node.children) out[child.element.name] = convert(struct[child.element.name], child);
    return out;
  }
  const { type, logical_type: logical } = node.element;
  if (typeof value === 'number' && (type === 'FLOAT' || type === 'DOUBLE' || logical?.type === 'FLOAT16')) return new PyFloat(value);
  return value;
}

/** A field's value, honouring a bare REPEATED field (assembled as an array of its values). */
function convert(value: unknown, node: SchemaTree): unknown {
  if (node.element.repetition_type === 'REPEATED' && Array.isArray(value)) return value.map((v) => convertOne(v, node));
  return convertOne(value, node);
}

/** A parquet object row (hyparquet types) → Python-equivalent values, guided by the file schema. */
export function pythonizeRow(row: Record<string, unknown>, metadata: FileMetaData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const columns = new Map(parquetSchema(metadata).children.map((c) => [c.element.name, c]));
  for (const [name, value] of Object.entries(row)) {
    const node = columns.get(name);
    out[name] = node ? convert(value, node) : value;
  }
  return out;
}

/** An {@link AsyncBuffer} over an open file handle (positional reads; no stream per slice). */
function handleBuffer(handle: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start, end = size) {
      const from = Math.max(0, Math.min(start, size));
      const to = Math.max(from, Math.min(end, size));
      const bytes = new Uint8Array(to - from);
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, from + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < bytes.length) throw new Error(`short read: ${done} of ${bytes.length} bytes at offset ${from}`);
      return bytes.buffer;
    },
  };
}

function parquetFailure(path: string, error: unknown): DatasetError {
  if (error instanceof DatasetError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/unsupported compression codec/i.test(message)) {
    return new DatasetError('unsupported_codec', `dataset shard ${path}: ${message}`, { cause: error });
  }
  return new DatasetError('invalid_parquet', `dataset shard ${path} is not a readable parquet file: ${message}`, { cause: error });
}

export interface ParquetShardReaderOptions {
  /** @default DEFAULT_PARQUET_COMPRESSORS */
  readonly compressors?: Compressors;
  /** @default DEFAULT_FOOTER_CACHE_SIZE */
  readonly footerCacheSize?: number;
}

/** Reads rows of parquet shard files; caches parsed footers per path + mtime + size. */
export interface ParquetShardReader {
  /** Total rows of the file, from its footer. */
  numRows(path: string): Promise<number>;
  /** Row `row` (0-based, across row groups), Python-equivalent values (see module doc). */
  readRow(path: string, row: number): Promise<ParquetRow>;
}

/**
 * @example
 * const reader = createParquetShardReader();
 * const row = await reader.readRow('/data/swe-zero/data/train-00000-of-00300.parquet', 1234);
 */
export function createParquetShardReader(options: ParquetShardReaderOptions = {}): ParquetShardReader {
  const compressors = options.compressors ?? DEFAULT_PARQUET_COMPRESSORS;
  const cacheSize = options.footerCacheSize ?? DEFAULT_FOOTER_CACHE_SIZE;
  const footers = new Map<string, FileMetaData>();

  async function withFile<T>(path: string, fn: (file: AsyncBuffer, metadata: FileMetaData) => Promise<T>): Promise<T> {
    let handle: FileHandle;
    let size: number;
    let key: string;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw unreadable(path, error);
    }
    try {
      try {
        const info = await handle.stat();
        size = info.size;
        key = `${path}\0${info.mtimeMs}\0${info.size}`;
      } catch (error) {
        throw unreadable(path, error);
      }
      const file = handleBuffer(handle, size);
      let metadata = footers.get(key);
      if (!metadata) {
        metadata = await parquetMetadataAsync(file, { parsers: PYARROW_PARSERS });
        if (footers.size >= cacheSize) footers.delete(footers.keys().next().value!);
        footers.set(key, metadata);
      }
      return await fn(file, metadata);
    } catch (error) {
      throw parquetFailure(path, error);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  return {
    numRows: (path) => withFile(path, async (_file, metadata) => Number(metadata.num_rows)),
    readRow(path, row) {
      return withFile(path, async (file, metadata) => {
        const total = Number(metadata.num_rows);
        if (!Number.isSafeInteger(row) || row < 0 || row >= total) {
          throw new DatasetError('row_out_of_range', `dataset shard ${path} has ${total} rows; row ${row} does not exist`);
        }
        const rows = await parquetReadObjects({ file, metadata, rowStart: row, rowEnd: row + 1, compressors, parsers: PYARROW_PARSERS, useOffsetIndex: true });
        const found = rows[0];
        if (rows.length !== 1 || !found) throw new Error(`expected 1 row at index ${row}, decoded ${rows.length}`);
        return pythonizeRow(found, metadata);
      });
    },
  };
}
