/**
 * In-memory cosine top-k over the norm vectors of one dimension (the Postgres backend's kNN).
 *
 * Why not a plain scan: 100,000 × 3,000 float32 is 1.2 GB read per query, ≈ 60 ms on these 2-core
 * machines even when memory-bound, and the issue asks for ≤ 20 ms p99. So the fast path is
 * "sketch, then re-check, then exact":
 *
 *  1. Every row `u = x/|x|` is written as `u = a + r` where `a` is the row's *anchor* (a previously
 *     inserted normalised row; a new anchor is opened when no anchor has cosine ≥
 *     {@link ANCHOR_MIN_COSINE}, up to {@link MAX_ANCHORS}). Fine-tunes of one base model have norm
 *     vector cosines ≈ 0.9999+, so `r` is tiny and all the ranking information lives in `r`.
 *  2. For a query `q`, `q·u = β(1 + a·r) + (q − βa)·r` with `β = q·a`. `β` is exact (one dot per
 *     anchor) and `a·r` is stored exactly (float64) per row; only `(q − βa)·r` is approximated. The
 *     per-anchor query residual `q − βa` is small, so the error of any approximation of that dot is
 *     proportional to |q − βa|·|r| — the *residuals*, not the vectors — which is what makes cheap
 *     approximations discriminative on 0.9999-cosine data. (Approximating `q·r` and subtracting
 *     `β·a·r` instead would multiply every rounding error by |q| ≈ 1: an int8 sketch scored that way
 *     ranked the true top-20 at ≈ 2,400 instead of ≈ 280 in a 20k-row experiment.)
 *  3. **Sketch scan.** A sparse sign random projection `P` (m = {@link SKETCH_DIM}) of every `r`,
 *     quantised to int8 with a per-row scale, is scanned against `P(q − βa)` quantised to int16:
 *     `i32x4.dot_i16x8_s` in WASM SIMD, 256 bytes per row (a quarter of a float32 sketch; the
 *     quantisation error is ~1 % of the projection's own error). The best `pool` rows go on.
 *  4. **Residual re-check.** The pool is scored by the full residual dot, `r` stored as int8 with a
 *     per-row scale (d bytes per row) against `q − βa` as int16 — ~1e-8 of cosine from the exact value,
 *     some 400× tighter than the sketch — and narrowed to k + {@link EXACT_MARGIN}.
 *  5. Those finalists get the EXACT float64 `cosine` of the original vectors (same bits as
 *     validation.md §8 `cosine`), which is what is returned and sorted.
 *
 * Steps 3 and 4 are one WASM function (int8-kernel.ts) over two row stores; the i32 accumulation
 * cannot overflow because the query's int16 range is chosen from the row length (`queryRange`). Both
 * are shared, chunk by chunk, with one helper thread (scan-helper.ts), and the pool is picked by a
 * sampled selection (top-indices.ts). Measured by `npm run bench -- dedup` at 100k × 3,000 (see
 * docs/benchmarks.md): p50 ≈ 10 ms, p99 ≈ 16 ms; per query ≈ 1 ms frame and query quantisation, ≈ 3 ms
 * sketch scan (27 MB), ≈ 1 ms selection, ≈ 4 ms re-check of 8,334 rows (25 MB), < 1 ms exact step.
 *
 * Memory per row: the float64 original (d × 8, for the exact step), the int8 residual (d + 16), the
 * int8 sketch (m + 16): ≈ 2.7 GB for 100k × 3,000, of which 0.33 GB in WASM memory (capped at 4 GiB:
 * ≈ 1.3M rows at dim 3,000 per process; beyond that, use the OpenSearch backend).
 *
 * The fast path is approximate in which rows reach the exact step (recall is measured by
 * bench/dedup.ts and tested), exact in the scores it returns. `exact: true` scans every row in float64.
 */
import { mulberry32 } from '../../core/prng.ts';
import { compileKernel, INT8_MAX, JOB_BANKS, kernelMemory, LANE_BLOCK, MAX_PAGES, PAGE, queryRange, quantize, ROW_HEADER, scoreKernel } from './int8-kernel.ts';
import { ScanHelper } from './scan-helper.ts';
import { topIndices } from './top-indices.ts';

/** Sketch dimension m (a multiple of LANE_BLOCK in int8-kernel.ts). @default 256 */
export const SKETCH_DIM = 256;
/** Non-zeros per input coordinate in the sparse projection. @default 8 */
export const PROJECTION_NNZ = 8;
/** A row opens a new anchor when its best anchor cosine is below this. @default 0.999 */
export const ANCHOR_MIN_COSINE = 0.999;
/** Anchors per dimension (each costs one d-length dot per query). @default 64 */
export const MAX_ANCHORS = 64;
/** Re-checked rows: at least k × this. @default 32 */
export const RERANK_FACTOR = 32;
/** Re-checked rows: at least this many. @default 4096 */
export const MIN_RERANK_CANDIDATES = 4096;
/**
 * Re-checked rows: at least this fraction of the live rows. The sketch's rank error grows with the
 * number of near-identical rows, so the pool grows with them. Measured worst sketch rank of a true
 * top-20 row (40 queries each): 850 (lineage) and 1,410 (isotropic) at 20k rows; 2,490 and 7,402 at
 * 100k rows, against a pool of 8,334 there. Isotropic data (every fine-tune independent of every
 * other) is the tight case; a near-copy of a stored model, which is what dedup is for, ranks at the
 * top of the sketch. @default 1/12
 */
export const RERANK_FRACTION = 1 / 12;
/**
 * Largest re-check pool (scratch space in WASM memory): the pool stops growing with the rows beyond
 * 786k live rows, where the OpenSearch backend is the better tool anyway. @default 65536
 */
export const MAX_POOL = 65536;
/**
 * Rows beyond k that get the sequential (bit-exact) float64 cosine after the int8 residual pass (whose
 * error, ~1e-8 of cosine, can only reorder rows whose cosines are that close: at 100k rows the true
 * top-20 were all within the re-check's best 24 in 80 queries, lineage and isotropic). @default 32
 */
export const EXACT_MARGIN = 32;
/** Seed of the projection: fixed so a rebuilt matrix ranks the same way. @default 0x5eed */
export const PROJECTION_SEED = 0x5eed;
/** Rows per chunk of the sketch scan shared with the helper thread (≈ 0.2 ms of work). @default 4096 */
export const SCAN_CHUNK = 4096;
/** Rows per chunk of the residual re-check shared with the helper thread (≈ 0.4 ms). @default 512 */
export const RECHECK_CHUNK = 512;

export interface VectorHit {
  readonly id: string;
  /** Exact float64 cosine (validation.md §8). */
  readonly score: number;
}

/**
 * Int8 rows with a header in one WASM memory, scored by the kernel's `score` (int8-kernel.ts).
 * Layout, in bytes from 0:
 *   [frame: MAX_ANCHORS × (β f64, query scale f64)]
 *   [queries: MAX_ANCHORS × len int16]
 *   [slots: JOB_BANKS × MAX_POOL i32]
 *   [rows: capacity × (header: a·r f64, row scale f32, anchor i32 (−1 = removed); len int8)]
 *   [scores: JOB_BANKS × capacity f64]
 */
class Int8RowStore {
  /** Row length in int8 values (the vector length padded to {@link LANE_BLOCK}). */
  private readonly len: number;
  private readonly stride: number;
  private readonly queriesBase = MAX_ANCHORS * 16;
  private readonly slotsBase: number;
  private readonly rowsBase: number;
  private readonly range: number;
  private readonly rowScratch: Int8Array;
  private readonly queryScratch: Int16Array;
  private capacity = 0;

  constructor(
    private readonly memory: WebAssembly.Memory,
    /** This store's index in the helper's memories (the job's `store`). */
    private readonly store: number,
    private readonly helper: ScanHelper,
    length: number,
  ) {
    this.len = Math.ceil(length / LANE_BLOCK) * LANE_BLOCK;
    this.stride = ROW_HEADER + this.len;
    this.slotsBase = this.queriesBase + MAX_ANCHORS * this.len * 2;
    // A slot list and a score array per job bank (scan-helper.ts).
    this.rowsBase = Math.ceil((this.slotsBase + JOB_BANKS * MAX_POOL * 4) / 64) * 64;
    this.range = queryRange(this.len);
    this.rowScratch = new Int8Array(this.len);
    this.queryScratch = new Int16Array(this.len);
    this.ensureCapacity(1024);
  }

  /** Grows the memory to hold `rows` rows and their scores (RangeError beyond 4 GiB). */
  ensureCapacity(rows: number): void {
    if (rows <= this.capacity) return;
    const target = Math.max(rows, Math.ceil(this.capacity * 1.5));
    const needed = this.rowsBase + target * (this.stride + JOB_BANKS * 8);
    const have = this.memory.buffer.byteLength;
    if (needed > have) {
      const pages = Math.ceil((needed - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) throw new RangeError(`dedup index full: ${target} rows of ${this.len} bytes exceed 4 GiB of WASM memory`);
      this.memory.grow(pages);
    }
    // Scores live after the rows: move nothing, they are rewritten by every scan.
    this.capacity = target;
  }

  /** The score array of job bank `bank` (after the rows; they move when the capacity grows). */
  private scoresBase(bank: number): number {
    return this.rowsBase + this.capacity * this.stride + bank * this.capacity * 8;
  }

  write(slot: number, values: ArrayLike<number>, anchorDot: number, anchor: number): void {
    const at = this.rowsBase + slot * this.stride;
    const scale = quantize(values, INT8_MAX, this.rowScratch);
    const view = new DataView(this.memory.buffer, at, ROW_HEADER);
    view.setFloat64(0, anchorDot, true);
    view.setFloat32(8, scale, true);
    view.setInt32(12, anchor, true);
    new Int8Array(this.memory.buffer, at + ROW_HEADER, this.len).set(this.rowScratch);
  }

  remove(slot: number): void {
    new DataView(this.memory.buffer, this.rowsBase + slot * this.stride, ROW_HEADER).setInt32(12, -1, true);
  }

  /** Sets the query of anchor `g`: `beta` = q·a and the residual query `q − βa` (quantised here). */
  setQuery(g: number, beta: number, residualQuery: ArrayLike<number>): void {
    const scale = quantize(residualQuery, this.range, this.queryScratch);
    const frame = new Float64Array(this.memory.buffer, g * 16, 2);
    frame[0] = beta;
    frame[1] = scale;
    new Int16Array(this.memory.buffer, this.queriesBase + g * this.len * 2, this.len).set(this.queryScratch);
  }

  /** Approximate cosine of rows 0…n−1 (−∞ for removed rows). The view is valid until the next call. */
  scan(n: number): Float64Array {
    const job = this.helper.run((bank) => ({ ...this.job(bank), indexed: 0, slots: 0, total: n, chunk: SCAN_CHUNK }));
    return new Float64Array(this.memory.buffer, job.out, n);
  }

  /** Approximate cosine of the listed rows (at most MAX_POOL), in list order. */
  scoreRows(slots: Int32Array): Float64Array {
    const job = this.helper.run((bank) => {
      const at = this.slotsBase + bank * MAX_POOL * 4;
      new Int32Array(this.memory.buffer, at, slots.length).set(slots);
      return { ...this.job(bank), indexed: 1, slots: at, total: slots.length, chunk: RECHECK_CHUNK };
    });
    return new Float64Array(this.memory.buffer, job.out, slots.length);
  }

  private job(bank: number) {
    return { store: this.store, frame: 0, queries: this.queriesBase, rows: this.rowsBase, stride: this.stride, len: this.len, out: this.scoresBase(bank) };
  }
}

/** The search structure of one dimension. Create with {@link DimensionIndex.create}. */
export class DimensionIndex {
  private readonly ids: string[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly vectors: Float64Array[] = [];
  private sumSquares = new Float64Array(1024);
  private alive = new Uint8Array(1024);
  private readonly anchors: Float64Array[] = [];
  private readonly anchorSketches: Float64Array[] = [];
  private readonly projectionRows: Uint16Array;
  private readonly projectionSigns: Float64Array;
  private liveCount = 0;

  private constructor(
    readonly dim: number,
    private readonly sketches: Int8RowStore,
    private readonly residuals: Int8RowStore,
    private readonly helper: ScanHelper,
  ) {
    // Sparse sign projection (each input coordinate feeds PROJECTION_NNZ random sketch rows with
    // random signs, scaled by 1/sqrt(nnz) so that E[Px·Py] = x·y): same JL behaviour as a dense
    // Gaussian matrix on dense vectors, at d·nnz instead of d·m operations per projection.
    const random = mulberry32(PROJECTION_SEED ^ dim);
    this.projectionRows = new Uint16Array(dim * PROJECTION_NNZ);
    this.projectionSigns = new Float64Array(dim * PROJECTION_NNZ);
    const scale = 1 / Math.sqrt(PROJECTION_NNZ);
    for (let i = 0; i < dim * PROJECTION_NNZ; i++) {
      this.projectionRows[i] = Math.floor(random() * SKETCH_DIM);
      this.projectionSigns[i] = random() < 0.5 ? -scale : scale;
    }
  }

  static async create(dim: number): Promise<DimensionIndex> {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dimension must be a positive integer, got ${dim}`);
    const module = await compileKernel();
    // Two memories (Node 20 has no multi-memory), each with its own instance of the one kernel.
    const memories = [kernelMemory(), kernelMemory()] as const;
    const helper = new ScanHelper(module, memories, memories.map((memory) => scoreKernel(module, memory)));
    return new DimensionIndex(dim, new Int8RowStore(memories[0], 0, helper, SKETCH_DIM), new Int8RowStore(memories[1], 1, helper, dim), helper);
  }

  /** Anchors, and how the scoring chunks were split between this thread and the helper thread. */
  stats(): { anchors: number; ownChunks: number; helperChunks: number; sharing: boolean } {
    return { anchors: this.anchors.length, ownChunks: this.helper.ownChunks, helperChunks: this.helper.helperChunks, sharing: this.helper.sharing };
  }

  /** Stops the helper thread (the index stays usable, single-threaded). */
  close(): void {
    this.helper.close();
  }

  /** Live (non-replaced) rows. */
  get size(): number {
    return this.liveCount;
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  /** Removes `id` (no-op when absent). */
  remove(id: string): void {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return;
    this.slotOf.delete(id);
    this.kill(slot);
  }

  /** Adds or replaces the vector of `id` (a zero vector is kept but never ranks above 0). */
  upsert(id: string, vector: ArrayLike<number>): void {
    if (vector.length !== this.dim) throw new RangeError(`vector of length ${vector.length} in dimension ${this.dim}`);
    // A helper thread still finishing the last query's job must not read rows that move or change.
    this.helper.quiesce();
    const previous = this.slotOf.get(id);
    if (previous !== undefined) this.kill(previous);
    const slot = this.ids.length;
    this.ensureCapacity(slot + 1);
    const original = Float64Array.from(vector);
    let ss = 0;
    for (let i = 0; i < original.length; i++) ss += original[i]! * original[i]!;
    this.ids.push(id);
    this.vectors.push(original);
    this.sumSquares[slot] = ss;
    this.alive[slot] = 1;
    this.slotOf.set(id, slot);
    this.liveCount++;
    this.writeRow(slot, original, ss);
    // Big enough for the scan to be shared: load the helper thread now, not during a query.
    if (this.liveCount > SCAN_CHUNK) this.helper.start();
  }

  /** Top-k ids by exact cosine, best first (ties by id, code-point order). */
  search(queryValues: ArrayLike<number>, k: number, opts: { exact?: boolean } = {}): VectorHit[] {
    if (queryValues.length !== this.dim) throw new RangeError(`query of length ${queryValues.length} in dimension ${this.dim}`);
    // One monomorphic array type for the hot loops.
    const query = Float64Array.from(queryValues);
    if (k <= 0 || this.liveCount === 0) return [];
    const finalists = k + EXACT_MARGIN;
    if (opts.exact || this.liveCount <= finalists) return this.exactTop(query, this.liveSlots(), k);
    const pool = Math.min(MAX_POOL, Math.max(k * RERANK_FACTOR, MIN_RERANK_CANDIDATES, Math.ceil(this.liveCount * RERANK_FRACTION)));
    this.setQueries(query);
    const candidates = this.liveCount <= pool ? this.liveSlots() : topIndices(this.sketches.scan(this.ids.length), pool);
    const rechecked = this.residuals.scoreRows(candidates);
    const best = topIndices(rechecked, finalists);
    return this.exactTop(query, Array.from(best, (i) => candidates[i]!), k);
  }

  private kill(slot: number): void {
    this.alive[slot] = 0;
    this.sketches.remove(slot);
    this.residuals.remove(slot);
    this.liveCount--;
  }

  private liveSlots(): Int32Array {
    const out = new Int32Array(this.liveCount);
    for (let i = 0, j = 0; i < this.ids.length; i++) if (this.alive[i]) out[j++] = i;
    return out;
  }

  /** Per anchor: β = q·a, and the residual query q − βa in both stores (its sketch is Pq − βPa). */
  private setQueries(query: Float64Array): void {
    const d = this.dim;
    const unit = unitOf(query);
    const projected = new Float64Array(SKETCH_DIM);
    this.project(unit, projected);
    const residualQuery = new Float64Array(d);
    const sketchQuery = new Float64Array(SKETCH_DIM);
    this.anchors.forEach((anchor, g) => {
      let beta = 0;
      for (let i = 0; i < d; i++) beta += anchor[i]! * unit[i]!;
      for (let i = 0; i < d; i++) residualQuery[i] = unit[i]! - beta * anchor[i]!;
      const anchorSketch = this.anchorSketches[g]!;
      for (let i = 0; i < SKETCH_DIM; i++) sketchQuery[i] = projected[i]! - beta * anchorSketch[i]!;
      this.residuals.setQuery(g, beta, residualQuery);
      this.sketches.setQuery(g, beta, sketchQuery);
    });
  }

  /**
   * The spec's sequential float64 cosine on the original vectors, best `k` (ties by id). Four rows
   * share one pass over the query: each row's sum is still accumulated in index order (the same bits
   * as cosine() in similarity.ts), but four independent add chains run at once instead of one.
   */
  private exactTop(query: Float64Array, slots: ArrayLike<number>, k: number): VectorHit[] {
    const d = this.dim;
    let qq = 0;
    for (let i = 0; i < d; i++) qq += query[i]! * query[i]!;
    const qNorm = Math.sqrt(qq);
    const hits: VectorHit[] = [];
    for (let s = 0; s < slots.length; s += 4) {
      // A short last group repeats its last row; the repeats are not recorded.
      const last = slots.length - 1;
      const group = [slots[s]!, slots[Math.min(s + 1, last)]!, slots[Math.min(s + 2, last)]!, slots[Math.min(s + 3, last)]!];
      const v0 = this.vectors[group[0]!]!;
      const v1 = this.vectors[group[1]!]!;
      const v2 = this.vectors[group[2]!]!;
      const v3 = this.vectors[group[3]!]!;
      let dot0 = 0;
      let dot1 = 0;
      let dot2 = 0;
      let dot3 = 0;
      for (let i = 0; i < d; i++) {
        const q = query[i]!;
        dot0 += q * v0[i]!;
        dot1 += q * v1[i]!;
        dot2 += q * v2[i]!;
        dot3 += q * v3[i]!;
      }
      const dots = [dot0, dot1, dot2, dot3];
      for (let t = 0; t < 4 && s + t <= last; t++) {
        const slot = group[t]!;
        // Same operations in the same order as cosine() in similarity.ts, so the same bits.
        const denominator = qNorm * Math.sqrt(this.sumSquares[slot]!);
        hits.push({ id: this.ids[slot]!, score: denominator === 0 ? 0 : dots[t]! / denominator });
      }
    }
    hits.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return hits.slice(0, k);
  }

  private ensureCapacity(rows: number): void {
    if (rows > this.sumSquares.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T): T => {
        const next = new (a.constructor as new (n: number) => T)(Math.max(rows, a.length * 2));
        next.set(a);
        return next;
      };
      this.sumSquares = grow(this.sumSquares);
      this.alive = grow(this.alive);
    }
    this.sketches.ensureCapacity(rows);
    this.residuals.ensureCapacity(rows);
  }

  private project(vector: Float64Array, out: Float64Array): void {
    out.fill(0);
    const rows = this.projectionRows;
    const signs = this.projectionSigns;
    for (let i = 0, e = 0; i < this.dim; i++) {
      const x = vector[i]!;
      for (let t = 0; t < PROJECTION_NNZ; t++, e++) {
        const r = rows[e]!;
        out[r] = out[r]! + signs[e]! * x;
      }
    }
  }

  private writeRow(slot: number, original: Float64Array, ss: number): void {
    const d = this.dim;
    const unit = unitOf(original, ss);
    let best = -1;
    let bestCos = Number.NEGATIVE_INFINITY;
    this.anchors.forEach((a, g) => {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += a[i]! * unit[i]!;
      if (dot > bestCos) {
        bestCos = dot;
        best = g;
      }
    });
    if (best < 0 || (bestCos < ANCHOR_MIN_COSINE && this.anchors.length < MAX_ANCHORS)) {
      best = this.anchors.length;
      const sketch = new Float64Array(SKETCH_DIM);
      this.project(unit, sketch);
      this.anchors.push(unit);
      this.anchorSketches.push(sketch);
    }
    const anchor = this.anchors[best]!;
    const residual = new Float64Array(d);
    let anchorDot = 0;
    for (let i = 0; i < d; i++) {
      residual[i] = unit[i]! - anchor[i]!;
      anchorDot += anchor[i]! * residual[i]!;
    }
    const sketch = new Float64Array(SKETCH_DIM);
    this.project(residual, sketch);
    this.residuals.write(slot, residual, anchorDot, best);
    this.sketches.write(slot, sketch, anchorDot, best);
  }
}

/** `x/|x|` (the zero vector for a zero `x`); `sumSquares` when already known. */
function unitOf(x: Float64Array, sumSquares?: number): Float64Array {
  let ss = sumSquares ?? 0;
  if (sumSquares === undefined) for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const norm = Math.sqrt(ss);
  const unit = new Float64Array(x.length);
  if (norm > 0) for (let i = 0; i < x.length; i++) unit[i] = x[i]! / norm;
  return unit;
}

/** One {@link DimensionIndex} per fingerprint dimension. */
export class VectorSearch {
  private readonly byDim = new Map<number, Promise<DimensionIndex>>();

  /** Stops every dimension's helper thread. */
  async close(): Promise<void> {
    for (const index of this.byDim.values()) (await index).close();
  }

  dimension(dim: number): Promise<DimensionIndex> {
    let index = this.byDim.get(dim);
    if (!index) {
      index = DimensionIndex.create(dim);
      this.byDim.set(dim, index);
    }
    return index;
  }
}
