/**
 * From sample id to prompt (spec/duel.md §5): parse `<shard>:<row>:<turn>`, read the row from its
 * sha256-verified shard, extract the conversation turns and build the chat messages the two models are
 * asked to continue. Shared by the GPU eval host (generation) and the miner CLI (local evals), so both
 * see the same prompts for the same ids.
 *
 * Where §5 leaves a detail open this module decides it and says so in a comment; everything Python
 * would print (numbers, containers, the JSON fallback) goes through `core/py-compat.ts` to match upstream.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { DatasetError } from './errors.ts';
import { isMultiSourceManifest, type Manifest, type ManifestShard, V2_SHARD_NAME_RE } from './manifest.ts';
import { createParquetShardReader, createShardVerifier, type ParquetRow, type ParquetShardReader, type ShardVerifier } from './parquet.ts';
import { pyJsonDumps, pyJsonLoads, pyStr } from '../core/py-compat.ts';

/** Longest sample id accepted (real ids are ~45 characters). */
export const MAX_SAMPLE_ID_LENGTH = 1024;
/** Largest row index accepted in a sample id (the manifest row cap). */
export const MAX_SAMPLE_ROW = 100_000_000;
/** Largest turn index accepted in a sample id (trajectories have tens of turns). */
export const MAX_SAMPLE_TURN = 100_000;

/** §5 step 2: where the turns live, in order of preference. */
export const TURN_COLUMNS = ['messages', 'turns', 'conversation', 'trajectory'] as const;
/** §5 step 2: keys under which a dict column may hold the turn list. */
export const NESTED_TURN_KEYS = ['messages', 'turns', 'conversation'] as const;
/** §5 step 3: role keys, first present wins. */
export const ROLE_KEYS = ['role', 'speaker', 'from'] as const;
/** §5 step 3: content keys, first non-null wins. */
export const CONTENT_KEYS = ['content', 'text', 'value', 'message'] as const;
/** §5 step 6: single-prompt columns, first non-empty string wins. */
export const PROMPT_COLUMNS = ['prompt', 'instruction', 'question', 'input', 'text'] as const;

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** A parsed sample id. */
export interface SampleRef {
  readonly shard: string;
  readonly row: number;
  readonly turn: number;
}

/** The model-facing form of one sample. */
export interface Sample {
  readonly sampleId: string;
  /** Prompt messages, oldest first (§5 step 5). */
  readonly messages: readonly ChatMessage[];
  /** The dataset's assistant reply at the sampled turn, when there is one (transcripts only). */
  readonly target: string | null;
}

function badId(id: string, why: string): DatasetError {
  return new DatasetError('invalid_sample_id', `invalid sample id ${JSON.stringify(id.slice(0, 200))}: ${why}`);
}

const DIGITS_RE = /^\d{1,15}$/;

export interface ParseSampleIdOptions {
  /**
   * `v1` (default, §5): the shard is `data/train-*.parquet`. `v2` (§13): it may sit under one source
   * directory, `[<dir>/]data/train-*.parquet`.
   */
  readonly layout?: 'v1' | 'v2';
}

/**
 * §5: splits at the last two `:`; the shard must be a train parquet file (see {@link ParseSampleIdOptions}),
 * row and turn plain non-negative decimal integers within {@link MAX_SAMPLE_ROW} / {@link MAX_SAMPLE_TURN}.
 * Besides the prefix / suffix rule, a v1 shard may not contain `..` segments or backslashes, so
 * an id can never name a file outside the dataset root.
 */
export function parseSampleId(id: string, options: ParseSampleIdOptions = {}): SampleRef {
  if (typeof id !== 'string' || id.length > MAX_SAMPLE_ID_LENGTH) throw badId(String(id), `longer than ${MAX_SAMPLE_ID_LENGTH} characters`);
  const last = id.lastIndexOf(':');
  const middle = last > 0 ? id.lastIndexOf(':', last - 1) : -1;
  if (middle < 0) throw badId(id, 'expected <shard>:<row>:<turn>');
  const shard = id.slice(0, middle);
  const rowText = id.slice(middle + 1, last);
  const turnText = id.slice(last + 1);
  const shardOk =
    options.layout === 'v2'
      ? V2_SHARD_NAME_RE.test(shard)
      : shard.startsWith('data/train-') && shard.endsWith('.parquet') && !shard.includes('\\') && !shard.split('/').includes('..');
  if (!shardOk) throw badId(id, options.layout === 'v2' ? 'shard must be [<dir>/]data/train-*.parquet' : 'shard must be data/train-*.parquet');
  if (!DIGITS_RE.test(rowText) || Number(rowText) > MAX_SAMPLE_ROW) throw badId(id, `row must be an integer 0..${MAX_SAMPLE_ROW}`);
  if (!DIGITS_RE.test(turnText) || Number(turnText) > MAX_SAMPLE_TURN) throw badId(id, `turn must be an integer 0..${MAX_SAMPLE_TURN}`);
  return { shard, row: Number(rowText), turn: Number(turnText) };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** §5 step 2: the turn list of a row, or null when no column holds one. */
export function extractTurns(row: ParquetRow): readonly unknown[] | null {
  for (const column of TURN_COLUMNS) {
    if (!Object.hasOwn(row, column)) continue;
    let value = row[column];
    if (typeof value === 'string') {
      try {
        value = pyJsonLoads(value);
      } catch {
        continue;
      }
    }
    if (Array.isArray(value)) return value;
    if (isPlainObject(value)) {
      for (const key of NESTED_TURN_KEYS) {
        const nested = value[key];
        if (Array.isArray(nested)) return nested;
      }
    }
  }
  return null;
}

/**
 * §5 step 3: `(role, content)` of one turn. Role = the first of `role` / `speaker` / `from` that is
 * present as a key (its value `str()`-ed and lower-cased, so a present `null` reads `none`), `''`
 * when none is; content = `str()` of the first non-null of `content` / `text` / `value` / `message`,
 * `''` when all are null. §5 does not say what a turn that is not an object is: it reads as
 * `('', '')`, i.e. a user turn with no content.
 */
export function turnRoleAndContent(turn: unknown): { role: string; content: string } {
  if (!isPlainObject(turn)) return { role: '', content: '' };
  const roleKey = ROLE_KEYS.find((k) => Object.hasOwn(turn, k));
  const role = roleKey === undefined ? '' : pyStr(turn[roleKey]).toLowerCase();
  const contentKey = CONTENT_KEYS.find((k) => turn[k] !== null && turn[k] !== undefined);
  return { role, content: contentKey === undefined ? '' : pyStr(turn[contentKey]) };
}

/** §5 step 5 role mapping. */
export function mapRole(role: string): ChatRole {
  switch (role) {
    case 'assistant':
    case 'system':
    case 'user':
      return role;
    case 'gpt':
    case 'bot':
    case 'model':
      return 'assistant';
    default:
      // human, prompter and anything unknown
      return 'user';
  }
}

/**
 * Columns left out of the §5 step 6 JSON dump. §5 says "without internal columns" without listing
 * them; the only internal columns parquet writers add are pandas' index columns (`__index_level_0__`),
 * so every column whose name starts with `__` is internal.
 */
export function isInternalColumn(name: string): boolean {
  return name.startsWith('__');
}

/**
 * §5 steps 2–6 for one row: the prompt messages and the target of turn `turn`.
 *
 * "Role `assistant`" in steps 4 and 5 is the raw lower-cased role (step 3), before the step 5
 * mapping, as the spec orders the steps: a `gpt` turn is not counted in `assistant_idx`.
 */
export function buildSample(sampleId: string, row: ParquetRow, turn: number): Sample {
  const turns = extractTurns(row);
  if (turns !== null && turns.length > 0) {
    const parsed = turns.map(turnRoleAndContent);
    const assistantIdx: number[] = [];
    parsed.forEach((t, i) => {
      if (t.role === 'assistant') assistantIdx.push(i);
    });
    const sourceIndex = turn < assistantIdx.length ? assistantIdx[turn]! : Math.min(turn, parsed.length - 1);
    const messages = parsed
      .slice(0, sourceIndex)
      .filter((t) => t.content !== '')
      .map((t) => ({ role: mapRole(t.role), content: t.content }));
    const source = parsed[sourceIndex]!;
    return { sampleId, messages, target: source.role === 'assistant' ? source.content : null };
  }
  for (const column of PROMPT_COLUMNS) {
    const value = row[column];
    if (typeof value === 'string' && value !== '') return { sampleId, messages: [{ role: 'user', content: value }], target: null };
  }
  const visible: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) if (!isInternalColumn(name)) visible[name] = value;
  return { sampleId, messages: [{ role: 'user', content: pyJsonDumps(visible) }], target: null };
}

/**
 * §5 step 7 fallback (tests, and hosts without the pinned genesis template): each message as
 * `<|im_start|>{role}\n{content}<|im_end|>`, joined by `\n`, then `\n<|im_start|>assistant\n`.
 * Production prompts use the pinned canonical genesis chat template: dataset/chat-template.ts, whose
 * `FALLBACK_CHAT_RENDERER` wraps this function behind the same renderer interface.
 */
export function renderFallbackChatTemplate(messages: readonly ChatMessage[]): string {
  return `${messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>`).join('\n')}\n<|im_start|>assistant\n`;
}

export interface SampleLoaderOptions {
  /** Directory the shard names are relative to (config.md `ALBEDO_REMOTE_DATASET_ROOT`). */
  readonly datasetRoot: string;
  /** The validated manifest the ids were sampled from; its shard hashes are enforced. */
  readonly manifest: Manifest;
  /**
   * Refuse shards the manifest lists without a sha256 (`shard_hash_missing`). §5 makes the check a
   * product requirement, so it is on unless a test dataset explicitly has no hashes.
   * @default true
   */
  readonly requireShardHash?: boolean;
  /** Shared across loaders to share the footer cache. @default createParquetShardReader() */
  readonly reader?: ParquetShardReader;
  /** Shared across loaders to verify each shard once per process. @default createShardVerifier() */
  readonly verifier?: ShardVerifier;
}

/** Loads samples by id. */
export interface SampleLoader {
  /** One sample. */
  load(sampleId: string): Promise<Sample>;
  /** Many samples, in the given order; each distinct (shard, row) is read once. */
  loadAll(sampleIds: readonly string[]): Promise<Sample[]>;
}

function manifestShards(manifest: Manifest): Map<string, ManifestShard> {
  const shards = new Map<string, ManifestShard>();
  if (isMultiSourceManifest(manifest)) {
    for (const source of manifest.sources) for (const shard of source.shards) shards.set(shard.name, shard);
  } else {
    for (const shard of manifest.shards) shards.set(shard.name, shard);
  }
  return shards;
}

/**
 * @example
 * const loader = createSampleLoader({ datasetRoot: '/data/swe-zero', manifest });
 * const samples = await loader.loadAll(sweZeroManifestSampleIds(manifest, blockHash));
 */
export function createSampleLoader(options: SampleLoaderOptions): SampleLoader {
  const root = resolve(options.datasetRoot);
  const shards = manifestShards(options.manifest);
  const layout = isMultiSourceManifest(options.manifest) ? 'v2' : 'v1';
  const reader = options.reader ?? createParquetShardReader();
  const verifier = options.verifier ?? createShardVerifier();
  const requireHash = options.requireShardHash ?? true;

  function shardPath(shard: string): { path: string; sha256: string | null } {
    const entry = shards.get(shard);
    if (!entry) throw new DatasetError('shard_not_in_manifest', `dataset shard ${shard} is not listed in the manifest`);
    const path = resolve(root, shard);
    const rel = relative(root, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new DatasetError('invalid_sample_id', `dataset shard ${shard} resolves outside the dataset root`);
    if (entry.sha256 === null && requireHash) throw new DatasetError('shard_hash_missing', `the manifest lists no sha256 for dataset shard ${shard}`);
    return { path, sha256: entry.sha256 };
  }

  async function readRow(ref: SampleRef): Promise<ParquetRow> {
    const { path, sha256 } = shardPath(ref.shard);
    if (sha256 !== null) await verifier.verify(path, sha256);
    return reader.readRow(path, ref.row);
  }

  return {
    async load(sampleId) {
      const ref = parseSampleId(sampleId, { layout });
      return buildSample(sampleId, await readRow(ref), ref.turn);
    },
    async loadAll(sampleIds) {
      const refs = sampleIds.map((id) => parseSampleId(id, { layout }));
      const rows = new Map<string, Promise<ParquetRow>>();
      // Sequential per distinct row: shards are verified once and the host's disk is not thrashed.
      const out: Sample[] = [];
      for (const [i, ref] of refs.entries()) {
        const key = `${ref.shard}\0${ref.row}`;
        let row = rows.get(key);
        if (!row) {
          row = readRow(ref);
          rows.set(key, row);
        }
        out.push(buildSample(sampleIds[i]!, await row, ref.turn));
      }
      return out;
    },
  };
}
