import { hexToU8a, u8aToHex } from '@polkadot/util';
import { describe, expect, it } from 'vitest';
import { DRAND_QUICKNET, encodeScaleString, timelockDecrypt, timelockEncrypt, verifyDrandSignature } from '../timelock.ts';
import { DEFAULT_LOCAL_BEACON_PUBLIC_KEY, DEFAULT_LOCAL_BEACON_SEED, createBeacon, createLocalBeacon, createRecordedQuicknetBeacon, deriveLocalBeaconPublicKey } from './beacon.ts';

describe('local stand-in beacon', () => {
  it('derives its key deterministically from the seed (and the precomputed default matches)', () => {
    expect(u8aToHex(deriveLocalBeaconPublicKey(DEFAULT_LOCAL_BEACON_SEED))).toBe(DEFAULT_LOCAL_BEACON_PUBLIC_KEY);
    const other = createLocalBeacon('another seed');
    expect(other.publicKey).toHaveLength(96);
    expect(u8aToHex(other.publicKey)).not.toBe(DEFAULT_LOCAL_BEACON_PUBLIC_KEY);
    expect(createLocalBeacon('another seed')).toBe(other);
    expect(() => createLocalBeacon('')).toThrow(RangeError);
  });

  it('signs rounds that pass the real drand BLS check and decrypt timelocked data', () => {
    const beacon = createBeacon();
    expect(beacon.label).toMatch(/LOCAL STAND-IN/);
    const pulse = beacon.pulse(123_456);
    expect(pulse?.signature).toHaveLength(48);
    expect(verifyDrandSignature(123_456, pulse?.signature as Uint8Array, beacon.publicKey)).toBe(true);
    expect(verifyDrandSignature(123_457, pulse?.signature as Uint8Array, beacon.publicKey)).toBe(false);
    expect(verifyDrandSignature(123_456, pulse?.signature as Uint8Array)).toBe(false); // not quicknet's key
    const ct = timelockEncrypt({ round: 123_456, plaintext: encodeScaleString('hello'), publicKey: beacon.publicKey });
    expect(timelockDecrypt(ct, pulse?.signature as Uint8Array)).toEqual(encodeScaleString('hello'));
  });

  it('uses quicknet timing so reveal-round formulas hold', () => {
    const beacon = createLocalBeacon();
    expect([beacon.genesisTime, beacon.period]).toEqual([DRAND_QUICKNET.genesisTime, DRAND_QUICKNET.periodSeconds]);
    expect(beacon.roundAt(DRAND_QUICKNET.genesisTime - 1)).toBe(0);
    expect(beacon.roundAt(DRAND_QUICKNET.genesisTime)).toBe(1);
    expect(beacon.roundAt(DRAND_QUICKNET.genesisTime + 5)).toBe(2);
  });
});

describe('recorded quicknet beacon', () => {
  it('carries the real key and the fixture pulses, and cannot sign', () => {
    const beacon = createRecordedQuicknetBeacon();
    expect(u8aToHex(beacon.publicKey).slice(2)).toBe(DRAND_QUICKNET.publicKeyHex);
    expect(u8aToHex(beacon.chainHash).slice(2)).toBe(DRAND_QUICKNET.chainHash);
    const pulses = beacon.genesisPulses();
    expect(pulses.map((p) => p.round)).toEqual([1000, 2000]);
    for (const p of pulses) expect(verifyDrandSignature(p.round, p.signature)).toBe(true);
    expect(beacon.pulse(3000)).toBeNull();
    expect(u8aToHex(pulses[0]?.randomness)).toBe('0xfe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd');
    expect(hexToU8a(u8aToHex(pulses[0]?.signature))).toEqual(pulses[0]?.signature);
  });
});
