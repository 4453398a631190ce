/**
 * Python string semantics the pre-eval heuristics depend on (spec/compat.md §8). JS `\s` and
 * `.length` differ from Python's whitespace set and code-point lengths, and the heuristics must give
 * the same verdict as upstream for the same text.
 * TODO(py-compat): move into the shared py-compat module once it exists (compat.md asks for one).
 */

/** Python `str.isspace()` characters: \t \n \v \f \r, \x1c–\x1f, space, \x85, \xa0, U+1680, U+2000–U+200A, U+2028/9, U+202F, U+205F, U+3000. */
const PY_WS_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WS_RUN = new RegExp(`[${PY_WS_CLASS}]+`, 'u');
const PY_LEADING_WS = new RegExp(`^[${PY_WS_CLASS}]+`, 'u');
const PY_TRAILING_WS = new RegExp(`[${PY_WS_CLASS}]+$`, 'u');

/** `str.split()` without arguments: split on whitespace runs, never yield empty strings. */
export function pySplit(text: string): string[] {
  return text.split(PY_WS_RUN).filter((token) => token.length > 0);
}

/** `str.strip()` without arguments. */
export function pyStrip(text: string): string {
  return text.replace(PY_LEADING_WS, '').replace(PY_TRAILING_WS, '');
}

/** `str.rstrip()` without arguments. */
export function pyRstrip(text: string): string {
  return text.replace(PY_TRAILING_WS, '');
}

/** `len(s)`: counts code points, not UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** `s[:n]` on code points. */
export function codePointPrefix(text: string, n: number): string {
  let out = '';
  let i = 0;
  for (const ch of text) {
    if (i >= n) break;
    out += ch;
    i += 1;
  }
  return out;
}
