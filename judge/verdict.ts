/**
 * The v1 `margin` win policy (duel.md §9.3): `challenger_won = (score_challenger − score_king) >= margin`
 * in float64. The comparison is deliberately NON-strict, exactly as the spec writes it; a challenger
 * landing exactly on the margin wins. Ties below the margin go to the incumbent.
 */

/**
 * Required margin of the v1 protocol.
 * @default 0.06
 */
export const DEFAULT_WIN_MARGIN_V1 = 0.06;

export interface MarginVerdict {
  readonly challengerWon: boolean;
  /** `scoreChallenger − scoreKing` (what eval_runs stores as `win_margin`). */
  readonly winMargin: number;
}

export function marginVerdict(input: { scoreChallenger: number; scoreKing: number; margin: number }): MarginVerdict {
  const { scoreChallenger, scoreKing, margin } = input;
  if (![scoreChallenger, scoreKing, margin].every(Number.isFinite)) throw new RangeError('marginVerdict needs finite scores and margin');
  const winMargin = scoreChallenger - scoreKing;
  return { challengerWon: winMargin >= margin, winMargin };
}
