/**
 * The int8 scoring kernel of the dedup kNN (vector-search.ts) and the chunk loop that the calling
 * thread and its helper thread (scan-helper.ts) share.
 */
import wabtInit from 'wabt';

/** Row lengths are padded to this many int8 values (the kernel's unrolled step). */
export const LANE_BLOCK = 32;
/** Bytes before each row's int8 values: a·r (f64), row scale (f32), anchor (i32, −1 = removed). */
export const ROW_HEADER = 16;
export const INT8_MAX = 127;
/** 64 KiB WASM pages; 65,536 of them are the 4 GiB limit of a 32-bit memory. */
export const PAGE = 65536;
export const MAX_PAGES = 65536;

/**
 * WAT for `acc += Σ row[k..k+32)·query[k..k+32)`: 32 int8 values (four 8-lane loads, sign-extended to
 * int16) against 32 int16 values, summed pairwise into i32 lanes by `i32x4.dot_i16x8_s`.
 */
function accumulate32(acc: string, row: string, query: string): string {
  const lines = [
    `(local.set $r (i32.add (local.get ${row}) (local.get $k)))`,
    `(local.set $q (i32.add (local.get ${query}) (i32.shl (local.get $k) (i32.const 1))))`,
  ];
  for (const part of [0, 1, 2, 3]) {
    const rowAt = part ? ` offset=${part * 8}` : '';
    const queryAt = part ? ` offset=${part * 16}` : '';
    lines.push(`(local.set ${acc} (i32x4.add (local.get ${acc}) (i32x4.dot_i16x8_s (v128.load8x8_s${rowAt} (local.get $r)) (v128.load${queryAt} (local.get $q)))))`);
  }
  return lines.map((line) => `      ${line}`).join('\n');
}

const KERNEL_WAT = `(module
  (import "env" "mem" (memory 1 65536 shared))
  (func $hsum (param $v v128) (result f64)
    (f64.add
      (f64.add (f64.convert_i32_s (i32x4.extract_lane 0 (local.get $v))) (f64.convert_i32_s (i32x4.extract_lane 1 (local.get $v))))
      (f64.add (f64.convert_i32_s (i32x4.extract_lane 2 (local.get $v))) (f64.convert_i32_s (i32x4.extract_lane 3 (local.get $v))))))
  ;; (Σ ra[i]·qa[i], Σ rb[i]·qb[i]) for i < $len (a multiple of 32): int8 rows, int16 queries, one i32x4
  ;; accumulator per row (an integer add has one cycle of latency, so more would not help). Two rows
  ;; at once: two independent memory streams keep more cache misses in flight (scattered 3 KB rows:
  ;; 1.44 ms for 4,096 consecutive rows vs 3.0 ms at stride 8, one row at a time). The caller bounds
  ;; |q| so that len/4 products of 127·|q| fit an i32 lane.
  (func $dot2 (param $qa i32) (param $qb i32) (param $ra i32) (param $rb i32) (param $len i32) (result f64 f64)
    (local $k i32) (local $q i32) (local $r i32)
    (local $a0 v128) (local $b0 v128)
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $k) (local.get $len)))
${accumulate32('$a0', '$ra', '$qa')}
${accumulate32('$b0', '$rb', '$qb')}
      (local.set $k (i32.add (local.get $k) (i32.const 32)))
      (br $cols)))
    (call $hsum (local.get $a0))
    (call $hsum (local.get $b0)))
  ;; Address of the j-th row: row j itself when $indexed is 0 (the scan), else row slots[j] (the re-check).
  (func $rowAt (param $rows i32) (param $stride i32) (param $indexed i32) (param $slots i32) (param $j i32) (result i32)
    (i32.add (local.get $rows) (i32.mul (local.get $stride)
      (if (result i32) (local.get $indexed)
        (then (i32.load (i32.add (local.get $slots) (i32.shl (local.get $j) (i32.const 2)))))
        (else (local.get $j))))))
  ;; The query of the row's anchor (anchor 0 for a removed row, whose score is discarded).
  (func $queryOf (param $queries i32) (param $len i32) (param $row i32) (result i32)
    (local $g i32)
    (local.set $g (i32.load offset=12 (local.get $row)))
    (i32.add (local.get $queries) (i32.mul
      (select (local.get $g) (i32.const 0) (i32.ge_s (local.get $g) (i32.const 0)))
      (i32.shl (local.get $len) (i32.const 1)))))
  ;; β[g]·(1 + a·r) + rowScale·queryScale[g]·dot; −∞ for a removed row (anchor −1).
  (func $finish (param $frame i32) (param $row i32) (param $dot f64) (result f64)
    (local $g i32) (local $f i32)
    (local.set $g (i32.load offset=12 (local.get $row)))
    (if (result f64) (i32.lt_s (local.get $g) (i32.const 0))
      (then (f64.const -inf))
      (else
        (local.set $f (i32.add (local.get $frame) (i32.shl (local.get $g) (i32.const 4))))
        (f64.add
          (f64.mul (f64.load (local.get $f)) (f64.add (f64.const 1) (f64.load (local.get $row))))
          (f64.mul (f64.mul (f64.promote_f32 (f32.load offset=8 (local.get $row))) (f64.load offset=8 (local.get $f))) (local.get $dot))))))
  ;; out[j] = approximate cosine of the j-th row (see $rowAt), for j < $count, two rows per pass.
  (func (export "score") (param $frame i32) (param $queries i32) (param $rows i32) (param $stride i32) (param $len i32)
                         (param $indexed i32) (param $slots i32) (param $count i32) (param $out i32)
    (local $j i32) (local $ra i32) (local $rb i32) (local $da f64) (local $db f64)
    (block $done (loop $items
      (br_if $done (i32.ge_u (local.get $j) (local.get $count)))
      (local.set $ra (call $rowAt (local.get $rows) (local.get $stride) (local.get $indexed) (local.get $slots) (local.get $j)))
      ;; An odd last row is paired with itself.
      (local.set $rb (if (result i32) (i32.lt_u (i32.add (local.get $j) (i32.const 1)) (local.get $count))
        (then (call $rowAt (local.get $rows) (local.get $stride) (local.get $indexed) (local.get $slots) (i32.add (local.get $j) (i32.const 1))))
        (else (local.get $ra))))
      (call $dot2
        (call $queryOf (local.get $queries) (local.get $len) (local.get $ra))
        (call $queryOf (local.get $queries) (local.get $len) (local.get $rb))
        (i32.add (local.get $ra) (i32.const 16)) (i32.add (local.get $rb) (i32.const 16)) (local.get $len))
      (local.set $db)
      (local.set $da)
      (f64.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3))) (call $finish (local.get $frame) (local.get $ra) (local.get $da)))
      (if (i32.lt_u (i32.add (local.get $j) (i32.const 1)) (local.get $count))
        (then (f64.store offset=8 (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3)))
          (call $finish (local.get $frame) (local.get $rb) (local.get $db)))))
      (local.set $j (i32.add (local.get $j) (i32.const 2)))
      (br $items))))
)`;

let kernelModule: Promise<WebAssembly.Module> | undefined;
export function compileKernel(): Promise<WebAssembly.Module> {
  kernelModule ??= (async () => {
    const wabt = await wabtInit();
    const parsed = wabt.parseWat('dedup-int8.wat', KERNEL_WAT, { simd: true, multi_value: true, threads: true });
    try {
      const { buffer } = parsed.toBinary({});
      return await WebAssembly.compile(new Uint8Array(buffer) as Uint8Array<ArrayBuffer>);
    } finally {
      parsed.destroy();
    }
  })();
  return kernelModule;
}

/**
 * A memory the kernel can run on from several threads: shared, so the helper thread's instance reads
 * the same rows (its maximum, 4 GiB, is only reserved address space).
 */
export function kernelMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
}

export type ScoreKernel = (
  frame: number,
  queries: number,
  rows: number,
  stride: number,
  len: number,
  indexed: number,
  slots: number,
  count: number,
  out: number,
) => void;

export function scoreKernel(module: WebAssembly.Module, memory: WebAssembly.Memory): ScoreKernel {
  return new WebAssembly.Instance(module, { env: { mem: memory } }).exports.score as ScoreKernel;
}

/**
 * Largest int16 query magnitude for rows of `len` int8 values: each i32 lane of the kernel sums
 * len/4 products of at most 127·|q|, which must stay below 2³¹ (for len 3,008 that is 22,485; for
 * the 256-value sketch the full int16 range).
 */
export function queryRange(len: number): number {
  return Math.min(32767, Math.floor((2 ** 31 - 1) / (INT8_MAX * Math.ceil(len / 4))));
}

/** Rounds `values` to integers of magnitude ≤ `range` into `out`; returns the scale (0 for a zero vector). */
export function quantize(values: ArrayLike<number>, range: number, out: Int8Array | Int16Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  out.fill(0);
  if (max === 0 || !Number.isFinite(max)) return 0;
  const scale = max / range;
  for (let i = 0; i < values.length; i++) out[i] = Math.max(-range, Math.min(range, Math.round(values[i]! / scale)));
  return scale;
}

/** One call of the kernel's `score`, split into chunks of `chunk` items. Addresses are byte offsets. */
export interface ScoreJob {
  /** Which memory (and kernel instance): 0 = sketches, 1 = residuals. */
  readonly store: number;
  readonly frame: number;
  readonly queries: number;
  readonly rows: number;
  readonly stride: number;
  readonly len: number;
  /** 0: rows 0…total−1 (the scan); 1: the rows listed at `slots` (the re-check). */
  readonly indexed: number;
  readonly slots: number;
  readonly total: number;
  readonly chunk: number;
  readonly out: number;
}

/**
 * The shared job protocol (scan-helper.ts explains it). Each job runs in one of {@link JOB_BANKS}
 * banks — a state word, a cursor, the parameters and done flags here, and output and slot buffers
 * chosen by the caller — and never in a bank the helper thread is still inside.
 */
export const JOB_BANKS = 4;
export const CTRL = {
  /** Job number, bumped (and notified) by the caller for every job. */
  SEQ: 0,
  /** 1: the helper thread must exit. */
  STOP: 1,
  /** Chunks the helper thread has run (all jobs; statistics and tests). */
  HELPER_CHUNKS: 2,
  /** First word of bank 0's block; the other banks' blocks follow it. */
  BLOCKS: 3,
} as const;
/** Within a bank block: the job's state (3·seq open, 3·seq + 1 helper inside, 3·seq + 2 closed). */
export const STATE = 0;
/** Within a bank block: the next chunk to claim (Atomics.add). */
export const CURSOR = 1;
const JOB = 2;
const JOB_FIELDS = ['store', 'frame', 'queries', 'rows', 'stride', 'len', 'indexed', 'slots', 'total', 'chunk', 'out'] as const;
const BLOCK_WORDS = JOB + JOB_FIELDS.length;
export const CTRL_WORDS = CTRL.BLOCKS + JOB_BANKS * BLOCK_WORDS;
/** Chunks per job at most (a bigger job gets bigger chunks); sizes the done flags. */
export const MAX_CHUNKS = 1024;

/** Index in the control words of `word` of bank `bank`'s block. */
export function blockWord(bank: number, word: number): number {
  return CTRL.BLOCKS + bank * BLOCK_WORDS + word;
}

export function writeJob(ctrl: Int32Array, bank: number, job: ScoreJob): void {
  JOB_FIELDS.forEach((field, i) => {
    Atomics.store(ctrl, blockWord(bank, JOB + i), job[field] | 0);
  });
}

export function readJob(ctrl: Int32Array, bank: number): ScoreJob {
  const job: Record<string, number> = {};
  JOB_FIELDS.forEach((field, i) => {
    job[field] = Atomics.load(ctrl, blockWord(bank, JOB + i)) >>> 0;
  });
  return job as unknown as ScoreJob;
}

/** Scores chunk `c` of `job` (`count` ≤ chunk items from item c·chunk). */
function runChunk(kernels: readonly ScoreKernel[], job: ScoreJob, c: number): void {
  const score = kernels[job.store]!;
  const first = c * job.chunk;
  const count = Math.min(job.chunk, job.total - first);
  const out = job.out + first * 8;
  if (job.indexed) score(job.frame, job.queries, job.rows, job.stride, job.len, 1, job.slots + first * 4, count, out);
  else score(job.frame, job.queries, job.rows + first * job.stride, job.stride, job.len, 0, 0, count, out);
}

/**
 * Claims chunks of job `seq` (parameters `job`, in block `bank`) until none are left, scores them
 * and stamps each one's done flag with `seq`; returns how many it ran. Both threads run this; the
 * kernel is deterministic, so the result does not depend on who ran which chunk (or whether two did).
 */
export function runChunks(ctrl: Int32Array, done: Int32Array, seq: number, bank: number, job: ScoreJob, kernels: readonly ScoreKernel[]): number {
  const chunks = Math.ceil(job.total / job.chunk);
  for (let ran = 0; ; ran++) {
    const c = Atomics.add(ctrl, blockWord(bank, CURSOR), 1);
    if (c >= chunks) return ran;
    runChunk(kernels, job, c);
    Atomics.store(done, bank * MAX_CHUNKS + c, seq);
  }
}

/** Scores every chunk of job `seq` whose done flag is not stamped `seq` yet; returns how many. */
export function runUnfinished(done: Int32Array, seq: number, bank: number, job: ScoreJob, kernels: readonly ScoreKernel[]): number {
  const chunks = Math.ceil(job.total / job.chunk);
  let ran = 0;
  for (let c = 0; c < chunks; c++) {
    if (Atomics.load(done, bank * MAX_CHUNKS + c) === seq) continue;
    runChunk(kernels, job, c);
    Atomics.store(done, bank * MAX_CHUNKS + c, seq);
    ran++;
  }
  return ran;
}
