/**
 * Pre-eval text heuristics, exactly as preeval.md §3.1 (order, thresholds and reason texts matter:
 * reasons are shown to miners and stored in sanity_results). Operates on responses whose
 * `<think>` reasoning was already removed ({@link stripThinking}).
 */
import { pyFloatStr, pyFormatFixed } from '../judge/py-numbers.ts';
import { codePointLength, codePointPrefix, pySplit, pyStrip } from './py-text.ts';

/** `min_tokens` of the SanityRunRequest. @default 5 */
export const DEFAULT_MIN_TOKENS = 5;
/** `max_repetition`: fail when trigram diversity < 1 − this. @default 0.85 */
export const DEFAULT_MAX_REPETITION = 0.85;
/** `min_vocab_ratio`. @default 0.05 */
export const DEFAULT_MIN_VOCAB_RATIO = 0.05;

export type HeuristicCode = 'empty' | 'too_short' | 'repetition' | 'encoding' | 'low_vocabulary' | 'collapsed' | 'uniform_length' | 'no_code';

export interface HeuristicThresholds {
  readonly minTokens: number;
  readonly maxRepetition: number;
  readonly minVocabRatio: number;
}

export interface HeuristicResult {
  readonly passed: boolean;
  readonly reason: string;
  readonly code: HeuristicCode | null;
}

const PASSED: HeuristicResult = { passed: true, reason: '', code: null };

const CODE_KEYWORDS: ReadonlySet<string> = new Set(
  [
    // Python
    'def class import from return if elif else for while try except finally with as lambda yield raise assert pass del global nonlocal and or not in is async await print self',
    // JS/TS
    'function const let var switch case break continue new extends export default typeof instanceof this super catch throw interface type enum namespace public private protected readonly console',
    // C-family / Java / C#
    'static final void int char bool string struct using package implements abstract override virtual template typename include #include std sizeof typedef',
    // Go, Rust
    'func range map chan go defer select nil fn mut impl trait pub use mod match loop where unsafe dyn crate',
    // Ruby / PHP / shell
    'end module require unless until do done then fi begin rescue ensure puts elsif foreach echo',
    // CLI
    'grep rgrep tree find cat sed awk ls cd head tail sort uniq wc cut tr xargs diff patch cp mv rm rmdir mkdir touch chmod chown ln pwd which tee printf source env stat basename dirname tar curl wget ssh rsync git make cmake gcc clang node npm npx yarn pnpm cargo rustc java javac mvn gradle ruby gem bundle rake php composer perl python python3 pip pip3 pytest tox ruff black mypy flake8 pylint bash sh docker kubectl',
  ]
    .join(' ')
    .split(' '),
);

/** preeval.md §3 step 6: unfinished reasoning counts as no answer; finished reasoning is removed. */
export function stripThinking(text: string): string {
  if (!text.includes('<think>')) return text;
  if (!text.includes('</think>')) return '';
  return pyStrip(text.replace(/<think>[\s\S]*?<\/think>/g, ''));
}

/** Per-response checks in spec order; the first failure wins. */
export function checkResponse(text: string, t: HeuristicThresholds): HeuristicResult {
  if (pyStrip(text) === '') return { passed: false, reason: 'empty response', code: 'empty' };
  const tokens = pySplit(text);
  if (tokens.length < t.minTokens) return { passed: false, reason: `too short (${tokens.length} tokens, min=${t.minTokens})`, code: 'too_short' };
  if (tokens.length >= 3) {
    const trigrams = new Set<string>();
    const count = tokens.length - 2;
    // JSON-encoding the triple gives an unambiguous set key whatever the tokens contain.
    for (let i = 0; i < count; i += 1) trigrams.add(JSON.stringify([tokens[i], tokens[i + 1], tokens[i + 2]]));
    const diversity = trigrams.size / count;
    if (diversity < 1 - t.maxRepetition) return { passed: false, reason: `repetitive output (diversity=${pyFormatFixed(diversity, 2)})`, code: 'repetition' };
  }
  const length = codePointLength(text);
  if (length > 20) {
    let nonAscii = 0;
    for (const ch of text) if ((ch.codePointAt(0) as number) > 127) nonAscii += 1;
    if (nonAscii / length > 0.6) return { passed: false, reason: 'excessive non-ASCII (encoding broken)', code: 'encoding' };
  }
  if (tokens.length >= 8) {
    const lower = tokens.map((tok) => tok.toLowerCase());
    const ratio = new Set(lower).size / lower.length;
    if (ratio < t.minVocabRatio) {
      return { passed: false, reason: `low vocabulary diversity (${pyFormatFixed(ratio, 2)}, min=${pyFloatStr(t.minVocabRatio)})`, code: 'low_vocabulary' };
    }
  }
  return PASSED;
}

/** Per-response checks, then the set-level checks (which fail every response at once). */
export function checkResponses(texts: readonly string[], t: HeuristicThresholds): HeuristicResult[] {
  const results = texts.map((text) => checkResponse(text, t));
  if (!results.every((r) => r.passed)) return results;
  const setFailure = (reason: string, code: HeuristicCode) => texts.map((): HeuristicResult => ({ passed: false, reason, code }));
  if (texts.length >= 2) {
    const heads = new Set(texts.map((text) => codePointPrefix(pyStrip(text), 100)));
    if (heads.size === 1) return setFailure('identical response to all prompts (collapsed model)', 'collapsed');
    const lengths = new Set(texts.map((text) => pySplit(text).length));
    if (lengths.size === 1) return setFailure(`all responses identical length (${[...lengths][0]} tokens) - possible collapse`, 'uniform_length');
  }
  const hasCode = texts.some((text) => pySplit(text).some((tok) => CODE_KEYWORDS.has(tok.toLowerCase())));
  if (!hasCode) return setFailure('no code keywords in any response (def/return/import/etc)', 'no_code');
  return results;
}
