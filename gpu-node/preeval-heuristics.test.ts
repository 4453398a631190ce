import { describe, expect, it } from 'vitest';
import { checkResponse, checkResponses, stripThinking } from './preeval-heuristics.ts';
import { pySplit, pyStrip } from './py-text.ts';

const T = { minTokens: 5, maxRepetition: 0.85, minVocabRatio: 0.05 };

describe('python string helpers', () => {
  it('split/strip on Python whitespace, not JS \\s', () => {
    expect(pySplit('a\x1cb\x85c  d\ufeffe')).toEqual(['a', 'b', 'c', 'd\ufeffe']);
    expect(pyStrip('\x1f hi \u3000')).toBe('hi');
  });
});

describe('stripThinking', () => {
  it('keeps text without reasoning, blanks unfinished reasoning, removes finished spans', () => {
    expect(stripThinking('plain answer')).toBe('plain answer');
    expect(stripThinking('<think>still going')).toBe('');
    expect(stripThinking('<think>a</think> answer <think>b\nc</think> more ')).toBe('answer  more');
  });
});

describe('per-response heuristics (preeval.md §3.1)', () => {
  it('empty', () => {
    expect(checkResponse(' \n\t', T)).toEqual({ passed: false, reason: 'empty response', code: 'empty' });
  });

  it('too_short', () => {
    expect(checkResponse('def f(): return', T)).toEqual({ passed: false, reason: 'too short (3 tokens, min=5)', code: 'too_short' });
  });

  it('repetition, with Python half-even formatting of the diversity', () => {
    expect(checkResponse(Array(50).fill('spam').join(' '), T)).toEqual({ passed: false, reason: 'repetitive output (diversity=0.02)', code: 'repetition' });
    // 8 trigrams, 1 distinct ⇒ diversity 0.125, which Python formats as 0.12 (JS toFixed would say 0.13).
    const loose = { ...T, maxRepetition: 0.5 };
    expect(checkResponse('a a a a a a a a a a', loose).reason).toBe('repetitive output (diversity=0.12)');
  });

  it('encoding', () => {
    expect(checkResponse('ééééé ééééé ééééé ééééé ééééé ok', T)).toEqual({ passed: false, reason: 'excessive non-ASCII (encoding broken)', code: 'encoding' });
    // Astral characters count once (code points), like Python's len().
    expect(checkResponse('😀😀😀 😀😀😀 😀😀😀 abcdefgh ijklmnop qrs', T).passed).toBe(true);
  });

  it('low_vocabulary names the ratio and the minimum in Python notation', () => {
    // 20 tokens cycling over 3 words: trigram diversity is fine (3/18), vocabulary 3/20 = 0.15.
    const text = Array.from({ length: 20 }, (_, i) => ['alpha', 'beta', 'gamma'][i % 3]).join(' ');
    expect(checkResponse(text, { ...T, maxRepetition: 0.9, minVocabRatio: 0.2 })).toEqual({
      passed: false,
      reason: 'low vocabulary diversity (0.15, min=0.2)',
      code: 'low_vocabulary',
    });
  });
});

describe('set-level heuristics', () => {
  const ok = (n: number) => `def solve_${n}(x): return x + ${n} ${'word '.repeat(n)}`;

  it('passes varied responses with code keywords', () => {
    expect(checkResponses([ok(1), ok(2), ok(3)], T).every((r) => r.passed)).toBe(true);
  });

  it('collapsed', () => {
    const same = 'def same(): return 1 and nothing else';
    expect(checkResponses([same, `${same} `, same], T).map((r) => r.code)).toEqual(['collapsed', 'collapsed', 'collapsed']);
  });

  it('uniform_length', () => {
    const r = checkResponses(['def a(): return 1 one', 'def b(): return 2 two'], T);
    expect(r[0]).toEqual({ passed: false, reason: 'all responses identical length (5 tokens) - possible collapse', code: 'uniform_length' });
  });

  it('no_code', () => {
    const r = checkResponses(['Cats purr softly near warm windows.', 'Dogs bark loudly at passing cars today, really.'], T);
    expect(r.every((x) => x.code === 'no_code' && x.reason === 'no code keywords in any response (def/return/import/etc)')).toBe(true);
  });

  it('set checks only run when every response passed', () => {
    const r = checkResponses(['', 'The weather today is sunny.'], T);
    expect(r.map((x) => x.code)).toEqual(['empty', null]);
  });
});
