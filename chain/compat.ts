/**
 * The Python-compatibility rules the chain layer needs (spec/compat.md §1, §2, §6).
 *
 * compat.md asks for one shared `py-compat` module; until that module exists this file holds the
 * chain's subset with its own tests. Move it there unchanged when the shared module lands — do not
 * re-implement these rules elsewhere.
 */

/**
 * Python's `round(x)` without digits: round half to even on the exact binary value (compat.md §1).
 * @example roundHalfEven(2.5) // 2
 * @example roundHalfEven(32767.5) // 32768
 */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot round ${x}`);
  const floor = Math.floor(x);
  // Exact for every finite double: x and floor(x) share the exponent range, so the difference is exact.
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** A JSON value that {@link canonicalJson} can serialise. Floats are rejected (see below). */
export type CanonicalJsonValue =
  | string
  | boolean
  | null
  | number
  | readonly CanonicalJsonValue[]
  | { readonly [key: string]: CanonicalJsonValue };

/** Compares strings by Unicode code point, like Python's `sorted()` (compat.md §8). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done === true) return y.done === true ? 0 : -1;
    if (y.done === true) return 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

const SHORT_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x22, '\\"'],
  [0x5c, '\\\\'],
  [0x0a, '\\n'],
  [0x0d, '\\r'],
  [0x09, '\\t'],
  [0x08, '\\b'],
  [0x0c, '\\f'],
]);

/**
 * Python `json.dumps(s)` with `ensure_ascii=True`: everything outside `' '..'~'` is escaped; code
 * units are escaped one by one, so astral characters become a lowercase surrogate pair and DEL
 * (0x7f) becomes `\u007f`, exactly as CPython's `ESCAPE_ASCII` does.
 */
export function pyJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES.get(c);
    if (short !== undefined) out += short;
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

/**
 * `json.dumps(obj, sort_keys=True, separators=(",", ":"))` (compat.md §2) for the value shapes the
 * chain layer hashes: strings, booleans, null, safe integers, arrays and objects. Keys are sorted by
 * code point. Non-integer numbers throw: Python float repr is not needed here and must not be
 * approximated with `JSON.stringify`.
 */
export function canonicalJson(value: CanonicalJsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return pyJsonString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`canonicalJson: only safe integers are supported, got ${value}`);
    return Object.is(value, -0) ? '0' : String(value);
  }
  if (Array.isArray(value)) return `[${(value as readonly CanonicalJsonValue[]).map(canonicalJson).join(',')}]`;
  const obj = value as { readonly [key: string]: CanonicalJsonValue };
  const keys = Object.keys(obj).sort(compareCodePoints);
  const items: string[] = [];
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined) throw new TypeError(`canonicalJson: undefined value for key ${JSON.stringify(key)}`);
    items.push(`${pyJsonString(key)}:${canonicalJson(v)}`);
  }
  return `{${items.join(',')}}`;
}

/**
 * `bytes.decode("utf-8", errors="ignore")` (compat.md §6): invalid sequences are dropped, never
 * replaced. Error ranges follow CPython: an invalid start byte drops one byte; a truncated or invalid
 * multi-byte sequence drops its maximal valid prefix and decoding resumes at the offending byte.
 * Surrogates (ED A0..BF) and overlongs (C0, C1, E0 80..9F, F0 80..8F) are invalid; > U+10FFFF too.
 * A BOM is kept (Python's "utf-8" codec does not strip it).
 */
export function utf8DecodeIgnore(bytes: Uint8Array): string {
  const parts: string[] = [];
  let codePoints: number[] = [];
  const flush = (): void => {
    if (codePoints.length > 0) {
      parts.push(String.fromCodePoint(...codePoints));
      codePoints = [];
    }
  };
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b0 = bytes[i] as number;
    if (b0 < 0x80) {
      codePoints.push(b0);
      i += 1;
    } else {
      let need: number;
      let lo = 0x80;
      let hi = 0xbf;
      let cp: number;
      if (b0 >= 0xc2 && b0 <= 0xdf) {
        need = 1;
        cp = b0 & 0x1f;
      } else if (b0 >= 0xe0 && b0 <= 0xef) {
        need = 2;
        cp = b0 & 0x0f;
        if (b0 === 0xe0) lo = 0xa0;
        else if (b0 === 0xed) hi = 0x9f;
      } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        need = 3;
        cp = b0 & 0x07;
        if (b0 === 0xf0) lo = 0x90;
        else if (b0 === 0xf4) hi = 0x8f;
      } else {
        i += 1; // invalid start byte
        continue;
      }
      let j = i + 1;
      let ok = true;
      for (let k = 0; k < need; k++, j++) {
        const b = j < n ? (bytes[j] as number) : -1;
        const l = k === 0 ? lo : 0x80;
        const h = k === 0 ? hi : 0xbf;
        if (b < l || b > h) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3f);
      }
      if (ok) codePoints.push(cp);
      i = j; // on error j points at the offending byte (or the end): the valid prefix is dropped
    }
    if (codePoints.length >= 4096) flush();
  }
  flush();
  return parts.join('');
}

/** Strict UTF-8 decoding that throws on any invalid sequence and keeps a leading BOM. */
export function utf8DecodeStrict(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/** True if `s` contains an unpaired UTF-16 surrogate (cannot be UTF-8 encoded or stored in Postgres). */
export function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
