/**
 * NumPy's pairwise summation (spec/compat.md §4) in plain JS: the reference the WASM kernel is
 * tested against, and the tree decomposition that lets a tensor larger than the read buffer be
 * summed in pieces with the exact same rounding (the pieces are whole subtrees of NumPy's tree).
 */

/** NumPy switches from the 8-accumulator block to recursion above this many elements. */
const PAIRWISE_BLOCK = 128;

/** NumPy's split point for n > 128: half, rounded down to a multiple of 8. */
export function pairwiseSplit(n: number): number {
  const half = Math.floor(n / 2);
  return half - (half % 8);
}

function blockSum(sq: Float64Array, start: number, n: number): number {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += sq[start + i] as number;
    return s;
  }
  if (n <= PAIRWISE_BLOCK) {
    const r = sq.slice(start, start + 8);
    const whole = n - (n % 8);
    for (let i = 8; i < whole; i += 8) for (let j = 0; j < 8; j++) (r[j] as number) += sq[start + i + j] as number;
    const [r0, r1, r2, r3, r4, r5, r6, r7] = r as unknown as [number, number, number, number, number, number, number, number];
    let s = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (let i = whole; i < n; i++) s += sq[start + i] as number;
    return s;
  }
  const n2 = pairwiseSplit(n);
  return blockSum(sq, start, n2) + blockSum(sq, start + n2, n - n2);
}

/**
 * `np.square(x.astype(np.float64)).sum()` of the float32 values of `values`: a Float64Array is
 * first rounded to float32 (`Math.fround`, spec/validation.md §8 step 1), like the kernel's F64 path.
 */
export function pairwiseSumSquares(values: Float32Array | Float64Array): number {
  const sq = new Float64Array(values.length);
  const round = values instanceof Float64Array;
  for (let i = 0; i < values.length; i++) {
    const x = round ? Math.fround(values[i] as number) : (values[i] as number);
    sq[i] = x * x;
  }
  return 0 + blockSum(sq, 0, sq.length);
}

/** A run of elements `[start, start + count)` summed in one piece. */
export interface PairwiseLeaf {
  readonly start: number;
  readonly count: number;
}

/**
 * The subtrees, in address order, of NumPy's tree over `n` elements that are the first to fit in
 * `maxLeafElements` (a node is split only while it is larger). `maxLeafElements` must be ≥ 128 so
 * every node that is still too large is one NumPy splits too.
 */
export function pairwiseLeaves(n: number, maxLeafElements: number): PairwiseLeaf[] {
  if (maxLeafElements < PAIRWISE_BLOCK) throw new RangeError(`maxLeafElements ${maxLeafElements} is below ${PAIRWISE_BLOCK}`);
  const out: PairwiseLeaf[] = [];
  const walk = (start: number, count: number): void => {
    if (count <= maxLeafElements) {
      out.push({ start, count });
      return;
    }
    const n2 = pairwiseSplit(count);
    walk(start, n2);
    walk(start + n2, count - n2);
  };
  if (n > 0) walk(0, n);
  return out;
}

/**
 * Combines the sums of {@link pairwiseLeaves}`(n, maxLeafElements)` (same order) exactly as NumPy
 * adds those subtrees, including the final `0.0 + total`.
 */
export function combinePairwiseLeaves(n: number, maxLeafElements: number, leafSums: ArrayLike<number>): number {
  let next = 0;
  const walk = (count: number): number => {
    if (count <= maxLeafElements) return leafSums[next++] as number;
    const n2 = pairwiseSplit(count);
    const left = walk(n2);
    return left + walk(count - n2);
  };
  const total = n > 0 ? walk(n) : 0;
  if (next !== leafSums.length) throw new RangeError(`expected ${next} leaf sums, got ${leafSums.length}`);
  return 0 + total;
}
