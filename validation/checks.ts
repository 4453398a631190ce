import { createHash } from 'node:crypto';
import { type FaultCode, type StageFault, stageFault } from '../core/faults.ts';
import { type AllowlistProfile, checkFileAllowlist } from './allowlist.ts';
import { type ArchitectureSpec, bundledArchitectureSpec, checkArchitecture } from './architecture.ts';
import { checkRepoName, DEFAULT_REPO_NAME_PATTERN, type ModelBackend, type ModelRef, parseModelRef } from './model-ref.ts';
import { LocalDirStore, MAX_RANGE_BYTES, type ModelStore, ModelStoreError, type StoreFile } from './model-store.ts';
import { compareCodePoints, pyReprList, pySorted } from '../core/py-compat.ts';
import {
  DEFAULT_MAX_SAFETENSORS_HEADER_BYTES,
  disallowedDtypes,
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsHeader,
  weightDtypeMessage,
} from './safetensors.ts';
import { abortableSleep } from '../core/io.ts';

/**
 * The artifact checks of spec/validation.md §1 that need no full download, in spec order:
 * 1 model ref, 2 repo name, 3 listing, 4 file allowlist, 5 header-only dtype preflight with the
 * full §4.2 header rules (sizes come from the listing), 6 architecture lock, 9 safetensors index
 * consistency (tensor names come from the preflight headers). Steps 7–8 and 10–12 (download,
 * fingerprint, dedup) belong to the later validation issue and slot in between.
 *
 * {@link runModelChecks} never throws: every outcome is a list of per-check records plus at most
 * one fault (the first failing check decides).
 */

export const MODEL_CHECKS = ['model_ref', 'repo_name', 'list_files', 'file_manifest', 'safetensors_preflight', 'architecture', 'safetensors_index'] as const;
/** Step 6b (§6.1) runs only under the `v2` allowlist profile, right after the architecture lock. */
export const V2_MODEL_CHECKS = ['model_ref', 'repo_name', 'list_files', 'file_manifest', 'safetensors_preflight', 'architecture', 'genesis_pins', 'safetensors_index'] as const;
export type ModelCheckName = (typeof V2_MODEL_CHECKS)[number];

/** The model checks of a profile, in spec order. */
export function modelChecksFor(profile: AllowlistProfile): readonly ModelCheckName[] {
  return profile === 'v2' ? V2_MODEL_CHECKS : MODEL_CHECKS;
}

/**
 * The checks `albedo check-model --path` runs on a local directory (spec/miner-cli.md §3): the
 * validator's own steps minus the reference parsing; `repo_name` only when a repo is given.
 */
export function localChecksFor(profile: AllowlistProfile, withRepo: boolean): readonly ModelCheckName[] {
  return modelChecksFor(profile).filter((n) => n !== 'model_ref' && (withRepo || n !== 'repo_name'));
}
/** T4 pre-checks and the final digest reservation run by the stage (validation/stage.ts). */
export type StageCheckName = 'hotkey_banned' | 'hotkey_already_validated' | 'duplicate_digest' | 'digest_reservation' | 'download' | 'disk_headers' | 'fingerprint' | 'dedup';
export type CheckName = ModelCheckName | StageCheckName;

export interface CheckRecord {
  readonly name: CheckName;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly faultCode?: FaultCode;
  readonly detail: string;
  /** Small structured summary (e.g. the allowlist fault summary `{files}`). */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** Cap on `config.json` (the real one is ~5 KB). @default 4 MiB */
export const DEFAULT_MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Cap on `model.safetensors.index.json` (the 35B MoE index is a few MB). @default 64 MiB */
export const DEFAULT_MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** Delay before a 404 is confirmed (spec §1 step 3: "a second confirmation 60 s later"). @default 60000 */
export const DEFAULT_NOT_FOUND_RECHECK_MS = 60_000;

export interface ModelCheckOptions {
  readonly store: ModelStore;
  /** `ALBEDO_REPO_NAME_PATTERN`. @default DEFAULT_REPO_NAME_PATTERN */
  readonly repoPattern?: RegExp;
  /** `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES`. @default DEFAULT_MAX_SAFETENSORS_HEADER_BYTES */
  readonly maxHeaderBytes?: number;
  /** `ALBEDO_MODEL_BACKENDS`. @default ['hippius'] (v1) */
  readonly backends?: readonly ModelBackend[];
  /** `ALBEDO_ALLOW_MUTABLE_REF` (dev only). @default false */
  readonly allowMutableRef?: boolean;
  /** `ALBEDO_ALLOWLIST_PROFILE`. @default 'seed-live' */
  readonly allowlistProfile?: AllowlistProfile;
  /** `ALBEDO_ARCH_SPEC`. @default the bundled architecture_spec.json */
  readonly archSpec?: ArchitectureSpec;
  /** @default DEFAULT_NOT_FOUND_RECHECK_MS */
  readonly notFoundRecheckMs?: number;
  /** @default DEFAULT_MAX_CONFIG_BYTES */
  readonly maxConfigBytes?: number;
  /** @default DEFAULT_MAX_INDEX_BYTES */
  readonly maxIndexBytes?: number;
  /** Called after each check ends (progress events); errors are ignored. */
  readonly onCheck?: (record: CheckRecord) => void | Promise<void>;
  /** The v2 byte pins (§6.1); required when `allowlistProfile` is `v2`. */
  readonly genesisPins?: GenesisPins;
}

/**
 * §6.1 byte pins: `ALBEDO_CHAT_TEMPLATE_SHA256` and `ALBEDO_GENESIS_FILE_HASHES` (`{file: sha256}`),
 * and the genesis reference named in mismatch messages.
 */
export interface GenesisPins {
  readonly chatTemplateSha256: string;
  readonly fileHashes: Readonly<Record<string, string>>;
  /** e.g. the genesis `model_uri`. */
  readonly genesisRef: string;
}

/** The genesis metadata files whose bytes are pinned under v2 (§6.1), in spec order. */
export const GENESIS_PINNED_FILES = ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer_config.json', 'tokenizer.json', 'video_preprocessor_config.json'] as const;
/** Cap on one pinned metadata file (tokenizer.json of the base model is ~11 MB). @default 64 MiB */
export const DEFAULT_MAX_PINNED_FILE_BYTES = 64 * 1024 * 1024;

export interface ShardSummary {
  readonly name: string;
  readonly size: number;
  readonly tensors: number;
}

export interface ModelCheckReport {
  readonly checks: readonly CheckRecord[];
  /** The first failing check's fault, or null when all passed. */
  readonly fault: StageFault | null;
  readonly ref: ModelRef | null;
  readonly files: readonly StoreFile[];
  readonly shards: readonly ShardSummary[];
  readonly nTensors: number;
}

type StepOutcome = { readonly ok: true; readonly detail: string; readonly data?: Record<string, unknown> } | { readonly ok: false; readonly fault: StageFault; readonly data?: Record<string, unknown> };

const passed = (detail: string, data?: Record<string, unknown>): StepOutcome => ({ ok: true, detail, ...(data ? { data } : {}) });
const miner = (code: FaultCode, message: string, data?: Record<string, unknown>): StepOutcome => ({ ok: false, fault: stageFault('MINER_FAULT', code, message), ...(data ? { data } : {}) });
const infra = (code: FaultCode, message: string): StepOutcome => ({ ok: false, fault: stageFault('INFRA_FAULT', code, message) });

const INDEX_FILE = 'model.safetensors.index.json';
const CONFIG_FILE = 'config.json';

interface Run {
  readonly options: ModelCheckOptions;
  readonly signal: AbortSignal;
  ref: ModelRef | null;
  files: StoreFile[];
  headers: Map<string, SafetensorsHeader>;
}

const sleep = abortableSleep;

/**
 * Runs a store read; a `not_found` is confirmed once more after `notFoundRecheckMs` before it is
 * reported (transient hub 404s are never charged to the miner, spec §9.6).
 */
async function confirmed<T>(run: Run, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!(error instanceof ModelStoreError) || error.kind !== 'not_found') throw error;
    await sleep(run.options.notFoundRecheckMs ?? DEFAULT_NOT_FOUND_RECHECK_MS, run.signal);
    return read();
  }
}

/** Maps a store error of a step to its fault; anything that is not a store error is INFRA. */
function storeFault(error: unknown, infraCode: FaultCode, what: string, run: Run): StepOutcome {
  if (error instanceof ModelStoreError) {
    if (error.kind === 'not_found') return miner('repo_not_found', `${run.ref?.uri ?? 'model'} not found (confirmed twice): ${error.message}`);
    if (error.kind === 'malformed') return miner('file_manifest', `invalid published artifact: ${error.message}`);
    return infra(infraCode, `${what}: ${error.message}`);
  }
  return infra(infraCode, `${what}: ${error instanceof Error ? error.message : String(error)}`);
}

async function stepModelRef(run: Run, modelUri: string): Promise<StepOutcome> {
  const parsed = parseModelRef(modelUri, { allowMutableRef: run.options.allowMutableRef ?? false, backends: run.options.backends ?? ['hippius'] });
  if (!parsed.ok) return miner('invalid_ref', parsed.message);
  run.ref = parsed.ref;
  return passed(`${parsed.ref.backend} ${parsed.ref.mutable ? 'mutable ref' : 'pinned digest'} ${parsed.ref.digest}`, { backend: parsed.ref.backend });
}

async function stepRepoName(run: Run): Promise<StepOutcome> {
  const ref = run.ref as ModelRef;
  const pattern = run.options.repoPattern ?? DEFAULT_REPO_NAME_PATTERN;
  if (!checkRepoName(ref.repo, pattern)) return miner('repo_name', `repo name ${ref.repo} does not match ALBEDO_REPO_NAME_PATTERN ${pattern.source}`);
  return passed(`matches ${pattern.source}`);
}

async function stepListFiles(run: Run): Promise<StepOutcome> {
  const ref = run.ref as ModelRef;
  let files: StoreFile[];
  try {
    files = await confirmed(run, () => run.options.store.listFiles(ref, run.signal));
  } catch (error) {
    if (error instanceof ModelStoreError && error.kind === 'too_large') return miner('file_manifest', error.message);
    return storeFault(error, 'list_files_failed', `listing ${ref.uri}`, run);
  }
  if (files.length === 0) return miner('empty_repo', `repository ${ref.uri} has no files`);
  run.files = [...files].sort((a, b) => compareCodePoints(a.path, b.path));
  return passed(`${files.length} file(s)`);
}

async function stepFileManifest(run: Run): Promise<StepOutcome> {
  const verdict = checkFileAllowlist(
    run.files.map((f) => f.path),
    run.options.allowlistProfile ?? 'seed-live',
  );
  if (!verdict.ok) return miner('file_manifest', verdict.message, { files: [...verdict.summary.files] });
  return passed(`${run.files.length} file(s) allowed`);
}

async function stepPreflight(run: Run): Promise<StepOutcome> {
  const ref = run.ref as ModelRef;
  const cap = run.options.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES;
  const shards = run.files.filter((f) => f.path.endsWith('.safetensors'));
  let n = 0;
  for (const shard of shards) {
    if (shard.size < 8) return miner('safetensors_header', `shard ${shard.path}: file is shorter than the 8-byte header length`);
    let len: number;
    let headerBytes: Uint8Array;
    try {
      const prefix = await confirmed(run, () => run.options.store.readRange(ref, shard.path, 0, 7, run.signal));
      const checked = readHeaderLength(shard.path, prefix, cap, shard.size);
      if (!checked.ok) return miner('safetensors_header', checked.message);
      len = checked.value;
      headerBytes = await confirmed(run, () => run.options.store.readRange(ref, shard.path, 8, 8 + len - 1, run.signal));
    } catch (error) {
      return storeFault(error, 'preflight_failed', `preflight of ${shard.path}`, run);
    }
    const parsed = parseSafetensorsHeader(shard.path, headerBytes, shard.size);
    if (!parsed.ok) return miner('safetensors_header', parsed.message);
    const bad = disallowedDtypes(parsed.value);
    if (bad.length > 0) return miner('weight_dtype', weightDtypeMessage(shard.path, bad), { shard: shard.path, dtypes: bad });
    run.headers.set(shard.path, parsed.value);
    n += parsed.value.tensors.length;
  }
  return passed(`${shards.length} shard header(s), ${n} tensor(s), all F16/BF16`, { shards: shards.length, tensors: n });
}

async function readJsonStep(run: Run, path: string, cap: number): Promise<{ ok: true; json: unknown } | { ok: false; error: unknown }> {
  const ref = run.ref as ModelRef;
  try {
    return { ok: true, json: await confirmed(run, () => run.options.store.readJson(ref, path, cap, run.signal)) };
  } catch (error) {
    return { ok: false, error };
  }
}

async function stepArchitecture(run: Run): Promise<StepOutcome> {
  const listed = run.files.find((f) => f.path === CONFIG_FILE);
  if (!listed) return miner('architecture', 'config.json is missing');
  const cap = run.options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES;
  if (listed.size > cap) return miner('architecture', `config.json is ${listed.size} bytes (cap ${cap})`);
  const read = await readJsonStep(run, CONFIG_FILE, cap);
  if (!read.ok) {
    const e = read.error;
    if (e instanceof ModelStoreError && e.kind === 'invalid_json') return miner('architecture', 'config.json is not valid JSON');
    if (e instanceof ModelStoreError && e.kind === 'too_large') return miner('architecture', `config.json exceeds ${cap} bytes`);
    return storeFault(e, 'download_config_failed', 'downloading config.json', run);
  }
  const verdict = checkArchitecture(read.json, run.options.archSpec ?? bundledArchitectureSpec());
  if (!verdict.ok) return miner('architecture', verdict.message);
  return passed('config.json matches the architecture lock');
}

async function readBytes(run: Run, file: StoreFile): Promise<Uint8Array> {
  if (file.size === 0) return new Uint8Array(0);
  return confirmed(run, () => run.options.store.readRange(run.ref as ModelRef, file.path, 0, file.size - 1, run.signal));
}

const sha256Hex = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** §6.1: the chat template (file and tokenizer_config field) and the genesis metadata files, byte for byte. */
async function stepGenesisPins(run: Run): Promise<StepOutcome> {
  const pins = run.options.genesisPins;
  if (!pins) return infra('unexpected', 'the v2 profile needs ALBEDO_CHAT_TEMPLATE_SHA256 and ALBEDO_GENESIS_FILE_HASHES');
  const byName = new Map(run.files.map((f) => [f.path, f]));
  const problems: string[] = [];
  let templateProblem: string | null = null;
  try {
    for (const name of GENESIS_PINNED_FILES) {
      const want = pins.fileHashes[name];
      if (want === undefined) continue;
      const file = byName.get(name);
      if (!file) {
        problems.push(`missing required genesis file ${name}`);
        continue;
      }
      if (file.size > DEFAULT_MAX_PINNED_FILE_BYTES) {
        problems.push(`${name} is ${file.size} bytes (cap ${DEFAULT_MAX_PINNED_FILE_BYTES}; does not match genesis ${pins.genesisRef})`);
        continue;
      }
      const got = sha256Hex(await readBytes(run, file));
      if (got !== want) problems.push(`${name} sha256 ${got} != ${want} (does not match genesis ${pins.genesisRef})`);
    }
    const template = byName.get('chat_template.jinja');
    if (!template) templateProblem = 'missing required genesis file chat_template.jinja';
    else if (template.size > DEFAULT_MAX_PINNED_FILE_BYTES) templateProblem = `chat_template.jinja is ${template.size} bytes (cap ${DEFAULT_MAX_PINNED_FILE_BYTES})`;
    else {
      const got = sha256Hex(await readBytes(run, template));
      if (got !== pins.chatTemplateSha256) templateProblem = `chat_template.jinja sha256 ${got} != ${pins.chatTemplateSha256} (does not match genesis ${pins.genesisRef})`;
    }
    if (templateProblem === null) {
      const tc = byName.get('tokenizer_config.json');
      const cfg = tc ? await confirmed(run, () => run.options.store.readJson(run.ref as ModelRef, tc.path, DEFAULT_MAX_PINNED_FILE_BYTES, run.signal)) : null;
      const field = cfg !== null && typeof cfg === 'object' && !Array.isArray(cfg) ? (cfg as Record<string, unknown>).chat_template : undefined;
      if (typeof field !== 'string') templateProblem = 'tokenizer_config.json has no string chat_template';
      else {
        const got = sha256Hex(field);
        if (got !== pins.chatTemplateSha256) templateProblem = `tokenizer_config.json chat_template sha256 ${got} != ${pins.chatTemplateSha256} (does not match genesis ${pins.genesisRef})`;
      }
    }
  } catch (error) {
    if (error instanceof ModelStoreError && error.kind === 'invalid_json') return miner('metadata_hash', 'tokenizer_config.json is not valid JSON');
    return storeFault(error, 'download_config_failed', 'reading the pinned metadata files', run);
  }
  // The template decides first: it is what the duel renders prompts with.
  if (templateProblem !== null) return miner('chat_template_hash', templateProblem);
  if (problems.length > 0) return miner('metadata_hash', problems.join('; '));
  return passed(`chat template and ${Object.keys(pins.fileHashes).length} genesis file(s) match byte for byte`);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** §7 on the listed shard names, the parsed index (or null when absent) and the shard headers. */
export function checkSafetensorsIndex(shardNames: readonly string[], index: unknown | null, headers: ReadonlyMap<string, SafetensorsHeader>): { ok: true } | { ok: false; message: string } {
  const actual = new Set(shardNames);
  if (index === null) {
    if (actual.size === 1 && actual.has('model.safetensors')) return { ok: true };
    return { ok: false, message: 'sharded checkpoint missing model.safetensors.index.json' };
  }
  const malformed = { ok: false as const, message: 'malformed model.safetensors.index.json' };
  if (typeof index !== 'object' || Array.isArray(index)) return malformed;
  const o = index as Record<string, unknown>;
  if (!Object.keys(o).every((k) => k === 'metadata' || k === 'weight_map')) return malformed;
  const weightMap = o.weight_map;
  if (!isStringMap(weightMap) || Object.keys(weightMap).length === 0) return malformed;
  const referenced = new Set(Object.values(weightMap));
  const unused = pySorted([...actual].filter((s) => !referenced.has(s)));
  if (unused.length > 0) {
    return { ok: false, message: `repo contains ${unused.length} safetensors not used by the model (not referenced in model.safetensors.index.json): ${pyReprList(unused.slice(0, 10))}` };
  }
  const absent = pySorted([...referenced].filter((s) => !actual.has(s)));
  if (absent.length > 0) return { ok: false, message: `model.safetensors.index.json references missing shard(s): ${pyReprList(absent.slice(0, 10))}` };
  const byShard = new Map<string, Set<string>>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const set = byShard.get(shard) ?? new Set<string>();
    set.add(tensor);
    byShard.set(shard, set);
  }
  for (const shard of pySorted(referenced)) {
    const inHeader = new Set((headers.get(shard)?.tensors ?? []).map((t) => t.name));
    const inIndex = byShard.get(shard) ?? new Set<string>();
    const extra = pySorted([...inHeader].filter((t) => !inIndex.has(t)));
    if (extra.length > 0) return { ok: false, message: `shard ${shard} contains tensors not referenced by the index: ${pyReprList(extra.slice(0, 10))}` };
    const missing = pySorted([...inIndex].filter((t) => !inHeader.has(t)));
    if (missing.length > 0) return { ok: false, message: `model.safetensors.index.json maps tensors not present in shard ${shard}: ${pyReprList(missing.slice(0, 10))}` };
  }
  return { ok: true };
}

async function stepIndex(run: Run): Promise<StepOutcome> {
  const shardNames = run.files.filter((f) => f.path.endsWith('.safetensors')).map((f) => f.path);
  const listed = run.files.find((f) => f.path === INDEX_FILE);
  let index: unknown | null = null;
  if (listed) {
    const cap = run.options.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
    if (listed.size > cap) return miner('safetensors_index', `model.safetensors.index.json is ${listed.size} bytes (cap ${cap})`);
    const read = await readJsonStep(run, INDEX_FILE, cap);
    if (!read.ok) {
      const e = read.error;
      if (e instanceof ModelStoreError && (e.kind === 'invalid_json' || e.kind === 'too_large')) return miner('safetensors_index', 'malformed model.safetensors.index.json');
      return storeFault(e, 'download_config_failed', 'downloading model.safetensors.index.json', run);
    }
    index = read.json;
    if (index === null) return miner('safetensors_index', 'malformed model.safetensors.index.json');
  }
  const verdict = checkSafetensorsIndex(shardNames, index, run.headers);
  if (!verdict.ok) return miner('safetensors_index', verdict.message);
  return passed(index === null ? 'single model.safetensors, no index needed' : `index maps ${shardNames.length} shard(s) exactly`);
}

const STEPS: Record<ModelCheckName, (run: Run, modelUri: string) => Promise<StepOutcome>> = {
  model_ref: stepModelRef,
  repo_name: stepRepoName,
  list_files: stepListFiles,
  file_manifest: stepFileManifest,
  safetensors_preflight: stepPreflight,
  architecture: stepArchitecture,
  genesis_pins: stepGenesisPins,
  safetensors_index: stepIndex,
};

/** Records for checks that did not run because `after` failed. */
export function skippedChecks(names: readonly CheckName[], after: string): CheckRecord[] {
  return names.map((name) => ({ name, status: 'skipped' as const, detail: `not run: ${after} failed` }));
}

/**
 * Runs the model checks in spec order; the first failure decides and the rest are `skipped`.
 * Never throws (a bug in a step becomes INFRA `unexpected`).
 */
export async function runModelChecks(modelUri: string, options: ModelCheckOptions, signal: AbortSignal): Promise<ModelCheckReport> {
  return runSteps(modelChecksFor(options.allowlistProfile ?? 'seed-live'), { options, signal, ref: null, files: [], headers: new Map() }, modelUri);
}

/** A store serving exactly one directory, whatever the reference (the miner's local checkout). */
class SingleDirectoryStore extends LocalDirStore {
  override modelDir(): string {
    return this.root;
  }
}

export interface LocalCheckOptions extends Omit<ModelCheckOptions, 'store' | 'backends' | 'allowMutableRef' | 'notFoundRecheckMs'> {
  /** `--repo`: runs `repo_name` on it. */
  readonly repo?: string;
}

/**
 * The local checks of `albedo check-model --path` (spec/miner-cli.md §3) with the validator's own
 * step functions on a directory: a local VALID means these deterministic checks pass remotely.
 */
export async function runLocalModelChecks(dir: string, options: LocalCheckOptions, signal: AbortSignal): Promise<ModelCheckReport> {
  const repo = options.repo ?? '';
  const ref: ModelRef = { repo, digest: 'local', backend: 'hf', mutable: true, uri: repo ? `${repo} (${dir})` : dir };
  const run: Run = { options: { ...options, store: new SingleDirectoryStore(dir), notFoundRecheckMs: 0 }, signal, ref, files: [], headers: new Map() };
  return runSteps(localChecksFor(options.allowlistProfile ?? 'seed-live', repo !== ''), run, ref.uri);
}

async function runSteps(names: readonly ModelCheckName[], run: Run, modelUri: string): Promise<ModelCheckReport> {
  const { options, signal } = run;
  const cap = options.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES;
  const checks: CheckRecord[] = [];
  let fault: StageFault | null = null;
  const notify = async (r: CheckRecord) => {
    try {
      await options.onCheck?.(r);
    } catch {
      // progress reporting never decides validation
    }
  };
  if (!Number.isSafeInteger(cap) || cap < 2 || cap > MAX_RANGE_BYTES) {
    fault = stageFault('INFRA_FAULT', 'unexpected', `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES must be an integer in [2, ${MAX_RANGE_BYTES}], got ${cap}`);
    return { checks: skippedChecks(names, 'configuration'), fault, ref: null, files: [], shards: [], nTensors: 0 };
  }
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as ModelCheckName;
    let out: StepOutcome;
    try {
      out = signal.aborted ? infra('unexpected', 'validation aborted') : await STEPS[name](run, modelUri);
    } catch (error) {
      out = infra('unexpected', `${name} check failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    const record: CheckRecord = out.ok
      ? { name, status: 'passed', detail: out.detail, ...(out.data ? { data: out.data } : {}) }
      : { name, status: 'failed', faultCode: out.fault.code, detail: out.fault.message, ...(out.data ? { data: out.data } : {}) };
    checks.push(record);
    await notify(record);
    if (!out.ok) {
      fault = out.fault;
      checks.push(...skippedChecks(names.slice(i + 1), name));
      break;
    }
  }
  const shards = [...run.headers.entries()].map(([name, h]) => ({ name, size: run.files.find((f) => f.path === name)?.size ?? 0, tensors: h.tensors.length }));
  return { checks, fault, ref: run.ref, files: run.files, shards, nTensors: shards.reduce((a, s) => a + s.tensors, 0) };
}
