import { describe, expect, it } from 'vitest';
import { AlbedoError } from '../core/faults.ts';
import { DEFAULT_REPO_NAME_PATTERN } from './model-ref.ts';
import type { DedupIndex } from './dedup/index.ts';
import { ModelCache } from './model-cache.ts';
import { LocalDirStore } from './model-store.ts';
import { createValidationExecutor, validationOptionsFromEnv } from './stage.ts';
import { hfHubStoreFromEnv } from './store-config.ts';

/** Construction-time checks never touch these. */
const deps = { store: new LocalDirStore('/tmp'), cache: new ModelCache({ root: '/tmp/albedo-unused-cache' }), dedup: {} as DedupIndex, artifacts: null };

describe('validation worker configuration (spec/config.md)', () => {
  it('has the v1 defaults and the v2 profile', () => {
    const v1 = validationOptionsFromEnv({});
    expect(v1).toMatchObject({ backends: ['hippius'], allowlistProfile: 'seed-live', allowMutableRef: false, banOnDuplicate: true, hippiusRegistryHost: 'registry.hippius.com' });
    expect(v1.repoPattern).toBe(DEFAULT_REPO_NAME_PATTERN);
    expect(v1.maxStrikes).toBeUndefined();
    const pins = { ALBEDO_CHAT_TEMPLATE_SHA256: 'a'.repeat(64), ALBEDO_GENESIS_FILE_HASHES: JSON.stringify({ 'config.json': 'b'.repeat(64) }) };
    expect(validationOptionsFromEnv(pins, 'v2')).toMatchObject({
      backends: ['hippius', 'hf'],
      allowlistProfile: 'v2',
      genesisPins: { chatTemplateSha256: 'a'.repeat(64), fileHashes: { 'config.json': 'b'.repeat(64) }, genesisRef: 'the genesis model' },
    });
  });

  it('the v2 profile refuses to start without its byte pins, and bad pins name the variable', () => {
    expect(() => validationOptionsFromEnv({}, 'v2')).toThrow(/v2 allowlist profile needs ALBEDO_CHAT_TEMPLATE_SHA256 and ALBEDO_GENESIS_FILE_HASHES/);
    expect(() => validationOptionsFromEnv({ ALBEDO_CHAT_TEMPLATE_SHA256: 'xyz', ALBEDO_GENESIS_FILE_HASHES: '{}' })).toThrow(/ALBEDO_CHAT_TEMPLATE_SHA256 must be 64/);
    expect(() => validationOptionsFromEnv({ ALBEDO_CHAT_TEMPLATE_SHA256: 'a'.repeat(64), ALBEDO_GENESIS_FILE_HASHES: '[' })).toThrow(/ALBEDO_GENESIS_FILE_HASHES must be a JSON object/);
    expect(() => validationOptionsFromEnv({ ALBEDO_CHAT_TEMPLATE_SHA256: 'a'.repeat(64), ALBEDO_GENESIS_FILE_HASHES: '{"config.json": 1}' })).toThrow(/ALBEDO_GENESIS_FILE_HASHES\["config.json"\]/);
  });

  it('reads overrides and the ALBEDO_HV_MAX_FAILS alias', () => {
    const o = validationOptionsFromEnv({
      ALBEDO_MODEL_BACKENDS: 'hf',
      ALBEDO_REPO_NAME_PATTERN: '^team/.+$',
      ALBEDO_HV_MAX_FAILS: '5',
      ALBEDO_MAX_SAFETENSORS_HEADER_BYTES: '1048576',
      ALBEDO_BAN_ON_DUPLICATE: '0',
      ALBEDO_ALLOW_MUTABLE_REF: 'yes',
      ALBEDO_HIPPIUS_REGISTRY: 'https://registry.example:5000',
    });
    expect(o).toMatchObject({ backends: ['hf'], maxStrikes: 5, maxHeaderBytes: 1_048_576, banOnDuplicate: false, allowMutableRef: true, hippiusRegistryHost: 'registry.example:5000' });
    expect(o.repoPattern?.test('team/x')).toBe(true);
    expect(validationOptionsFromEnv({ ALBEDO_HOTKEY_MAX_STRIKES: '2', ALBEDO_HV_MAX_FAILS: '9' }).maxStrikes).toBe(2);
  });

  it.each([
    [{ ALBEDO_MODEL_BACKENDS: 's3' }],
    [{ ALBEDO_ALLOW_MUTABLE_REF: 'maybe' }],
    [{ ALBEDO_MAX_SAFETENSORS_HEADER_BYTES: '1' }],
    [{ ALBEDO_MAX_SAFETENSORS_HEADER_BYTES: '-5' }],
    [{ ALBEDO_HOTKEY_MAX_STRIKES: 'three' }],
    [{ ALBEDO_ALLOWLIST_PROFILE: 'strict' }],
    [{ ALBEDO_REPO_NAME_PATTERN: '(' }],
    [{ ALBEDO_ARCH_SPEC: '/nonexistent/arch.json' }],
  ])('refuses invalid settings at startup: %o', (env) => {
    expect(() => validationOptionsFromEnv(env)).toThrow(AlbedoError);
  });

  it('the executor refuses invalid options and the hub store reads its token', () => {
    expect(() => createValidationExecutor({ ...deps, maxHeaderBytes: 2 ** 40 })).toThrow(/ALBEDO_MAX_SAFETENSORS_HEADER_BYTES/);
    expect(() => createValidationExecutor({ ...deps, maxStrikes: -1 })).toThrow(/ALBEDO_HOTKEY_MAX_STRIKES/);
    expect(() => createValidationExecutor({ ...deps, backends: [] })).toThrow(/ALBEDO_MODEL_BACKENDS/);
    expect(hfHubStoreFromEnv({ ALBEDO_HF_ENDPOINT: 'http://127.0.0.1:1', HUGGING_FACE_HUB_TOKEN: 't' }).resolveUrl(
      { repo: 'a/b', digest: 'c'.repeat(40), backend: 'hf', mutable: false, uri: '' },
      'config.json',
    )).toBe(`http://127.0.0.1:1/a/b/resolve/${'c'.repeat(40)}/config.json`);
  });
});
