import { createDecipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { describe, expect, it } from 'vitest';
import { scaleEncodeString } from './reveal.ts';
import {
  BLOCK_TIME_SECONDS,
  CHAIN_COMMITMENT_CIPHERTEXT_LIMIT,
  DRAND_QUICKNET,
  MAX_TIMELOCK_CIPHERTEXT_BYTES,
  MAX_TIMELOCK_PLAINTEXT_BYTES,
  TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES,
  TimelockError,
  type TimelockErrorCode,
  commitRevealRound,
  drandIdentity,
  encodeScaleString,
  parseTimelockCiphertext,
  serializeTimelockCiphertext,
  timelockDecrypt,
  timelockEncrypt,
  verifyDrandSignature,
  weightsRevealRound,
} from './timelock.ts';
import { mulberry32 as prng } from '../core/prng.ts';
import { codeOf } from '../tests/support/timelock.ts';

interface DrandFixture {
  info: { public_key: string; period: number; genesis_time: number; hash: string };
  pulses: { round: number; signature: string; randomness: string }[];
  invalid: { claimedRound: number; signature: string }[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../tests/fixtures/chain/drand-quicknet.json', import.meta.url), 'utf8'),
) as DrandFixture;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const sigOf = (round: number): Uint8Array => {
  const pulse = fixture.pulses.find((p) => p.round === round);
  if (pulse === undefined) throw new Error(`no pulse ${round}`);
  return hex(pulse.signature);
};
const SIG_1000 = sigOf(1000);
const SIG_2000 = sigOf(2000);
const SIG_INVALID = hex(fixture.invalid[0]!.signature);
const V7_PAYLOAD = `v7|example/albedo-qwen3.6-35b-demo|sha256:${'0'.repeat(64)}`;



describe('constants', () => {
  it('match the recorded quicknet beacon info', () => {
    expect(DRAND_QUICKNET.publicKeyHex).toBe(fixture.info.public_key);
    expect(DRAND_QUICKNET.chainHash).toBe(fixture.info.hash);
    expect(DRAND_QUICKNET.genesisTime).toBe(fixture.info.genesis_time);
    expect(DRAND_QUICKNET.periodSeconds).toBe(fixture.info.period);
    expect(BLOCK_TIME_SECONDS).toBe(12);
    expect(MAX_TIMELOCK_PLAINTEXT_BYTES + TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES).toBe(MAX_TIMELOCK_CIPHERTEXT_BYTES);
  });

  it('fixture randomness is sha256(signature)', () => {
    for (const p of fixture.pulses) {
      expect(createHash('sha256').update(hex(p.signature)).digest('hex')).toBe(p.randomness);
    }
  });
});

describe('drandIdentity', () => {
  it('is sha256 of the big-endian u64 round, for number and bigint', () => {
    const be = Buffer.from('00000000000003e8', 'hex');
    const expected = createHash('sha256').update(be).digest('hex');
    expect(Buffer.from(drandIdentity(1000)).toString('hex')).toBe(expected);
    expect(drandIdentity(1000n)).toEqual(drandIdentity(1000));
    expect(drandIdentity((1n << 64n) - 1n)).toHaveLength(32);
  });

  it('rejects non-u64 rounds', () => {
    expect(codeOf(() => drandIdentity(-1))).toBe('bad_input');
    expect(codeOf(() => drandIdentity(1.5))).toBe('bad_input');
    expect(codeOf(() => drandIdentity(1n << 64n))).toBe('bad_input');
    expect(codeOf(() => drandIdentity(Number.NaN))).toBe('bad_input');
  });
});

describe('verifyDrandSignature', () => {
  it('round 1000 signature verifies for 1000 only', () => {
    expect(verifyDrandSignature(1000, SIG_1000)).toBe(true);
    expect(verifyDrandSignature(1000n, SIG_1000)).toBe(true);
    for (const r of [999, 1001, 2000, 20000]) expect(verifyDrandSignature(r, SIG_1000)).toBe(false);
  });

  it('round 2000 signature verifies for 2000 only', () => {
    expect(verifyDrandSignature(2000, SIG_2000)).toBe(true);
    for (const r of [1000, 1999, 20000]) expect(verifyDrandSignature(r, SIG_2000)).toBe(false);
  });

  it('returns false (never throws) for invalid points, lengths, keys and rounds', () => {
    expect(verifyDrandSignature(1000, SIG_INVALID)).toBe(false);
    expect(verifyDrandSignature(2000, SIG_INVALID)).toBe(false);
    expect(verifyDrandSignature(1000, SIG_1000.subarray(0, 47))).toBe(false);
    expect(verifyDrandSignature(1000, new Uint8Array(48))).toBe(false);
    const infinity = new Uint8Array(48);
    infinity[0] = 0xc0;
    expect(verifyDrandSignature(1000, infinity)).toBe(false);
    expect(verifyDrandSignature(-1, SIG_1000)).toBe(false);
    expect(verifyDrandSignature(1000, SIG_1000, new Uint8Array(96))).toBe(false);
    // G2 generator is a valid key, but not the beacon's.
    const g2 = bls12_381.G2.Point.BASE.toBytes(true);
    expect(verifyDrandSignature(1000, SIG_1000, g2)).toBe(false);
  });
});

describe('timelockEncrypt / timelockDecrypt (wasm)', () => {
  it('round-trips with the real round 1000 and 2000 signatures', () => {
    for (const [round, sig] of [
      [1000, SIG_1000],
      [2000, SIG_2000],
    ] as const) {
      const plaintext = utf8(`hello round ${round}`);
      const ct = timelockEncrypt({ round, plaintext });
      expect(ct).toHaveLength(plaintext.length + TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES);
      expect(timelockDecrypt(ct, sig)).toEqual(plaintext);
    }
  });

  it("fails cleanly with another round's signature or an undecodable signature", () => {
    const ct = timelockEncrypt({ round: 1000, plaintext: utf8('secret') });
    expect(codeOf(() => timelockDecrypt(ct, SIG_2000))).toBe('decrypt_failed');
    expect(codeOf(() => timelockDecrypt(ct, SIG_INVALID))).toBe('bad_signature');
    expect(codeOf(() => timelockDecrypt(ct, SIG_1000.subarray(0, 47)))).toBe('bad_signature');
    expect(codeOf(() => timelockDecrypt(ct, new Uint8Array(96)))).toBe('bad_signature');
    // still works afterwards (the wasm instance is not poisoned by errors)
    expect(timelockDecrypt(ct, SIG_1000)).toEqual(utf8('secret'));
  });

  it('is randomised (σ and nonce) but the AES body is keyed by the ephemeral secret with no AAD', () => {
    const ephemeralSecret = new Uint8Array(32).fill(7);
    const plaintext = utf8('deterministic?');
    const a = timelockEncrypt({ round: 1000, plaintext, ephemeralSecret });
    const b = timelockEncrypt({ round: 1000, plaintext, ephemeralSecret });
    expect(a).not.toEqual(b);
    for (const ct of [a, b]) {
      const parts = parseTimelockCiphertext(ct);
      const body = parts.aesCiphertext;
      const d = createDecipheriv('aes-256-gcm', ephemeralSecret, parts.nonce);
      d.setAuthTag(body.subarray(body.length - 16));
      const out = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
      expect(new Uint8Array(out)).toEqual(plaintext);
      expect(timelockDecrypt(ct, SIG_1000)).toEqual(plaintext);
    }
  });

  it('encrypts an empty plaintext', () => {
    const ct = timelockEncrypt({ round: 2000, plaintext: new Uint8Array(0) });
    expect(ct).toHaveLength(TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES);
    expect(timelockDecrypt(ct, SIG_2000)).toEqual(new Uint8Array(0));
  });

  it('validates arguments before touching the wasm', () => {
    const plaintext = utf8('x');
    expect(codeOf(() => timelockEncrypt({ round: 1000, plaintext, ephemeralSecret: new Uint8Array(31) }))).toBe('bad_input');
    expect(codeOf(() => timelockEncrypt({ round: -5, plaintext }))).toBe('bad_input');
    expect(codeOf(() => timelockEncrypt({ round: 1000, plaintext, publicKey: new Uint8Array(96) }))).toBe('bad_public_key');
    expect(codeOf(() => timelockEncrypt({ round: 1000, plaintext, publicKey: new Uint8Array(95) }))).toBe('bad_public_key');
    // A key whose bytes are not a curve point: the wasm would accept it silently.
    const garbageKey = hex(DRAND_QUICKNET.publicKeyHex);
    garbageKey[95]! ^= 1;
    expect(codeOf(() => timelockEncrypt({ round: 1000, plaintext, publicKey: garbageKey }))).toBe('bad_public_key');
    expect(codeOf(() => timelockEncrypt({ round: 1000, plaintext: new Uint8Array(MAX_TIMELOCK_PLAINTEXT_BYTES + 1) }))).toBe(
      'oversize',
    );
    expect(codeOf(() => timelockDecrypt(new Uint8Array(MAX_TIMELOCK_CIPHERTEXT_BYTES + 1), SIG_1000))).toBe('oversize');
  });

  it('encrypts the largest allowed plaintext', () => {
    const plaintext = new Uint8Array(MAX_TIMELOCK_PLAINTEXT_BYTES).fill(0x61);
    const ct = timelockEncrypt({ round: 1000, plaintext });
    expect(ct).toHaveLength(MAX_TIMELOCK_CIPHERTEXT_BYTES);
    expect(timelockDecrypt(ct, SIG_1000)).toEqual(plaintext);
  });
});

describe('parseTimelockCiphertext (chain.md §7 layout)', () => {
  it('parses a wasm ciphertext field by field', () => {
    const plaintext = utf8('8 bytes!');
    const ct = timelockEncrypt({ round: 1000, plaintext });
    expect(ct).toHaveLength(252);
    const le = (at: number): bigint => Buffer.from(ct).readBigUInt64LE(at);
    // U (96) | len 32 | v | len 32 | w | body len | { ct len | ct‖tag | nonce len | nonce } | len 8 | "AES_GCM_"
    expect(le(96)).toBe(32n);
    expect(le(136)).toBe(32n);
    expect(le(176)).toBe(BigInt(8 + 24 + 8 + 12));
    expect(le(184)).toBe(24n);
    expect(le(216)).toBe(12n);
    expect(le(236)).toBe(8n);
    expect(Buffer.from(ct.subarray(244)).toString('latin1')).toBe('AES_GCM_');

    const parts = parseTimelockCiphertext(ct);
    expect(parts.u).toEqual(ct.subarray(0, 96));
    expect(parts.v).toEqual(ct.subarray(104, 136));
    expect(parts.w).toEqual(ct.subarray(144, 176));
    expect(parts.aesCiphertext).toEqual(ct.subarray(192, 216));
    expect(parts.nonce).toEqual(ct.subarray(224, 236));
    expect(parts.cipherSuite).toBe('AES_GCM_');
    expect(parts.plaintextLength).toBe(plaintext.length);
    expect(serializeTimelockCiphertext(parts)).toEqual(ct);
  });

  it('a SCALE-encoded v7 payload encrypts to ~352 bytes, within the 1024-byte commitment limit', () => {
    const plaintext = encodeScaleString(V7_PAYLOAD);
    expect(V7_PAYLOAD).toHaveLength(106);
    expect(plaintext).toHaveLength(108);
    const ct = timelockEncrypt({ round: 2000, plaintext });
    expect(ct).toHaveLength(352);
    expect(ct.length).toBeLessThanOrEqual(CHAIN_COMMITMENT_CIPHERTEXT_LIMIT);
    expect(parseTimelockCiphertext(ct).plaintextLength).toBe(108);
    expect(timelockDecrypt(ct, SIG_2000)).toEqual(plaintext);
  });

  it('rejects truncation, trailing bytes, wrong field lengths and wrong cipher suite', () => {
    const ct = timelockEncrypt({ round: 1000, plaintext: utf8('layout') });
    for (let n = 0; n < ct.length; n++) expect(codeOf(() => parseTimelockCiphertext(ct.subarray(0, n)))).toBe('bad_ciphertext');
    const extended = new Uint8Array(ct.length + 1);
    extended.set(ct);
    expect(codeOf(() => parseTimelockCiphertext(extended))).toBe('bad_ciphertext');

    const mutate = (at: number, value: number): Uint8Array => {
      const copy = Uint8Array.from(ct);
      copy[at] = value;
      return copy;
    };
    expect(codeOf(() => parseTimelockCiphertext(mutate(0, ct[0]! & 0x7f)))).toBe('bad_ciphertext'); // uncompressed flag
    expect(codeOf(() => parseTimelockCiphertext(mutate(96, 31)))).toBe('bad_ciphertext'); // v length
    expect(codeOf(() => parseTimelockCiphertext(mutate(103, 0x80)))).toBe('bad_ciphertext'); // v length 2^63+32
    expect(codeOf(() => parseTimelockCiphertext(mutate(136, 33)))).toBe('bad_ciphertext'); // w length
    expect(codeOf(() => parseTimelockCiphertext(mutate(176, 0xff)))).toBe('bad_ciphertext'); // body length
    expect(codeOf(() => parseTimelockCiphertext(mutate(184, 15)))).toBe('bad_ciphertext'); // ct length
    expect(codeOf(() => parseTimelockCiphertext(mutate(ct.length - 1, 0x21)))).toBe('bad_ciphertext'); // suite
    expect(codeOf(() => parseTimelockCiphertext(new Uint8Array(MAX_TIMELOCK_CIPHERTEXT_BYTES + 1)))).toBe('oversize');
    expect(codeOf(() => parseTimelockCiphertext('nope' as unknown as Uint8Array))).toBe('bad_input');
  });

  it('serializeTimelockCiphertext rejects wrong part lengths', () => {
    const parts = parseTimelockCiphertext(timelockEncrypt({ round: 1000, plaintext: utf8('x') }));
    expect(codeOf(() => serializeTimelockCiphertext({ ...parts, v: new Uint8Array(31) }))).toBe('bad_input');
    expect(codeOf(() => serializeTimelockCiphertext({ ...parts, nonce: new Uint8Array(16) }))).toBe('bad_input');
    expect(codeOf(() => serializeTimelockCiphertext({ ...parts, aesCiphertext: new Uint8Array(15) }))).toBe('bad_input');
  });
});

describe('fuzz: parse and wasm decrypt only ever throw TimelockError', () => {
  it('2,000 random and mutated buffers', () => {
    const rand = prng(0x71e10c);
    const int = (n: number): number => Math.floor(rand() * n);
    const base = timelockEncrypt({ round: 1000, plaintext: encodeScaleString(V7_PAYLOAD) });
    const seen = new Map<TimelockErrorCode, number>();
    const expectTimelockError = (f: () => unknown): void => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof TimelockError)) throw new Error(`non-TimelockError escaped: ${String(e)}`);
        seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
        return;
      }
      throw new Error('mutated ciphertext decrypted');
    };
    for (let i = 0; i < 2000; i++) {
      let buf: Uint8Array;
      switch (i % 4) {
        case 0: // random bytes, random length (sometimes around the real length)
          buf = new Uint8Array(i % 8 === 0 ? base.length : int(600));
          for (let j = 0; j < buf.length; j++) buf[j] = int(256);
          break;
        case 1: {
          // 1–4 bit flips anywhere
          buf = Uint8Array.from(base);
          const flips = 1 + int(4);
          for (let j = 0; j < flips; j++) buf[int(buf.length)]! ^= 1 << int(8);
          break;
        }
        case 2: // truncation or extension
          buf = i % 8 === 2 ? base.slice(0, int(base.length)) : Uint8Array.from([...base, ...Array.from({ length: 1 + int(8) }, () => int(256))]);
          break;
        default: {
          // overwrite one u64 length field with a hostile value
          buf = Uint8Array.from(base);
          const at = [96, 136, 176, 184, buf.length - 36, buf.length - 16][int(6)]!;
          const value = [0n, 1n, 31n, 33n, 0xffffffffn, (1n << 64n) - 1n, BigInt(int(1 << 16))][int(7)]!;
          Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).writeBigUInt64LE(value, at);
        }
      }
      if (buf.length === base.length && buf.every((b, j) => b === base[j])) continue;
      expectTimelockError(() => timelockDecrypt(buf, SIG_1000));
      try {
        parseTimelockCiphertext(buf);
      } catch (e) {
        if (!(e instanceof TimelockError)) throw new Error(`non-TimelockError escaped parse: ${String(e)}`);
      }
    }
    expect(seen.get('bad_ciphertext') ?? 0).toBeGreaterThan(500);
    expect(seen.get('decrypt_failed') ?? 0).toBeGreaterThan(50);
    // The wasm still works after all that.
    expect(timelockDecrypt(base, SIG_1000)).toEqual(encodeScaleString(V7_PAYLOAD));
  });
});

describe('encodeScaleString', () => {
  it('is reveal.ts scaleEncodeString: compact length ‖ UTF-8', () => {
    expect(encodeScaleString).toBe(scaleEncodeString);
    expect(encodeScaleString('abc')).toEqual(Uint8Array.of(0x0c, 0x61, 0x62, 0x63));
    // 106 bytes ⇒ two-byte compact: (106 << 2) | 1 = 425 = 0x01a9, little-endian.
    expect(Array.from(encodeScaleString(V7_PAYLOAD).subarray(0, 2))).toEqual([0xa9, 0x01]);
  });
});

describe('commitRevealRound (chain.md §4 step 3)', () => {
  it('spec example: now = 1750000000 ⇒ 19065548', () => {
    // (1750000000 − 1692803367 + round(1 × 12)) / 3 = 57196645 / 3 = 19065548.33 ⇒ 19065548
    expect(commitRevealRound(1_750_000_000)).toBe(19_065_548);
    expect(commitRevealRound(1_750_000_000.99)).toBe(19_065_548); // now is floored first
    // two blocks: (57196633 + 24) / 3 = 19065552.33 ⇒ 19065552
    expect(commitRevealRound(1_750_000_000, 2)).toBe(19_065_552);
    // zero blocks at genesis ⇒ round 0
    expect(commitRevealRound(DRAND_QUICKNET.genesisTime, 0)).toBe(0);
  });

  it("uses Python's half-to-even round for the block term", () => {
    const now = DRAND_QUICKNET.genesisTime + 1;
    // 0.375 × 12 = 4.5 ⇒ 4 (half-even; half-up would give 5): (1 + 4) / 3 = 1.67 ⇒ 1
    expect(commitRevealRound(now, 0.375)).toBe(1);
    // 0.125 × 12 = 1.5 ⇒ 2: (1 + 2) / 3 = 1
    expect(commitRevealRound(now, 0.125)).toBe(1);
    // 0.0625 × 12 = 0.75 ⇒ 1: (1 + 1) / 3 = 0.67 ⇒ 0
    expect(commitRevealRound(now, 0.0625)).toBe(0);
  });

  it('rejects times before genesis and bad block counts', () => {
    expect(codeOf(() => commitRevealRound(DRAND_QUICKNET.genesisTime - 1))).toBe('bad_input');
    expect(codeOf(() => commitRevealRound(Number.NaN))).toBe('bad_input');
    expect(codeOf(() => commitRevealRound(1_750_000_000, -1))).toBe('bad_input');
    expect(codeOf(() => commitRevealRound(1_750_000_000, Number.POSITIVE_INFINITY))).toBe('bad_input');
  });
});

describe('weightsRevealRound (chain.md §6.2 step 5, CRv4)', () => {
  it('netuid 97, mecid 0, tempo 360, reveal period 1', () => {
    // n = 0·4096 + 97 + 1 = 98, t = 361
    // floor((5000000 + 98) / 361) = floor(5000098 / 361) = 13850 (361·13850 = 4999850, remainder 248)
    // first = (13850 + 1)·361 − 98 = 5000211 − 98 = 5000113
    // secs  = (5000113 + 3 − 5000000)·12 = 116·12 = 1392
    // round = floor((1750000000 + 1392 − 1692803367) / 3) = floor(57198025 / 3) = 19066008
    expect(
      weightsRevealRound({
        nowUnixSeconds: 1_750_000_000,
        currentBlock: 5_000_000,
        netuid: 97,
        tempo: 360,
        revealPeriodEpochs: 1,
      }),
    ).toBe(19_066_008);
  });

  it('mecid 1 shifts the storage index by 4096', () => {
    // n = 1·4096 + 97 + 1 = 4194, t = 361
    // floor((5000000 + 4194) / 361) = floor(5004194 / 361) = 13862 (361·13862 = 5004182, remainder 12)
    // first = (13862 + 1)·361 − 4194 = 5004543 − 4194 = 5000349
    // secs  = (5000349 + 3 − 5000000)·12 = 352·12 = 4224
    // round = floor((57196633 + 4224) / 3) = floor(57200857 / 3) = 19066952
    expect(
      weightsRevealRound({
        nowUnixSeconds: 1_750_000_000.7,
        currentBlock: 5_000_000,
        netuid: 97,
        mecid: 1,
        tempo: 360,
        revealPeriodEpochs: 1,
      }),
    ).toBe(19_066_952);
  });

  it('clamps to round 1', () => {
    // n = 1, t = 361, cur = 359: floor(360 / 361) = 0, first = (0 + 0)·361 − 1 = −1
    // secs = (−1 + 3 − 359)·12 = −4284; floor((genesis − 4284 − genesis) / 3) = −1428 ⇒ max(1, −1428) = 1
    expect(
      weightsRevealRound({
        nowUnixSeconds: DRAND_QUICKNET.genesisTime,
        currentBlock: 359,
        netuid: 0,
        tempo: 360,
        revealPeriodEpochs: 0,
      }),
    ).toBe(1);
  });

  it('rejects out-of-range arguments', () => {
    const ok = { nowUnixSeconds: 1_750_000_000, currentBlock: 1, netuid: 1, tempo: 360, revealPeriodEpochs: 1 };
    expect(codeOf(() => weightsRevealRound({ ...ok, netuid: 70_000 }))).toBe('bad_input');
    expect(codeOf(() => weightsRevealRound({ ...ok, mecid: 256 }))).toBe('bad_input');
    expect(codeOf(() => weightsRevealRound({ ...ok, tempo: -1 }))).toBe('bad_input');
    expect(codeOf(() => weightsRevealRound({ ...ok, currentBlock: 1.5 }))).toBe('bad_input');
    expect(codeOf(() => weightsRevealRound({ ...ok, nowUnixSeconds: Number.NaN }))).toBe('bad_input');
  });
});
