import { readFileSync } from 'node:fs';
import { AlbedoError } from '../core/faults.ts';
import { pyRepr, pyStrRepr } from '../core/py-compat.ts';

/**
 * The architecture lock (spec/validation.md §6): `architecture_spec.json` — bundled beside this
 * file, copied verbatim from spec/ — or the file named by `ALBEDO_ARCH_SPEC`.
 */
export interface ArchitectureSpec {
  readonly architectures: readonly string[];
  /** In file order (the order problems are reported in). */
  readonly expected: ReadonlyArray<readonly [string, unknown]>;
  readonly forbiddenKeys: readonly string[];
}

export const BUNDLED_ARCHITECTURE_SPEC_PATH = new URL('./architecture_spec.json', import.meta.url);

/** Validates the shape `{"architectures": [str], "expected": {key: value}, "forbidden_keys": [str]}`. */
export function parseArchitectureSpec(json: unknown, source = 'architecture spec'): ArchitectureSpec {
  const bad = (why: string) => new AlbedoError('CONFIG', `${source}: ${why}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as Record<string, unknown>;
  const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!isStrList(o.architectures)) throw bad('"architectures" must be a list of strings');
  if (typeof o.expected !== 'object' || o.expected === null || Array.isArray(o.expected)) throw bad('"expected" must be an object');
  const forbidden = o.forbidden_keys ?? [];
  if (!isStrList(forbidden)) throw bad('"forbidden_keys" must be a list of strings');
  return { architectures: o.architectures, expected: Object.entries(o.expected as Record<string, unknown>), forbiddenKeys: forbidden };
}

export function loadArchitectureSpec(path: string | URL = BUNDLED_ARCHITECTURE_SPEC_PATH): ArchitectureSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AlbedoError('CONFIG', `cannot read architecture spec ${String(path)}: ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new AlbedoError('CONFIG', `architecture spec ${String(path)} is not valid JSON`, { cause });
  }
  return parseArchitectureSpec(json, String(path));
}

let bundled: ArchitectureSpec | undefined;
/** The bundled spec, loaded once. */
export function bundledArchitectureSpec(): ArchitectureSpec {
  bundled ??= loadArchitectureSpec();
  return bundled;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Python `==` on JSON values: numbers compare numerically across int/float, booleans equal 0/1,
 * lists element-wise, dicts by key set and values; `None == None`.
 */
export function pyEquals(a: unknown, b: unknown): boolean {
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null);
  const na = num(a);
  const nb = num(b);
  if (na !== null || nb !== null) return na !== null && nb !== null && na === nb;
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && pyEquals(a[k], b[k]));
  }
  return false;
}

export interface ArchitectureVerdict {
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** Problems joined by `"; "`. */
  readonly message: string;
}

/**
 * §6 on a parsed `config.json`: forbidden top-level keys, `architectures` list equality, then
 * each expected key (top level first, else `text_config`) with Python `!=`. Problems accumulate.
 */
export function checkArchitecture(config: unknown, spec: ArchitectureSpec): ArchitectureVerdict {
  if (!isPlainObject(config)) return { ok: false, problems: ['config.json is not a JSON object'], message: 'config.json is not a JSON object' };
  const problems: string[] = [];
  for (const key of spec.forbiddenKeys) {
    if (Object.hasOwn(config, key)) problems.push(`config.json must not contain ${pyStrRepr(key)}`);
  }
  const archs = Object.hasOwn(config, 'architectures') ? config.architectures : null;
  if (!pyEquals(archs, spec.architectures)) problems.push(`architectures mismatch: expected ${pyRepr(spec.architectures)}, got ${pyRepr(archs)}`);
  const text = Object.hasOwn(config, 'text_config') && isPlainObject(config.text_config) ? config.text_config : null;
  for (const [key, expected] of spec.expected) {
    const actual = Object.hasOwn(config, key) ? config[key] : text && Object.hasOwn(text, key) ? text[key] : null;
    if (!pyEquals(actual, expected)) problems.push(`arch key ${pyStrRepr(key)} mismatch: expected ${pyRepr(expected)}, got ${pyRepr(actual)}`);
  }
  return { ok: problems.length === 0, problems, message: problems.join('; ') };
}
