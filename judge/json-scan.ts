/**
 * Finds JSON objects embedded in free text, like Python's `raw_decode` tried at every `{` position
 * (duel.md §9.2 parsing and reply sanitising). Model answers are attacker-controlled and can be long,
 * so validation fails fast and the total work is bounded: a pathological reply cannot stall the judge.
 */

/**
 * Upper bound on characters inspected across all `{` positions of one text.
 * @default 4_000_000
 */
export const DEFAULT_SCAN_BUDGET_CHARS = 4_000_000;

export interface ScanResult {
  /** Decoded objects in order of their opening brace (a parent precedes its nested objects). */
  readonly objects: Record<string, unknown>[];
  /** True when the budget ran out before every `{` was tried. */
  readonly truncated: boolean;
}

/**
 * Fail-fast JSON validator: returns the end (exclusive) of the JSON value starting at `i`, or -1.
 * Braces in ordinary code or prose fail within a few characters, so only JSON-looking text costs
 * real work; every inspected character is charged to `budget`.
 */
class JsonPrefix {
  constructor(
    private readonly text: string,
    private readonly budget: { left: number },
  ) {}

  private ws(i: number): number {
    const t = this.text;
    while (i < t.length) {
      const c = t.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      i += 1;
    }
    this.budget.left -= 1;
    return i;
  }

  private string(i: number): number {
    const t = this.text;
    if (t.charCodeAt(i) !== 0x22) return -1;
    for (let j = i + 1; j < t.length; j += 1) {
      if (--this.budget.left < 0) return -1;
      const c = t.charCodeAt(j);
      if (c === 0x22) return j + 1;
      if (c < 0x20) return -1;
      if (c === 0x5c) {
        const e = t[j + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(j + 2, j + 6))) return -1;
          j += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) j += 1;
        else return -1;
      }
    }
    return -1;
  }

  value(i: number, depth: number): number {
    if (depth > 256 || this.budget.left < 0) return -1;
    const t = this.text;
    const c = t[i];
    if (c === '"') return this.string(i);
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      let j = this.ws(i + 1);
      if (t[j] === close) return j + 1;
      for (;;) {
        if (c === '{') {
          j = this.string(j);
          if (j === -1) return -1;
          j = this.ws(j);
          if (t[j] !== ':') return -1;
          j = this.ws(j + 1);
        }
        j = this.value(j, depth + 1);
        if (j === -1) return -1;
        j = this.ws(j);
        if (t[j] === close) return j + 1;
        if (t[j] !== ',') return -1;
        j = this.ws(j + 1);
      }
    }
    // Python's json also decodes NaN / Infinity / -Infinity (allow_nan defaults to True).
    for (const literal of PY_LITERALS) if (t.startsWith(literal, i)) return i + literal.length;
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(t.slice(i, i + 64));
    if (!m) return -1;
    this.budget.left -= m[0].length;
    return i + m[0].length;
  }
}

const PY_LITERALS = ['true', 'false', 'null', 'NaN', 'Infinity', '-Infinity'] as const;

/**
 * A JSON number kept as its source text, so Python's `str()` of the decoded value can be reproduced
 * (`1.0` stays a float and prints `1.0`; big integers keep every digit). Produced only when a scan is
 * asked for `numbers: 'py'`.
 */
export class PyJsonNumber {
  constructor(readonly source: string) {}
  /** Python decodes `1`, `-0`, `12` as int and anything with `.`, `e`, `E` (or NaN/Infinity) as float. */
  get isFloat(): boolean {
    return /[.eEIN]/.test(this.source);
  }
  get value(): number {
    return Number(this.source);
  }
}

export type NumberMode = 'js' | 'py';

/** Decodes a slice the validator accepted; numbers per `mode`, own properties only (no prototype keys). */
class Decoder {
  private i = 0;
  constructor(
    private readonly t: string,
    private readonly mode: NumberMode,
  ) {}

  static decode(text: string, mode: NumberMode): unknown {
    return new Decoder(text, mode).value();
  }

  private ws(): void {
    while (this.i < this.t.length && ' \t\n\r'.includes(this.t[this.i] as string)) this.i += 1;
  }

  private string(): string {
    const start = this.i;
    this.i += 1;
    while (this.t[this.i] !== '"') this.i += this.t[this.i] === '\\' ? 2 : 1;
    this.i += 1;
    return JSON.parse(this.t.slice(start, this.i)) as string;
  }

  private value(): unknown {
    this.ws();
    const c = this.t[this.i];
    if (c === '"') return this.string();
    if (c === '{') {
      const obj: Record<string, unknown> = {};
      this.i += 1;
      this.ws();
      if (this.t[this.i] === '}') {
        this.i += 1;
        return obj;
      }
      for (;;) {
        this.ws();
        const key = this.string();
        this.ws();
        this.i += 1; // ':'
        // defineProperty keeps "__proto__" an ordinary own key; a later duplicate overwrites (like Python).
        Object.defineProperty(obj, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
        this.ws();
        if (this.t[this.i++] === '}') return obj;
      }
    }
    if (c === '[') {
      const arr: unknown[] = [];
      this.i += 1;
      this.ws();
      if (this.t[this.i] === ']') {
        this.i += 1;
        return arr;
      }
      for (;;) {
        arr.push(this.value());
        this.ws();
        if (this.t[this.i++] === ']') return arr;
      }
    }
    for (const literal of PY_LITERALS) {
      if (this.t.startsWith(literal, this.i)) {
        this.i += literal.length;
        if (literal === 'true') return true;
        if (literal === 'false') return false;
        if (literal === 'null') return null;
        return this.mode === 'py' ? new PyJsonNumber(literal) : Number(literal);
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.t.slice(this.i, this.i + 64)) as RegExpExecArray;
    this.i += m[0].length;
    return this.mode === 'py' ? new PyJsonNumber(m[0]) : Number(m[0]);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every JSON object that decodes at some `{` position of `text`. */
export function scanJsonObjects(text: string, budgetChars: number = DEFAULT_SCAN_BUDGET_CHARS, numbers: NumberMode = 'js'): ScanResult {
  const objects: Record<string, unknown>[] = [];
  const budget = { left: budgetChars };
  const parser = new JsonPrefix(text, budget);
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) {
    const end = parser.value(i, 0);
    if (budget.left < 0) return { objects, truncated: true };
    if (end === -1) continue; // not JSON at this position (code, prose): try the next brace
    const value: unknown = Decoder.decode(text.slice(i, end), numbers);
    if (isPlainObject(value)) objects.push(value);
  }
  return { objects, truncated: false };
}

/** Objects inside fenced code blocks (```json … ``` or ``` … ```), decoded as a whole. */
export function fencedJsonObjects(text: string, numbers: NumberMode = 'js'): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const match of text.matchAll(/```(?:json)?[ \t]*\r?\n?([\s\S]*?)```/gi)) {
    // json.loads(block): JSON whitespace around one value, nothing else.
    const block = (match[1] ?? '').replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '');
    if (!block.startsWith('{')) continue;
    const budget = { left: DEFAULT_SCAN_BUDGET_CHARS };
    if (new JsonPrefix(block, budget).value(0, 0) !== block.length || budget.left < 0) continue; // not a JSON block
    const value = Decoder.decode(block, numbers);
    if (isPlainObject(value)) out.push(value);
  }
  return out;
}
