import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, type FileHandle, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { AlbedoError } from '../core/faults.ts';
import { abortableSleep } from '../core/io.ts';
import type { FaultCode } from '../core/faults.ts';
import type { ModelRef } from './model-ref.ts';
import { MAX_RANGE_BYTES, type ModelStore, ModelStoreError, SHA256_HEX, type StoreFile } from './model-store.ts';

/**
 * Downloads one file of a {@link ModelStore} to a local path (spec/validation.md §5, step 7):
 *
 * - The file is split into parts of `partSize` bytes fetched by `concurrency` parallel ranged
 *   requests and written at their offsets into `<dest>.download` (sparse, pre-sized).
 * - **Resume**: every finished part is flushed (`datasync`) and then appended to the journal
 *   `<dest>.download.journal` (JSON lines: a header `{v, size, partSize, sha256}` then
 *   `{part, sha256}` per part). A restarted process re-hashes each journaled part on disk and
 *   re-fetches only parts that are missing or whose bytes no longer match. A header that does not
 *   match (other size, part size or expected digest) discards the journal.
 * - **Stall watchdog**: no byte growth for `stallMs` aborts every in-flight request and restarts
 *   (parts keep the bytes they already have); `stallRetries` consecutive fruitless attempts fail
 *   with `stalled`; an attempt that made progress resets the count.
 * - **Transient errors** (`unavailable`) are retried per part with exponential backoff and jitter,
 *   continuing from the byte already received; `not_found` is never retried here (the caller
 *   confirms a disappearance before blaming the miner).
 * - **Integrity**: the finished file is hashed and compared with the expected sha256 when known;
 *   a mismatch deletes the data and the journal (`integrity`).
 * - **Progress**: `onProgress` at most every `progressIntervalMs`, plus once at the end; `bytesDone`
 *   never decreases.
 *
 * On success the data file is renamed to `dest` and the journal deleted. On failure they are kept
 * (except after an integrity failure) so the next call resumes.
 */

/** Bytes per ranged request. @default 32 MiB */
export const DEFAULT_PART_SIZE = 32 * 1024 * 1024;
/** Parallel ranged requests per file. @default 4 */
export const DEFAULT_CONCURRENCY = 4;
/** `ALBEDO_DOWNLOAD_STALL_SECONDS` (HF). @default 180000 */
export const DEFAULT_STALL_MS = 180_000;
/** `ALBEDO_DOWNLOAD_STALL_RETRIES` (HF). @default 3 */
export const DEFAULT_STALL_RETRIES = 3;
/** `ALBEDO_HIPPIUS_DOWNLOAD_STALL_SECONDS`. @default 1200000 */
export const DEFAULT_HIPPIUS_STALL_MS = 1_200_000;
/** `ALBEDO_HIPPIUS_DOWNLOAD_STALL_RETRIES`. @default 2 */
export const DEFAULT_HIPPIUS_STALL_RETRIES = 2;
/** The watchdog samples the byte count at most this often (spec: every 10 s). @default 10000 */
export const STALL_CHECK_INTERVAL_MS = 10_000;
/** Received bytes are written to disk in blocks of up to this size. @default 1 MiB */
export const WRITE_BLOCK_BYTES = 1024 * 1024;
/** Retries of one part after transient errors, within one attempt. @default 5 */
export const DEFAULT_PART_RETRIES = 5;
/** First backoff delay; doubled per retry, with full jitter. @default 500 */
export const DEFAULT_BACKOFF_BASE_MS = 500;
/** Longest backoff delay. @default 30000 */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;
/** Least time between two progress reports. @default 1000 */
export const DEFAULT_PROGRESS_INTERVAL_MS = 1000;
/** Largest journal accepted on resume (a part line is < 100 bytes). @default 16 MiB */
export const MAX_JOURNAL_BYTES = 16 * 1024 * 1024;
/** Most parts of one file (bounds the journal and the scheduling arrays). @default 1000000 */
export const MAX_PARTS = 1_000_000;

export type DownloadErrorCode = 'not_found' | 'unavailable' | 'stalled' | 'integrity' | 'disk' | 'aborted';

/**
 * - `not_found`: the store says the file is gone (the caller confirms, then decides on MINER
 *   `incomplete_repo` / `repo_not_found`).
 * - `unavailable`: transient errors outlived the part retries.
 * - `stalled`: the stall watchdog gave up.
 * - `integrity`: the bytes do not hash to the expected sha256.
 * - `disk`: local file system error (ENOSPC, EACCES, …).
 * - `aborted`: the caller's signal fired.
 */
export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Every download failure is INFRA `download_failed` (step 7); MINER `incomplete_repo` is the caller's call. */
  faultCode(): FaultCode {
    return 'download_failed';
  }
}

export interface DownloadProgress {
  readonly file: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Average since the previous report (0 on the first). */
  readonly bytesPerSecond: number;
  /** Remaining bytes ÷ rate; null while the rate is unknown or 0. */
  readonly etaSeconds: number | null;
}

export interface DownloadOptions {
  readonly store: ModelStore;
  readonly ref: ModelRef;
  /** The file as listed by the store (`size`, and `sha256` when known). */
  readonly file: StoreFile;
  /** Final local path. */
  readonly dest: string;
  /** Overrides `file.sha256`. */
  readonly expectedSha256?: string;
  /** @default DEFAULT_PART_SIZE */
  readonly partSize?: number;
  /** @default DEFAULT_CONCURRENCY */
  readonly concurrency?: number;
  /** @default DEFAULT_STALL_MS */
  readonly stallMs?: number;
  /** @default DEFAULT_STALL_RETRIES */
  readonly stallRetries?: number;
  /** @default DEFAULT_PART_RETRIES */
  readonly partRetries?: number;
  /** @default DEFAULT_BACKOFF_BASE_MS */
  readonly backoffBaseMs?: number;
  /** @default DEFAULT_BACKOFF_MAX_MS */
  readonly backoffMaxMs?: number;
  /** @default DEFAULT_PROGRESS_INTERVAL_MS */
  readonly progressIntervalMs?: number;
  readonly onProgress?: (p: DownloadProgress) => void;
  readonly signal?: AbortSignal;
}

export interface DownloadResult {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Parts taken from the journal of an earlier run. */
  readonly resumedParts: number;
  /** Parts fetched by this run. */
  readonly fetchedParts: number;
}

interface PartState {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  got: number;
  hash: Hash;
  done: boolean;
}

function diskError(error: unknown, what: string): DownloadError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  return new DownloadError('disk', `${what}: ${code} ${(error as Error | undefined)?.message ?? ''}`.trim(), { cause: error });
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base·2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30)));
}

/** SHA-256 of a local file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface JournalHeader {
  readonly v: 1;
  readonly size: number;
  readonly partSize: number;
  readonly sha256: string | null;
}

/** Reads the journal: the part→sha256 map when the header matches, else null (start over). */
async function readJournal(path: string, header: JournalHeader, nParts: number): Promise<Map<number, string> | null> {
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > MAX_JOURNAL_BYTES) return null;
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  let first: unknown;
  try {
    first = JSON.parse(lines[0] ?? '');
  } catch {
    return null;
  }
  const h = first as Partial<JournalHeader> | null;
  if (h?.v !== 1 || h.size !== header.size || h.partSize !== header.partSize || h.sha256 !== header.sha256) return null;
  const parts = new Map<number, string>();
  for (const line of lines.slice(1)) {
    if (!line) continue;
    let entry: { part?: unknown; sha256?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue; // a torn last line after a crash: that part is simply fetched again
    }
    if (typeof entry.part === 'number' && Number.isSafeInteger(entry.part) && entry.part >= 0 && entry.part < nParts && typeof entry.sha256 === 'string' && SHA256_HEX.test(entry.sha256)) {
      parts.set(entry.part, entry.sha256);
    }
  }
  return parts;
}

async function hashRegion(fh: FileHandle, start: number, length: number): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(length, 4 * 1024 * 1024) || 1);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, length - off), start + off);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  return h.digest('hex');
}

/** Yields the part's bytes: the streaming method when the store has one, else bounded `readRange`s. */
async function* rangeOf(store: ModelStore, ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
  if (store.openRange) {
    yield* store.openRange(ref, path, start, end, signal);
    return;
  }
  const step = Math.min(MAX_RANGE_BYTES, 8 * 1024 * 1024);
  for (let at = start; at <= end; at += step) yield await store.readRange(ref, path, at, Math.min(end, at + step - 1), signal);
}

export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { store, ref, file, dest } = options;
  const outer = options.signal ?? new AbortController().signal;
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  const stallRetries = options.stallRetries ?? DEFAULT_STALL_RETRIES;
  const partRetries = options.partRetries ?? DEFAULT_PART_RETRIES;
  const backoffBase = options.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const backoffMax = options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
  const progressInterval = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  const expected = options.expectedSha256 ?? file.sha256 ?? null;
  if (!Number.isSafeInteger(partSize) || partSize < 1 || partSize > MAX_RANGE_BYTES) throw new TypeError(`partSize must be 1..${MAX_RANGE_BYTES}`);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new TypeError('concurrency must be 1..64');
  if (!(stallMs > 0) || !Number.isSafeInteger(stallRetries) || stallRetries < 1) throw new TypeError('stallMs must be > 0 and stallRetries >= 1');
  if (expected !== null && !SHA256_HEX.test(expected)) throw new TypeError('expected sha256 must be 64 lowercase hex digits');
  if (!Number.isSafeInteger(file.size) || file.size < 0) throw new DownloadError('unavailable', `${file.path}: invalid size ${file.size}`);
  const size = file.size;
  const nParts = Math.ceil(size / partSize);
  if (nParts > MAX_PARTS) throw new TypeError(`${file.path} would need more than ${MAX_PARTS} parts; raise partSize`);
  const dataPath = `${dest}.download`;
  const journalPath = `${dataPath}.journal`;
  const header: JournalHeader = { v: 1, size, partSize, sha256: expected };
  if (outer.aborted) throw new DownloadError('aborted', `download of ${file.path} aborted`);

  // Open (or create) the data file; a journal is only trusted together with its data file.
  let fh: FileHandle;
  let journal: Map<number, string> | null = null;
  try {
    const existing = await stat(dataPath).catch(() => null);
    if (existing?.isFile() && existing.size === size) journal = await readJournal(journalPath, header, nParts);
    if (journal === null) {
      await rm(journalPath, { force: true });
      fh = await open(dataPath, 'w+');
      await fh.truncate(size);
      await appendFile(journalPath, `${JSON.stringify(header)}\n`);
    } else {
      fh = await open(dataPath, 'r+');
    }
  } catch (error) {
    throw diskError(error, `preparing ${dataPath}`);
  }

  try {
    const parts: PartState[] = [];
    for (let i = 0; i < nParts; i++) {
      const start = i * partSize;
      parts.push({ index: i, start, end: Math.min(size, start + partSize) - 1, got: 0, hash: createHash('sha256'), done: false });
    }
    // Verify what is resumed: a journaled part counts only if its bytes on disk still hash right.
    let resumedParts = 0;
    if (journal) {
      for (const p of parts) {
        const want = journal.get(p.index);
        if (want === undefined) continue;
        const have = await hashRegion(fh, p.start, p.end - p.start + 1).catch((e) => {
          throw diskError(e, `reading ${dataPath}`);
        });
        if (have === want) {
          p.done = true;
          p.got = p.end - p.start + 1;
          resumedParts++;
        }
      }
    }

    let bytesDone = parts.reduce((a, p) => a + p.got, 0);
    /** Bytes received from the store (the stall watchdog's measure; may run ahead of bytesDone). */
    let bytesSeen = bytesDone;
    let lastReport = { at: Date.now(), bytes: bytesDone };
    const report = (force: boolean) => {
      if (!options.onProgress) return;
      const now = Date.now();
      if (!force && now - lastReport.at < progressInterval) return;
      const dt = (now - lastReport.at) / 1000;
      const rate = dt > 0 ? (bytesDone - lastReport.bytes) / dt : 0;
      lastReport = { at: now, bytes: bytesDone };
      options.onProgress({ file: file.path, bytesDone, bytesTotal: size, bytesPerSecond: rate, etaSeconds: rate > 0 ? (size - bytesDone) / rate : null });
    };
    report(true);

    let fetchedParts = 0;
    const fetchPart = async (p: PartState, signal: AbortSignal): Promise<void> => {
      for (let retry = 0; ; retry++) {
        try {
          const length = p.end - p.start + 1;
          // A part fully received before an abort (but not yet journaled) needs no request.
          const pending = p.got < length ? rangeOf(store, ref, file.path, p.start + p.got, p.end, signal) : [];
          // Small network chunks are coalesced into larger positional writes (fewer syscalls);
          // the watchdog counts bytes as they arrive, progress counts them once written.
          const buffered: Uint8Array[] = [];
          let bufferedBytes = 0;
          let lastFlushAt = Date.now();
          const flush = async () => {
            lastFlushAt = Date.now();
            if (bufferedBytes === 0) return;
            const block = buffered.length === 1 ? (buffered[0] as Uint8Array) : Buffer.concat(buffered, bufferedBytes);
            buffered.length = 0;
            bufferedBytes = 0;
            let written = 0;
            while (written < block.byteLength) {
              const { bytesWritten } = await fh.write(block, written, block.byteLength - written, p.start + p.got + written).catch((e) => {
                throw diskError(e, `writing ${dataPath}`);
              });
              written += bytesWritten;
            }
            p.hash.update(block);
            p.got += block.byteLength;
            bytesDone += block.byteLength;
            report(false);
          };
          try {
            for await (const chunk of pending) {
              if (chunk.byteLength === 0) continue;
              if (p.got + bufferedBytes + chunk.byteLength > length) throw new ModelStoreError('unavailable', `${file.path}: store sent more bytes than requested`);
              buffered.push(chunk);
              bufferedBytes += chunk.byteLength;
              bytesSeen += chunk.byteLength;
              // Also flush at least once a second, so progress on a slow link stays visible.
              if (bufferedBytes >= WRITE_BLOCK_BYTES || Date.now() - lastFlushAt >= 1000) await flush();
            }
          } finally {
            // Keep what arrived before a failure: a retry continues after it.
            await flush();
          }
          if (p.got !== length) throw new ModelStoreError('unavailable', `${file.path}: part ${p.index} ended early`);
          await fh.datasync().catch((e) => {
            throw diskError(e, `flushing ${dataPath}`);
          });
          await appendFile(journalPath, `${JSON.stringify({ part: p.index, sha256: p.hash.digest('hex') })}\n`).catch((e) => {
            throw diskError(e, `writing ${journalPath}`);
          });
          p.done = true;
          fetchedParts++;
          return;
        } catch (error) {
          if (signal.aborted) throw error;
          if (error instanceof DownloadError) throw error;
          const e = error instanceof ModelStoreError ? error : new ModelStoreError('unavailable', String((error as Error)?.message ?? error));
          if (e.kind === 'not_found') throw new DownloadError('not_found', `${file.path}: ${e.message}`, { cause: e });
          if (e.kind !== 'unavailable') throw new DownloadError('unavailable', `${file.path}: ${e.message}`, { cause: e });
          if (retry >= partRetries) throw new DownloadError('unavailable', `${file.path}: part ${p.index} failed ${retry + 1} times: ${e.message}`, { cause: e });
          await abortableSleep(backoffDelay(retry, backoffBase, backoffMax), signal);
          if (signal.aborted) throw error;
        }
      }
    };

    /** One attempt: fetch every missing part with `concurrency` workers until done, failure or stall. */
    const runAttempt = async (): Promise<'done' | 'stalled'> => {
      const attempt = new AbortController();
      const signal = AbortSignal.any([outer, attempt.signal]);
      let lastBytes = bytesSeen;
      let lastGrowth = Date.now();
      let stalled = false;
      const check = setInterval(
        () => {
          if (bytesSeen !== lastBytes) {
            lastBytes = bytesSeen;
            lastGrowth = Date.now();
          } else if (Date.now() - lastGrowth >= stallMs) {
            stalled = true;
            attempt.abort(new Error(`no progress for ${stallMs} ms`));
          }
        },
        Math.max(10, Math.min(STALL_CHECK_INTERVAL_MS, Math.floor(stallMs / 4))),
      );
      const queue = parts.filter((p) => !p.done);
      let failure: unknown = null;
      const worker = async () => {
        for (;;) {
          if (failure !== null || signal.aborted) return;
          const p = queue.shift();
          if (!p) return;
          try {
            await fetchPart(p, signal);
          } catch (error) {
            if (failure === null) failure = error;
            attempt.abort(error);
            return;
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, queue.length)) }, worker));
      } finally {
        clearInterval(check);
      }
      if (outer.aborted) throw new DownloadError('aborted', `download of ${file.path} aborted`);
      if (stalled) return 'stalled';
      if (failure !== null) throw failure;
      return 'done';
    };

    let fruitless = 0;
    for (;;) {
      const before = bytesDone;
      const outcome = await runAttempt();
      if (outcome === 'done') break;
      // Parts keep what they already received; a restarted part continues from its last byte.
      fruitless = bytesDone > before ? 0 : fruitless + 1;
      if (fruitless >= stallRetries) {
        throw new DownloadError('stalled', `${file.path}: no progress for ${stallMs} ms in ${fruitless} consecutive attempts`);
      }
    }

    await fh.close().catch(() => {});
    const sha256 = await sha256File(dataPath).catch((e) => {
      throw diskError(e, `hashing ${dataPath}`);
    });
    if (expected !== null && sha256 !== expected) {
      await rm(dataPath, { force: true });
      await rm(journalPath, { force: true });
      throw new DownloadError('integrity', `${file.path}: downloaded bytes hash to sha256:${sha256}, expected sha256:${expected}`);
    }
    try {
      await rename(dataPath, dest);
      await rm(journalPath, { force: true });
    } catch (error) {
      throw diskError(error, `renaming ${dataPath}`);
    }
    report(true);
    return { path: dest, size, sha256, resumedParts, fetchedParts };
  } finally {
    await fh.close().catch(() => {});
  }
}

/** A typo must stop the start, not silently become the default (a 1200 s watchdog read as 180 s). */
function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n <= 0) throw new AlbedoError('CONFIG', `${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * The stall watchdog settings of a backend from the environment (spec/config.md):
 * `ALBEDO_DOWNLOAD_STALL_SECONDS` / `_RETRIES` (HF, 180 / 3) and
 * `ALBEDO_HIPPIUS_DOWNLOAD_STALL_SECONDS` / `_RETRIES` (Hippius, 1200 / 2). Invalid values are
 * CONFIG errors.
 */
export function stallSettingsFromEnv(backend: ModelRef['backend'], env: NodeJS.ProcessEnv = process.env): { stallMs: number; stallRetries: number } {
  const prefix = backend === 'hippius' ? 'ALBEDO_HIPPIUS_DOWNLOAD_STALL' : 'ALBEDO_DOWNLOAD_STALL';
  const seconds = positiveInt(`${prefix}_SECONDS`, env[`${prefix}_SECONDS`]);
  const retries = positiveInt(`${prefix}_RETRIES`, env[`${prefix}_RETRIES`]);
  const defaults = backend === 'hippius' ? { stallMs: DEFAULT_HIPPIUS_STALL_MS, stallRetries: DEFAULT_HIPPIUS_STALL_RETRIES } : { stallMs: DEFAULT_STALL_MS, stallRetries: DEFAULT_STALL_RETRIES };
  return { stallMs: seconds !== undefined ? seconds * 1000 : defaults.stallMs, stallRetries: retries ?? defaults.stallRetries };
}
