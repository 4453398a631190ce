/**
 * The one Python-compatibility module (spec/compat.md): the Python value semantics that the dataset
 * sampler, prompt construction and validation messages must reproduce to stay bit-exact with upstream:
 * truthiness, `int()`, `str()` / `repr()`, `==` against an int, code-point string order and
 * `json.dumps(..., sort_keys=True)` with its default `ensure_ascii=True` and `", "` / `": "` separators.
 *
 * JS cannot tell the JSON number `3.0` from `3`; parquet readers can, so values read from float
 * columns are wrapped in {@link PyFloat} to print as Python floats (`3.0`). A bare integral JS
 * number is treated as a Python int.
 */

/** A value that Python holds as a `float` (prints `3.0`, `1e-05`, `inf`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Code-point order (Python `str` comparison), not UTF-16 code-unit order (JS `<`). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF, so they must sort after E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof PyFloat) && !(value instanceof Date);
}

/** Python `bool(value)` for JSON-like values. */
export function pyTruthy(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'string') return value.length > 0;
  if (value instanceof PyFloat) return value.value !== 0;
  if (Array.isArray(value)) return value.length > 0;
  if (ArrayBuffer.isView(value)) return value.byteLength > 0;
  if (isPlainObject(value)) return Object.keys(value).length > 0;
  return true;
}

/** Python `value == n` for an int `n` (bools are 0/1; strings and containers never equal). */
export function pyEquals(value: unknown, n: number): boolean {
  if (typeof value === 'boolean') return (value ? 1 : 0) === n;
  if (typeof value === 'number') return value === n;
  if (typeof value === 'bigint') return value === BigInt(n);
  if (value instanceof PyFloat) return value.value === n;
  return false;
}

/** ASCII forms Python's `int(str)` accepts: surrounding whitespace, a sign, digits with single `_`. */
const INT_STRING_RE = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/;

/**
 * Python `int(value)` for JSON-like values, as a float64 number (exact below 2^53, and order-preserving
 * above, which is all the samplers need). Returns `null` where Python raises (None, containers,
 * non-numeric strings, non-ASCII digit strings — the last one stricter than Python).
 */
export function pyInt(value: unknown): number | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : null;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof PyFloat) return Number.isFinite(value.value) ? Math.trunc(value.value) : null;
  if (typeof value === 'string') {
    const m = INT_STRING_RE.exec(value);
    if (!m) return null;
    const magnitude = Number(m[2]!.replaceAll('_', ''));
    return m[1] === '-' ? -magnitude : magnitude;
  }
  return null;
}

/** Python `repr(float)`: shortest round-trip digits; exponent form when the exponent is < -4 or ≥ 16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Number.POSITIVE_INFINITY) return 'inf';
  if (x === Number.NEGATIVE_INFINITY) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives JS's shortest round-trip digits, the same digit string
  // as Python's repr (both are the shortest correctly rounded representation).
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${frac}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const fracPart = digits.slice(exp + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** Python's `str.isprintable()` is false for these categories (the space character excepted). */
const NON_PRINTABLE_RE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Python `repr(str)` (quote choice and escapes of `unicode_repr`). */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x7f) out += ch;
    else if (ch !== ' ' && NON_PRINTABLE_RE.test(ch)) {
      out += cp <= 0xff ? `\\x${hex(cp, 2)}` : cp <= 0xffff ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}

function pyBytesRepr(bytes: Uint8Array): string {
  let hasSingle = false;
  let hasDouble = false;
  for (const b of bytes) {
    if (b === 0x27) hasSingle = true;
    if (b === 0x22) hasDouble = true;
  }
  const quote = hasSingle && !hasDouble ? '"' : "'";
  let out = `b${quote}`;
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (b < 0x20 || b >= 0x7f) out += `\\x${hex(b, 2)}`;
    else out += ch;
  }
  return out + quote;
}

/**
 * Python `repr(value)` for JSON-like values (dicts keep insertion order). Dates print as their ISO
 * string (Python would print a `datetime(...)`; no protocol field carries one).
 */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return pyStrRepr(value);
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (value instanceof Date) return pyStrRepr(value.toISOString());
  if (value instanceof Uint8Array) return pyBytesRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (isPlainObject(value)) return `{${Object.entries(value).map(([k, v]) => `${pyStrRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  return pyStrRepr(String(value));
}

/** Python `str(value)`: strings as they are, everything else as {@link pyRepr}. */
export function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** JSON string with `ensure_ascii=True`: every code unit outside printable ASCII is `\uXXXX`. */
function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${hex(c, 4)}`;
    else out += s[i];
  }
  return out + '"';
}

function jsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  return pyFloatRepr(x);
}

/**
 * Python `json.dumps(value, sort_keys=True)` (defaults otherwise: `ensure_ascii=True`, separators
 * `", "` and `": "`). Keys sort in code-point order. Values `json` cannot encode (bytes, dates) are
 * written as their {@link pyStr} string, i.e. as if `default=str` had been passed.
 */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : jsonFloat(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return jsonString(value);
  if (value instanceof PyFloat) return jsonFloat(value.value);
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort(compareCodePoints);
    return `{${keys.map((k) => `${jsonString(k)}: ${pyJsonDumps(value[k])}`).join(', ')}}`;
  }
  return jsonString(pyStr(value));
}

/** Thrown by {@link pyJsonLoads} where Python's `json.loads` raises `JSONDecodeError`. */
export class PyJsonError extends Error {
  override readonly name = 'PyJsonError';
}

const JSON_NUMBER_RE = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const JSON_WS_RE = /[ \t\n\r]*/y;

/**
 * Python `json.loads` for the values the prompt code inspects: like `JSON.parse`, but numbers written
 * with a fraction or exponent become {@link PyFloat} (Python floats), integers beyond 2^53 become
 * `bigint`, and `NaN` / `Infinity` / `-Infinity` are accepted, as Python accepts them. Control
 * characters inside strings are rejected (Python's `strict=True`); lone surrogate escapes are kept.
 */
export function pyJsonLoads(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new PyJsonError(`${what} at char ${i}`);
  };
  const ws = () => {
    JSON_WS_RE.lastIndex = i;
    JSON_WS_RE.exec(text);
    i = JSON_WS_RE.lastIndex;
  };
  const parseString = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      const start = i;
      while (i < text.length) {
        const c = text.charCodeAt(i);
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        i++;
      }
      out += text.slice(start, i);
      if (i >= text.length) fail('Unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail('Invalid control character');
      const e = text[i + 1];
      i += 2;
      if (e === 'u') {
        const h = text.slice(i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('Invalid \\uXXXX escape');
        out += String.fromCharCode(Number.parseInt(h, 16));
        i += 4;
      } else {
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        const s = e === undefined ? undefined : simple[e];
        if (s === undefined) fail('Invalid \\escape');
        out += s;
      }
    }
  };
  const parseValue = (depth: number): unknown => {
    if (depth > 1000) fail('Nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const key = parseString();
        ws();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        const value = parseValue(depth + 1);
        Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '"') return parseString();
    for (const [word, value] of [
      ['null', null],
      ['true', true],
      ['false', false],
      ['NaN', new PyFloat(Number.NaN)],
      ['Infinity', new PyFloat(Number.POSITIVE_INFINITY)],
      ['-Infinity', new PyFloat(Number.NEGATIVE_INFINITY)],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return value;
      }
    }
    JSON_NUMBER_RE.lastIndex = i;
    const m = JSON_NUMBER_RE.exec(text);
    if (!m) return fail('Expecting value');
    i = JSON_NUMBER_RE.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(m[0]));
    const n = Number(m[0]);
    return Number.isSafeInteger(n) ? n : BigInt(m[0]);
  };
  const value = parseValue(0);
  ws();
  if (i !== text.length) fail('Extra data');
  return value;
}

/** `sorted(xs)` for strings (code-point order). */
export function pySorted(xs: Iterable<string>): string[] {
  return [...xs].sort(compareCodePoints);
}

/** `repr(list_of_str)`, e.g. `['a.json', 'b.py']`. */
export function pyReprList(xs: readonly string[]): string {
  return `[${xs.map(pyStrRepr).join(', ')}]`;
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
