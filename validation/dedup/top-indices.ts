/** Top-`keep` selection over the dedup kNN scores (vector-search.ts). */

/** Every SAMPLE_STEP-th score estimates the selection threshold of {@link topIndices}. */
const SAMPLE_STEP = 16;

/**
 * Scratch arrays reused across calls (grown on demand). Fresh ones per query (≈ 0.5 MB at 100k rows)
 * were external memory to V8 and triggered a scavenge every few queries ("external memory
 * pressure", 1–2 ms each), a visible share of the p99.
 */
const scratch = { f64: new Float64Array(0), i32: new Int32Array(0) };
function scratchF64(n: number): Float64Array {
  if (scratch.f64.length < n) scratch.f64 = new Float64Array(Math.max(n, scratch.f64.length * 2));
  return scratch.f64.subarray(0, n);
}
function scratchI32(n: number): Int32Array {
  if (scratch.i32.length < n) scratch.i32 = new Int32Array(Math.max(n, scratch.i32.length * 2));
  return scratch.i32.subarray(0, n);
}

/**
 * Indexes of the `keep` largest finite scores, in ascending index order (so the re-check reads rows
 * front to back); ties at the threshold are taken in index order.
 *
 * Why not a heap or a plain quickselect: over 100k scores with keep ≈ 8k, a binary heap took ≈ 2 ms
 * (its ~4·keep insertions) and a quickselect on a copy ≈ 2.5 ms (a mispredicted branch per
 * comparison). Instead a quickselect over every 16th score picks a threshold `t` a little below the
 * expected keep-th value; one pass collects the indexes scoring ≥ t, and the exact selection runs on
 * those few. The result is the same as a full selection whenever at least `keep` scores are ≥ t (the
 * keep-th largest is then ≥ t, so every selected index was collected); otherwise the full selection
 * runs.
 */
export function topIndices(scores: Float64Array, keep: number): Int32Array {
  const n = scores.length;
  const sampleSize = Math.floor(n / SAMPLE_STEP);
  const sampleRank = Math.ceil((keep / SAMPLE_STEP) * 1.25) + 8;
  if (sampleRank < sampleSize) {
    // One score from each block of 16 at a hashed offset: a fixed stride would alias with any
    // periodic structure in the rows (e.g. rows inserted round-robin from four base models).
    const sample = scratchF64(sampleSize);
    for (let b = 0; b < sampleSize; b++) sample[b] = scores[b * SAMPLE_STEP + (Math.imul(b, 0x9e3779b1) >>> 28)]!;
    const t = kthLargest(sample, sampleRank);
    if (t > Number.NEGATIVE_INFINITY) {
      const collected = scratchI32(n);
      let count = 0;
      for (let i = 0; i < n; i++) if (scores[i]! >= t) collected[count++] = i;
      if (count >= keep) return selectTop(scores, collected.subarray(0, count), keep);
    }
  }
  return selectTop(scores, null, keep);
}

/** The `keep` best of `scores` at `indexes` (all indexes when null, ascending either way). */
function selectTop(scores: Float64Array, indexes: Int32Array | null, keep: number): Int32Array {
  const count = indexes ? indexes.length : scores.length;
  const at = (j: number): number => (indexes ? indexes[j]! : j);
  // The sample (if any) is consumed by now: the same scratch holds the values.
  const values = scratchF64(count);
  let finite = 0;
  for (let j = 0; j < count; j++) {
    const score = scores[at(j)]!;
    if (score > Number.NEGATIVE_INFINITY) values[finite++] = score;
  }
  const take = Math.min(keep, finite);
  if (take === 0) return new Int32Array(0);
  const threshold = kthLargest(values.subarray(0, finite), take - 1);
  let ties = take;
  for (let j = 0; j < count; j++) if (scores[at(j)]! > threshold) ties--;
  const out = new Int32Array(take);
  for (let j = 0, o = 0; j < count && o < take; j++) {
    const score = scores[at(j)]!;
    if (score > threshold || (score === threshold && ties-- > 0)) out[o++] = at(j);
  }
  return out;
}

/** The value of rank `k` (0 = largest) of `values`, which it reorders (Hoare quickselect, median of three). */
function kthLargest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    const a = values[lo]!;
    const b = values[mid]!;
    const c = values[hi]!;
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! > pivot) i++;
      while (values[j]! < pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i++] = values[j]!;
        values[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k]!;
  }
  return values[k]!;
}
