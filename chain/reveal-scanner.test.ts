import { describe, expect, it } from 'vitest';
import { MetagraphMirror } from './metagraph.ts';
import { RevealScanner } from './reveal-scanner.ts';
import { parseReveal } from './reveal.ts';
import { accountValue, codecsFor, keysKey, MemoryStorage, registrationKey, revealedKey, revealedValue, testHotkey, u64Value, v7Payload } from '../tests/support/chain-storage.ts';

const NETUID = 97;
const codecs = codecsFor(NETUID);

function setup(hotkeys: number, perHotkey: number) {
  const storage = new MemoryStorage();
  const reveals = new Map<number, Array<{ payload: string; block: number }>>();
  const changes = new Map<string, string | null>();
  for (let i = 0; i < hotkeys; i++) {
    const list = Array.from({ length: perHotkey }, (_, n) => ({ payload: v7Payload(i, n), block: 10 + n }));
    reveals.set(i, list);
    changes.set(revealedKey(NETUID, testHotkey(i)), revealedValue(list));
  }
  storage.commitBlock(changes);
  const scanner = new RevealScanner(storage, codecs.prefixes.revealed, codecs.revealCodec, { fullResyncEvery: 0 });
  return { storage, reveals, scanner };
}

describe('RevealScanner over recorded-metadata SCALE storage', () => {
  it('decodes every reveal on the first scan, then reads no values while nothing changes', async () => {
    const { storage, scanner } = setup(8, 3);
    const first = await scanner.scan(storage.hashOf(storage.best));
    expect(first.reveals).toHaveLength(24);
    expect(first.reveals.every((r) => parseReveal(r.bytes).ok)).toBe(true);
    for (const r of first.reveals) scanner.markProcessed(r);
    const before = storage.stats.valuesRead;
    for (let b = 0; b < 5; b++) {
      storage.commitBlock();
      const again = await scanner.scan(storage.hashOf(storage.best));
      expect(again.reveals).toEqual([]);
    }
    expect(storage.stats.valuesRead).toBe(before);
  });

  it('reads only the hotkey that changed and offers only its new reveal, also when the chain drops the oldest of 10', async () => {
    const { storage, reveals, scanner } = setup(4, 10);
    for (const r of (await scanner.scan(storage.hashOf(storage.best))).reveals) scanner.markProcessed(r);
    const list = reveals.get(2) ?? [];
    const next = [...list.slice(1), { payload: v7Payload(2, 99), block: 50 }];
    const before = storage.stats.valuesRead;
    storage.commitBlock(new Map([[revealedKey(NETUID, testHotkey(2)), revealedValue(next)]]));
    const { reveals: fresh } = await scanner.scan(storage.hashOf(storage.best));
    expect(storage.stats.valuesRead - before).toBe(1);
    expect(fresh.map((r) => [r.hotkey, r.block])).toEqual([[testHotkey(2), 50]]);
    expect(parseReveal(fresh[0]!.bytes).ok && parseReveal(fresh[0]!.bytes)).toMatchObject({ payload: v7Payload(2, 99) });
  });

  it('waits for a change to reach the lagged block before reporting it', async () => {
    const { storage, scanner } = setup(2, 1);
    for (const r of (await scanner.scan(storage.hashOf(storage.best))).reveals) scanner.markProcessed(r);
    const lagged = storage.best;
    storage.commitBlock(new Map([[revealedKey(NETUID, testHotkey(0)), revealedValue([{ payload: v7Payload(0, 0), block: 10 }, { payload: v7Payload(0, 1), block: 20 }])]]));
    expect((await scanner.scan(storage.hashOf(lagged))).reveals).toEqual([]);
    const { reveals } = await scanner.scan(storage.hashOf(storage.best));
    expect(reveals.map((r) => r.block)).toEqual([20]);
  });

  it('offers an unprocessed reveal again after retryLater, and seeded marks skip old reveals after a restart', async () => {
    const { storage, scanner } = setup(2, 2);
    const first = await scanner.scan(storage.hashOf(storage.best));
    scanner.markProcessed(first.reveals[0]!);
    scanner.retryLater();
    const again = await scanner.scan(storage.hashOf(storage.best));
    expect(again.reveals).toHaveLength(3);

    const restarted = new RevealScanner(storage, codecs.prefixes.revealed, codecs.revealCodec);
    // seed(h, b): everything below b is done; block b itself is offered again (idempotent writes).
    restarted.seed(testHotkey(0), 12);
    restarted.seed(testHotkey(1), 11);
    const afterRestart = await restarted.scan(storage.hashOf(storage.best));
    expect(afterRestart.reveals.map((r) => [r.hotkey, r.block])).toEqual([[testHotkey(1), 11]]);
  });

  it('keeps one storage subscription however often the key set changes', async () => {
    const { storage, scanner } = setup(1, 1);
    for (let i = 1; i < 20; i++) {
      storage.commitBlock(new Map([[revealedKey(NETUID, testHotkey(i)), revealedValue([{ payload: v7Payload(i, 0), block: 30 + i }])]]));
      await scanner.scan(storage.hashOf(storage.best));
    }
    expect(storage.subscriptionCount).toBe(1);
    expect(scanner.mirroredKeys).toBe(20);
    scanner.close();
    expect(storage.subscriptionCount).toBe(0);
  });

  it('drops a key that disappears from the map', async () => {
    const { storage, scanner } = setup(3, 1);
    await scanner.scan(storage.hashOf(storage.best));
    storage.commitBlock(new Map([[revealedKey(NETUID, testHotkey(1)), null]]));
    const { diff } = await scanner.scan(storage.hashOf(storage.best));
    expect(diff.removed).toHaveLength(1);
    expect(scanner.mirroredKeys).toBe(2);
  });
});

describe('MetagraphMirror', () => {
  it('tracks registrations, swaps and re-registrations from Keys and BlockAtRegistration', async () => {
    const storage = new MemoryStorage();
    const mirror = new MetagraphMirror(storage, { keys: codecs.prefixes.keys, blockAtRegistration: codecs.prefixes.blockAtRegistration }, codecs.metagraphCodec);
    storage.commitBlock(
      new Map([
        [keysKey(NETUID, 0), accountValue(testHotkey(0))],
        [registrationKey(NETUID, 0), u64Value(5)],
        [keysKey(NETUID, 1), accountValue(testHotkey(1))],
        [registrationKey(NETUID, 1), u64Value(6)],
      ]),
    );
    expect(await mirror.sync(storage.hashOf(storage.best))).toBe(true);
    expect(mirror.neurons()).toEqual([
      { uid: 0, hotkey: testHotkey(0), registrationBlock: 5 },
      { uid: 1, hotkey: testHotkey(1), registrationBlock: 6 },
    ]);
    storage.commitBlock();
    expect(await mirror.sync(storage.hashOf(storage.best))).toBe(false);
    // swap: same uid and block, new hotkey
    storage.commitBlock(new Map([[keysKey(NETUID, 1), accountValue(testHotkey(7))]]));
    expect(await mirror.sync(storage.hashOf(storage.best))).toBe(true);
    expect(mirror.byHotkey().get(testHotkey(7))).toEqual({ uid: 1, hotkey: testHotkey(7), registrationBlock: 6 });
    // re-registration: new hotkey and new block
    storage.commitBlock(new Map([[keysKey(NETUID, 0), accountValue(testHotkey(8))], [registrationKey(NETUID, 0), u64Value(40)]]));
    await mirror.sync(storage.hashOf(storage.best));
    expect(mirror.neurons()[0]).toEqual({ uid: 0, hotkey: testHotkey(8), registrationBlock: 40 });
    expect(mirror.byHotkey().has(testHotkey(0))).toBe(false);
  });
});
