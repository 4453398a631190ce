import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type ArchitectureSpec, bundledArchitectureSpec } from './architecture.ts';
import { type ModelBackend, type ModelRef, parseModelRef } from './model-ref.ts';
import { listDirectory, localModelDir, type StoreFile } from './model-store.ts';
import { compareCodePoints } from '../core/py-compat.ts';
import { dtypeItemSize } from './safetensors.ts';

/**
 * Tiny Qwen-shaped model directories for tests and the local demo stack: a `config.json` that
 * passes the architecture lock, the tokenizer/processor files the seed-live allowlist requires, and
 * one or two safetensors shards (+ index) of a few small tensors. Options inject the faults the
 * validator must catch.
 */

export interface SyntheticModelOptions {
  /** 1 ⇒ `model.safetensors` without index; 2 ⇒ `model-0000k-of-00002.safetensors` + index. @default 2 */
  readonly shards?: 1 | 2;
  /** dtype of every tensor, e.g. 'F32' or 'I8' to get rejected. @default 'BF16' */
  readonly dtype?: string;
  /** Changes the weight bytes (and so the content digest). @default 'albedo' */
  readonly seed?: string;
  /** Files removed after writing (e.g. 'tokenizer.json', 'model.safetensors.index.json'). */
  readonly dropFile?: string | readonly string[];
  /** Extra files written as-is (e.g. `{'modeling.py': '…'}`); may overwrite generated ones. */
  readonly extraFiles?: Readonly<Record<string, string | Uint8Array>>;
  /** Shallow overrides of top-level `config.json` keys; `undefined` deletes a key. */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Shallow overrides of `config.json.text_config`; `undefined` deletes a key. */
  readonly textConfig?: Readonly<Record<string, unknown>>;
  /** Rewrites the index object before it is written (index faults). */
  readonly index?: (index: { metadata: Record<string, unknown>; weight_map: Record<string, string> }) => unknown;
  /** @default the bundled architecture spec */
  readonly archSpec?: ArchitectureSpec;
  /**
   * Derives the weights from `seed` and then perturbs them: every element of `tensors` tensors (the
   * first ones in name order, or all) gets relative noise x·(1 + relative·u), u uniform in [−1, 1)
   * from `noiseSeed`. A copy with a little noise (what the divergence check catches), or with a
   * larger delta everywhere, a stand-in for a genuine fine-tune.
   */
  readonly perturb?: { readonly tensors: number | 'all'; readonly relative: number; readonly noiseSeed: string };
}

export interface SyntheticTensorInfo {
  readonly shard: string;
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
}

export interface SyntheticModel {
  readonly dir: string;
  /** Files on disk after drops/extras, sorted by path. */
  readonly files: readonly StoreFile[];
  readonly tensors: readonly SyntheticTensorInfo[];
  /** `sha256:<hex>` over the sorted (path, sha256) list: equal content ⇒ equal digest. */
  readonly contentDigest: string;
}

const SHARD_TENSORS: ReadonlyArray<ReadonlyArray<readonly [string, readonly number[]]>> = [
  [
    ['model.language_model.embed_tokens.weight', [32, 8]],
    ['model.language_model.layers.0.input_layernorm.weight', [8]],
    ['model.language_model.layers.0.self_attn.q_proj.weight', [8, 8]],
    ['model.language_model.layers.0.mlp.gate.weight', [4, 8]],
  ],
  [
    ['model.language_model.layers.0.mlp.experts.0.down_proj.weight', [8, 4]],
    ['model.language_model.norm.weight', [8]],
    ['model.visual.patch_embed.proj.weight', [8, 6]],
    ['lm_head.weight', [32, 8]],
  ],
];

const CHAT_TEMPLATE = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

function applyOverrides(base: Record<string, unknown>, overrides: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** A `config.json` shaped like the genesis one (spec/canonical_model_config.json) that satisfies `spec`. */
export function syntheticConfig(spec: ArchitectureSpec, options: Pick<SyntheticModelOptions, 'config' | 'textConfig'> = {}): Record<string, unknown> {
  const expected = Object.fromEntries(spec.expected);
  const text = applyOverrides(
    { ...expected, model_type: 'qwen3_5_moe_text', dtype: 'bfloat16', hidden_act: 'silu', rms_norm_eps: 1e-6, attention_bias: false, full_attention_interval: 4 },
    options.textConfig,
  );
  return applyOverrides(
    {
      architectures: [...spec.architectures],
      model_type: expected.model_type ?? 'qwen3_5_moe',
      tie_word_embeddings: expected.tie_word_embeddings ?? false,
      text_config: text,
      vision_config: { depth: 27, hidden_size: 1152, model_type: 'qwen3_5_moe', out_hidden_size: 2048, patch_size: 16 },
      image_token_id: 248056,
      video_token_id: 248057,
      transformers_version: '4.57.1',
    },
    options.config,
  );
}

/** Deterministic bytes from (seed, name). */
function prngBytes(seed: string, name: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let block = 0, off = 0; off < n; block++) {
    const h = createHash('sha256').update(`${seed}\0${name}\0${block}`).digest();
    out.set(h.subarray(0, Math.min(h.length, n - off)), off);
    off += h.length;
  }
  return out;
}

function f32Bits(v: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v, true);
  return dv.getUint32(0, true);
}

function f32ToF16Bits(v: number): number {
  const u = f32Bits(v);
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return exp < -10 ? sign : sign | ((mant | 0x800000) >>> (14 - exp));
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | (mant >>> 13);
}

/** Small weights in [−0.05, 0.05) encoded in `dtype` (unknown dtypes get raw bytes, 1 per element). */
function tensorData(seed: string, name: string, dtype: string, count: number, noise?: { relative: number; noiseSeed: string }): Uint8Array {
  const item = dtypeItemSize(dtype) ?? 1;
  const raw = prngBytes(seed, name, count * 4);
  const noiseBytes = noise ? new DataView(prngBytes(noise.noiseSeed, name, count * 4).buffer) : null;
  const out = new Uint8Array(count * item);
  const dv = new DataView(out.buffer);
  const rv = new DataView(raw.buffer);
  for (let i = 0; i < count; i++) {
    let x = (rv.getUint32(i * 4, true) / 2 ** 32 - 0.5) * 0.1;
    if (noise && noiseBytes) x *= 1 + noise.relative * (noiseBytes.getUint32(i * 4, true) / 2 ** 31 - 1);
    if (dtype === 'BF16') dv.setUint16(i * 2, f32Bits(x) >>> 16, true);
    else if (dtype === 'F16') dv.setUint16(i * 2, f32ToF16Bits(x), true);
    else if (dtype === 'F32') dv.setFloat32(i * 4, x, true);
    else if (dtype === 'F64') dv.setFloat64(i * 8, x, true);
    else for (let b = 0; b < item; b++) out[i * item + b] = raw[(i * 4 + b) % raw.length] as number;
  }
  return out;
}

export interface EncodableTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/**
 * A valid safetensors file: u64 LE header length, JSON header (entries in the given order,
 * `__metadata__` first, padded with spaces to 8 bytes like the reference writer), data buffer.
 */
export function encodeSafetensors(tensors: readonly EncodableTensor[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8 !== 0) text += ' ';
  const data = new Uint8Array(offset);
  let o = 0;
  for (const t of tensors) {
    data.set(t.data, o);
    o += t.data.byteLength;
  }
  return encodeSafetensorsRaw(text, data);
}

/**
 * A safetensors file with an arbitrary header (hostile tests): `header` as JSON text, bytes, or an
 * object to stringify; `declaredLength` overrides the u64 length prefix.
 */
export function encodeSafetensorsRaw(header: string | Uint8Array | object, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const h = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** `sha256:` over `path\0sha256(file)\n` of every file, sorted by path. */
export async function contentDigestOf(dir: string): Promise<string> {
  const files = (await listDirectory(dir)).sort((a, b) => compareCodePoints(a.path, b.path));
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${await sha256File(join(dir, ...f.path.split('/')))}\n`);
  return `sha256:${h.digest('hex')}`;
}

/** Writes a synthetic model into `dir` (created if needed). */
export async function createSyntheticModel(dir: string, options: SyntheticModelOptions = {}): Promise<SyntheticModel> {
  const spec = options.archSpec ?? bundledArchitectureSpec();
  const seed = options.seed ?? 'albedo';
  const dtype = options.dtype ?? 'BF16';
  const nShards = options.shards ?? 2;
  await mkdir(dir, { recursive: true });
  const write = async (path: string, content: string | Uint8Array) => {
    const abs = join(dir, ...path.split('/'));
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
  };

  await write('config.json', json(syntheticConfig(spec, options)));
  await write('generation_config.json', json({ bos_token_id: 248044, do_sample: true, eos_token_id: [248046, 248044], pad_token_id: 248044, temperature: 1.0, top_k: 20, top_p: 0.95 }));
  await write('tokenizer_config.json', json({ tokenizer_class: 'Qwen2Tokenizer', model_max_length: 262144, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: CHAT_TEMPLATE }));
  await write(
    'tokenizer.json',
    json({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [{ id: 30, content: '<|im_start|>', special: true }, { id: 31, content: '<|im_end|>', special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
      model: { type: 'BPE', vocab: Object.fromEntries([...'abcdefghijklmnopqrstuvwxyz0123'].map((c, i) => [c, i])), merges: [] },
    }),
  );
  const processor = { image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], merge_size: 2, patch_size: 16, processor_class: 'Qwen3VLProcessor', temporal_patch_size: 2 };
  await write('preprocessor_config.json', json({ ...processor, image_processor_type: 'Qwen2VLImageProcessorFast', size: { longest_edge: 16777216, shortest_edge: 65536 } }));
  await write('video_preprocessor_config.json', json({ ...processor, video_processor_type: 'Qwen3VLVideoProcessor', size: { longest_edge: 25165824, shortest_edge: 4096 } }));
  await write('chat_template.jinja', CHAT_TEMPLATE);

  const groups = nShards === 1 ? [[...(SHARD_TENSORS[0] ?? []), ...(SHARD_TENSORS[1] ?? [])]] : SHARD_TENSORS;
  const tensors: SyntheticTensorInfo[] = [];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const names = groups.flat().map(([name]) => name).sort(compareCodePoints);
  const perturbed = new Set(options.perturb ? (options.perturb.tensors === 'all' ? names : names.slice(0, options.perturb.tensors)) : []);
  for (let i = 0; i < groups.length; i++) {
    const shard = nShards === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    const encodable = (groups[i] ?? []).map(([name, shape]) => {
      const count = shape.reduce((a, d) => a * d, 1);
      const noise = options.perturb && perturbed.has(name) ? options.perturb : undefined;
      return { name, dtype, shape, data: tensorData(seed, name, dtype, count, noise) };
    });
    for (const t of encodable) {
      tensors.push({ shard, name: t.name, dtype, shape: t.shape });
      weightMap[t.name] = shard;
      totalSize += t.data.byteLength;
    }
    await write(shard, encodeSafetensors(encodable));
  }
  if (nShards > 1) {
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    await write('model.safetensors.index.json', json(options.index ? options.index(index) : index));
  }
  for (const [path, content] of Object.entries(options.extraFiles ?? {})) await write(path, content);
  const drops = typeof options.dropFile === 'string' ? [options.dropFile] : (options.dropFile ?? []);
  for (const path of drops) await rm(join(dir, ...path.split('/')), { force: true });

  const contentDigest = await contentDigestOf(dir);
  const files = (await listDirectory(dir)).sort((a, b) => compareCodePoints(a.path, b.path));
  return { dir, files, tensors, contentDigest };
}

export interface PublishedSyntheticModel extends SyntheticModel {
  readonly ref: ModelRef;
  /** `<repo>@<digest>`, ready to be revealed. */
  readonly uri: string;
}

/**
 * Writes a synthetic model into a {@link LocalDirStore} / local hub layout under `root` and returns
 * its uri. The digest is derived from the content — `sha256:<hex>` (Hippius form) or, for
 * `backend: 'hf'`, the first 40 hex digits as a git-like revision — so equal content under two repos
 * yields the same digest (the duplicate case). `digest` forces one.
 */
export async function publishSyntheticModel(root: string, repo: string, options: SyntheticModelOptions & { backend?: ModelBackend; digest?: string } = {}): Promise<PublishedSyntheticModel> {
  const tmpRoot = join(root, `.tmp-${randomBytes(6).toString('hex')}`);
  const tmp = join(tmpRoot, 'model');
  const model = await createSyntheticModel(tmp, options);
  const hex = model.contentDigest.slice('sha256:'.length);
  const digest = options.digest ?? (options.backend === 'hf' ? hex.slice(0, 40) : model.contentDigest);
  const parsed = parseModelRef(`${repo}@${digest}`, { backends: ['hippius', 'hf'] });
  if (!parsed.ok) throw new TypeError(`cannot publish ${repo}@${digest}: ${parsed.message}`);
  const target = localModelDir(root, parsed.ref);
  await rm(target, { recursive: true, force: true });
  await mkdir(dirname(target), { recursive: true });
  await rename(tmp, target);
  await rm(tmpRoot, { recursive: true, force: true });
  return { ...model, dir: target, ref: parsed.ref, uri: parsed.ref.uri };
}
