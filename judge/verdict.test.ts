import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { JudgeDuelResult, JudgeSampleRecord } from './types.ts';
import {
  DEFAULT_VERDICT_CONFIG,
  DEFAULT_WIN_MARGIN_V1,
  decideVerdict,
  marginVerdict,
  validFractionMet,
  type VerdictInput,
  verdictScoresFromDuel,
  WIN_POLICIES,
} from './verdict.ts';
import { bootstrapSeed, pairedBootstrapLcb, pairedDeltasV1 } from './verdict-stats.ts';
import { verdictCodeOf as codeOf } from '../tests/support/errors.ts';

interface Vectors {
  bootstrap: { name: string; scores: number[]; seed: string; winLcb: number; cltLcb: number | null; meanD: number; stdevD: number | null }[];
  margin: { scoreChallenger: number; scoreKing: number; winMargin: number; won: boolean }[];
}
const vectors = JSON.parse(readFileSync(new URL('../tests/fixtures/verdict/vectors.json', import.meta.url), 'utf8')) as Vectors;


/** A small eval: 8 scored samples of 10, challenger slightly ahead. */
function input(overrides: Partial<VerdictInput> = {}): VerdictInput {
  return {
    evalRunId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
    sampleSeed: '0xfeed',
    scoreChallenger: 0.56,
    sampleScores: [0.6, 0.7, 0.5, 0.4, 0.8, 0.6, 0.5, 0.7],
    totalTurns: 10,
    scoringInputsHash: 'sha256:00',
    ...overrides,
  };
}

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

  it('below the margin the incumbent keeps the crown', () => {
    expect(marginVerdict({ scoreChallenger: 0.5, scoreKing: 0.5, margin: 0.06 }).challengerWon).toBe(false);
    expect(marginVerdict({ scoreChallenger: 0.2, scoreKing: 0.8, margin: 0.06 })).toEqual({ challengerWon: false, winMargin: 0.2 - 0.8 });
  });

  it('rejects non-finite input', () => {
    expect(() => marginVerdict({ scoreChallenger: Number.NaN, scoreKing: 0.5, margin: 0.06 })).toThrow(RangeError);
    expect(codeOf(() => marginVerdict({ scoreChallenger: 0.5, scoreKing: Number.POSITIVE_INFINITY, margin: 0.06 }))).toBe('non_finite_input');
  });

  it.each(vectors.margin.map((c) => [c.scoreChallenger, c] as const))('zero-sum upstream verdict at score_challenger = %s (Python vector)', (sc, c) => {
    const scoreKing = 1 - sc;
    expect(scoreKing).toBe(c.scoreKing);
    expect(marginVerdict({ scoreChallenger: sc, scoreKing, margin: 0.06 })).toEqual({ challengerWon: c.won, winMargin: c.winMargin });
    // decideVerdict under the default policy gives the same upstream answer.
    expect(decideVerdict(input({ scoreChallenger: sc })).challengerWon).toBe(c.won);
  });
});

describe('validFractionMet (duel.md §9.3 gate)', () => {
  it('fails only when V / T < min_valid_fraction (exactly half passes at 0.5)', () => {
    expect(validFractionMet(64, 128, 0.5)).toBe(true);
    expect(validFractionMet(63, 128, 0.5)).toBe(false);
    expect(validFractionMet(0, 0, 0)).toBe(false); // T = 0 never has a verdict
  });
});

describe('decideVerdict', () => {
  it('defaults: exact upstream margin rule, B = 10,000, α = 0.05, δ0 = 0', () => {
    expect(DEFAULT_VERDICT_CONFIG).toEqual({ policy: 'margin', margin: 0.06, minValidFraction: 0.5, alpha: 0.05, bootstrapReplicates: 10_000, delta0: 0, aaWindow: 20 });
    expect(WIN_POLICIES).toEqual(['margin', 'margin+lcb', 'lcb']);
  });

  it('stores every parameter needed to replay the verdict', () => {
    const record = decideVerdict(input({ aaMargins: [0.01, -0.02, 0.03], strata: ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'c'] }), { policy: 'margin+lcb', bootstrapReplicates: 2000, delta0: 0.005 });
    const seed = '0xfeed:1b4e28ba-2fa1-11d2-883f-0016d3cca427:bootstrap';
    expect(record).toMatchObject({
      rulesVersion: 'albedo-verdict-v1',
      policy: 'margin+lcb',
      scoreChallenger: 0.56,
      scoreKing: 1 - 0.56,
      winMargin: 0.56 - (1 - 0.56),
      requiredWinMargin: 0.06,
      marginPassed: true,
      validTurns: 8,
      totalTurns: 10,
      minValidFraction: 0.5,
      deltaDefinition: 'v1:2s-1',
      alpha: 0.05,
      bootstrapAlgorithm: 'paired-bootstrap-pyrandom-randbelow-v1',
      bootstrapReplicates: 2000,
      bootstrapSeed: seed,
      lcbIndex: 100,
      strata: [
        { label: 'a', size: 4 },
        { label: 'b', size: 3 },
        { label: 'c', size: 1 },
      ],
      configuredDelta0: 0.005,
      aaMargins: [0.01, -0.02, 0.03],
      aaQuantile: 0.028000000000000004,
      delta0: 0.028000000000000004,
      aaWindow: 20,
      aaQuantileMethod: 'python-statistics-quantiles-n20-inclusive[18]',
      scoringInputsHash: 'sha256:00',
    });
    const deltas = pairedDeltasV1(input().sampleScores);
    const strata = ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'c'];
    expect(record.winLcb).toBe(pairedBootstrapLcb(deltas, { seed, replicates: 2000, strata }).winLcb);
    expect(record.lcbPassed).toBe(record.winLcb > record.delta0);
    expect(record.challengerWon).toBe(record.marginPassed && record.lcbPassed);
    expect(record.meanD).toBe(0.19999999999999998); // Python statistics.mean of the 2s − 1 values
    expect(typeof record.cltLcb).toBe('number');
    expect(JSON.parse(JSON.stringify(record))).toEqual(record); // plain data: storable as JSON as is
  });

  it('reproduces the Python bootstrap bound through the full rule', () => {
    const v = vectors.bootstrap.find((c) => c.name === 'V128 judged +');
    if (!v) throw new Error('vector missing');
    const [sampleSeed, evalRunId] = v.seed.split(':');
    expect(bootstrapSeed(sampleSeed ?? '', evalRunId ?? '')).toBe(v.seed);
    const record = decideVerdict(input({ sampleSeed: sampleSeed ?? '', evalRunId: evalRunId ?? '', sampleScores: v.scores, totalTurns: 128 }), { policy: 'lcb' });
    expect(record.winLcb).toBe(v.winLcb);
    expect(record.cltLcb).toBe(v.cltLcb);
    expect(record.meanD).toBe(v.meanD);
    expect(record.stdevD).toBe(v.stdevD);
    expect(record.challengerWon).toBe(v.winLcb > 0);
  });

  it('applies each policy', () => {
    // Margin passes (0.56 − 0.44 ≥ 0.06), the bound does not clear an impossible floor.
    const marginOnly = input({ aaMargins: [0.9, 0.9] });
    expect(decideVerdict(marginOnly, { policy: 'margin', bootstrapReplicates: 500 }).challengerWon).toBe(true);
    expect(decideVerdict(marginOnly, { policy: 'margin+lcb', bootstrapReplicates: 500 }).challengerWon).toBe(false);
    expect(decideVerdict(marginOnly, { policy: 'lcb', bootstrapReplicates: 500 }).challengerWon).toBe(false);
    // The bound clears 0 (every sample ≥ 0.6) but the §9.3 aggregate misses the margin.
    const lcbOnly = input({ scoreChallenger: 0.52, sampleScores: [0.6, 0.7, 0.8, 0.6], totalTurns: 4 });
    expect(decideVerdict(lcbOnly, { policy: 'margin', bootstrapReplicates: 500 }).challengerWon).toBe(false);
    expect(decideVerdict(lcbOnly, { policy: 'margin+lcb', bootstrapReplicates: 500 }).challengerWon).toBe(false);
    expect(decideVerdict(lcbOnly, { policy: 'lcb', bootstrapReplicates: 500 }).challengerWon).toBe(true);
    expect(codeOf(() => decideVerdict(input(), { policy: 'best-of' as never }))).toBe('invalid_config');
  });

  it('ties go to the incumbent: an LCB exactly on δ0, or no margin at all', () => {
    // Constant samples: every replicate mean is the same float W, so win_lcb = W exactly.
    const constant = input({ sampleScores: Array(10).fill(0.6), scoreChallenger: 0.6 });
    const W = decideVerdict(constant, { bootstrapReplicates: 100 }).winLcb;
    expect(W).toBe(0.19999999999999996);
    expect(decideVerdict(constant, { policy: 'lcb', delta0: W, bootstrapReplicates: 100 })).toMatchObject({ lcbPassed: false, challengerWon: false });
    expect(decideVerdict({ ...constant, aaMargins: [W] }, { policy: 'lcb', bootstrapReplicates: 100 })).toMatchObject({ delta0: W, challengerWon: false });
    expect(decideVerdict(constant, { policy: 'lcb', delta0: W - 2 ** -54, bootstrapReplicates: 100 }).challengerWon).toBe(true);
    // Equal aggregate scores: diff 0 < margin.
    expect(decideVerdict(input({ scoreChallenger: 0.5 })).challengerWon).toBe(false);
    // A margin of 0 would crown on `0 >= 0`; the rule refuses such a configuration.
    expect(codeOf(() => decideVerdict(input(), { margin: 0 }))).toBe('invalid_config');
    expect(codeOf(() => decideVerdict(input(), { margin: -0.01 }))).toBe('invalid_config');
  });

  it('refuses to decide without enough scored samples', () => {
    expect(codeOf(() => decideVerdict(input({ sampleScores: [], totalTurns: 10 })))).toBe('empty_sample');
    expect(codeOf(() => decideVerdict(input({ sampleScores: [], totalTurns: 0 })))).toBe('empty_sample');
    expect(codeOf(() => decideVerdict(input({ sampleScores: [0.5, 0.5, 0.5, 0.5], totalTurns: 9 })))).toBe('too_few_valid_samples');
    expect(codeOf(() => decideVerdict(input({ sampleScores: [0.5, 0.5, 0.5, 0.5], totalTurns: 8 })))).toBe('no error');
    expect(codeOf(() => decideVerdict(input({ totalTurns: 7 })))).toBe('invalid_config'); // T < V
  });

  it('rejects NaN anywhere', () => {
    expect(codeOf(() => decideVerdict(input({ sampleScores: [0.5, Number.NaN], totalTurns: 2 })))).toBe('non_finite_input');
    expect(codeOf(() => decideVerdict(input({ scoreChallenger: Number.NaN })))).toBe('non_finite_input');
    expect(codeOf(() => decideVerdict(input({ sampleScores: [0.5, 1.2], totalTurns: 2 })))).toBe('out_of_range_input');
    expect(codeOf(() => decideVerdict(input({ aaMargins: [Number.NaN] })))).toBe('non_finite_input');
  });

  it('v2: explicit king scores, d_i = challenger_i − king_i', () => {
    const record = decideVerdict(input({ scoreChallenger: 0.6, scoreKing: 0.55, sampleScores: [0.6, 0.7], kingSampleScores: [0.5, 0.6], totalTurns: 2 }), {
      margin: 0.025,
      minValidFraction: 0.8,
      bootstrapReplicates: 100,
    });
    expect(record).toMatchObject({ deltaDefinition: 'v2:challenger-king', scoreKing: 0.55, marginPassed: true });
    expect(record.meanD).toBe((0.6 - 0.5 + (0.7 - 0.6)) / 2);
  });
});

describe('verdictScoresFromDuel', () => {
  it('takes the scored samples in sample order, T from the whole eval', () => {
    const rec = (sampleId: string, score: number | null): JudgeSampleRecord => ({ sampleId, sampleIndex: 0, judgeResults: [], sampleScore: score, scored: score !== null });
    const duel = { scoreChallenger: 0.55, records: [rec('a', 0.6), rec('b', null), rec('c', 0.4)], sampleCount: 3 } as unknown as JudgeDuelResult;
    expect(verdictScoresFromDuel(duel)).toEqual({ scoreChallenger: 0.55, sampleScores: [0.6, 0.4], totalTurns: 3 });
  });
});
