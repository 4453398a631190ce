import { open } from 'node:fs/promises';
import { pyRepr, pyReprList, pyStrRepr, pySorted } from '../core/py-compat.ts';

/**
 * Safetensors header parsing and sanity rules (spec/validation.md §4). Pure functions over bytes:
 * the preflight feeds them ranges read from a store, the later on-disk validation (§4.2) can feed
 * them a local file's bytes. Nothing here throws on hostile input; every problem is a message
 * ({@link readShardHeaderFile} throws only for I/O errors).
 */

/** `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES`: upstream had no cap (a multi-GB header was a DoS). */
export const DEFAULT_MAX_SAFETENSORS_HEADER_BYTES = 104_857_600;

/** Weight dtypes a challenger may use (§4.1 step 5). */
export const ALLOWED_WEIGHT_DTYPES: ReadonlySet<string> = new Set(['F16', 'BF16']);

const DTYPE_SIZES: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Bytes per element of a known dtype (`F8_*` are 1 byte), or null when the dtype is unknown. */
export function dtypeItemSize(dtype: string): number | null {
  if (Object.hasOwn(DTYPE_SIZES, dtype)) return DTYPE_SIZES[dtype] as number;
  return dtype.startsWith('F8_') ? 1 : null;
}

export interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Offsets relative to the data buffer (`8 + N`). */
  readonly start: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** `N`, the JSON header length. */
  readonly headerLength: number;
  /** Tensor entries in header JSON object order (`__metadata__` excluded). */
  readonly tensors: readonly TensorEntry[];
  readonly metadata: Readonly<Record<string, string>> | null;
  /** `D = file_size − 8 − N` when the file size is known. */
  readonly dataLength: number | null;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const fail = (message: string): { ok: false; message: string } => ({ ok: false, message });

/**
 * Steps 1–2 of §4.1 on the first 8 bytes: `N` as little-endian u64, `2 <= N <= cap`, and the
 * header must fit in the file when its size is known.
 */
export function readHeaderLength(shard: string, prefix: Uint8Array, maxHeaderBytes: number, fileSize: number | null): Checked<number> {
  if (prefix.byteLength < 8) return fail(`shard ${shard}: file is shorter than the 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(maxHeaderBytes)) return fail(`shard ${shard}: header length ${n} exceeds cap ${maxHeaderBytes}`);
  if (n < 2n) return fail(`shard ${shard}: header length ${n} is below the minimum of 2`);
  const len = Number(n);
  if (fileSize !== null && 8 + len > fileSize) return fail(`shard ${shard}: header length ${len} exceeds the file size ${fileSize}`);
  return { ok: true, value: len };
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Steps 3–4 of §4.1 plus every §4.2 rule: the header JSON must be an object of tensor entries
 * (`dtype` string, `shape` list of non-negative ints, two integer `data_offsets`); known dtypes
 * must occupy exactly `product(shape) × itemsize` bytes; sorted by start the ranges must be
 * contiguous from 0 without overlap; with a known file size every end is `<= D` and the last end
 * is `D`. Messages name the shard and tensor.
 */
export function parseSafetensorsHeader(shard: string, headerBytes: Uint8Array, fileSize: number | null): Checked<SafetensorsHeader> {
  const headerLength = headerBytes.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    return fail(`shard ${shard}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail(`shard ${shard}: header is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail(`shard ${shard}: header JSON is not an object`);
  const dataLength = fileSize === null ? null : fileSize - 8 - headerLength;
  if (dataLength !== null && dataLength < 0) return fail(`shard ${shard}: header length ${headerLength} exceeds the file size ${fileSize}`);

  const tensors: TensorEntry[] = [];
  let metadata: Record<string, string> | null = null;
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    const t = `shard ${shard}: tensor ${pyStrRepr(name)}`;
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        return fail(`shard ${shard}: __metadata__ must be an object of strings`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`${t} entry is not an object`);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string') return fail(`${t} has a non-string dtype`);
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegativeInt)) return fail(`${t} shape must be a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isNonNegativeInt(offs[0]) || !isNonNegativeInt(offs[1])) {
      return fail(`${t} data_offsets must be two non-negative integers`);
    }
    const [start, end] = offs as [number, number];
    if (start > end) return fail(`${t} data_offsets [${start}, ${end}] are reversed`);
    if (dataLength !== null && end > dataLength) return fail(`${t} data_offsets [${start}, ${end}] exceed the data buffer of ${dataLength} bytes`);
    const item = dtypeItemSize(e.dtype);
    if (item !== null) {
      const want = (e.shape as number[]).reduce((acc, d) => acc * BigInt(d), 1n) * BigInt(item);
      if (BigInt(end - start) !== want) {
        return fail(`${t} has ${end - start} bytes but dtype ${e.dtype} with shape ${pyRepr(e.shape)} needs ${want}`);
      }
    }
    tensors.push({ name, dtype: e.dtype, shape: e.shape as number[], start, end });
  }

  const byStart = [...tensors].sort((a, b) => a.start - b.start || a.end - b.end);
  let cursor = 0;
  let previous: TensorEntry | null = null;
  for (const t of byStart) {
    if (t.start < cursor) {
      return fail(`shard ${shard}: tensor ${pyStrRepr(t.name)} data_offsets [${t.start}, ${t.end}] overlap tensor ${pyStrRepr(previous?.name ?? '')}`);
    }
    if (t.start > cursor) return fail(`shard ${shard}: tensor ${pyStrRepr(t.name)} starts at ${t.start}; data is not contiguous (expected ${cursor})`);
    cursor = t.end;
    previous = t;
  }
  if (dataLength !== null && cursor !== dataLength) {
    return fail(`shard ${shard}: tensors end at ${cursor} but the data buffer is ${dataLength} bytes`);
  }
  return { ok: true, value: { headerLength, tensors, metadata, dataLength } };
}

/** Sorted dtypes of a header outside {F16, BF16}. */
export function disallowedDtypes(header: SafetensorsHeader): string[] {
  return pySorted(new Set(header.tensors.map((t) => t.dtype).filter((d) => !ALLOWED_WEIGHT_DTYPES.has(d))));
}

/** The §4.1 step 5 message (upstream wording). */
export function weightDtypeMessage(shard: string, bad: readonly string[]): string {
  return `model weights must be 16-bit (F16/BF16); shard ${shard} has dtype(s): ${pyReprList(bad)}`;
}

/**
 * §4.2 on a shard file on disk: the capped length prefix, the header bytes, every rule against the
 * file's real size. A hostile file is a message; only I/O errors throw. Shared by the validation
 * stage's on-disk step and the fingerprint engine, which must agree on what a valid shard is.
 */
export async function readShardHeaderFile(path: string, shard: string, maxHeaderBytes: number): Promise<Checked<SafetensorsHeader & { readonly fileSize: number }>> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(8);
    const { bytesRead } = await fh.read(prefix, 0, 8, 0);
    const len = readHeaderLength(shard, prefix.subarray(0, bytesRead), maxHeaderBytes, size);
    if (!len.ok) return len;
    const headerBytes = new Uint8Array(len.value);
    const got = await fh.read(headerBytes, 0, len.value, 8);
    if (got.bytesRead !== len.value) return fail(`shard ${shard}: header is truncated`);
    const parsed = parseSafetensorsHeader(shard, headerBytes, size);
    return parsed.ok ? { ok: true, value: { ...parsed.value, fileSize: size } } : parsed;
  } finally {
    await fh.close();
  }
}
