import { describe, expect, it } from 'vitest';
import {
  DIGEST_RE,
  MAX_REVEAL_BYTES,
  commitPayload,
  decodeRevealBytes,
  digestBackend,
  formatReveal,
  genesisIdempotencyKey,
  parseReveal,
  payloadHash,
  scaleCompact,
  scaleCompactPrefix,
  scaleEncodeString,
  submissionIdempotencyKey,
} from './reveal.ts';
import { mulberry32 as prng } from '../core/prng.ts';

const SHA = `sha256:${'0'.repeat(64)}`;
const HEX40 = 'a'.repeat(40);
const HEX64 = 'b'.repeat(64);
const REPO = 'example/albedo-qwen3.6-35b-demo';
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);


describe('parseReveal: v7 table (chain.md §2)', () => {
  it.each([
    [`v7|${REPO}|${SHA}`, true],
    [`v7|${REPO}|${HEX40}`, true],
    [`v7|${REPO}|${HEX64}`, true],
    [`v7|Upper/Case|${HEX40}`, true], // ingest only needs "/"; validation rejects later (repo_name)
    [`v7|/|${HEX40}`, true],
    [`v6|${REPO}|${SHA}`, false],
    [`v5|${REPO}|${SHA}`, false],
    [`V7|${REPO}|${SHA}`, false],
    [` v7|${REPO}|${SHA}`, false],
    [`v7|${REPO}|${SHA}|5Hotkey`, false], // 4 parts
    [`v7|${REPO}`, false],
    ['v7', false],
    [`v7|norepo|${SHA}`, false],
    [`v7|${REPO}|main`, false], // mutable ref
    [`v7|${REPO}|${SHA}\n`, false], // Python's $ would accept this; we do not
    [`v7|${REPO}|${SHA.toUpperCase()}`, false],
    [`v7|${REPO}|sha256:${'0'.repeat(63)}`, false],
    [`v7|${REPO}|${'a'.repeat(41)}`, false],
    [`v7|${REPO}|${'a'.repeat(39)}`, false],
    [`v7|${REPO}|${'g'.repeat(40)}`, false],
    [`v7|${REPO}|sha256:${HEX40}`, false],
    [`v7|${REPO}|`, false],
    [`v7|ns/re\u0000po|${HEX40}`, false], // NUL cannot be stored in Postgres
    ['', false],
  ])('%j → ok=%s', (payload, ok) => {
    const r = parseReveal(payload);
    expect(r.ok).toBe(ok);
    if (r.ok) {
      const [, repo, digest] = payload.split('|');
      expect(r.reveal).toEqual({ version: 'v7', repo, digest, modelUri: `${repo}@${digest}` });
      expect(r.payload).toBe(payload);
    } else {
      expect(r.reason.length).toBeGreaterThan(0);
    }
  });

  it('classifies rejections', () => {
    const code = (x: Uint8Array | string): string | undefined => {
      const r = parseReveal(x);
      return r.ok ? undefined : r.code;
    };
    expect(code(`v6|${REPO}|${SHA}`)).toBe('unknown_version');
    expect(code(`v7|${REPO}|${SHA}|x`)).toBe('malformed');
    expect(code(`v7|x|${SHA}`)).toBe('bad_repo');
    expect(code(`v7|${REPO}|main`)).toBe('bad_digest');
    expect(code(new Uint8Array())).toBe('empty');
    expect(code(Uint8Array.of(0x01))).toBe('malformed_prefix'); // mode 1 needs 2 bytes
    expect(code(new Uint8Array(MAX_REVEAL_BYTES + 1))).toBe('oversize');
    expect(code('v'.repeat(MAX_REVEAL_BYTES + 1))).toBe('oversize');
    expect(code(`v7|${'é'.repeat(MAX_REVEAL_BYTES / 2)}|${SHA}`)).toBe('oversize'); // counted in UTF-8 bytes
    expect(code('v7|a/\ud800|x')).toBe('malformed'); // lone surrogate
    expect(code(42 as unknown as Uint8Array)).toBe('bad_input');
  });

  it('strict mode applies the lowercase ref regex (validation.md §2)', () => {
    expect(parseReveal(`v7|${REPO}|${SHA}`, { repoCheck: 'strict' }).ok).toBe(true);
    expect(parseReveal(`v7|Upper/Case|${SHA}`, { repoCheck: 'strict' }).ok).toBe(false);
    expect(parseReveal(`v7|/|${SHA}`, { repoCheck: 'strict' }).ok).toBe(false);
    expect(parseReveal(`v7|ns/a b|${SHA}`, { repoCheck: 'strict' }).ok).toBe(false);
    expect(parseReveal(`v7|ns/-x|${SHA}`, { repoCheck: 'strict' }).ok).toBe(false);
    expect(parseReveal(`v7|ns/sub/x.y_z-1|${SHA}`, { repoCheck: 'strict' }).ok).toBe(true);
  });
});

describe('parseReveal: SCALE bytes (chain.md §2.1)', () => {
  const payload = `v7|${REPO}|${SHA}`;

  it('decodes the SCALE string a miner commits', () => {
    const bytes = scaleEncodeString(payload);
    expect(payload.length).toBe(106);
    expect([bytes[0], bytes[1]]).toEqual([((106 << 2) | 1) & 0xff, (106 << 2) >> 8]); // ≥ 64 bytes ⇒ two-byte compact mode
    const r = parseReveal(bytes);
    expect(r.ok && r.reveal.modelUri).toBe(`${REPO}@${SHA}`);
    expect(r.ok && r.warnings).toEqual([]);
  });

  it('compact prefix lengths for all four modes', () => {
    expect(scaleCompactPrefix(Uint8Array.of(16 << 2))).toEqual({ offset: 1, declared: 16n });
    expect(scaleCompactPrefix(scaleCompact(300))).toEqual({ offset: 2, declared: 300n });
    expect(scaleCompactPrefix(scaleCompact(20000))).toEqual({ offset: 4, declared: 20000n });
    // mode 3 with (b0 >> 2) = 0 ⇒ 1 + 0 + 4 = 5 bytes (upstream wrongly used 4)
    expect(scaleCompactPrefix(Uint8Array.of(0b11, 0x00, 0x00, 0x00, 0x40))).toEqual({ offset: 5, declared: 0x40000000n });
    expect(scaleCompactPrefix(Uint8Array.of(0b11, 1, 2, 3))).toBeNull();
    expect(scaleCompact(63)).toEqual(Uint8Array.of(252));
    expect(scaleCompact(64)).toEqual(Uint8Array.of(1, 1));
    expect(scaleCompact(16384)).toEqual(Uint8Array.of(2, 0, 1, 0));
  });

  it('a length mismatch warns but still decodes the rest (upstream behaviour)', () => {
    const body = utf8(payload);
    const bytes = new Uint8Array([...scaleCompact(body.length + 5), ...body]);
    const r = parseReveal(bytes);
    expect(r.ok).toBe(true);
    expect(r.ok && r.warnings[0]).toBe(`SCALE length prefix declares ${body.length + 5} bytes but ${body.length} follow; decoding the rest`);
  });

  it('invalid UTF-8 is dropped by default (errors="ignore") and rejected with utf8: fatal', () => {
    const body = utf8(payload);
    const dirty = new Uint8Array([...body.subarray(0, 5), 0xff, 0xc3, ...body.subarray(5)]);
    const bytes = new Uint8Array([...scaleCompact(dirty.length), ...dirty]);
    const lenient = parseReveal(bytes);
    expect(lenient.ok && lenient.payload).toBe(payload);
    const strict = parseReveal(bytes, { utf8: 'fatal' });
    expect(strict).toMatchObject({ ok: false, code: 'invalid_utf8' });
  });

  it('raw framing (non-timelocked Raw<n> fallback) has no prefix', () => {
    const r = parseReveal(utf8(payload), { framing: 'raw' });
    expect(r.ok).toBe(true);
    // the same raw bytes read as SCALE lose their first byte ('v' = 0x76 ⇒ mode 2, 4 bytes)
    expect(parseReveal(utf8(payload)).ok).toBe(false);
  });

  it('decodeRevealBytes returns the payload without interpreting it', () => {
    expect(decodeRevealBytes(scaleEncodeString('v6|a/b|c'))).toEqual({ ok: true, payload: 'v6|a/b|c', warnings: [] });
  });
});

describe('payload hash and keys (chain.md §2, pipeline.md)', () => {
  it('matches the worked example in chain.md', () => {
    expect(payloadHash({ repo: REPO, digest: SHA }, '5ExampleHotkey')).toBe(
      'ff830d416660f374e8238a9f007cffa30123015a4da77a3ff54a3e91dc08c9e3',
    );
    expect(commitPayload({ repo: REPO, digest: SHA }, '5ExampleHotkey')).toEqual({
      version: 'v7',
      repo: REPO,
      digest: SHA,
      author_hotkey: '5ExampleHotkey',
      spoofed: false,
    });
  });
  it('escapes non-ASCII like Python (ensure_ascii)', () => {
    // python3 -c 'import json,hashlib;print(hashlib.sha256(json.dumps({"author_hotkey":"5é","digest":"a"*40,"repo":"ns/ré","spoofed":False,"version":"v7"},sort_keys=True,separators=(",",":")).encode()).hexdigest())'
    expect(payloadHash({ repo: 'ns/ré', digest: HEX40 }, '5é')).toBe('61781f0a626d95b99eeeb310a1c7c1a334ee5d26fb451d44d020ac3213e4d0e8');
  });
  it('builds idempotency keys', () => {
    expect(submissionIdempotencyKey(97, '5Hk', 'ab')).toBe('chain:97:5Hk:ab');
    expect(genesisIdempotencyKey(97, '5Hk', 'v6|a/b|c')).toMatch(/^genesis:97:5Hk:[0-9a-f]{64}$/);
  });
  it('formatReveal / digestBackend', () => {
    expect(formatReveal(REPO, SHA)).toBe(`v7|${REPO}|${SHA}`);
    expect(() => formatReveal('Bad/Repo', SHA)).toThrow(RangeError);
    expect(digestBackend(SHA)).toBe('hippius');
    expect(digestBackend(HEX40)).toBe('hf');
    expect(digestBackend('main')).toBeNull();
    expect(DIGEST_RE.test(`${HEX64}\n`)).toBe(false);
  });
});

describe('parseReveal fuzz', () => {
  const check = (input: Uint8Array | string): void => {
    const r = parseReveal(input);
    if (r.ok) {
      // anything accepted re-parses identically from its payload string and round-trips through SCALE
      const again = parseReveal(r.payload);
      expect(again.ok && again.reveal).toEqual(r.reveal);
      const scale = parseReveal(scaleEncodeString(r.payload));
      expect(scale.ok && scale.reveal).toEqual(r.reveal);
    } else {
      expect(typeof r.reason).toBe('string');
    }
  };

  it('never throws on 10,000 random byte strings (SCALE and raw framing, both UTF-8 modes)', () => {
    const rand = prng(0xa1bed0);
    for (let n = 0; n < 10_000; n++) {
      const len = n % 50 === 0 ? Math.floor(rand() * (MAX_REVEAL_BYTES + 64)) : Math.floor(rand() * 160);
      const bytes = new Uint8Array(len);
      for (let i = 0; i < len; i++) bytes[i] = Math.floor(rand() * 256);
      expect(() => check(bytes)).not.toThrow();
      expect(() => parseReveal(bytes, { framing: 'raw', utf8: 'fatal', repoCheck: 'strict' })).not.toThrow();
    }
  });

  it('never throws on 10,000 mutated valid payloads, and some stay valid', () => {
    const rand = prng(97);
    const base = scaleEncodeString(`v7|${REPO}|${SHA}`);
    const alphabet = utf8('v7|/:sha256abcdef0123456789\n\u0000é');
    let accepted = 0;
    for (let n = 0; n < 10_000; n++) {
      const bytes = Uint8Array.from(base);
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * bytes.length);
        bytes[at] = rand() < 0.5 ? Math.floor(rand() * 256) : (alphabet[Math.floor(rand() * alphabet.length)] as number);
      }
      const cut = rand() < 0.1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      expect(() => check(cut)).not.toThrow();
      if (parseReveal(cut).ok) accepted++;
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it('never throws on 10,000 random strings', () => {
    const rand = prng(7);
    for (let n = 0; n < 10_000; n++) {
      let s = '';
      const len = Math.floor(rand() * 120);
      for (let i = 0; i < len; i++) {
        const r = rand();
        s += r < 0.2 ? '|' : r < 0.3 ? '/' : String.fromCharCode(Math.floor(rand() * (r < 0.9 ? 128 : 0x10000)));
      }
      expect(() => check(s)).not.toThrow();
    }
  });
});
