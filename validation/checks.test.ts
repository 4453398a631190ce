import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFileAllowlist } from './allowlist.ts';
import { bundledArchitectureSpec, checkArchitecture, pyEquals } from './architecture.ts';
import { type ModelCheckOptions, MODEL_CHECKS, runModelChecks } from './checks.ts';
import { LocalDirStore, localModelDir, type ModelStore, ModelStoreError } from './model-store.ts';
import { fnmatchToRegExp, pyRepr, pyFloatRepr, pyStrRepr } from '../core/py-compat.ts';
import { encodeSafetensors, encodeSafetensorsRaw, publishSyntheticModel, type SyntheticModelOptions, syntheticConfig } from './synthetic-model.ts';

let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'albedo-checks-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function publish(options: SyntheticModelOptions = {}, repo?: string) {
  n += 1;
  return publishSyntheticModel(root, repo ?? `miner${n}/albedo-qwen3.6-35b-t${n}`, { seed: `s${n}`, ...options });
}

function run(uri: string, extra: Partial<ModelCheckOptions> = {}) {
  return runModelChecks(uri, { store: new LocalDirStore(root), notFoundRecheckMs: 0, ...extra }, new AbortController().signal);
}

/** Wraps a store, letting a test replace single methods. */
function wrap(inner: ModelStore, over: Partial<ModelStore>): ModelStore {
  return {
    listFiles: over.listFiles ?? ((r, s) => inner.listFiles(r, s)),
    readJson: over.readJson ?? ((r, p, m, s) => inner.readJson(r, p, m, s)),
    readRange: over.readRange ?? ((r, p, a, b, s) => inner.readRange(r, p, a, b, s)),
  };
}

const HEX = 'ab'.repeat(32);

describe('runModelChecks on synthetic models', () => {
  it('passes a good sharded BF16 model with one record per check in spec order', async () => {
    const m = await publish();
    const r = await run(m.uri);
    expect(r.fault).toBeNull();
    expect(r.checks.map((c) => c.name)).toEqual([...MODEL_CHECKS]);
    expect(r.checks.every((c) => c.status === 'passed')).toBe(true);
    expect(r.nTensors).toBe(8);
    expect(r.shards.map((s) => s.name)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  });

  it('passes a single model.safetensors without an index, and F16 weights', async () => {
    expect((await run((await publish({ shards: 1 })).uri)).fault).toBeNull();
    expect((await run((await publish({ dtype: 'F16' })).uri)).fault).toBeNull();
  });

  it.each([
    ['no-at-sign', 'not <repo>@<digest>'],
    [`Upper/albedo-qwen3.6-35b-x@sha256:${HEX}`, 'invalid repo'],
    [`a/../b@sha256:${HEX}`, 'invalid repo'],
    [`a/b@main`, 'not an immutable pin'],
    [`a/b@sha256:abc`, 'not an immutable pin'],
    [`a/b@${'ab'.repeat(20)}`, 'backend hf is not enabled'],
    [`a/${'x'.repeat(600)}@sha256:${HEX}`, 'longer than 512'],
  ])('invalid_ref: %s', async (uri, why) => {
    const r = await run(uri);
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'invalid_ref' });
    expect(r.fault?.message).toContain(why);
    expect(r.checks[0]).toMatchObject({ name: 'model_ref', status: 'failed', faultCode: 'invalid_ref' });
    expect(r.checks.slice(1).every((c) => c.status === 'skipped')).toBe(true);
  });

  it('repo_name: the challenger naming rule is enforced, with a configurable pattern', async () => {
    const m = await publish({}, 'alice/my-own-model');
    expect((await run(m.uri)).fault).toMatchObject({ code: 'repo_name', faultClass: 'MINER_FAULT' });
    expect((await run(m.uri, { repoPattern: /^alice\/.+$/ })).fault).toBeNull();
  });

  it('repo_not_found only after the 404 is confirmed a second time', async () => {
    let calls = 0;
    const store = wrap(new LocalDirStore(root), {
      listFiles: async () => {
        calls += 1;
        throw new ModelStoreError('not_found', 'HTTP 404', 404);
      },
    });
    const r = await run(`ghost/albedo-qwen3.6-35b-x@sha256:${HEX}`, { store, notFoundRecheckMs: 5 });
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'repo_not_found' });
    expect(calls).toBe(2);
  });

  it('a transient 404 that the re-check does not confirm is not a fault', async () => {
    const m = await publish();
    const inner = new LocalDirStore(root);
    let calls = 0;
    const store = wrap(inner, {
      listFiles: async (ref, s) => {
        calls += 1;
        if (calls === 1) throw new ModelStoreError('not_found', 'HTTP 404', 404);
        return inner.listFiles(ref, s);
      },
    });
    expect((await run(m.uri, { store })).fault).toBeNull();
  });

  it('list_files_failed: store outages are INFRA and retryable', async () => {
    const store = wrap(new LocalDirStore(root), {
      listFiles: async () => {
        throw new ModelStoreError('unavailable', 'HTTP 503', 503);
      },
    });
    const r = await run(`x/albedo-qwen3.6-35b-x@sha256:${HEX}`, { store });
    expect(r.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'list_files_failed', retryable: true });
  });

  it('empty_repo', async () => {
    const uri = `empty/albedo-qwen3.6-35b-e@sha256:${HEX}`;
    await mkdir(localModelDir(root, { repo: 'empty/albedo-qwen3.6-35b-e', digest: `sha256:${HEX}` }), { recursive: true });
    expect((await run(uri)).fault).toMatchObject({ code: 'empty_repo', faultClass: 'MINER_FAULT' });
  });

  it('file_manifest: missing required, forbidden and unexpected files, with the upstream message', async () => {
    const missing = await run((await publish({ dropFile: ['tokenizer.json', 'video_preprocessor_config.json'] })).uri);
    expect(missing.fault?.code).toBe('file_manifest');
    expect(missing.fault?.message).toBe("missing required: ['tokenizer.json', 'video_preprocessor_config.json']");
    const extras = await run((await publish({ extraFiles: { 'modeling_qwen.py': 'x', 'sub/config.json': '{}', 'notes.txt': 'hi', 'sub/x.py': '' } })).uri);
    expect(extras.fault?.message).toBe("forbidden present: ['modeling_qwen.py', 'sub/x.py']; unexpected extras: ['notes.txt', 'sub/config.json']");
    expect(extras.checks.find((c) => c.name === 'file_manifest')?.data?.files).toContain('notes.txt');
  });

  it('weight_dtype: F32 and quantised weights are rejected before any download', async () => {
    const f32 = await run((await publish({ dtype: 'F32' })).uri);
    expect(f32.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'weight_dtype' });
    expect(f32.fault?.message).toBe("model weights must be 16-bit (F16/BF16); shard model-00001-of-00002.safetensors has dtype(s): ['F32']");
    expect((await run((await publish({ dtype: 'I8' })).uri)).fault?.code).toBe('weight_dtype');
  });

  it('preflight_failed: a store outage while reading headers is INFRA', async () => {
    const m = await publish();
    const store = wrap(new LocalDirStore(root), {
      readRange: async () => {
        throw new ModelStoreError('unavailable', 'server did not honor Range (status 200)', 200);
      },
    });
    expect((await run(m.uri, { store })).fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'preflight_failed' });
  });

  it('architecture: mismatches, forbidden keys and invalid JSON accumulate with Python reprs', async () => {
    const wrong = await run((await publish({ textConfig: { num_experts: 128, head_dim: undefined }, config: { auto_map: { AutoModel: 'x.Y' } } })).uri);
    expect(wrong.fault?.code).toBe('architecture');
    expect(wrong.fault?.message).toBe("config.json must not contain 'auto_map'; arch key 'head_dim' mismatch: expected 256, got None; arch key 'num_experts' mismatch: expected 256, got 128");
    const archs = await run((await publish({ config: { architectures: ['LlamaForCausalLM'] } })).uri);
    expect(archs.fault?.message).toBe("architectures mismatch: expected ['Qwen3_5MoeForConditionalGeneration'], got ['LlamaForCausalLM']");
    const invalid = await run((await publish({ extraFiles: { 'config.json': '{"architectures": [' } })).uri);
    expect(invalid.fault).toMatchObject({ code: 'architecture', message: 'config.json is not valid JSON' });
    // Python == semantics: False == 0 and 256 == 256.0
    expect((await run((await publish({ config: { tie_word_embeddings: 0 } })).uri)).fault).toBeNull();
  });

  it('download_config_failed: an outage while downloading config.json is INFRA', async () => {
    const m = await publish();
    const store = wrap(new LocalDirStore(root), {
      readJson: async () => {
        throw new ModelStoreError('unavailable', 'HTTP 429', 429);
      },
    });
    expect((await run(m.uri, { store })).fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'download_config_failed' });
  });

  it('safetensors_index: missing index, unreferenced shard, index/header tensor mismatches, malformed index', async () => {
    const noIndex = await run((await publish({ dropFile: 'model.safetensors.index.json' })).uri);
    expect(noIndex.fault).toMatchObject({ code: 'safetensors_index', message: 'sharded checkpoint missing model.safetensors.index.json' });

    const extraShard = encodeSafetensors([{ name: 'extra.weight', dtype: 'BF16', shape: [2], data: new Uint8Array(4) }]);
    const unused = await run((await publish({ extraFiles: { 'model-00003-of-00003.safetensors': extraShard } })).uri);
    expect(unused.fault?.message).toBe(
      "repo contains 1 safetensors not used by the model (not referenced in model.safetensors.index.json): ['model-00003-of-00003.safetensors']",
    );

    const dropped = await run(
      (await publish({ index: (i) => ({ ...i, weight_map: Object.fromEntries(Object.entries(i.weight_map).filter(([k]) => k !== 'lm_head.weight')) }) })).uri,
    );
    expect(dropped.fault?.message).toBe("shard model-00002-of-00002.safetensors contains tensors not referenced by the index: ['lm_head.weight']");

    const ghost = await run((await publish({ index: (i) => ({ ...i, weight_map: { ...i.weight_map, 'ghost.weight': 'model-00001-of-00002.safetensors' } }) })).uri);
    expect(ghost.fault?.message).toBe("model.safetensors.index.json maps tensors not present in shard model-00001-of-00002.safetensors: ['ghost.weight']");

    const missingShard = await run((await publish({ index: (i) => ({ ...i, weight_map: { ...i.weight_map, 'x.weight': 'model-00009-of-00009.safetensors' } }) })).uri);
    expect(missingShard.fault?.message).toBe("model.safetensors.index.json references missing shard(s): ['model-00009-of-00009.safetensors']");

    for (const index of [() => ({ weight_map: {} }), () => ({ weight_map: { a: 1 } }), (i: object) => ({ ...i, extra: 1 }), () => [1]]) {
      const r = await run((await publish({ index })).uri);
      expect(r.fault).toMatchObject({ code: 'safetensors_index', message: 'malformed model.safetensors.index.json' });
    }
  });

  it('never throws: a store that throws arbitrary errors and a throwing progress callback', async () => {
    const m = await publish();
    const store = wrap(new LocalDirStore(root), {
      readJson: async () => {
        throw new TypeError('boom');
      },
    });
    const r = await run(m.uri, {
      store,
      onCheck: () => {
        throw new Error('progress sink down');
      },
    });
    expect(r.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'download_config_failed' });
  });
});

describe('hostile safetensors headers never throw and are MINER safetensors_header', () => {
  const ok = { dtype: 'BF16', shape: [2], data_offsets: [0, 4] };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['u64 max header length', encodeSafetensorsRaw('{}', new Uint8Array(0), 2n ** 64n - 1n), /exceeds cap 104857600/],
    ['header length just over the cap', encodeSafetensorsRaw('{}', new Uint8Array(0), 104_857_601n), /exceeds cap/],
    ['header length below 2', encodeSafetensorsRaw('{}', new Uint8Array(0), 1n), /below the minimum/],
    ['header length beyond the file', encodeSafetensorsRaw('{}', new Uint8Array(0), 4096n), /exceeds the file size/],
    ['file shorter than 8 bytes', new Uint8Array([1, 2, 3]), /shorter than the 8-byte/],
    ['truncated JSON', encodeSafetensorsRaw('{"a": {"dtype"'), /not valid JSON/],
    ['JSON array', encodeSafetensorsRaw('[1, 2]'), /not an object/],
    ['invalid UTF-8', encodeSafetensorsRaw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/],
    ['offsets beyond the data buffer', encodeSafetensorsRaw({ w: { ...ok, data_offsets: [0, 4000] } }, new Uint8Array(4)), /exceed the data buffer/],
    ['reversed offsets', encodeSafetensorsRaw({ w: { ...ok, data_offsets: [4, 0] } }, new Uint8Array(4)), /reversed/],
    ['overlapping tensors', encodeSafetensorsRaw({ a: ok, b: { ...ok, data_offsets: [2, 6] } }, new Uint8Array(6)), /overlap/],
    ['gap between tensors', encodeSafetensorsRaw({ a: ok, b: { ...ok, data_offsets: [6, 10] } }, new Uint8Array(10)), /not contiguous/],
    ['trailing bytes after the last tensor', encodeSafetensorsRaw({ a: ok }, new Uint8Array(12)), /data buffer is 12 bytes/],
    ['byte size does not match shape', encodeSafetensorsRaw({ a: { ...ok, shape: [3] } }, new Uint8Array(4)), /needs 6/],
    ['astronomic shape', encodeSafetensorsRaw({ a: { ...ok, shape: [2 ** 52, 2 ** 52] } }, new Uint8Array(4)), /needs/],
    ['negative shape', encodeSafetensorsRaw({ a: { ...ok, shape: [-2] } }, new Uint8Array(4)), /shape must be/],
    ['boolean shape', encodeSafetensorsRaw({ a: { ...ok, shape: [true] } }, new Uint8Array(4)), /shape must be/],
    ['string offsets', encodeSafetensorsRaw({ a: { ...ok, data_offsets: ['0', '4'] } }, new Uint8Array(4)), /data_offsets must be/],
    ['fractional offsets', encodeSafetensorsRaw({ a: { ...ok, data_offsets: [0, 4.5] } }, new Uint8Array(4)), /data_offsets must be/],
    ['numeric dtype', encodeSafetensorsRaw({ a: { ...ok, dtype: 16 } }, new Uint8Array(4)), /non-string dtype/],
    ['entry is not an object', encodeSafetensorsRaw({ a: 'x' }, new Uint8Array(0)), /not an object/],
    ['non-string metadata', encodeSafetensorsRaw({ __metadata__: { a: 1 }, w: ok }, new Uint8Array(4)), /__metadata__/],
  ];

  it.each(cases)('%s', async (_label, bytes, message) => {
    const m = await publish({ shards: 1, extraFiles: { 'model.safetensors': bytes } });
    const r = await run(m.uri);
    expect(r.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'safetensors_header' });
    expect(r.fault?.message).toMatch(message);
    expect(r.fault?.message).toContain('model.safetensors');
  });

  it('a configured smaller cap applies', async () => {
    const m = await publish({ shards: 1 });
    expect((await run(m.uri, { maxHeaderBytes: 16 })).fault?.message).toMatch(/exceeds cap 16/);
  });

  it('an F32 tensor in an otherwise sane header is weight_dtype, not a header fault', async () => {
    const f32 = encodeSafetensorsRaw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    const m = await publish({ shards: 1, extraFiles: { 'model.safetensors': f32 } });
    expect((await run(m.uri)).fault).toMatchObject({ code: 'weight_dtype', message: "model weights must be 16-bit (F16/BF16); shard model.safetensors has dtype(s): ['F32']" });
  });
});

describe('pure helpers', () => {
  it('allowlist globs use fnmatch semantics', () => {
    expect(fnmatchToRegExp('*.py').test('sub/x.py')).toBe(true);
    expect(fnmatchToRegExp('model-*-of-*.safetensors').test('model-00001-of-00002.safetensors')).toBe(true);
    expect(fnmatchToRegExp('model.safetensors').test('modelXsafetensors')).toBe(false);
    expect(fnmatchToRegExp('[!a]b').test('cb')).toBe(true);
    expect(fnmatchToRegExp('[ab').test('[ab')).toBe(true);
    const none = checkFileAllowlist([]);
    expect(none.message).toBe("missing required: ['config.json', 'tokenizer_config.json', 'tokenizer.json', 'preprocessor_config.json', 'video_preprocessor_config.json', '*.safetensors']");
    expect(checkFileAllowlist(['config.json', 'tokenizer_config.json', 'tokenizer.json', 'preprocessor_config.json', 'video_preprocessor_config.json', 'model.safetensors', 'README.md'], 'v2').missing).toEqual([
      'generation_config.json',
      'chat_template.jinja',
    ]);
  });

  it('Python reprs and equality', () => {
    expect(pyStrRepr("it's")).toBe('"it\'s"');
    expect(pyStrRepr('a\nb\u0000')).toBe("'a\\nb\\x00'");
    expect(pyRepr([true, null, 1, 1.5, 'x', { k: false }])).toBe("[True, None, 1, 1.5, 'x', {'k': False}]");
    expect(pyFloatRepr(1e-5)).toBe('1e-05');
    expect(pyFloatRepr(1e16)).toBe('1e+16');
    expect(pyFloatRepr(0.0001)).toBe('0.0001');
    expect(pyFloatRepr(123.25)).toBe('123.25');
    expect(pyEquals(false, 0)).toBe(true);
    expect(pyEquals(true, 1.0)).toBe(true);
    expect(pyEquals('1', 1)).toBe(false);
    expect(pyEquals([1, { a: [true] }], [1.0, { a: [1] }])).toBe(true);
    expect(pyEquals(null, false)).toBe(false);
  });

  it('the synthetic config satisfies the bundled architecture lock', () => {
    const spec = bundledArchitectureSpec();
    expect(checkArchitecture(syntheticConfig(spec), spec).ok).toBe(true);
    expect(checkArchitecture([], spec).message).toBe('config.json is not a JSON object');
  });

});
