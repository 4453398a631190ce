/**
 * Duel verdict rules (spec/duel.md §9.3, §10, §12).
 *
 * Rule (a), `margin` — the exact upstream v1 rule: `score_king = 1 − score_challenger` (zero-sum),
 * `challenger_won = (score_challenger − score_king) >= margin` in float64. The comparison is
 * deliberately NON-strict, exactly as the spec writes it; a challenger landing exactly on the margin
 * wins, anything below it leaves the crown with the incumbent. Runs with fewer than
 * `min_valid_fraction` scored samples have no verdict at all (the run fails).
 *
 * Rule (b), `lcb` — the paired bootstrap lower bound of `mean(d)` must STRICTLY exceed the noise floor
 * δ0; a bound exactly on δ0 is a tie and ties go to the incumbent. Both statistics are computed and
 * stored for every eval whatever the policy, so the operator can switch policies with evidence.
 *
 * Policies (`ALBEDO_WIN_POLICY`): `margin` (default), `margin+lcb` (both), `lcb`.
 */
import { DEFAULT_MIN_VALID_FRACTION } from './judge-actor.ts';
import type { JudgeDuelResult } from './types.ts';
import {
  AA_QUANTILE_METHOD,
  BOOTSTRAP_ALGORITHM,
  bootstrapSeed,
  DEFAULT_AA_WINDOW,
  DEFAULT_BOOTSTRAP_B,
  DEFAULT_WIN_ALPHA,
  DEFAULT_WIN_DELTA0,
  noiseFloor,
  pairedBootstrapLcb,
  pairedDeltasV1,
  pairedDeltasV2,
  pairedSummary,
  clusterGroups,
  stratumGroups,
  VerdictError,
} from './verdict-stats.ts';

export {
  AA_QUANTILE_METHOD,
  BOOTSTRAP_ALGORITHM,
  DEFAULT_AA_WINDOW,
  DEFAULT_BOOTSTRAP_B,
  DEFAULT_WIN_ALPHA,
  DEFAULT_WIN_DELTA0,
  VerdictError,
  type VerdictErrorCode,
} from './verdict-stats.ts';

/**
 * Required margin of the v1 protocol.
 * @default 0.06
 */
export const DEFAULT_WIN_MARGIN_V1 = 0.06;

/**
 * Required margin of the v2 protocol (duel.md §13).
 * @default 0.025
 */
export const DEFAULT_WIN_MARGIN_V2 = 0.025;

/** `ALBEDO_WIN_POLICY` values. */
export const WIN_POLICIES = ['margin', 'margin+lcb', 'lcb'] as const;
export type WinPolicy = (typeof WIN_POLICIES)[number];

/**
 * `ALBEDO_WIN_POLICY` default: the exact upstream v1 rule.
 * @default 'margin'
 */
export const DEFAULT_WIN_POLICY: WinPolicy = 'margin';

/** Identifies this set of rules in stored records; bump it when any rule or recipe changes. */
export const VERDICT_RULES_VERSION = 'albedo-verdict-v1';

export interface MarginVerdict {
  readonly challengerWon: boolean;
  /** `scoreChallenger − scoreKing` (what eval_runs stores as `win_margin`). */
  readonly winMargin: number;
}

/** Rule (a) on explicit scores: `(scoreChallenger − scoreKing) >= margin`, float64, non-strict. */
export function marginVerdict(input: { scoreChallenger: number; scoreKing: number; margin: number }): MarginVerdict {
  const { scoreChallenger, scoreKing, margin } = input;
  if (![scoreChallenger, scoreKing, margin].every(Number.isFinite)) throw new VerdictError('non_finite_input', 'marginVerdict needs finite scores and margin');
  const winMargin = scoreChallenger - scoreKing;
  return { challengerWon: winMargin >= margin, winMargin };
}

/**
 * The scored-fraction gate of duel.md §9.3, same float expression: a run is judgeable iff
 * `T > 0 && !(V / T < minValidFraction)`.
 */
export function validFractionMet(validTurns: number, totalTurns: number, minValidFraction: number): boolean {
  return totalTurns > 0 && !(validTurns / totalTurns < minValidFraction);
}

export interface VerdictConfig {
  /** @default DEFAULT_WIN_POLICY */
  readonly policy: WinPolicy;
  /** Required `score_challenger − score_king` (`ALBEDO_WIN_MARGIN`). Must be > 0 so an exact tie never crowns. @default DEFAULT_WIN_MARGIN_V1 */
  readonly margin: number;
  /** @default DEFAULT_MIN_VALID_FRACTION (0.5, v1) */
  readonly minValidFraction: number;
  /** @default DEFAULT_WIN_ALPHA */
  readonly alpha: number;
  /** @default DEFAULT_BOOTSTRAP_B */
  readonly bootstrapReplicates: number;
  /** `ALBEDO_WIN_DELTA0`. @default DEFAULT_WIN_DELTA0 */
  readonly delta0: number;
  /** @default DEFAULT_AA_WINDOW */
  readonly aaWindow: number;
}

/** Defaults of {@link VerdictConfig} (v1 values). */
export const DEFAULT_VERDICT_CONFIG: VerdictConfig = Object.freeze({
  policy: DEFAULT_WIN_POLICY,
  margin: DEFAULT_WIN_MARGIN_V1,
  minValidFraction: DEFAULT_MIN_VALID_FRACTION,
  alpha: DEFAULT_WIN_ALPHA,
  bootstrapReplicates: DEFAULT_BOOTSTRAP_B,
  delta0: DEFAULT_WIN_DELTA0,
  aaWindow: DEFAULT_AA_WINDOW,
});

export interface VerdictInput {
  readonly evalRunId: string;
  /** The dataset `sample_seed` (commit block hash); part of the bootstrap seed. */
  readonly sampleSeed: string;
  /** The §9.3 aggregate (median over judges of the per-judge means): rule (a)'s input. */
  readonly scoreChallenger: number;
  /** v2 only (per-side scores are independent). v1 omits it: the king gets `1 − scoreChallenger`. */
  readonly scoreKing?: number;
  /** Challenger share `s_i` of every scored sample, in sample order (V = its length). */
  readonly sampleScores: readonly number[];
  /** v2 only: the king's per-sample score, parallel to `sampleScores`; then `d_i = c_i − k_i`. */
  readonly kingSampleScores?: readonly number[];
  /** T, the number of samples of the eval including unscored ones. */
  readonly totalTurns: number;
  /** `mean(d)` of past A/A duels, oldest first (only the last `aaWindow` count). @default [] */
  readonly aaMargins?: readonly number[];
  /** Stratum label per scored sample (v2: phase × family); omit for the plain v1 bootstrap. */
  readonly strata?: readonly string[];
  /**
   * Cluster (trajectory) label per scored sample for the cluster bootstrap (verdict-stats.ts); omit for
   * the spec's per-sample bootstrap. Product extension: see docs/benchmarks.md (verdict) for why.
   */
  readonly clusters?: readonly string[];
  /** `scoringInputsHash()` (scoring-hash.ts) of everything that was scored. */
  readonly scoringInputsHash: string;
}

/** Every parameter and intermediate of one verdict: enough to replay it bit for bit. */
export interface VerdictRecord {
  readonly rulesVersion: typeof VERDICT_RULES_VERSION;
  readonly policy: WinPolicy;
  readonly challengerWon: boolean;
  // Rule (a)
  readonly scoreChallenger: number;
  readonly scoreKing: number;
  /** `scoreChallenger − scoreKing`. */
  readonly winMargin: number;
  readonly requiredWinMargin: number;
  readonly marginPassed: boolean;
  /** V. */
  readonly validTurns: number;
  /** T. */
  readonly totalTurns: number;
  readonly minValidFraction: number;
  // Rule (b)
  readonly deltaDefinition: 'v1:2s-1' | 'v2:challenger-king';
  readonly meanD: number;
  /** n − 1 sample sd (Python `statistics.stdev`); null when V = 1. */
  readonly stdevD: number | null;
  readonly alpha: number;
  readonly bootstrapAlgorithm: typeof BOOTSTRAP_ALGORITHM;
  readonly bootstrapReplicates: number;
  readonly bootstrapSeed: string;
  /** `floor(α·B)`: position of `winLcb` in the ascending bootstrap means. */
  readonly lcbIndex: number;
  /** Stratum sizes in resampling order; null for the plain bootstrap. */
  readonly strata: readonly { readonly label: string; readonly size: number }[] | null;
  /** Number of resampled clusters when the cluster bootstrap was used, else null. */
  readonly clusterCount: number | null;
  readonly winLcb: number;
  readonly zQuantile: number;
  /** CLT cross-check `mean(d) − z·sd/√V`; null when V = 1. */
  readonly cltLcb: number | null;
  // Noise floor
  /** Effective δ0 = max(configuredDelta0, aaQuantile). */
  readonly delta0: number;
  readonly configuredDelta0: number;
  readonly aaMargins: readonly number[];
  readonly aaQuantile: number | null;
  readonly aaWindow: number;
  readonly aaQuantileMethod: typeof AA_QUANTILE_METHOD;
  /** `winLcb > delta0` (strict: an exact tie stays with the king). */
  readonly lcbPassed: boolean;
  readonly scoringInputsHash: string;
}

function resolveConfig(overrides: Partial<VerdictConfig>): VerdictConfig {
  const config: VerdictConfig = { ...DEFAULT_VERDICT_CONFIG, ...overrides };
  if (!(WIN_POLICIES as readonly string[]).includes(config.policy)) throw new VerdictError('invalid_config', `unknown win policy ${JSON.stringify(config.policy)}`);
  // margin ≤ 0 would let `diff >= margin` crown a challenger on an exact tie, against "ties go to the incumbent".
  if (!(config.margin > 0 && config.margin <= 2)) throw new VerdictError('invalid_config', `win margin must be in (0, 2], got ${config.margin}`);
  if (!(config.minValidFraction >= 0 && config.minValidFraction <= 1)) throw new VerdictError('invalid_config', `minValidFraction must be in [0, 1], got ${config.minValidFraction}`);
  return config;
}

/**
 * Applies both rules and the configured policy to one eval, recording every parameter.
 *
 * Throws {@link VerdictError}: `empty_sample` (V = 0 or T = 0), `too_few_valid_samples`
 * (`V / T < minValidFraction`), `non_finite_input` / `out_of_range_input` (a NaN or a share outside
 * [0, 1]), `strata_mismatch`, `invalid_config`.
 * @example decideVerdict({ evalRunId, sampleSeed, scoreChallenger: duel.scoreChallenger, sampleScores, totalTurns: 128, scoringInputsHash }, { policy: 'margin+lcb' })
 */
export function decideVerdict(input: VerdictInput, overrides: Partial<VerdictConfig> = {}): VerdictRecord {
  const config = resolveConfig(overrides);
  const validTurns = input.sampleScores.length;
  const { totalTurns } = input;
  if (!Number.isSafeInteger(totalTurns) || totalTurns < validTurns) {
    throw new VerdictError('invalid_config', `totalTurns must be an integer ≥ the ${validTurns} scored samples, got ${totalTurns}`);
  }
  if (validTurns === 0 || totalTurns === 0) throw new VerdictError('empty_sample', `no scored samples (${validTurns}/${totalTurns}): there is no verdict to decide`);
  if (!validFractionMet(validTurns, totalTurns, config.minValidFraction)) {
    throw new VerdictError('too_few_valid_samples', `Only ${validTurns}/${totalTurns} samples were scored (minimum valid fraction ${config.minValidFraction})`);
  }
  if (input.scoringInputsHash.length === 0) throw new VerdictError('invalid_config', 'scoringInputsHash is required');

  // Rule (a): v1 is zero-sum, the king's score is whatever the challenger did not get.
  const scoreKing = input.scoreKing ?? 1 - input.scoreChallenger;
  const margin = marginVerdict({ scoreChallenger: input.scoreChallenger, scoreKing, margin: config.margin });

  // Rule (b)
  const v2 = input.kingSampleScores !== undefined;
  const deltas = v2 ? pairedDeltasV2(input.sampleScores, input.kingSampleScores ?? []) : pairedDeltasV1(input.sampleScores);
  const seed = bootstrapSeed(input.sampleSeed, input.evalRunId);
  const boot = pairedBootstrapLcb(deltas, {
    seed,
    replicates: config.bootstrapReplicates,
    alpha: config.alpha,
    ...(input.strata ? { strata: input.strata } : {}),
    ...(input.clusters ? { clusters: input.clusters } : {}),
  });
  const summary = pairedSummary(deltas, config.alpha);
  const floor = noiseFloor(input.aaMargins ?? [], { delta0: config.delta0, window: config.aaWindow });
  const lcbPassed = boot.winLcb > floor.delta0;

  const challengerWon = config.policy === 'margin' ? margin.challengerWon : config.policy === 'lcb' ? lcbPassed : margin.challengerWon && lcbPassed;
  return {
    rulesVersion: VERDICT_RULES_VERSION,
    policy: config.policy,
    challengerWon,
    scoreChallenger: input.scoreChallenger,
    scoreKing,
    winMargin: margin.winMargin,
    requiredWinMargin: config.margin,
    marginPassed: margin.challengerWon,
    validTurns,
    totalTurns,
    minValidFraction: config.minValidFraction,
    deltaDefinition: v2 ? 'v2:challenger-king' : 'v1:2s-1',
    meanD: summary.meanD,
    stdevD: summary.stdevD,
    alpha: config.alpha,
    bootstrapAlgorithm: BOOTSTRAP_ALGORITHM,
    bootstrapReplicates: boot.replicates,
    bootstrapSeed: seed,
    lcbIndex: boot.lcbIndex,
    strata: input.strata ? stratumGroups(validTurns, input.strata).map((g) => ({ label: g.label ?? '', size: g.members.length })) : null,
    clusterCount: input.clusters ? clusterGroups(validTurns, input.clusters).length : null,
    winLcb: boot.winLcb,
    zQuantile: summary.zQuantile,
    cltLcb: summary.cltLcb,
    delta0: floor.delta0,
    configuredDelta0: floor.configuredDelta0,
    aaMargins: floor.aaMargins,
    aaQuantile: floor.aaQuantile,
    aaWindow: floor.window,
    aaQuantileMethod: floor.quantileMethod,
    lcbPassed,
    scoringInputsHash: input.scoringInputsHash,
  };
}

/**
 * The verdict inputs a v1 {@link JudgeDuelResult} already holds: the §9.3 aggregate, the scored
 * samples' shares in sample order, and T.
 */
export function verdictScoresFromDuel(result: JudgeDuelResult): Pick<VerdictInput, 'scoreChallenger' | 'sampleScores' | 'totalTurns'> {
  const sampleScores = result.records.flatMap((r) => (r.scored && r.sampleScore !== null ? [r.sampleScore] : []));
  return { scoreChallenger: result.scoreChallenger, sampleScores, totalTurns: result.sampleCount };
}
