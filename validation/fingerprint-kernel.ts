/**
 * The WASM SIMD kernel of the fingerprint engine (spec/validation.md §8 step 2): sums of squares in
 * NumPy's pairwise order (spec/compat.md §4) over BF16/F16/F32/F64 spans that sit in the kernel's
 * own `WebAssembly.Memory`. Files are read straight into that memory (page-aligned, so the kernel's
 * page-cache copy runs at ~9–10 GB/s instead of ~2.5 GB/s into a Node Buffer; MACHINE-NOTES.md).
 *
 * The WAT text is generated per dtype from two snippets: `load8` widens eight elements at `$p` to
 * four f64x2 pairs (x0,x1) (x2,x3) (x4,x5) (x6,x7) and accumulates their squares into `$a0..$a3`,
 * which therefore hold NumPy's r[0..7] as (r0,r1) (r2,r3) (r4,r5) (r6,r7); `scalar` is one element
 * as an f64. Every element is first brought to its float32 value (F64 through `demote`, i.e.
 * `Math.fround`), then widened to f64 where its square is exact, so only the summation order
 * matters and that order is NumPy's.
 */

/** Size of one WebAssembly page. */
const WASM_PAGE_BYTES = 65_536;

/** The element types the kernel sums; other dtypes are not in the fingerprint. */
export type KernelDtype = 'BF16' | 'F16' | 'F32' | 'F64';

export const KERNEL_ITEM_SIZE: Readonly<Record<KernelDtype, number>> = { BF16: 2, F16: 2, F32: 4, F64: 8 };

export function isKernelDtype(dtype: string): dtype is KernelDtype {
  return dtype === 'BF16' || dtype === 'F16' || dtype === 'F32' || dtype === 'F64';
}

interface DtypeCode {
  readonly size: number;
  /** Adds the squares of the 8 elements at `$p` into `$a0..$a3` (uses `$v $lo $hi`). */
  readonly load8: string;
  /** One element at `$p`, as an f64 holding its float32 value. */
  readonly scalar: string;
}

const sq = (x: string): string => `(local.set $t ${x}) (f64x2.mul (local.get $t) (local.get $t))`;
const acc = (a: string, pair: string): string => `(local.set ${a} (f64x2.add (local.get ${a}) (block (result v128) ${sq(pair)})))`;
/** Moves f32 lanes 2,3 down to lanes 0,1 so `promote_low` can widen them. */
const highPair = (v: string): string => `(i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 ${v} ${v})`;
const fourPairs = (lo: string, hi: string): string =>
  [
    acc('$a0', `(f64x2.promote_low_f32x4 ${lo})`),
    acc('$a1', `(f64x2.promote_low_f32x4 ${highPair(lo)})`),
    acc('$a2', `(f64x2.promote_low_f32x4 ${hi})`),
    acc('$a3', `(f64x2.promote_low_f32x4 ${highPair(hi)})`),
  ].join('\n');

/** f16 magnitude bits (i32 lanes) → f32 lanes: `m << 13` scaled by 2^112, with exponent 31 forced to inf/NaN. */
const f16Lanes = (m: string): string => `(f32x4.mul
  (v128.or (i32x4.shl ${m} (i32.const 13))
           (v128.and (i32x4.gt_s ${m} (v128.const i32x4 0x7bff 0x7bff 0x7bff 0x7bff)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
  (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))`;

const DTYPES: Readonly<Record<KernelDtype, DtypeCode>> = {
  BF16: {
    size: 2,
    load8: `(local.set $v (v128.load align=1 (local.get $p)))
      ;; Interleaving zero words below each bf16 word is its f32 bit pattern (u16 << 16) in one
      ;; punpcklwd / punpckhwd each, instead of a widen plus a shift.
      (local.set $lo (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (v128.const i64x2 0 0) (local.get $v)))
      (local.set $hi (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (v128.const i64x2 0 0) (local.get $v)))
      ${fourPairs('(local.get $lo)', '(local.get $hi)')}`,
    scalar: '(f64.promote_f32 (f32.reinterpret_i32 (i32.shl (i32.load16_u align=1 (local.get $p)) (i32.const 16))))',
  },
  F16: {
    size: 2,
    load8: `(local.set $v (v128.and (v128.load align=1 (local.get $p)) (v128.const i16x8 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff)))
      (local.set $lo ${f16Lanes('(i32x4.extend_low_i16x8_u (local.get $v))')})
      (local.set $hi ${f16Lanes('(i32x4.extend_high_i16x8_u (local.get $v))')})
      ${fourPairs('(local.get $lo)', '(local.get $hi)')}`,
    scalar: `(f64x2.extract_lane 0 (f64x2.promote_low_f32x4 ${f16Lanes('(i32x4.splat (i32.and (i32.load16_u align=1 (local.get $p)) (i32.const 0x7fff)))')}))`,
  },
  F32: {
    size: 4,
    load8: `(local.set $lo (v128.load align=1 (local.get $p)))
      (local.set $hi (v128.load offset=16 align=1 (local.get $p)))
      ${fourPairs('(local.get $lo)', '(local.get $hi)')}`,
    scalar: '(f64.promote_f32 (f32.load align=1 (local.get $p)))',
  },
  F64: {
    size: 8,
    // demote (round to nearest even, = Math.fround) then promote back: the float32 value as f64.
    load8: [0, 1, 2, 3]
      .map((k) => acc(`$a${k}`, `(f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (v128.load offset=${16 * k} align=1 (local.get $p))))`))
      .join('\n'),
    scalar: '(f64.promote_f32 (f32.demote_f64 (f64.load align=1 (local.get $p))))',
  },
};

function pairwiseFunc(name: KernelDtype): string {
  const d = DTYPES[name];
  const fn = `$pw_${name.toLowerCase()}`;
  const scalarSquare = `(local.set $x ${d.scalar}) (f64.mul (local.get $x) (local.get $x))`;
  // s += x² for p up to end, left to right: NumPy's n < 8 case and the remainder after the 8 lanes.
  const sequentialSumToEnd = `(block $done (loop $next
          (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $s (f64.add (local.get $s) (block (result f64) ${scalarSquare})))
          (local.set $p (i32.add (local.get $p) (i32.const ${d.size})))
          (br $next)))`;
  return `
  (func ${fn} (export "pw_${name.toLowerCase()}") (param $p i32) (param $n i32) (result f64)
    (local $s f64) (local $x f64) (local $end i32) (local $n2 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $v v128) (local $lo v128) (local $hi v128) (local $t v128) (local $u v128)
    (if (i32.lt_u (local.get $n) (i32.const 8))
      (then
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $n) (i32.const ${d.size}))))
        ${sequentialSumToEnd}
        (return (local.get $s))))
    (if (i32.le_u (local.get $n) (i32.const 128))
      (then
        (local.set $end (i32.add (local.get $p) (i32.mul (i32.and (local.get $n) (i32.const -8)) (i32.const ${d.size}))))
        (loop $blocks
          ${d.load8}
          (local.set $p (i32.add (local.get $p) (i32.const ${8 * d.size})))
          (br_if $blocks (i32.lt_u (local.get $p) (local.get $end))))
        ;; ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)): pair lanes so one add gives (r0+r1, r2+r3).
        (local.set $t (f64x2.add
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a0) (local.get $a1))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $a0) (local.get $a1))))
        (local.set $u (f64x2.add
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a2) (local.get $a3))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $a2) (local.get $a3))))
        (local.set $s (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $t)) (f64x2.extract_lane 1 (local.get $t)))
          (f64.add (f64x2.extract_lane 0 (local.get $u)) (f64x2.extract_lane 1 (local.get $u)))))
        (local.set $end (i32.add (local.get $p) (i32.mul (i32.and (local.get $n) (i32.const 7)) (i32.const ${d.size}))))
        ${sequentialSumToEnd}
        (return (local.get $s))))
    (local.set $n2 (i32.shr_u (local.get $n) (i32.const 1)))
    (local.set $n2 (i32.and (local.get $n2) (i32.const -8)))
    (f64.add
      (call ${fn} (local.get $p) (local.get $n2))
      (call ${fn} (i32.add (local.get $p) (i32.mul (local.get $n2) (i32.const ${d.size}))) (i32.sub (local.get $n) (local.get $n2)))))`;
}

/** The whole module text (exported for inspection in tests). */
export const KERNEL_WAT = `(module
  (import "env" "memory" (memory 1))
  ${(['BF16', 'F16', 'F32', 'F64'] as const).map(pairwiseFunc).join('\n')}
)`;

let compiled: Promise<WebAssembly.Module> | null = null;

/**
 * Assembles the WAT once per process (wabt ≈ 150 ms; loaded lazily so worker threads, which get the
 * compiled module from the parent, never load it).
 */
export function kernelModule(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const { default: wabtInit } = await import('wabt');
    const wabt = await wabtInit();
    const parsed = wabt.parseWat('fingerprint-kernel.wat', KERNEL_WAT, { simd: true });
    try {
      parsed.resolveNames();
      parsed.validate();
      const { buffer } = parsed.toBinary({});
      return new WebAssembly.Module(buffer as Uint8Array<ArrayBuffer>);
    } finally {
      parsed.destroy();
    }
  })();
  return compiled;
}

/** One instance of the kernel with its memory; `bytes` is the memory as bytes for `fs.read`. */
export interface Kernel {
  readonly memory: WebAssembly.Memory;
  readonly bytes: Uint8Array;
  /** Σx² in NumPy pairwise order over `n` elements of `dtype` at byte offset `ptr` (n < 2^31). */
  sumSquares(dtype: KernelDtype, ptr: number, n: number): number;
}

/**
 * Instantiates the kernel with a memory of at least `memoryBytes` (rounded up to whole pages);
 * `module` defaults to {@link kernelModule}().
 */
export async function createKernel(memoryBytes: number, module?: WebAssembly.Module): Promise<Kernel> {
  const pages = Math.max(1, Math.ceil(memoryBytes / WASM_PAGE_BYTES));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = await WebAssembly.instantiate(module ?? (await kernelModule()), { env: { memory } });
  type PairwiseExport = (ptr: number, n: number) => number;
  const ex = instance.exports as Record<string, PairwiseExport>;
  const fns: Record<KernelDtype, PairwiseExport> = {
    BF16: ex.pw_bf16 as PairwiseExport,
    F16: ex.pw_f16 as PairwiseExport,
    F32: ex.pw_f32 as PairwiseExport,
    F64: ex.pw_f64 as PairwiseExport,
  };
  // The memory never grows (maximum = initial), so this view is never detached.
  const bytes = new Uint8Array(memory.buffer);
  return {
    memory,
    bytes,
    sumSquares(dtype, ptr, n) {
      if (n === 0) return 0;
      if (ptr < 0 || ptr + n * KERNEL_ITEM_SIZE[dtype] > bytes.byteLength) throw new RangeError(`span ${ptr}+${n}×${dtype} is outside the kernel memory`);
      return fns[dtype](ptr, n);
    },
  };
}
