/**
 * `npm run bench -- chain [blocks] [referenceBlocks]`: the chain reader's per-block cost on a
 * commitment map of 256 hotkeys × 10 reveals (SCALE values encoded through the recorded spec-381
 * metadata), over 10,000 simulated blocks, next to the upstream approach — download, decode and parse the
 * whole map every block — measured in the same run on the same storage.
 *
 * Activity model: each block, with probability 1/4, one random hotkey reveals again (the chain keeps its
 * newest 10 entries). Memory is sampled after forced GCs; "flat" means the heap at the end is within
 * noise of the heap after warm-up.
 */
import { performance } from 'node:perf_hooks';
import { parseReveal } from '../chain/reveal.ts';
import { RevealScanner } from '../chain/reveal-scanner.ts';
import { codecsFor, MemoryStorage, revealedKey, revealedValue, testHotkey, v7Payload } from '../tests/support/chain-storage.ts';
import { mulberry32 as prng } from '../core/prng.ts';
import { fullGc } from './support/gc.ts';

const NETUID = 97;
const HOTKEYS = 256;
const PER_HOTKEY = 10;

function heapMiB(): number {
  fullGc();
  fullGc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}


function buildChain() {
  // Four versions per key: the simulated chain's own history stays bounded, so the heap measures the reader.
  const storage = new MemoryStorage(4);
  // The initial reveals sit at blocks 1..10; the map itself appears at block 11.
  for (let b = 0; b <= PER_HOTKEY; b++) storage.commitBlock();
  const lists: Array<Array<{ payload: string; block: number }>> = [];
  const genesis = new Map<string, string | null>();
  for (let i = 0; i < HOTKEYS; i++) {
    const list = Array.from({ length: PER_HOTKEY }, (_, n) => ({ payload: v7Payload(i, n), block: n + 1 }));
    lists.push(list);
    genesis.set(revealedKey(NETUID, testHotkey(i)), revealedValue(list));
  }
  storage.commitBlock(genesis);
  const random = prng(97);
  let counter = PER_HOTKEY;
  /** Produces the next block with the activity model; returns how many reveals it added. */
  const step = (): number => {
    if (random() >= 0.25) {
      storage.commitBlock();
      return 0;
    }
    const i = Math.floor(random() * HOTKEYS);
    const list = lists[i] as Array<{ payload: string; block: number }>;
    list.push({ payload: v7Payload(i, counter++), block: storage.best + 1 });
    if (list.length > PER_HOTKEY) list.shift();
    storage.commitBlock(new Map([[revealedKey(NETUID, testHotkey(i)), revealedValue(list)]]));
    return 1;
  };
  return { storage, step };
}

async function incremental(blocks: number) {
  const codecs = codecsFor(NETUID);
  const { storage, step } = buildChain();
  const scanner = new RevealScanner(storage, codecs.prefixes.revealed, codecs.revealCodec);
  const scanAndParse = async () => {
    const { reveals } = await scanner.scan(storage.hashOf(storage.best));
    for (const r of reveals) {
      if (!parseReveal(r.bytes).ok) throw new Error('bench payload failed to parse');
      scanner.markProcessed(r);
    }
    return reveals.length;
  };
  const initial = await scanAndParse();
  const heap: Array<[number, number]> = [];
  let expected = 0;
  let seen = 0;
  let elapsed = 0;
  for (let b = 1; b <= blocks; b++) {
    expected += step();
    const t0 = performance.now();
    seen += await scanAndParse();
    elapsed += performance.now() - t0;
    if (b % Math.floor(blocks / 4) === 0) heap.push([b, heapMiB()]);
  }
  if (initial !== HOTKEYS * PER_HOTKEY || seen !== expected) throw new Error(`reader missed reveals: initial ${initial}, seen ${seen} of ${expected}`);
  return { msPerBlock: elapsed / blocks, heap, valuesReadPerBlock: (storage.stats.valuesRead - HOTKEYS) / blocks, reveals: seen };
}

async function upstream(blocks: number) {
  const codecs = codecsFor(NETUID);
  const { storage, step } = buildChain();
  let elapsed = 0;
  for (let b = 1; b <= blocks; b++) {
    step();
    const t0 = performance.now();
    const at = storage.hashOf(storage.best);
    const keys = await storage.listKeys(codecs.prefixes.revealed, at);
    const values = await storage.readValues(keys, at);
    let parsed = 0;
    for (const [key, value] of values) {
      if (value === null) continue;
      codecs.revealCodec.hotkeyOfKey(key);
      for (const entry of codecs.revealCodec.decodeEntries(value)) if (parseReveal(entry.bytes).ok) parsed++;
    }
    if (parsed !== HOTKEYS * PER_HOTKEY) throw new Error(`upstream scan parsed ${parsed}`);
    elapsed += performance.now() - t0;
  }
  return { msPerBlock: elapsed / blocks };
}

export async function main(args: string[]): Promise<void> {
  const blocks = Number(args[0] ?? 10_000);
  const referenceBlocks = Number(args[1] ?? 300);
  const baseline = heapMiB();
  const inc = await incremental(blocks);
  const ref = await upstream(referenceBlocks);
  // From the midpoint on, the simulated chain's own history (4 versions per key) is saturated.
  const mid = inc.heap[1] ?? inc.heap[0] ?? [0, 0];
  const warm = mid[1];
  const end = inc.heap[inc.heap.length - 1]?.[1] ?? 0;
  const lines = [
    `chain reader — ${HOTKEYS} hotkeys × ${PER_HOTKEY} reveals, ${blocks} blocks (1 in 4 blocks carries a new reveal; ${inc.reveals} reveals)`,
    `  incremental (mirror + changed keys only): ${inc.msPerBlock.toFixed(3)} ms/block, ${inc.valuesReadPerBlock.toFixed(2)} values read/block`,
    `  upstream (full map every block, ${referenceBlocks} blocks):   ${ref.msPerBlock.toFixed(3)} ms/block, ${HOTKEYS} values read/block`,
    `  ratio upstream / incremental: ${(ref.msPerBlock / inc.msPerBlock).toFixed(1)}× less time per block`,
    `  heap (MiB after GC): start ${baseline.toFixed(1)}; ${inc.heap.map(([b, m]) => `block ${b}: ${m.toFixed(1)}`).join('; ')}`,
    `  heap growth from block ${mid[0]} to ${blocks}: ${(end - warm).toFixed(2)} MiB (${end - warm < 1 ? 'flat' : 'GROWING'})`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
