import { readFileSync } from 'node:fs';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { describe, expect, it } from 'vitest';
import {
  ARKWORKS_FP12_BYTES,
  arkworksFp12Bytes,
  timelockDecryptNoble,
  timelockEncryptNoble,
} from './timelock-noble.ts';
import {
  MAX_TIMELOCK_CIPHERTEXT_BYTES,
  MAX_TIMELOCK_PLAINTEXT_BYTES,
  TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES,
  TimelockError,
  encodeScaleString,
  parseTimelockCiphertext,
  timelockDecrypt,
  timelockEncrypt,
} from './timelock.ts';
import { mulberry32 as prng } from '../core/prng.ts';
import { codeOf } from '../tests/support/timelock.ts';

interface DrandFixture {
  pulses: { round: number; signature: string }[];
  invalid: { signature: string }[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../tests/fixtures/chain/drand-quicknet.json', import.meta.url), 'utf8'),
) as DrandFixture;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const SIGS = new Map<number, Uint8Array>(fixture.pulses.map((p) => [p.round, hex(p.signature)]));
const SIG_1000 = SIGS.get(1000)!;
const SIG_2000 = SIGS.get(2000)!;
const SIG_INVALID = hex(fixture.invalid[0]!.signature);
const V7 = encodeScaleString(`v7|example/albedo-qwen3.6-35b-demo|sha256:${'0'.repeat(64)}`);



describe('arkworksFp12Bytes', () => {
  it('writes 12 little-endian 48-byte coefficients in tower order', () => {
    const one = arkworksFp12Bytes(bls12_381.fields.Fp12.ONE);
    expect(one).toHaveLength(ARKWORKS_FP12_BYTES);
    expect(one[0]).toBe(1);
    expect(one.subarray(1).every((b) => b === 0)).toBe(true);
    // c1.c2.c1 (the last coefficient) = 0x0102 lands at offset 11·48, little-endian.
    const Fp12 = bls12_381.fields.Fp12;
    const f = Fp12.fromBigTwelve([0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0x0102n]);
    const bytes = arkworksFp12Bytes(f);
    expect(bytes[11 * 48]).toBe(0x02);
    expect(bytes[11 * 48 + 1]).toBe(0x01);
  });
});

describe('interop with the reference wasm (@ideallabs/timelock_wasm_wrapper@1.0.0)', () => {
  for (const round of [1000, 2000]) {
    const sig = SIGS.get(round)!;
    const other = round === 1000 ? SIG_2000 : SIG_1000;

    it(`wasm encrypt → noble decrypt, round ${round}`, () => {
      for (const plaintext of [V7, utf8(''), utf8(`round ${round} ✓`)]) {
        const ct = timelockEncrypt({ round, plaintext });
        expect(timelockDecryptNoble(ct, sig)).toEqual(plaintext);
      }
    });

    it(`noble encrypt → wasm decrypt, round ${round}`, () => {
      for (const plaintext of [V7, utf8(''), utf8(`round ${round} ✓`)]) {
        const ct = timelockEncryptNoble({ round, plaintext });
        expect(ct).toHaveLength(plaintext.length + TIMELOCK_CIPHERTEXT_OVERHEAD_BYTES);
        expect(parseTimelockCiphertext(ct).plaintextLength).toBe(plaintext.length);
        expect(timelockDecrypt(ct, sig)).toEqual(plaintext);
        expect(timelockDecryptNoble(ct, sig)).toEqual(plaintext);
      }
    });

    it(`the other round's signature fails cleanly in both implementations, round ${round}`, () => {
      const fromWasm = timelockEncrypt({ round, plaintext: V7 });
      const fromNoble = timelockEncryptNoble({ round, plaintext: V7 });
      for (const ct of [fromWasm, fromNoble]) {
        expect(codeOf(() => timelockDecryptNoble(ct, other))).toBe('decrypt_failed');
        expect(codeOf(() => timelockDecrypt(ct, other))).toBe('decrypt_failed');
      }
    });
  }

  it('a v7 commitment from noble has the same size as from the wasm (352 bytes)', () => {
    expect(timelockEncryptNoble({ round: 1000, plaintext: V7 })).toHaveLength(352);
    expect(timelockEncrypt({ round: 1000, plaintext: V7 })).toHaveLength(352);
  });
});

describe('timelockDecryptNoble failures', () => {
  const ct = timelockEncrypt({ round: 1000, plaintext: V7 });
  const tamper = (at: number): Uint8Array => {
    const copy = Uint8Array.from(ct);
    copy[at]! ^= 1;
    return copy;
  };

  it('undecodable or wrong-length signatures ⇒ bad_signature', () => {
    expect(codeOf(() => timelockDecryptNoble(ct, SIG_INVALID))).toBe('bad_signature');
    expect(codeOf(() => timelockDecryptNoble(ct, SIG_1000.subarray(1)))).toBe('bad_signature');
    expect(codeOf(() => timelockDecryptNoble(ct, new Uint8Array(48)))).toBe('bad_signature');
  });

  it('tampering with v, w, the AES body or tag, or the nonce ⇒ decrypt_failed in both implementations', () => {
    for (const at of [100 + 8, 144 + 3, 192, ct.length - 17 - 20, ct.length - 17]) {
      const bad = tamper(at);
      expect(codeOf(() => timelockDecryptNoble(bad, SIG_1000))).toBe('decrypt_failed');
      expect(codeOf(() => timelockDecrypt(bad, SIG_1000))).toBe('decrypt_failed');
    }
  });

  it('a U that is not a G2 point ⇒ bad_ciphertext', () => {
    const bad = Uint8Array.from(ct);
    bad.fill(0xff, 1, 96);
    expect(codeOf(() => timelockDecryptNoble(bad, SIG_1000))).toBe('bad_ciphertext');
  });

  it('oversize input ⇒ oversize', () => {
    expect(codeOf(() => timelockDecryptNoble(new Uint8Array(MAX_TIMELOCK_CIPHERTEXT_BYTES + 1), SIG_1000))).toBe('oversize');
    expect(
      codeOf(() => timelockEncryptNoble({ round: 1, plaintext: new Uint8Array(MAX_TIMELOCK_PLAINTEXT_BYTES + 1) })),
    ).toBe('oversize');
  });

  it('validates encrypt arguments like the wasm path', () => {
    expect(codeOf(() => timelockEncryptNoble({ round: 1, plaintext: V7, ephemeralSecret: new Uint8Array(33) }))).toBe(
      'bad_input',
    );
    expect(codeOf(() => timelockEncryptNoble({ round: 1, plaintext: V7, publicKey: new Uint8Array(96) }))).toBe(
      'bad_public_key',
    );
  });

  it('fuzz: 400 mutated ciphertexts only ever throw TimelockError', () => {
    const rand = prng(0xb15);
    const int = (n: number): number => Math.floor(rand() * n);
    let tested = 0;
    for (let i = 0; i < 400; i++) {
      const buf = i % 5 === 0 ? ct.slice(0, int(ct.length)) : Uint8Array.from(ct);
      if (i % 5 !== 0) for (let j = 0, n = 1 + int(3); j < n; j++) buf[int(buf.length)]! ^= 1 << int(8);
      if (buf.length === ct.length && buf.every((b, j) => b === ct[j])) continue;
      tested++;
      let threw: unknown = null;
      try {
        timelockDecryptNoble(buf, SIG_1000);
      } catch (e) {
        threw = e;
      }
      expect(threw).toBeInstanceOf(TimelockError);
    }
    expect(tested).toBeGreaterThan(380);
  });
});
