import { describe, expect, it } from 'vitest';
import { ChainConfigError, DEFAULT_RECONNECT_POLICY, NETWORK_PRESETS, reconnectDelayMs, redactEndpoint, resolveEndpoint } from './provider.ts';

describe('resolveEndpoint', () => {
  it('maps the spec presets and accepts any ws(s) URL verbatim', () => {
    expect(resolveEndpoint('finney')).toBe('wss://entrypoint-finney.opentensor.ai:443');
    expect(resolveEndpoint('test')).toBe(NETWORK_PRESETS.test);
    expect(resolveEndpoint('archive')).toBe('wss://archive.chain.opentensor.ai:443');
    expect(resolveEndpoint('local')).toBe('ws://127.0.0.1:9944');
    expect(resolveEndpoint('ws://10.0.0.5:9944/path')).toBe('ws://10.0.0.5:9944/path');
  });

  it('refuses other schemes and junk with a configuration error', () => {
    expect(() => resolveEndpoint('http://example.org')).toThrow(ChainConfigError);
    expect(() => resolveEndpoint('mainnet')).toThrow(/CHAIN_NETWORK must be one of finney, test, archive, local/);
    expect(() => resolveEndpoint('constructor')).toThrow(ChainConfigError);
  });
});

describe('redactEndpoint', () => {
  it('hides credentials in the URL', () => {
    const shown = redactEndpoint('wss://user:hunter2@node.example:443/rpc?apikey=s3cret');
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('s3cret');
    expect(shown).toContain('node.example');
  });
});

describe('reconnectDelayMs', () => {
  it('grows exponentially to the cap, with bounded jitter', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3].map((a) => reconnectDelayMs(a, DEFAULT_RECONNECT_POLICY, mid))).toEqual([250, 500, 1000, 2000]);
    expect(reconnectDelayMs(40, DEFAULT_RECONNECT_POLICY, mid)).toBe(30_000);
    expect(reconnectDelayMs(0, DEFAULT_RECONNECT_POLICY, () => 0)).toBe(200);
    expect(reconnectDelayMs(0, DEFAULT_RECONNECT_POLICY, () => 0.999999)).toBe(300);
  });
});
