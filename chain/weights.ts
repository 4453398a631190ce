/**
 * Weight vector preparation for `set_weights` (spec/chain.md §6.1–§6.2). Pure; reused by the real
 * subtensor client and the local stand-in.
 */
import { roundHalfEven } from './compat.ts';

export const U16_MAX = 65535;

export interface U16Weights {
  /** uids as sent (`Vec<u16>`), in input order, with zero-weight entries dropped. */
  readonly uids: number[];
  /** u16 weights, parallel to `uids`. */
  readonly weights: number[];
}

/**
 * Normalises float weights to u16 exactly like the Python SDK's `convert_weights_and_uids_for_emit`
 * (chain.md §6.1):
 * 1. cast every weight to float32 (`Math.fround`), then use it as a double;
 * 2. sum == 0 ⇒ nothing to send (empty arrays); `max = max(weights)`;
 * 3. `v = round_half_even((w / max) × 65535)` in float64; entries with `v == 0` are dropped with their uid;
 * 4. uids keep the given order.
 *
 * Throws `RangeError` on unequal lengths, uids outside u16, negative / non-finite weights.
 * @example normalizeWeightsU16([0, 1, 2], [0.5, 0.25, 0.25]) // { uids: [0, 1, 2], weights: [65535, 32768, 32768] }
 */
export function normalizeWeightsU16(uids: readonly number[], weights: readonly number[]): U16Weights {
  if (uids.length !== weights.length) {
    throw new RangeError(`uids and weights differ in length: ${uids.length} vs ${weights.length}`);
  }
  for (const uid of uids) {
    if (!Number.isInteger(uid) || uid < 0 || uid > U16_MAX) throw new RangeError(`uid is not a u16: ${uid}`);
  }
  const w32 = weights.map((w) => {
    if (typeof w !== 'number' || !Number.isFinite(w)) throw new RangeError(`weight is not a finite number: ${w}`);
    if (w < 0) throw new RangeError(`weight is negative: ${w}`);
    const f = Math.fround(w);
    // float32 overflow (w > 3.4e38) would become Infinity; numpy would too, but we refuse it.
    if (!Number.isFinite(f)) throw new RangeError(`weight overflows float32: ${w}`);
    return f;
  });
  let sum = 0;
  let max = 0;
  for (const w of w32) {
    sum += w;
    if (w > max) max = w;
  }
  if (sum === 0 || w32.length === 0) return { uids: [], weights: [] };
  const outUids: number[] = [];
  const outWeights: number[] = [];
  for (let i = 0; i < w32.length; i++) {
    const v = roundHalfEven(((w32[i] as number) / max) * U16_MAX);
    if (v !== 0) {
      outUids.push(uids[i] as number);
      outWeights.push(v);
    }
  }
  return { uids: outUids, weights: outWeights };
}

/**
 * Chain-side rate limit (chain.md §6.2 step 2): weights may be set at block `current` only if
 * `current − lastUpdate > rateLimit`. A hotkey that never set weights (`lastUpdate` null) may.
 */
export function weightsRateLimitAllows(current: number, lastUpdate: number | null, rateLimit: number): boolean {
  if (lastUpdate === null) return true;
  return current - lastUpdate > rateLimit;
}

/** SDK convention `major·10^6 + minor·10^3 + patch` (chain.md §6.2 step 3). */
export function sdkVersionKey(version: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(version);
  if (!m) throw new RangeError(`not a major.minor.patch version: ${JSON.stringify(version)}`);
  return Number(m[1]) * 1_000_000 + Number(m[2]) * 1_000 + Number(m[3]);
}

/** Default emulated SDK version (chain.md §6.2 step 3). */
export const DEFAULT_SDK_VERSION = '10.3.0';

/**
 * The `version_key` to send (chain.md §6.2 step 3): the configured key
 * (`ALBEDO_WEIGHT_VERSION_KEY`) if set, else the SDK convention of `sdkVersion`; raised to the chain's
 * `WeightsVersionKey(netuid)` when that is larger.
 */
export function resolveVersionKey(options: { configured?: number | null; sdkVersion?: string; chainKey?: number | null }): number {
  const configured = options.configured;
  if (configured !== undefined && configured !== null && (!Number.isSafeInteger(configured) || configured < 0)) {
    throw new RangeError(`version key must be a non-negative integer: ${configured}`);
  }
  const base = configured ?? sdkVersionKey(options.sdkVersion ?? DEFAULT_SDK_VERSION);
  const chainKey = options.chainKey ?? 0;
  return Math.max(chainKey, base);
}
