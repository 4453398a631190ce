/**
 * The few Python-compatibility rules validation messages need (spec/compat.md §5, §7, §8):
 * `repr` of JSON values, `fnmatch` globs and code-point string order.
 *
 * compat.md asks for one shared `py-compat` module; none exists yet, so these live here and should
 * move there (unchanged) when it does.
 */

/** Python `sorted()` order for strings: by code point, not by UTF-16 unit. */
export function codePointCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i) as number;
    const cb = b.codePointAt(j) as number;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  const ra = a.length - i;
  const rb = b.length - j;
  return ra === rb ? 0 : ra < rb ? -1 : 1;
}

/** `sorted(xs)` for strings. */
export function pySorted(xs: Iterable<string>): string[] {
  return [...xs].sort(codePointCompare);
}

// Python's str.isprintable() is false for these categories (space excepted).
const NON_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** `repr(str)` (compat §7). */
export function pyReprStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      out += cp <= 0xff ? `\\x${hex(cp, 2)}` : cp <= 0xffff ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}

/**
 * `repr(float)`: shortest round-trip digits, exponent form when the decimal exponent is < −4 or
 * ≥ 16, always a decimal point or exponent.
 */
export function pyReprFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant = '0', expStr = '0'] = x.toExponential().split('e');
  const exp = Number(expStr);
  const negative = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intLen = exp + 1;
  if (digits.length <= intLen) return `${sign}${digits}${'0'.repeat(intLen - digits.length)}.0`;
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}

/**
 * `repr()` of a JSON-decoded value. JSON numbers that are safe integers print as Python ints
 * (JSON.parse loses the int/float distinction of `2048.0`; only messages are affected).
 */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : pyReprFloat(value);
  if (typeof value === 'string') return pyReprStr(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyReprStr(k)}: ${pyRepr(v)}`);
    return `{${parts.join(', ')}}`;
  }
  return pyReprStr(String(value));
}

/** `repr(list_of_str)`, e.g. `['a.json', 'b.py']`. */
export function pyReprList(xs: readonly string[]): string {
  return `[${xs.map(pyReprStr).join(', ')}]`;
}

const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

/** Python `fnmatch.translate` (POSIX, case-sensitive, whole string, `*` matches `/`), compat §5. */
export function fnmatchToRegExp(pattern: string): RegExp {
  let res = '';
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i] as string;
    i += 1;
    if (c === '*') {
      if (!res.endsWith('.*')) res += '.*';
    } else if (c === '?') {
      res += '.';
    } else if (c === '[') {
      let j = i;
      if (j < n && pattern[j] === '!') j += 1;
      if (j < n && pattern[j] === ']') j += 1;
      while (j < n && pattern[j] !== ']') j += 1;
      if (j >= n) {
        res += '\\[';
      } else {
        let stuff = pattern.slice(i, j).replace(/\\/g, '\\\\');
        i = j + 1;
        if (stuff.startsWith('!')) stuff = `^${stuff.slice(1)}`;
        else if (stuff.startsWith('^') || stuff.startsWith('[')) stuff = `\\${stuff}`;
        res += `[${stuff}]`;
      }
    } else {
      res += c.replace(REGEX_SYNTAX, '\\$&');
    }
  }
  return new RegExp(`^(?:${res})$`, 'su');
}
