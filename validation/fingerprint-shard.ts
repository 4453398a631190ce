import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { type Kernel, KERNEL_ITEM_SIZE, type KernelDtype } from './fingerprint-kernel.ts';
import { combinePairwiseLeaves, pairwiseLeaves } from './pairwise.ts';

/**
 * One shard's pass of the fingerprint engine, identical in a worker thread and on the main thread:
 * stream the file through the kernel memory in fixed chunks, hash it (unless its sha256 is already
 * known), sum each tensor's squares leaf by leaf along NumPy's pairwise tree and pick the sampled
 * values while their bytes are in memory. Memory is bounded by the kernel memory (carry + chunk).
 *
 * Memory layout: `[carry area: leafBytes][read area: readChunkBytes]`. Reads always land at
 * `leafBytes` (a multiple of 64 KiB in production, so page-aligned); a leaf cut by the end of a chunk
 * is moved just below the read area, so it is contiguous with the next chunk.
 */

/** Bytes read per `pread` into the kernel memory. @default 32 MiB */
export const DEFAULT_READ_CHUNK_BYTES = 32 * 1024 * 1024;
/** Smallest chunk allowed (tests use it to force many leaves and carries). */
export const MIN_READ_CHUNK_BYTES = 2048;

/** The largest leaf (subtree summed in one kernel call): an eighth of the chunk so a carry wastes little. */
export function leafBytesFor(readChunkBytes: number): number {
  return Math.max(1024, Math.floor(readChunkBytes / 8 / 64) * 64);
}

/** Kernel memory needed for a chunk size. */
export function kernelBytesFor(readChunkBytes: number): number {
  return leafBytesFor(readChunkBytes) + readChunkBytes;
}

export interface ShardTensorJob {
  /** Caller's id, echoed in the result. */
  readonly id: number;
  readonly dtype: KernelDtype;
  /** Absolute file offset of the tensor's first byte. */
  readonly fileStart: number;
  readonly n: number;
  /** Element indices to sample (values returned in the same order). */
  readonly sampleIndices: Float64Array;
}

export interface ShardJob {
  readonly path: string;
  readonly fileSize: number;
  /** Compute the file's sha256 (then every byte is read, in order). */
  readonly hash: boolean;
  /** Tensors to sum, any order. */
  readonly tensors: readonly ShardTensorJob[];
}

export interface ShardTensorResult {
  readonly id: number;
  readonly sumSquares: number;
  readonly samples: Float32Array;
}

export interface ShardResult {
  readonly sha256: string | null;
  readonly tensors: readonly ShardTensorResult[];
}

export interface ShardRunOptions {
  readonly readChunkBytes: number;
  /** Called after each chunk with the tensor bytes summed in it. */
  readonly onBytes?: (bytes: number) => void;
  /** Polled before each read; a thrown error stops the pass. */
  readonly checkStop?: () => void;
}

/** Thrown when the file is shorter than its header said (truncated or rewritten meanwhile). */
export class ShardIoError extends Error {}

interface TensorState {
  readonly job: ShardTensorJob;
  readonly item: number;
  readonly maxLeafElements: number;
  readonly leafSums: number[];
  readonly samples: Float32Array;
  /** Positions into `sampleIndices`, sorted by element index. */
  readonly order: Uint32Array;
  next: number;
}

interface Leaf {
  readonly tensor: TensorState;
  readonly start: number;
  readonly count: number;
  readonly byteStart: number;
  readonly byteEnd: number;
}

const F16_SCRATCH = new DataView(new ArrayBuffer(4));

/** IEEE half bits → float32 value (exact). */
export function f16ToNumber(h: number): number {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The float32 value (as a double) of the element of `dtype` at `offset` in `view`. */
export function readElement(view: DataView, offset: number, dtype: KernelDtype): number {
  switch (dtype) {
    case 'BF16':
      F16_SCRATCH.setUint32(0, view.getUint16(offset, true) << 16, true);
      return F16_SCRATCH.getFloat32(0, true);
    case 'F16':
      return f16ToNumber(view.getUint16(offset, true));
    case 'F32':
      return view.getFloat32(offset, true);
    case 'F64':
      return Math.fround(view.getFloat64(offset, true));
  }
}

async function readFully(fh: FileHandle, into: Uint8Array, at: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, at + done, length - done, position + done);
    if (bytesRead === 0) throw new ShardIoError(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

function planLeaves(tensors: readonly ShardTensorJob[], leafBytes: number): { states: TensorState[]; leaves: Leaf[] } {
  const states: TensorState[] = [];
  const leaves: Leaf[] = [];
  for (const job of [...tensors].sort((a, b) => a.fileStart - b.fileStart)) {
    const item = KERNEL_ITEM_SIZE[job.dtype];
    const idx = job.sampleIndices;
    const order = Uint32Array.from(idx.keys()).sort((a, b) => (idx[a] as number) - (idx[b] as number));
    const state: TensorState = {
      job,
      item,
      maxLeafElements: Math.floor(leafBytes / item),
      leafSums: [],
      samples: new Float32Array(idx.length),
      order,
      next: 0,
    };
    states.push(state);
    for (const leaf of pairwiseLeaves(job.n, state.maxLeafElements)) {
      const byteStart = job.fileStart + leaf.start * item;
      leaves.push({ tensor: state, start: leaf.start, count: leaf.count, byteStart, byteEnd: byteStart + leaf.count * item });
    }
  }
  return { states, leaves };
}

/** Streams one shard through `kernel` (whose memory must hold {@link kernelBytesFor}(readChunkBytes)). */
export async function processShard(kernel: Kernel, job: ShardJob, options: ShardRunOptions): Promise<ShardResult> {
  const chunk = options.readChunkBytes;
  const carry = leafBytesFor(chunk);
  if (kernel.bytes.byteLength < carry + chunk) throw new RangeError('kernel memory is smaller than carry + chunk');
  const { states, leaves } = planLeaves(job.tensors, carry);
  const bytes = kernel.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hash = job.hash ? createHash('sha256') : null;
  const lastLeaf = leaves[leaves.length - 1];
  const end = hash ? job.fileSize : lastLeaf ? lastLeaf.byteEnd : 0;

  const fh = await open(job.path, 'r');
  try {
    let pos = hash ? 0 : (leaves[0]?.byteStart ?? 0);
    let carried = 0;
    let li = 0;
    while (pos < end) {
      options.checkStop?.();
      const next = leaves[li];
      // Without hashing, the bytes of skipped tensors (and of the header) need not be read at all.
      if (!hash && carried === 0 && next && next.byteStart > pos) pos = next.byteStart;
      const length = Math.min(chunk, end - pos);
      await readFully(fh, bytes, carry, length, pos);
      hash?.update(bytes.subarray(carry, carry + length));
      const readPos = pos;
      const windowEnd = pos + length;
      let summed = 0;
      for (let leaf = leaves[li]; leaf && leaf.byteEnd <= windowEnd; leaf = leaves[++li]) {
        const ptr = carry + leaf.byteStart - readPos;
        const t = leaf.tensor;
        t.leafSums.push(kernel.sumSquares(t.job.dtype, ptr, leaf.count));
        const leafEndElement = leaf.start + leaf.count;
        const idx = t.job.sampleIndices;
        while (t.next < t.order.length) {
          const which = t.order[t.next] as number;
          const element = idx[which] as number;
          if (element >= leafEndElement) break;
          t.samples[which] = readElement(view, ptr + (element - leaf.start) * t.item, t.job.dtype);
          t.next++;
        }
        summed += leaf.byteEnd - leaf.byteStart;
      }
      pos = windowEnd;
      const pending = leaves[li];
      if (pending && pending.byteStart < pos) {
        carried = pos - pending.byteStart;
        bytes.copyWithin(carry - carried, carry + pending.byteStart - readPos, carry + length);
      } else {
        carried = 0;
      }
      if (summed > 0) options.onBytes?.(summed);
    }
    if (li !== leaves.length) throw new ShardIoError(`tensor data ends beyond byte ${end}`);
  } finally {
    await fh.close();
  }
  return {
    sha256: hash ? hash.digest('hex') : null,
    tensors: states.map((s) => ({ id: s.job.id, sumSquares: combinePairwiseLeaves(s.job.n, s.maxLeafElements, s.leafSums), samples: s.samples })),
  };
}
