import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, loadConfig } from './config.ts';

const base = { ALBEDO_INSECURE_DEV: '1' };

describe('loadConfig', () => {
  it('uses the spec defaults for the chain settings', () => {
    const c = loadConfig(base);
    expect(c.CHAIN_NETWORK).toBe('finney');
    expect(c.CHAIN_POLL_INTERVAL_S).toBe(CONFIG_DEFAULTS.CHAIN_POLL_INTERVAL_S);
    expect(c.CHAIN_SCAN_LAG_BLOCKS).toBe(3);
    expect(c.CHAIN_BLOCK_HASH_CACHE).toBe(10_000);
    expect(c.IGNORE_COMMITS_TO_BLOCK).toBe(0);
    expect(c.CHAIN_READ_RAW_COMMITMENTS).toBe(false);
  });

  it('derives IGNORE_COMMITS_TO_BLOCK from CHAIN_START_BLOCK unless set (spec/config.md)', () => {
    expect(loadConfig({ ...base, CHAIN_START_BLOCK: '5000' }).IGNORE_COMMITS_TO_BLOCK).toBe(4999);
    expect(loadConfig({ ...base, CHAIN_START_BLOCK: '5000', IGNORE_COMMITS_TO_BLOCK: '10' }).IGNORE_COMMITS_TO_BLOCK).toBe(10);
  });

  it('names the offending variable and never echoes its value', () => {
    expect(() => loadConfig({ ...base, CHAIN_SCAN_LAG_BLOCKS: '-1' })).toThrow(/CHAIN_SCAN_LAG_BLOCKS/);
    expect(() => loadConfig({ ...base, ALBEDO_CHAIN_TOKEN: 'short-secret' })).toThrow(/^invalid configuration: ALBEDO_CHAIN_TOKEN: tokens must be at least 16 characters$/);
  });

  it('requires an operator token outside dev mode', () => {
    expect(() => loadConfig({})).toThrow(/ALBEDO_OPERATOR_TOKEN is required/);
  });
});
