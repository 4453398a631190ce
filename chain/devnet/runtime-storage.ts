/**
 * Storage of the LOCAL STAND-IN dev chain: raw hex key → hex SCALE value, with history.
 *
 * Why versions per key instead of a state copy per block: the chain reader reads `api.at(hash)` a few
 * blocks behind the head and integration tests read older blocks, so every block in the history window
 * must stay queryable, yet a block usually changes a handful of keys out of thousands (drand pulses,
 * neurons). Each key keeps its (block, value) versions; a read at block n is a binary search, a block
 * costs O(changed keys), and pruning drops versions no retained block can see.
 *
 * There are no forks: blocks are produced by this process only, so history is one linear chain.
 */

/** One write of a key: the value from `block` on (`null` = deleted). */
interface Version {
  readonly block: number;
  readonly value: string | null;
}

/** Read access to one state (a block's, or a block under construction). */
export interface StateView {
  /** Hex SCALE value or `null` when the key is absent. */
  get(key: string): string | null;
  /** Existing keys starting with `prefix` (hex), ascending byte order. */
  keys(prefix: string): string[];
}

/** Byte-order comparison of lowercase `0x` hex keys (equal to string order for same-alphabet hex). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the first element of `sorted` that is ≥ `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How many blocks pass between full pruning sweeps (a sweep is O(keys), so not every block). */
const PRUNE_SWEEP_EVERY = 32;

/**
 * Linear, versioned key/value history. Blocks are committed in order (`commit(n)` after `commit(n−1)`);
 * reads name a block number that the caller already mapped from a hash and checked against the window.
 */
export class StateHistory {
  readonly #versions = new Map<string, Version[]>();
  /** Every key that has a version, sorted; prefix scans start with a binary search here. */
  #sorted: string[] = [];
  #head = -1;
  #prunedBelow = 0;

  /** Number of the last committed block (−1 before genesis). */
  get head(): number {
    return this.#head;
  }

  /** Blocks below this number may have lost versions (see {@link prune}). */
  get prunedBelow(): number {
    return this.#prunedBelow;
  }

  /** Distinct keys with at least one stored version (diagnostics, tests). */
  get keyCount(): number {
    return this.#versions.size;
  }

  /** Value of `key` as of block `block`. */
  get(key: string, block: number): string | null {
    const versions = this.#versions.get(key);
    if (versions === undefined) return null;
    // Last version with version.block ≤ block.
    let lo = 0;
    let hi = versions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((versions[mid] as Version).block <= block) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? null : (versions[lo - 1] as Version).value;
  }

  /**
   * Keys with `prefix` that exist at `block`, ascending, strictly after `startKey` (if given), at most
   * `limit` of them. Cost is proportional to the keys scanned under the prefix.
   */
  keysAt(prefix: string, block: number, limit = Number.POSITIVE_INFINITY, startKey?: string): string[] {
    const out: string[] = [];
    let i = lowerBound(this.#sorted, startKey !== undefined && startKey > prefix ? startKey : prefix);
    for (; i < this.#sorted.length && out.length < limit; i++) {
      const key = this.#sorted[i] as string;
      if (!key.startsWith(prefix)) break;
      if (startKey !== undefined && key <= startKey) continue;
      if (this.get(key, block) !== null) out.push(key);
    }
    return out;
  }

  /** A {@link StateView} of block `block`. */
  view(block: number): StateView {
    return { get: (key) => this.get(key, block), keys: (prefix) => this.keysAt(prefix, block) };
  }

  /**
   * Records the changes of block `block` (must be `head + 1`). A change equal to the current value is
   * dropped, so subscribers are only told about real changes. Returns the effective changes.
   */
  commit(block: number, changes: ReadonlyMap<string, string | null>): Map<string, string | null> {
    if (block !== this.#head + 1) throw new Error(`state history: block ${block} committed after ${this.#head}`);
    const effective = new Map<string, string | null>();
    for (const [key, value] of changes) {
      if (this.get(key, this.#head) === value) continue;
      effective.set(key, value);
      let versions = this.#versions.get(key);
      if (versions === undefined) {
        versions = [];
        this.#versions.set(key, versions);
        this.#sorted.splice(lowerBound(this.#sorted, key), 0, key);
      }
      versions.push({ block, value });
    }
    this.#head = block;
    return effective;
  }

  /**
   * Forgets versions that no block ≥ `oldestRetained` can see. Sweeps at most every
   * {@link PRUNE_SWEEP_EVERY} blocks; callers still refuse reads below their own window, so a late sweep
   * only costs memory, never correctness.
   */
  prune(oldestRetained: number): void {
    if (oldestRetained - this.#prunedBelow < PRUNE_SWEEP_EVERY) return;
    let removedKeys = false;
    for (const [key, versions] of this.#versions) {
      // Keep the last version at or before oldestRetained (it is that block's value) and everything after.
      let keepFrom = 0;
      while (keepFrom + 1 < versions.length && (versions[keepFrom + 1] as Version).block <= oldestRetained) keepFrom++;
      if (keepFrom > 0) versions.splice(0, keepFrom);
      const first = versions[0];
      if (versions.length === 1 && first !== undefined && first.value === null && first.block <= oldestRetained) {
        this.#versions.delete(key);
        removedKeys = true;
      }
    }
    if (removedKeys) this.#sorted = this.#sorted.filter((k) => this.#versions.has(k));
    this.#prunedBelow = oldestRetained;
  }

  /** Full state at `block` (for persistence snapshots): every existing key, sorted. */
  entriesAt(block: number): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const key of this.#sorted) {
      const value = this.get(key, block);
      if (value !== null) out.push([key, value]);
    }
    return out;
  }

  /** Effective changes made by block `block` (for persistence): `[key, value | null]`, sorted by key. */
  changesOf(block: number): Array<[string, string | null]> {
    const out: Array<[string, string | null]> = [];
    for (const key of this.#sorted) {
      const versions = this.#versions.get(key) as Version[];
      for (const v of versions) {
        if (v.block === block) out.push([key, v.value]);
        if (v.block >= block) break;
      }
    }
    return out;
  }

  /**
   * Restores a persisted base state as the state of block `block` (history starts there). Only valid on
   * an empty history; later blocks follow with {@link commit}.
   */
  restoreBase(block: number, entries: ReadonlyArray<readonly [string, string]>): void {
    if (this.#head !== -1) throw new Error('state history: restoreBase on a non-empty history');
    for (const [key, value] of entries) {
      this.#versions.set(key, [{ block, value }]);
      this.#sorted.push(key);
    }
    this.#sorted.sort(compareKeys);
    this.#head = block;
    this.#prunedBelow = block;
  }
}

/**
 * Write buffer of a block under construction over a base view, with nested transactional layers: a
 * failed dispatch rolls back its own writes (FRAME's `#[transactional]` default) while the nonce bump
 * and the `ExtrinsicFailed` event, written outside that layer, stay.
 */
export class Overlay implements StateView {
  readonly #base: StateView;
  readonly #layers: Array<Map<string, string | null>> = [new Map()];

  constructor(base: StateView) {
    this.#base = base;
  }

  get(key: string): string | null {
    for (let i = this.#layers.length - 1; i >= 0; i--) {
      const layer = this.#layers[i] as Map<string, string | null>;
      if (layer.has(key)) return layer.get(key) ?? null;
    }
    return this.#base.get(key);
  }

  keys(prefix: string): string[] {
    const result = new Set(this.#base.keys(prefix));
    for (const layer of this.#layers) {
      for (const [key, value] of layer) {
        if (!key.startsWith(prefix)) continue;
        if (value === null) result.delete(key);
        else result.add(key);
      }
    }
    // A key deleted in a lower layer and re-set above must be present: re-check through get().
    return [...result].filter((k) => this.get(k) !== null).sort(compareKeys);
  }

  set(key: string, value: string | null): void {
    (this.#layers[this.#layers.length - 1] as Map<string, string | null>).set(key, value);
  }

  /** Opens a transactional layer. */
  begin(): void {
    this.#layers.push(new Map());
  }

  /** Merges the top layer into the one below. */
  commitLayer(): void {
    const top = this.#layers.pop();
    if (top === undefined || this.#layers.length === 0) throw new Error('overlay: commit without begin');
    const below = this.#layers[this.#layers.length - 1] as Map<string, string | null>;
    for (const [key, value] of top) below.set(key, value);
  }

  /** Drops the top layer's writes. */
  rollbackLayer(): void {
    if (this.#layers.length <= 1) throw new Error('overlay: rollback without begin');
    this.#layers.pop();
  }

  /** All writes of the block (only valid with no open layer). */
  changes(): Map<string, string | null> {
    if (this.#layers.length !== 1) throw new Error('overlay: changes() with an open layer');
    return new Map(this.#layers[0]);
  }
}
