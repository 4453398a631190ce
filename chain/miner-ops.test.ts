import { describe, expect, it } from 'vitest';
import { recordedRuntime } from './metadata.ts';
import { commitmentInfo, formatTao, MinerOpError } from './miner-ops.ts';
import { decodeWeightsCommitPayload, encodeWeightsCommitPayload } from './weights-commit.ts';

const payload = `v7|example/albedo-qwen3.6-35b-demo|${'a'.repeat(40)}`;

describe('commitmentInfo', () => {
  const { registry } = recordedRuntime();
  const encode = (info: unknown) => registry.createType('PalletCommitmentsCommitmentInfo', info);

  it('encodes a raw field named by byte count (not character count)', () => {
    const info = commitmentInfo('v7|ns/é|x', { raw: true });
    const decoded = encode(info).toJSON() as { fields: Array<Record<string, string>> };
    expect(Object.keys(decoded.fields[0] ?? {})).toEqual(['raw10']);
  });

  it('refuses a raw payload over 128 bytes', () => {
    expect(() => commitmentInfo(`v7|${'a'.repeat(130)}`, { raw: true })).toThrow(MinerOpError);
  });

  it('keeps ciphertext bytes intact through the metadata codec (no double length prefix)', () => {
    const encrypted = Uint8Array.from({ length: 352 }, (_, i) => (i * 7) & 0xff);
    const info = encode(commitmentInfo(payload, { raw: false, encrypted, revealRound: 19_065_548 }));
    const field = (info as unknown as { fields: Array<{ asTimelockEncrypted: { encrypted: { toU8a(b: boolean): Uint8Array }; revealRound: { toNumber(): number } } }> }).fields[0]!;
    expect(field.asTimelockEncrypted.encrypted.toU8a(true)).toEqual(encrypted);
    expect(field.asTimelockEncrypted.revealRound.toNumber()).toBe(19_065_548);
  });
});

describe('formatTao', () => {
  it('prints rao exactly', () => {
    expect(formatTao(1_000_000_000n)).toBe('1 TAO');
    expect(formatTao(1_500_000_001n)).toBe('1.500000001 TAO');
    expect(formatTao(0n)).toBe('0 TAO');
  });
});

describe('CRv4 weights payload', () => {
  it('round-trips through SCALE', () => {
    const hotkeyPublicKey = Uint8Array.from({ length: 32 }, (_, i) => i);
    const bytes = encodeWeightsCommitPayload({ hotkeyPublicKey, uids: [0, 5, 9], weights: [65535, 32768, 1], versionKey: 10_003_000 });
    // Vec<u8>(32) = 1 + 32, Vec<u16>(3) = 1 + 6, twice, u64 = 8
    expect(bytes.length).toBe(33 + 7 + 7 + 8);
    expect(decodeWeightsCommitPayload(bytes)).toEqual({ hotkeyPublicKey, uids: [0, 5, 9], weights: [65535, 32768, 1], versionKey: 10_003_000n });
  });
});
