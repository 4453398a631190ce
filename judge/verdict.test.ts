import { describe, expect, it } from 'vitest';
import { DEFAULT_WIN_MARGIN_V1, marginVerdict } from './verdict.ts';

describe('marginVerdict (duel.md §9.3: challenger_won = diff >= margin)', () => {
  it('is non-strict: landing exactly on the margin wins', () => {
    expect(marginVerdict({ scoreChallenger: 0.75, scoreKing: 0.25, margin: 0.5 })).toEqual({ challengerWon: true, winMargin: 0.5 });
    expect(marginVerdict({ scoreChallenger: 0.5, scoreKing: 0.5, margin: 0 }).challengerWon).toBe(true); // margin 0 ⇒ a tie satisfies >=
  });

  it('uses float64 arithmetic like the spec', () => {
    // 0.53 − 0.47 = 0.06000000000000005 ≥ 0.06
    expect(marginVerdict({ scoreChallenger: 0.53, scoreKing: 0.47, margin: DEFAULT_WIN_MARGIN_V1 }).challengerWon).toBe(true);
    expect(marginVerdict({ scoreChallenger: 0.529, scoreKing: 0.471, margin: DEFAULT_WIN_MARGIN_V1 }).challengerWon).toBe(false);
  });

  it("below the margin the incumbent keeps the crown", () => {
    expect(marginVerdict({ scoreChallenger: 0.5, scoreKing: 0.5, margin: 0.06 }).challengerWon).toBe(false);
    expect(marginVerdict({ scoreChallenger: 0.2, scoreKing: 0.8, margin: 0.06 })).toEqual({ challengerWon: false, winMargin: 0.2 - 0.8 });
  });

  it('rejects non-finite input', () => {
    expect(() => marginVerdict({ scoreChallenger: Number.NaN, scoreKing: 0.5, margin: 0.06 })).toThrow(RangeError);
  });
});
