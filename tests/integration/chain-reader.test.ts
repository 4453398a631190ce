/**
 * Chain reader (issue #4) against real Postgres with an in-memory substrate storage whose keys and
 * values are encoded through the recorded spec-381 metadata: ingestion and idempotency, start block and
 * ignore-to-block backfill, hotkey swap and deregistration detection, and a 10,000-reveal fuzz through
 * the reader. The same reader runs against the WebSocket dev chain in chain-devnet.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainReader, type ChainReaderSource } from '../../chain/reader.ts';
import { scaleEncodeString, sha256Hex } from '../../chain/reveal.ts';
import { accountValue, codecsFor, keysKey, MemoryStorage, registrationKey, revealedKey, revealedValue, testHotkey, u64Value, v7Payload } from '../support/chain-storage.ts';
import { ingestInto } from '../support/ingest.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { mulberry32 } from '../../core/prng.ts';

const NETUID = 97;
const codecs = codecsFor(NETUID);

class FakeChain {
  readonly storage = new MemoryStorage(1_000);
  /** hotkey → coldkey; a missing entry is the zero account (hotkey gone). */
  readonly owners = new Map<string, string>();

  source(): ChainReaderSource {
    return {
      bestBlock: async () => ({ number: this.storage.best, hash: this.storage.hashOf(this.storage.best) }),
      blockHash: async (n) => this.storage.hashOf(n),
      ownerOf: async (hotkey) => this.owners.get(hotkey) ?? null,
      storage: this.storage,
      ...codecs,
    };
  }

  register(uid: number, hotkey: string, block: number, coldkey = `cold-${hotkey.slice(0, 6)}`): Map<string, string | null> {
    this.owners.set(hotkey, coldkey);
    return new Map([
      [keysKey(NETUID, uid), accountValue(hotkey)],
      [registrationKey(NETUID, uid), u64Value(block)],
    ]);
  }

  /** Produces empty blocks until the best block is `n`. */
  advanceTo(n: number): void {
    while (this.storage.best < n) this.storage.commitBlock();
  }
}

describe.each(testServers())('chain reader on $name Postgres', (server) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(server);
  });
  afterAll(async () => {
    await t.drop();
  });

  async function count(sql: string, params: unknown[] = []): Promise<number> {
    const { rows } = await t.db.query<{ n: string }>(sql, params);
    return Number(rows[0]?.n ?? 0);
  }

  it('ingests valid reveals once, records the rest as ignored with a reason, and re-reading the range changes nothing', async () => {
    await t.db.query('TRUNCATE chain_commits, model_submissions, miners, used_hotkeys, events CASCADE');
    const chain = new FakeChain();
    chain.advanceTo(5);
    const hk = [testHotkey(0), testHotkey(1), testHotkey(2)];
    chain.storage.commitBlock(new Map([...chain.register(0, hk[0]!, 3), ...chain.register(1, hk[1]!, 4)]));
    chain.storage.commitBlock(
      new Map([
        [revealedKey(NETUID, hk[0]!), revealedValue([{ payload: v7Payload(0, 1), block: 6 }, { payload: 'v6|old/format|abc', block: 6 }])],
        [revealedKey(NETUID, hk[1]!), revealedValue([{ payload: v7Payload(1, 1), block: 7 }, { payload: `v7|ns/albedo-qwen3.6-35b-x|main`, block: 7 }])],
        // hk[2] is not registered: ignored, recorded with the reason
        [revealedKey(NETUID, hk[2]!), revealedValue([{ payload: v7Payload(2, 1), block: 7 }])],
      ]),
    );
    chain.advanceTo(12);
    const reader = new ChainReader({ db: t.db, source: chain.source(), netuid: NETUID, ingest: ingestInto(t), fullResyncEvery: 1 });
    const first = await reader.poll();
    expect(first).toMatchObject({ atBlock: 9, ingested: 2, ignored: 3 });
    const reasons = (await t.db.query<{ ignored_reason: string }>('SELECT ignored_reason FROM chain_commits WHERE ignored_reason IS NOT NULL ORDER BY ignored_reason')).rows.map((r) => r.ignored_reason);
    expect(reasons).toEqual([expect.stringMatching(/^bad_digest: /), expect.stringMatching(/^hotkey not registered on netuid 97/), expect.stringMatching(/^unknown_version: /)]);
    const commits = (await t.db.query<{ block_hash: string; model_uri: string; uid: number }>('SELECT block_hash, model_uri, uid FROM chain_commits WHERE ignored_reason IS NULL ORDER BY uid')).rows;
    expect(commits.map((c) => [c.uid, c.block_hash])).toEqual([
      [0, chain.storage.hashOf(6)],
      [1, chain.storage.hashOf(7)],
    ]);
    expect(await count('SELECT count(*) AS n FROM miners WHERE coldkey IS NOT NULL AND registration_block IS NOT NULL')).toBe(2);

    // A fresh reader (a restart) and a second pass over the same blocks change nothing.
    const snapshot = await t.db.query('SELECT id, block_number, block_hash, ignored_reason, submission_id FROM chain_commits ORDER BY id');
    const restarted = new ChainReader({ db: t.db, source: chain.source(), netuid: NETUID, ingest: ingestInto(t), fullResyncEvery: 1 });
    chain.storage.commitBlock();
    expect(await restarted.poll()).toMatchObject({ ingested: 0 });
    expect((await t.db.query('SELECT id, block_number, block_hash, ignored_reason, submission_id FROM chain_commits ORDER BY id')).rows).toEqual(snapshot.rows);
    expect(await count('SELECT count(*) AS n FROM model_submissions')).toBe(2);
    reader.stop();
    restarted.stop();
  });

  it('honours CHAIN_START_BLOCK and backfills used_hotkeys up to IGNORE_COMMITS_TO_BLOCK, then rejects those hotkeys (T2)', async () => {
    await t.db.query('TRUNCATE chain_commits, model_submissions, miners, used_hotkeys, events CASCADE');
    const chain = new FakeChain();
    const [a, b, c] = [testHotkey(10), testHotkey(11), testHotkey(12)];
    chain.storage.commitBlock(new Map([...chain.register(0, a, 1), ...chain.register(1, b, 1), ...chain.register(2, c, 1)]));
    chain.advanceTo(30);
    chain.storage.commitBlock(
      new Map([
        [revealedKey(NETUID, a), revealedValue([{ payload: 'v6|anything|goes', block: 15 }])],
        [revealedKey(NETUID, b), revealedValue([{ payload: v7Payload(11, 0), block: 25 }])],
        [revealedKey(NETUID, c), revealedValue([{ payload: v7Payload(12, 0), block: 5 }])],
      ]),
    );
    chain.advanceTo(40);
    const reader = new ChainReader({ db: t.db, source: chain.source(), netuid: NETUID, ingest: ingestInto(t), startBlock: 10, ignoreCommitsToBlock: 20 });
    await reader.poll();
    // c (block 5) is below the start block: nothing at all; a (block 15) backfilled; b (block 25) ingested.
    expect((await t.db.query('SELECT hotkey, source FROM used_hotkeys ORDER BY hotkey')).rows).toEqual([{ hotkey: a, source: 'backfill' }]);
    expect(await count('SELECT count(*) AS n FROM model_submissions')).toBe(1);
    chain.storage.commitBlock(new Map([[revealedKey(NETUID, a), revealedValue([{ payload: 'v6|anything|goes', block: 15 }, { payload: v7Payload(10, 1), block: 41 }])]]));
    chain.advanceTo(45);
    await reader.poll();
    expect((await t.db.query("SELECT fault_code FROM model_submissions WHERE hotkey = $1", [a])).rows).toEqual([{ fault_code: 'hotkey_reused' }]);
    reader.stop();
  });

  it('detects a hotkey swap (same uid and registration block, old hotkey without owner) and a deregistration', async () => {
    await t.db.query('TRUNCATE chain_commits, model_submissions, miners, used_hotkeys, events CASCADE');
    const chain = new FakeChain();
    const [old, swapped, dereg, fresh] = [testHotkey(20), testHotkey(21), testHotkey(22), testHotkey(23)];
    chain.storage.commitBlock(new Map([...chain.register(3, old, 1), ...chain.register(4, dereg, 2)]));
    chain.storage.commitBlock(
      new Map([
        [revealedKey(NETUID, old), revealedValue([{ payload: v7Payload(20, 0), block: 1 }])],
        [revealedKey(NETUID, dereg), revealedValue([{ payload: v7Payload(22, 0), block: 1 }])],
      ]),
    );
    chain.advanceTo(10);
    const reader = new ChainReader({ db: t.db, source: chain.source(), netuid: NETUID, ingest: ingestInto(t) });
    await reader.poll();
    expect(await count('SELECT count(*) AS n FROM miners')).toBe(2);

    // swap_hotkey: uid 3 keeps block 1, the old hotkey loses its owner. uid 4 is re-registered at block 11.
    chain.owners.delete(old);
    chain.storage.commitBlock(new Map([[keysKey(NETUID, 3), accountValue(swapped)], ...chain.register(4, fresh, 11)]));
    chain.owners.set(swapped, 'cold-swapped');
    chain.advanceTo(20);
    const result = await reader.poll();
    expect(result.swaps).toBe(1);
    expect((await t.db.query<{ hotkey: string; source: string; raw_payload: string }>('SELECT hotkey, source, raw_payload FROM used_hotkeys')).rows).toEqual([
      { hotkey: swapped, source: 'swap', raw_payload: JSON.stringify({ uid: 3, old_hotkey: old, new_hotkey: swapped, registration_block: 1 }) },
    ]);
    const events = (await t.db.query<{ event_type: string; severity: string; message: string }>('SELECT event_type, severity, message FROM events ORDER BY id')).rows;
    expect(events).toContainEqual({
      event_type: 'hotkey_swap_detected',
      severity: 'ERROR',
      message: `hotkey swap detected: uid 3 BEFORE hotkey=${old} BlockAtRegistration=1 | AFTER hotkey=${swapped} BlockAtRegistration=1 <- identical, no re-registration -> swap_hotkey`,
    });
    expect(events.filter((e) => e.event_type === 'hotkey_deregistered')).toHaveLength(1);
    // A commit from the swapped-in hotkey is rejected at ingest (T2 hotkey_swap).
    chain.storage.commitBlock(new Map([[revealedKey(NETUID, swapped), revealedValue([{ payload: v7Payload(21, 0), block: 21 }])]]));
    chain.advanceTo(30);
    await reader.poll();
    expect((await t.db.query('SELECT fault_code FROM model_submissions WHERE hotkey = $1', [swapped])).rows).toEqual([{ fault_code: 'hotkey_swap' }]);
    // Polling again without changes records nothing new.
    const before = await count('SELECT count(*) AS n FROM events');
    chain.advanceTo(35);
    await reader.poll();
    expect(await count('SELECT count(*) AS n FROM events')).toBe(before);
    reader.stop();
  });

  it('fuzz: 10,000 random reveal byte strings are each stored as ignored with a reason, never crashing the reader', async () => {
    await t.db.query('TRUNCATE chain_commits, model_submissions, miners, used_hotkeys, events CASCADE');
    const chain = new FakeChain();
    const rand = mulberry32(0x9e3779b9);
    const HOTKEYS = 1_000;
    const registrations = new Map<string, string | null>();
    for (let i = 0; i < HOTKEYS; i++) for (const [k, v] of chain.register(i, testHotkey(1000 + i), 1)) registrations.set(k, v);
    chain.storage.commitBlock(registrations);
    const reveals = new Map<string, string | null>();
    const distinct = new Set<string>();
    const kinds = ['random', 'oversize', 'non-utf8', 'version', 'near-v7'] as const;
    for (let i = 0; i < HOTKEYS; i++) {
      const entries = Array.from({ length: 10 }, (_, n) => {
        const kind = kinds[(i * 10 + n) % kinds.length];
        let bytes: Uint8Array;
        if (kind === 'oversize') bytes = scaleEncodeString(`v7|${'a'.repeat(17_000)}/x|${'0'.repeat(40)}`);
        else if (kind === 'non-utf8') bytes = Uint8Array.from([0x40, 0xff, 0xfe, ...Array.from({ length: 14 }, () => Math.floor(rand() * 256))]);
        else if (kind === 'version') bytes = scaleEncodeString(`${['v5', 'v6', 'v8', 'V7', 'v7 ', 'v70', ''][Math.floor(rand() * 7)]}|ns/albedo-qwen3.6-35b-x|${'a'.repeat(40)}`);
        else if (kind === 'near-v7') bytes = scaleEncodeString(`v7|ns/albedo-qwen3.6-35b-${n}|${'a'.repeat(39)}${String.fromCharCode(33 + Math.floor(rand() * 90))}\n`);
        else bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 200) }, () => Math.floor(rand() * 256));
        distinct.add(`${i}:${sha256Hex(bytes)}`);
        return { payload: bytes, block: 2 + n };
      });
      reveals.set(revealedKey(NETUID, testHotkey(1000 + i)), revealedValue(entries));
    }
    chain.storage.commitBlock(reveals);
    chain.advanceTo(20);
    const errors: string[] = [];
    const reader = new ChainReader({ db: t.db, source: chain.source(), netuid: NETUID, ingest: ingestInto(t), onError: (e) => errors.push(e.message) });
    const result = await reader.poll();
    expect(errors).toEqual([]);
    expect(result.ingested).toBe(0);
    expect(result.ignored).toBe(10_000);
    // Identical byte strings of one hotkey share a row (keyed by payload hash): one row per distinct (hotkey, bytes).
    expect(await count('SELECT count(*) AS n FROM chain_commits WHERE ignored_reason IS NOT NULL')).toBe(distinct.size);
    expect(await count("SELECT count(*) AS n FROM chain_commits WHERE ignored_reason IS NULL OR ignored_reason = ''")).toBe(0);
    expect(await count('SELECT count(*) AS n FROM model_submissions')).toBe(0);
    reader.stop();
  }, 120_000);
});
