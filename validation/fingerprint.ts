import { createHash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { compareCodePoints, PyFloat, pyJsonDumps } from '../core/py-compat.ts';
import { createKernel, isKernelDtype, KERNEL_ITEM_SIZE, type KernelDtype } from './fingerprint-kernel.ts';
import { divergenceSampleIndices, fingerprintSampleIndices } from './fingerprint-sampling.ts';
import {
  DEFAULT_READ_CHUNK_BYTES,
  kernelBytesFor,
  MIN_READ_CHUNK_BYTES,
  processShard,
  readElement,
  type ShardJob,
  type ShardResult,
  type ShardTensorJob,
} from './fingerprint-shard.ts';
import {
  DIVERGENCE_CORPUS_SALT,
  DIVERGENCE_SAMPLES,
  type DivergenceSamples,
  FINGERPRINT_METHOD,
  FINGERPRINT_SAMPLES,
  type LayerFingerprint,
  type ModelFingerprint,
} from './fingerprint-types.ts';
import { runShardJobs, ShardJobsAborted } from './fingerprint-pool.ts';
import { DEFAULT_MAX_SAFETENSORS_HEADER_BYTES, readShardHeaderFile } from './safetensors.ts';

/**
 * The model fingerprint engine (spec/validation.md §8, §9.2): one pass over a model directory gives
 * the upstream `layer_norms_v2_with_samples` fingerprint, the weights hash and the divergence
 * samples. Parallelism: work units go to a pool of worker threads, largest first. A shard that
 * must be hashed is one unit, because its sha256 is computed over its bytes in order (real
 * checkpoints have many shards of similar size, so this balances); a shard whose sha256 is known
 * is cut into runs of whole tensors (see splitForBalance). Per-tensor results come back to this
 * thread, which applies "later shard wins" and sorts keys, so nothing depends on the thread count.
 */

/** Worker threads used by {@link fingerprintModel}. @default min(2, os.availableParallelism()) */
export const DEFAULT_FINGERPRINT_THREADS = Math.min(2, availableParallelism());
/** Interval between `onProgress` calls, in bytes (smaller models: 1/64 of the total). @default 64 MiB */
export const PROGRESS_STEP_BYTES = 64 * 1024 * 1024;
export { DEFAULT_READ_CHUNK_BYTES } from './fingerprint-shard.ts';
export { closeFingerprintWorkers } from './fingerprint-pool.ts';

export interface FingerprintOptions {
  /** Extra divergence salts besides DIVERGENCE_CORPUS_SALT (e.g. the commit block hash). @default [] */
  readonly salts?: readonly string[];
  /** Worker threads; 1 runs on the calling thread (async reads). @default DEFAULT_FINGERPRINT_THREADS */
  readonly threads?: number;
  /** Per-file sha256 already known (e.g. verified by the downloader): skips hashing those files. @default {} */
  readonly knownSha256?: Readonly<Record<string, string>>;
  /** ALBEDO_MAX_SAFETENSORS_HEADER_BYTES. @default DEFAULT_MAX_SAFETENSORS_HEADER_BYTES */
  readonly maxHeaderBytes?: number;
  readonly signal?: AbortSignal;
  /** Called with bytes processed so far / total tensor bytes (throttled, see PROGRESS_STEP_BYTES). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Bytes per read into the kernel memory (tests shrink it to exercise streaming). @default DEFAULT_READ_CHUNK_BYTES */
  readonly readChunkBytes?: number;
}

export type FingerprintErrorCode = 'io' | 'header' | 'non_finite' | 'aborted' | 'no_shards';

export class FingerprintError extends Error {
  override readonly name = 'FingerprintError';
  constructor(
    readonly code: FingerprintErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface ShardInfo {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly dataStart: number;
  readonly tensors: readonly { name: string; dtype: string; start: number; end: number }[];
}

/** A tensor in the fingerprint: the last float tensor of that name in shard order. */
interface Winner {
  readonly key: string;
  readonly shard: number;
  readonly dtype: KernelDtype;
  readonly fileStart: number;
  readonly n: number;
}

function ioError(what: string, err: unknown): FingerprintError {
  return new FingerprintError('io', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function abortError(): FingerprintError {
  return new FingerprintError('aborted', 'fingerprinting was aborted');
}

async function listShards(dir: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw ioError(`cannot list ${dir}`, err);
  }
  const names = entries.filter((e) => e.isFile() && e.name.endsWith('.safetensors')).map((e) => e.name);
  if (names.length === 0) throw new FingerprintError('no_shards', `no *.safetensors in ${dir}`);
  return names.sort(compareCodePoints);
}

/** §4.2 validation of one shard's header (defensive: the stage validated it before). */
async function readShard(dir: string, name: string, maxHeaderBytes: number): Promise<ShardInfo> {
  const path = join(dir, name);
  let header: Awaited<ReturnType<typeof readShardHeaderFile>>;
  try {
    header = await readShardHeaderFile(path, name, maxHeaderBytes);
  } catch (err) {
    throw ioError(`cannot read ${name}`, err);
  }
  if (!header.ok) throw new FingerprintError('header', header.message);
  const { fileSize, headerLength, tensors } = header.value;
  return { name, path, size: fileSize, dataStart: 8 + headerLength, tensors };
}

async function readShards(dir: string, maxHeaderBytes: number): Promise<ShardInfo[]> {
  const names = await listShards(dir);
  const out: ShardInfo[] = [];
  for (const name of names) out.push(await readShard(dir, name, maxHeaderBytes));
  return out;
}

/** §8 steps 1 and 5: float tensors only, the later shard wins; keys in code-point order. */
function pickWinners(shards: readonly ShardInfo[]): Winner[] {
  const byKey = new Map<string, Winner>();
  shards.forEach((shard, i) => {
    for (const t of shard.tensors) {
      if (!isKernelDtype(t.dtype)) continue;
      byKey.set(t.name, { key: t.name, shard: i, dtype: t.dtype, fileStart: shard.dataStart + t.start, n: (t.end - t.start) / KERNEL_ITEM_SIZE[t.dtype] });
    }
  });
  return [...byKey.values()].sort((a, b) => compareCodePoints(a.key, b.key));
}

function uniqueSalts(extra: readonly string[]): string[] {
  return [...new Set([DIVERGENCE_CORPUS_SALT, ...extra])];
}

async function runOnThisThread(jobs: readonly ShardJob[], readChunkBytes: number, onBytes: (n: number) => void, signal: AbortSignal | undefined): Promise<ShardResult[]> {
  const kernel = await createKernel(kernelBytesFor(readChunkBytes));
  const out: ShardResult[] = [];
  const checkStop = (): void => {
    if (signal?.aborted) throw abortError();
  };
  for (const job of jobs) {
    try {
      out.push(await processShard(kernel, job, { readChunkBytes, onBytes, checkStop }));
    } catch (err) {
      if (err instanceof FingerprintError) throw err;
      throw ioError(job.path, err);
    }
  }
  return out;
}

/** Pieces per thread a shard without hashing is cut into, so a few uneven shards still balance. */
const PIECES_PER_THREAD = 4;

/**
 * Shards whose sha256 is already known need not be read in order, so with several threads their
 * tensors are cut into contiguous runs (whole tensors, ≥ 4 read chunks each) that workers take
 * largest first: 3 shards on 2 threads, or one big shard, then use both cores. Hashed shards stay
 * whole (sha256 is sequential). Results are keyed by tensor id, so the split cannot change them.
 */
function splitForBalance(work: readonly { job: ShardJob; i: number }[], threads: number, readChunkBytes: number): { job: ShardJob; i: number }[] {
  if (threads <= 1) return [...work];
  const bytesOf = (t: ShardTensorJob): number => t.n * KERNEL_ITEM_SIZE[t.dtype];
  const total = work.reduce((a, w) => a + (w.job.hash ? 0 : w.job.tensors.reduce((b, t) => b + bytesOf(t), 0)), 0);
  const target = Math.max(4 * readChunkBytes, Math.ceil(total / (threads * PIECES_PER_THREAD)));
  const out: { job: ShardJob; i: number }[] = [];
  for (const w of work) {
    if (w.job.hash) {
      out.push(w);
      continue;
    }
    let piece: ShardTensorJob[] = [];
    let bytes = 0;
    for (const t of [...w.job.tensors].sort((a, b) => a.fileStart - b.fileStart)) {
      piece.push(t);
      bytes += bytesOf(t);
      if (bytes >= target) {
        out.push({ job: { ...w.job, tensors: piece }, i: w.i });
        piece = [];
        bytes = 0;
      }
    }
    if (piece.length > 0) out.push({ job: { ...w.job, tensors: piece }, i: w.i });
  }
  return out;
}

/**
 * §8 fingerprint + weights hash + §9.2 divergence samples of the model in `dir`, in one pass.
 * Throws {@link FingerprintError}.
 */
export async function fingerprintModel(dir: string, options: FingerprintOptions = {}): Promise<ModelFingerprint> {
  const { signal } = options;
  if (signal?.aborted) throw abortError();
  const readChunkBytes = Math.max(MIN_READ_CHUNK_BYTES, Math.floor((options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES) / 64) * 64);
  const shards = await readShards(dir, options.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES);
  const winners = pickWinners(shards);
  const salts = uniqueSalts(options.salts ?? []);
  const perSample = FINGERPRINT_SAMPLES + salts.length * DIVERGENCE_SAMPLES;
  const known = options.knownSha256 ?? {};

  const jobTensors: ShardTensorJob[][] = shards.map(() => []);
  for (const [id, w] of winners.entries()) {
    const sampleIndices = new Float64Array(perSample);
    sampleIndices.set(fingerprintSampleIndices(w.key, w.n), 0);
    for (const [k, salt] of salts.entries()) sampleIndices.set(divergenceSampleIndices(w.key, salt, w.n), FINGERPRINT_SAMPLES + k * DIVERGENCE_SAMPLES);
    jobTensors[w.shard]?.push({ id, dtype: w.dtype, fileStart: w.fileStart, n: w.n, sampleIndices });
  }
  const jobs: ShardJob[] = shards.map((s, i) => ({ path: s.path, fileSize: s.size, hash: !Object.hasOwn(known, s.name), tensors: jobTensors[i] ?? [] }));
  const requested = Math.max(1, options.threads ?? DEFAULT_FINGERPRINT_THREADS);
  const work = splitForBalance(
    jobs.map((job, i) => ({ job, i })).filter(({ job }) => job.hash || job.tensors.length > 0),
    requested,
    readChunkBytes,
  );

  const totalBytes = winners.reduce((a, w) => a + w.n * KERNEL_ITEM_SIZE[w.dtype], 0);
  let done = 0;
  let reported = 0;
  const step = Math.min(PROGRESS_STEP_BYTES, Math.ceil(totalBytes / 64));
  const onBytes = (n: number): void => {
    done += n;
    if (options.onProgress && (done - reported >= step || done === totalBytes)) {
      reported = done;
      options.onProgress(done, totalBytes);
    }
  };
  const threads = Math.min(requested, work.length);
  const results =
    threads === 1
      ? await runOnThisThread(
          work.map((w) => w.job),
          readChunkBytes,
          onBytes,
          signal,
        )
      : await runShardJobs(
          work.map((w) => w.job),
          threads,
          readChunkBytes,
          onBytes,
          signal,
        ).catch((err: unknown) => {
          throw err instanceof ShardJobsAborted ? abortError() : ioError('fingerprint worker failed', err);
        });
  if (signal?.aborted) throw abortError();

  const fileSha256: Record<string, string> = {};
  const norms = new Float64Array(winners.length);
  const samples: Float32Array[] = new Array(winners.length);
  for (const shard of shards) if (Object.hasOwn(known, shard.name)) fileSha256[shard.name] = (known[shard.name] as string).toLowerCase();
  work.forEach(({ i }, k) => {
    const r = results[k] as ShardResult;
    const shard = shards[i] as ShardInfo;
    if (r.sha256 !== null) fileSha256[shard.name] = r.sha256;
    for (const t of r.tensors) {
      norms[t.id] = Math.sqrt(t.sumSquares);
      samples[t.id] = t.samples;
    }
  });
  winners.forEach((w, id) => {
    if (!Number.isFinite(norms[id])) throw new FingerprintError('non_finite', `tensor ${w.key} in ${shards[w.shard]?.name} has a non-finite norm (${norms[id]})`);
  });
  const weightsHash = createHash('sha256')
    .update(
      Object.values(fileSha256)
        .sort(compareCodePoints)
        .join('\n'),
    )
    .digest('hex');

  const keys = winners.map((w) => w.key);
  const fingerprint: LayerFingerprint = {
    method: FINGERPRINT_METHOD,
    layer_keys: keys,
    norm_vector: Array.from(norms),
    tensor_samples: samples.map((s) => Array.from(s.subarray(0, FINGERPRINT_SAMPLES))),
  };
  const divergence: DivergenceSamples[] = salts.map((salt, k) => {
    const values = new Float32Array(keys.length * DIVERGENCE_SAMPLES);
    const from = FINGERPRINT_SAMPLES + k * DIVERGENCE_SAMPLES;
    for (const [row, s] of samples.entries()) values.set(s.subarray(from, from + DIVERGENCE_SAMPLES), row * DIVERGENCE_SAMPLES);
    return { salt, keys, values };
  });
  return { fingerprint, weightsHash, fileSha256, samples: divergence, nTensors: keys.length, bytes: totalBytes };
}

/** Reads spanning pages closer than this are merged into one pread. */
const SAMPLE_READ_MERGE_GAP = 64 * 1024;
const PAGE = 4096;

/**
 * Divergence samples of the model in `dir` under `salt`, reading only the pages that hold them
 * (pread), for kings/genesis on local disk. Equals the `salt` entry of `fingerprintModel(dir, {salts: [salt]})`.
 */
export async function sampleModelWeights(dir: string, salt: string, options: { signal?: AbortSignal; maxHeaderBytes?: number } = {}): Promise<DivergenceSamples> {
  const { signal } = options;
  if (signal?.aborted) throw abortError();
  const shards = await readShards(dir, options.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES);
  const winners = pickWinners(shards);
  const values = new Float32Array(winners.length * DIVERGENCE_SAMPLES);
  const wanted: { offset: number; dtype: KernelDtype; dest: number }[][] = shards.map(() => []);
  for (const [row, w] of winners.entries()) {
    if (w.n === 0) continue;
    const idx = divergenceSampleIndices(w.key, salt, w.n);
    for (const [j, element] of idx.entries()) wanted[w.shard]?.push({ offset: w.fileStart + element * KERNEL_ITEM_SIZE[w.dtype], dtype: w.dtype, dest: row * DIVERGENCE_SAMPLES + j });
  }
  for (const [s, reads] of wanted.entries()) {
    if (reads.length === 0) continue;
    reads.sort((a, b) => a.offset - b.offset);
    const shard = shards[s] as ShardInfo;
    let fh: import('node:fs/promises').FileHandle;
    try {
      fh = await open(shard.path, 'r');
    } catch (err) {
      throw ioError(`cannot open ${shard.name}`, err);
    }
    try {
      let i = 0;
      while (i < reads.length) {
        if (signal?.aborted) throw abortError();
        const first = reads[i] as (typeof reads)[number];
        const runStart = Math.floor(first.offset / PAGE) * PAGE;
        let j = i;
        let runEnd = first.offset + 8;
        while (j + 1 < reads.length && (reads[j + 1]?.offset as number) - runEnd < SAMPLE_READ_MERGE_GAP) runEnd = (reads[++j]?.offset as number) + 8;
        runEnd = Math.min(shard.size, Math.ceil(runEnd / PAGE) * PAGE);
        const buf = Buffer.alloc(runEnd - runStart);
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, runStart + got);
          if (bytesRead === 0) throw new FingerprintError('io', `${shard.name}: unexpected end of file`);
          got += bytesRead;
        }
        const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        for (; i <= j; i++) {
          const r = reads[i] as (typeof reads)[number];
          values[r.dest] = readElement(view, r.offset - runStart, r.dtype);
        }
      }
    } catch (err) {
      if (err instanceof FingerprintError) throw err;
      throw ioError(`cannot read ${shard.name}`, err);
    } finally {
      await fh.close();
    }
  }
  return { salt, keys: winners.map((w) => w.key), values };
}

/**
 * The fingerprint exactly as Python `json.dumps(fp)` writes it: insertion key order (method,
 * layer_keys, norm_vector, tensor_samples), `", "`/`": "` separators, float reprs (`2.0`, `1e-07`).
 */
export function fingerprintJson(fp: LayerFingerprint): string {
  const floats = (xs: readonly number[]): PyFloat[] => xs.map((x) => new PyFloat(x));
  return (
    `{"method": ${pyJsonDumps(fp.method)}, "layer_keys": ${pyJsonDumps(fp.layer_keys)}, ` +
    `"norm_vector": ${pyJsonDumps(floats(fp.norm_vector))}, "tensor_samples": ${pyJsonDumps(fp.tensor_samples.map(floats))}}`
  );
}
