/**
 * In-memory cosine top-k over the norm vectors of one dimension (the Postgres backend's kNN).
 *
 * Why not a plain scan: 100,000 × 3,000 float32 is 1.2 GB read per query, ≈ 60 ms on these 2-core
 * machines even when memory-bound, and the issue asks for ≤ 20 ms p99. So the fast path is
 * "sketch, then exact rerank":
 *
 *  1. Every row `u = x/|x|` is written as `u = a + r` where `a` is the row's *anchor* (a previously
 *     inserted normalised row; a new anchor is opened when no anchor has cosine ≥
 *     {@link ANCHOR_MIN_COSINE}, up to {@link MAX_ANCHORS}). Fine-tunes of one base model have norm
 *     vector cosines ≈ 0.9999+, so `r` is tiny and all the ranking information lives in `r`.
 *  2. For a query `q`, `q·u = β + β·(a·r) + (q − βa)·r` with `β = q·a`. `β` is exact (one dot per
 *     anchor), `a·r` is precomputed exactly per row, and only `(q − βa)·r` is approximated, by a
 *     Gaussian random projection `P` (m × d, m = {@link SKETCH_DIM}) of `r` stored as float32:
 *     `(q − βa)·r ≈ Pq·Pr − β·(Pa·Pr)`, where `Pa·Pr` is again precomputed per row. The projection
 *     error is proportional to |q − βa|·|r| — the *residuals*, not the vectors — which is what makes a
 *     small sketch discriminative on 0.9999-cosine data.
 *  3. The scan `Pq·Pr` over all rows is one float32 matrix-vector product in WASM SIMD (n × m MACs,
 *     ~26 M for 100k rows). The best `C` rows by that score are narrowed to k + EXACT_MARGIN by the
 *     full residual dot `(q − βa)·r` in float32 WASM SIMD (residuals are stored as float32; error
 *     ~1e-10 of cosine), and those finalists get the EXACT float64 `cosine` of the original vectors
 *     (same bits as validation.md §8 `cosine`), which is what is returned and sorted.
 *
 * Memory per row: the float64 original (d × 8), the float32 residual (d × 4), the sketch (m × 4):
 * ≈ 3.7 GB for 100k × 3,000. WASM memory is capped at 4 GiB, so the residuals allow ≈ 350k rows at
 * dim 3,000 per process; beyond that, use the OpenSearch backend.
 *
 * The fast path is approximate in which rows reach the rerank (recall is measured by bench/dedup.ts
 * and tested), exact in the scores it returns. `exact: true` scans every row in float64.
 */
import { mulberry32 } from '../../core/prng.ts';
import wabtInit from 'wabt';

/** Sketch dimension m (a multiple of 16 for the SIMD kernel). @default 256 */
export const SKETCH_DIM = 256;
/** Non-zeros per input coordinate in the sparse projection. @default 8 */
export const PROJECTION_NNZ = 8;
/** A row opens a new anchor when its best anchor cosine is below this. @default 0.999 */
export const ANCHOR_MIN_COSINE = 0.999;
/** Anchors per dimension (each costs one d-length dot per query). @default 64 */
export const MAX_ANCHORS = 64;
/** Re-ranked candidates: max(k × this, {@link MIN_RERANK_CANDIDATES}). @default 32 */
export const RERANK_FACTOR = 32;
/** @default 4096 */
export const MIN_RERANK_CANDIDATES = 4096;
/**
 * Rows beyond k that get the sequential (bit-exact) float64 cosine after the float32 residual pass
 * (whose error, ~1e-10 of cosine, can only swap near-ties at rank k). @default 32
 */
export const EXACT_MARGIN = 32;
/** Largest re-rank pool (fixed scratch space in WASM memory). @default 8192 */
export const MAX_POOL = 8192;
/** Seed of the projection: fixed so a rebuilt matrix ranks the same way. @default 0x5eed */
export const PROJECTION_SEED = 0x5eed;

export interface VectorHit {
  readonly id: string;
  /** Exact float64 cosine (validation.md §8). */
  readonly score: number;
}

const KERNEL_WAT = `(module
  (import "env" "mem" (memory 1))
  ;; dot(q[0..m), row[0..m)) in float32 with four accumulators; $bytes = 4m, m a multiple of 16.
  (func $dot (param $q i32) (param $row i32) (param $bytes i32) (result f32)
    (local $k i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (block $rowdone (loop $cols
      (br_if $rowdone (i32.ge_u (local.get $k) (local.get $bytes)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (v128.load (i32.add (local.get $q) (local.get $k))) (v128.load (i32.add (local.get $row) (local.get $k))))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (v128.load offset=16 (i32.add (local.get $q) (local.get $k))) (v128.load offset=16 (i32.add (local.get $row) (local.get $k))))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (v128.load offset=32 (i32.add (local.get $q) (local.get $k))) (v128.load offset=32 (i32.add (local.get $row) (local.get $k))))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (v128.load offset=48 (i32.add (local.get $q) (local.get $k))) (v128.load offset=48 (i32.add (local.get $row) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $cols)))
    (local.set $a0 (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3))))
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
             (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0)))))
  ;; out[i] = dot(q, s[i*m ..)) for i < n: every row in order (the sketch scan).
  (func (export "matvec") (param $q i32) (param $s i32) (param $n i32) (param $m i32) (param $out i32)
    (local $i i32) (local $row i32) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $m) (i32.const 2)))
    (local.set $row (local.get $s))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
        (call $dot (local.get $q) (local.get $row) (local.get $bytes)))
      (local.set $row (i32.add (local.get $row) (local.get $bytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))
  ;; out[j] = dot(q, rows[slots[j]*m ..)) for j < count: the listed rows (the residual re-check).
  (func (export "gather") (param $q i32) (param $rows i32) (param $slots i32) (param $count i32) (param $m i32) (param $out i32)
    (local $j i32) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $m) (i32.const 2)))
    (block $done (loop $items
      (br_if $done (i32.ge_u (local.get $j) (local.get $count)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
        (call $dot (local.get $q)
          (i32.add (local.get $rows) (i32.mul (i32.load (i32.add (local.get $slots) (i32.shl (local.get $j) (i32.const 2)))) (local.get $bytes)))
          (local.get $bytes)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $items))))
)`;


let kernelModule: Promise<WebAssembly.Module> | undefined;
function compileKernel(): Promise<WebAssembly.Module> {
  kernelModule ??= (async () => {
    const wabt = await wabtInit();
    const parsed = wabt.parseWat('dedup-matvec.wat', KERNEL_WAT, { simd: true });
    try {
      const { buffer } = parsed.toBinary({});
      return await WebAssembly.compile(new Uint8Array(buffer) as Uint8Array<ArrayBuffer>);
    } finally {
      parsed.destroy();
    }
  })();
  return kernelModule;
}

const PAGE = 65536;
/** Bytes reserved at the start of WASM memory for the projected query (m ≤ 4096). */
const QUERY_BYTES = 16384;

/** The search structure of one dimension. Create with {@link DimensionIndex.create}. */
export class DimensionIndex {
  private readonly ids: string[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly vectors: Float64Array[] = [];
  private sumSquares = new Float64Array(1024);
  private alive = new Uint8Array(1024);
  private anchorOf = new Int32Array(1024);
  /** a·r per row (exact). */
  private anchorDot = new Float64Array(1024);
  /** (Pa)·(Pr) per row. */
  private anchorSketchDot = new Float64Array(1024);
  private readonly anchors: Float64Array[] = [];
  private readonly anchorSketches: Float64Array[] = [];
  private readonly projectionRows: Uint16Array;
  private readonly projectionSigns: Float64Array;
  private liveCount = 0;

  /** Row stride of the float32 residuals (dim padded to the kernel's 16 lanes). */
  private readonly paddedDim: number;
  /** Byte offset of the first residual row in `residualMemory`. */
  private readonly residualBase: number;

  private constructor(
    readonly dim: number,
    private readonly memory: WebAssembly.Memory,
    private readonly matvec: (q: number, s: number, n: number, m: number, out: number) => void,
    private readonly residualMemory: WebAssembly.Memory,
    private readonly gather: (q: number, rows: number, slots: number, count: number, m: number, out: number) => void,
  ) {
    this.paddedDim = Math.ceil(dim / 16) * 16;
    // [query: paddedDim f32][slots: MAX_POOL i32][scores: MAX_POOL f32][rows…], 64-byte aligned.
    this.residualBase = Math.ceil((this.paddedDim * 4 + MAX_POOL * 8) / 64) * 64;
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
    // Two memories (Node 20 has no multi-memory): sketches + scores, and float32 residual rows.
    const memory = new WebAssembly.Memory({ initial: 1 });
    const sketchKernel = await WebAssembly.instantiate(module, { env: { mem: memory } });
    const residualMemory = new WebAssembly.Memory({ initial: 1 });
    const residualKernel = await WebAssembly.instantiate(module, { env: { mem: residualMemory } });
    return new DimensionIndex(dim, memory, sketchKernel.exports.matvec as never, residualMemory, residualKernel.exports.gather as never);
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
    this.alive[slot] = 0;
    this.slotOf.delete(id);
    this.liveCount--;
  }

  /** Adds or replaces the vector of `id` (a zero vector is kept but never ranks above 0). */
  upsert(id: string, vector: ArrayLike<number>): void {
    if (vector.length !== this.dim) throw new RangeError(`vector of length ${vector.length} in dimension ${this.dim}`);
    const previous = this.slotOf.get(id);
    if (previous !== undefined) {
      this.alive[previous] = 0;
      this.liveCount--;
    }
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
    this.writeSketch(slot, original, ss);
  }

  /** Top-k ids by exact cosine, best first (ties by id, code-point order). */
  search(queryValues: ArrayLike<number>, k: number, opts: { exact?: boolean } = {}): VectorHit[] {
    if (queryValues.length !== this.dim) throw new RangeError(`query of length ${queryValues.length} in dimension ${this.dim}`);
    // One monomorphic array type for the hot loops.
    const query = Float64Array.from(queryValues);
    if (k <= 0 || this.liveCount === 0) return [];
    if (opts.exact) return this.exactTop(query, this.liveSlots(), k);
    const pool = Math.min(MAX_POOL, Math.max(k * RERANK_FACTOR, MIN_RERANK_CANDIDATES));
    const { unit, beta } = this.frame(query);
    const slots = this.liveCount <= pool ? this.liveSlots() : this.prefilter(unit, beta, pool);
    const finalists = slots.length > k + EXACT_MARGIN ? this.narrow(unit, beta, slots, k + EXACT_MARGIN) : slots;
    return this.exactTop(query, finalists, k);
  }

  private liveSlots(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.alive[i]) out.push(i);
    return out;
  }

  /** The unit query and its exact dot with every anchor. */
  private frame(query: Float64Array): { unit: Float64Array; beta: number[] } {
    const d = this.dim;
    let qq = 0;
    for (let i = 0; i < d; i++) qq += query[i]! * query[i]!;
    const qNorm = Math.sqrt(qq);
    const unit = new Float64Array(d);
    if (qNorm > 0) for (let i = 0; i < d; i++) unit[i] = query[i]! / qNorm;
    const beta = this.anchors.map((a) => {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += a[i]! * unit[i]!;
      return dot;
    });
    return { unit, beta };
  }

  /**
   * Narrows the pool to `keep` rows by `β(1 + a·r) + (q − βa)·r` with the residual dot in float32
   * WASM SIMD: residuals are ~1e-2 of the vectors, so float32 rounding costs ~1e-10 of cosine —
   * far below the gaps between distinct fine-tunes — at a fraction of a float64 JS dot's cost.
   */
  private narrow(unit: Float64Array, beta: readonly number[], slots: readonly number[], keep: number): number[] {
    const byAnchor = new Map<number, number[]>();
    for (const slot of slots) {
      const g = this.anchorOf[slot]!;
      let list = byAnchor.get(g);
      if (!list) {
        list = [];
        byAnchor.set(g, list);
      }
      list.push(slot);
    }
    const buffer = this.residualMemory.buffer;
    const q = new Float32Array(buffer, 0, this.paddedDim);
    const slotsOffset = this.paddedDim * 4;
    const outOffset = slotsOffset + MAX_POOL * 4;
    const scored: { slot: number; score: number }[] = [];
    for (const [g, list] of byAnchor) {
      const anchor = this.anchors[g]!;
      const b = beta[g]!;
      for (let i = 0; i < this.dim; i++) q[i] = unit[i]! - b * anchor[i]!;
      new Int32Array(buffer, slotsOffset, list.length).set(list);
      this.gather(0, this.residualBase, slotsOffset, list.length, this.paddedDim, outOffset);
      const out = new Float32Array(buffer, outOffset, list.length);
      for (let j = 0; j < list.length; j++) scored.push({ slot: list[j]!, score: b + b * this.anchorDot[list[j]!]! + out[j]! });
    }
    scored.sort((x, y) => y.score - x.score);
    return scored.slice(0, keep).map((x) => x.slot);
  }

  /** The spec's sequential float64 cosine on the original vectors, best `k` (ties by id). */
  private exactTop(query: Float64Array, slots: readonly number[], k: number): VectorHit[] {
    const d = this.dim;
    let qq = 0;
    for (let i = 0; i < d; i++) qq += query[i]! * query[i]!;
    const qNorm = Math.sqrt(qq);
    const hits: VectorHit[] = [];
    for (const slot of slots) {
      const v = this.vectors[slot]!;
      let dot = 0;
      for (let i = 0; i < d; i++) dot += query[i]! * v[i]!;
      // Same operations in the same order as cosine() in similarity.ts, so the same bits.
      const denominator = qNorm * Math.sqrt(this.sumSquares[slot]!);
      hits.push({ id: this.ids[slot]!, score: denominator === 0 ? 0 : dot / denominator });
    }
    hits.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return hits.slice(0, k);
  }

  private ensureCapacity(rows: number): void {
    if (rows > this.sumSquares.length) {
      const grow = <T extends Float64Array | Uint8Array | Int32Array>(a: T): T => {
        const next = new (a.constructor as new (n: number) => T)(Math.max(rows, a.length * 2));
        next.set(a);
        return next;
      };
      this.sumSquares = grow(this.sumSquares);
      this.alive = grow(this.alive);
      this.anchorOf = grow(this.anchorOf);
      this.anchorDot = grow(this.anchorDot);
      this.anchorSketchDot = grow(this.anchorSketchDot);
    }
    // Sketches, then room for one float32 score per row (the kernel's output).
    const needed = QUERY_BYTES + rows * (SKETCH_DIM + 1) * 4;
    const have = this.memory.buffer.byteLength;
    if (needed > have) this.memory.grow(Math.ceil((Math.max(needed, have * 1.5) - have) / PAGE));
    // Residuals: float32 rows; WASM memory is capped at 4 GiB, i.e. ≈ 350k rows at dim 3,000 and
    // ≈ 65k at dim 16,000 (memory.grow throws a RangeError beyond that).
    const neededResidual = this.residualBase + rows * this.paddedDim * 4;
    const haveResidual = this.residualMemory.buffer.byteLength;
    if (neededResidual > haveResidual) {
      const target = Math.min(Math.max(neededResidual, haveResidual * 1.5), 65536 * PAGE);
      this.residualMemory.grow(Math.ceil((target - haveResidual) / PAGE));
    }
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

  private writeSketch(slot: number, original: Float64Array, ss: number): void {
    const d = this.dim;
    const norm = Math.sqrt(ss);
    const unit = new Float64Array(d);
    if (norm > 0) for (let i = 0; i < d; i++) unit[i] = original[i]! / norm;
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
    new Float32Array(this.residualMemory.buffer, this.residualBase + slot * this.paddedDim * 4, d).set(residual);
    const sketch = new Float64Array(SKETCH_DIM);
    this.project(residual, sketch);
    const stored = new Float32Array(this.memory.buffer, QUERY_BYTES + slot * SKETCH_DIM * 4, SKETCH_DIM);
    const anchorSketch = this.anchorSketches[best]!;
    let sketchDot = 0;
    for (let i = 0; i < SKETCH_DIM; i++) {
      stored[i] = sketch[i]!;
      sketchDot += anchorSketch[i]! * stored[i]!;
    }
    this.anchorOf[slot] = best;
    this.anchorDot[slot] = anchorDot;
    this.anchorSketchDot[slot] = sketchDot;
  }

  /** Slots of the `pool` best rows by approximate cosine (see the module comment). */
  private prefilter(unit: Float64Array, beta: readonly number[], pool: number): number[] {
    const n = this.ids.length;
    const projected = new Float64Array(SKETCH_DIM);
    this.project(unit, projected);
    new Float32Array(this.memory.buffer, 0, SKETCH_DIM).set(projected);
    const outOffset = QUERY_BYTES + n * SKETCH_DIM * 4;
    this.matvec(0, QUERY_BYTES, n, SKETCH_DIM, outOffset);
    const raw = new Float32Array(this.memory.buffer, outOffset, n);
    // Keep the `pool` best in a min-heap keyed by approximate score.
    const heapScore = new Float64Array(pool);
    const heapSlot = new Int32Array(pool);
    let size = 0;
    for (let slot = 0; slot < n; slot++) {
      if (!this.alive[slot]) continue;
      const b = beta[this.anchorOf[slot]!]!;
      const score = b + b * this.anchorDot[slot]! + raw[slot]! - b * this.anchorSketchDot[slot]!;
      if (size < pool) {
        let i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (heapScore[parent]! <= score) break;
          heapScore[i] = heapScore[parent]!;
          heapSlot[i] = heapSlot[parent]!;
          i = parent;
        }
        heapScore[i] = score;
        heapSlot[i] = slot;
      } else if (score > heapScore[0]!) {
        let i = 0;
        for (;;) {
          const left = 2 * i + 1;
          if (left >= size) break;
          const right = left + 1;
          const child = right < size && heapScore[right]! < heapScore[left]! ? right : left;
          if (heapScore[child]! >= score) break;
          heapScore[i] = heapScore[child]!;
          heapSlot[i] = heapSlot[child]!;
          i = child;
        }
        heapScore[i] = score;
        heapSlot[i] = slot;
      }
    }
    return Array.from(heapSlot.subarray(0, size));
  }
}

/** One {@link DimensionIndex} per fingerprint dimension. */
export class VectorSearch {
  private readonly byDim = new Map<number, Promise<DimensionIndex>>();

  dimension(dim: number): Promise<DimensionIndex> {
    let index = this.byDim.get(dim);
    if (!index) {
      index = DimensionIndex.create(dim);
      this.byDim.set(dim, index);
    }
    return index;
  }
}
