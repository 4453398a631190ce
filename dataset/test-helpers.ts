/**
 * Test-only helpers. Loader for tests/fixtures/pyrandom/prompts.json (written by gen_prompts.py). Python values
 * JSON cannot carry to JS are tagged there: `{"$float": repr}` → {@link PyFloat}, `{"$int": digits}` →
 * bigint. Also writes parquet fixtures. Imported by the `*.test.ts` files of this folder only.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ChatMessage } from './samples.ts';
import { PyFloat } from '../core/py-compat.ts';

export interface PromptCase {
  turn: number;
  messages: ChatMessage[];
  target: string | null;
  rendered: string;
}

export interface PromptFixtures {
  python: string;
  rows: { name: string; row: Record<string, unknown>; cases: PromptCase[] }[];
  float_repr: string[];
  str_repr: [string, string, string][];
  json_dumps: [unknown, string][];
  json_loads: [string, unknown][];
}

const SPECIAL_FLOATS: Record<string, number> = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, '-inf': Number.NEGATIVE_INFINITY };

/** Python float repr → the float (repr round-trips; `nan` / `inf` spelled the Python way). */
export function parsePyFloat(repr: string): number {
  return SPECIAL_FLOATS[repr] ?? Number(repr);
}

function untag(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const v = value as Record<string, unknown>;
    if (keys.length === 1 && typeof v.$float === 'string') return new PyFloat(parsePyFloat(v.$float));
    if (keys.length === 1 && typeof v.$int === 'string') return BigInt(v.$int);
  }
  return value;
}

export function loadPromptFixtures(): PromptFixtures {
  return JSON.parse(readFileSync(new URL('../tests/fixtures/pyrandom/prompts.json', import.meta.url), 'utf8'), untag) as PromptFixtures;
}

/** Options of {@link writeParquetFile}: hyparquet-writer's, minus the writer. */
export type WriteParquetOptions = Omit<import('hyparquet-writer').ParquetWriteOptions, 'writer'>;

/**
 * Writes a parquet file with hyparquet-writer and returns its sha256 (tests; the local stack uses dataset/synthetic.ts).
 * Loaded lazily so importing this module for the JSON fixtures does not need the writer.
 */
export async function writeParquetFile(path: string, options: WriteParquetOptions): Promise<string> {
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const bytes = new Uint8Array(parquetWriteBuffer(options));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return createHash('sha256').update(bytes).digest('hex');
}
