/**
 * The metagraph snapshot of spec/chain.md §3 step 3 — `Keys(netuid, uid)` and
 * `BlockAtRegistration(netuid, uid)` — kept incrementally with two storage mirrors, so a block without
 * registrations, swaps or deregistrations costs two key listings and no value reads.
 */
import { PrefixMirror, type RawStoragePort } from './storage-mirror.ts';

export interface MetagraphCodec {
  /** uid of a `Keys` / `BlockAtRegistration` map key (second argument). */
  uidOfKey(key: string): number;
  /** SS58 of a `Keys` value, or null for the zero account (empty slot). */
  hotkeyOfValue(valueHex: string): string | null;
  /** `BlockAtRegistration` value. */
  blockOfValue(valueHex: string): number;
}

export interface Neuron {
  readonly uid: number;
  readonly hotkey: string;
  /** 0 when the chain has no entry (spec §3 step 3: "missing ⇒ 0"). */
  readonly registrationBlock: number;
}

export class MetagraphMirror {
  private readonly keys: PrefixMirror;
  private readonly regs: PrefixMirror;
  private readonly hotkeyByUid = new Map<number, string>();
  private readonly regByUid = new Map<number, number>();
  private readonly uidByKey = new Map<string, number>();
  /** hotkey → neuron, rebuilt only after a sync that changed something (the reader asks every poll). */
  private index: Map<string, Neuron> | null = null;

  constructor(
    port: RawStoragePort,
    prefixes: { keys: string; blockAtRegistration: string },
    private readonly codec: MetagraphCodec,
    options: { fullResyncEvery?: number; subscribe?: boolean } = {},
  ) {
    this.keys = new PrefixMirror(port, prefixes.keys, options);
    this.regs = new PrefixMirror(port, prefixes.blockAtRegistration, options);
  }

  /** Brings the snapshot to `atHash`; resolves true when any neuron changed. */
  async sync(atHash: string): Promise<boolean> {
    const [keys, regs] = await Promise.all([this.keys.sync(atHash), this.regs.sync(atHash)]);
    for (const [key, value] of keys.upserted) {
      const uid = this.uid(key);
      const hotkey = this.codec.hotkeyOfValue(value);
      if (hotkey === null) this.hotkeyByUid.delete(uid);
      else this.hotkeyByUid.set(uid, hotkey);
    }
    for (const key of keys.removed) this.hotkeyByUid.delete(this.uid(key));
    for (const [key, value] of regs.upserted) this.regByUid.set(this.uid(key), this.codec.blockOfValue(value));
    for (const key of regs.removed) this.regByUid.delete(this.uid(key));
    for (const key of [...keys.removed, ...regs.removed]) this.uidByKey.delete(key);
    const changed = keys.upserted.size + keys.removed.length + regs.upserted.size + regs.removed.length > 0;
    if (changed) this.index = null;
    return changed;
  }

  private uid(key: string): number {
    let uid = this.uidByKey.get(key);
    if (uid === undefined) {
      uid = this.codec.uidOfKey(key);
      this.uidByKey.set(key, uid);
    }
    return uid;
  }

  neurons(): Neuron[] {
    return [...this.hotkeyByUid].map(([uid, hotkey]) => ({ uid, hotkey, registrationBlock: this.regByUid.get(uid) ?? 0 })).sort((a, b) => a.uid - b.uid);
  }

  /** hotkey → neuron (spec §3.2). */
  byHotkey(): ReadonlyMap<string, Neuron> {
    this.index ??= new Map(this.neurons().map((n) => [n.hotkey, n]));
    return this.index;
  }

  invalidate(): void {
    this.keys.invalidate();
    this.regs.invalidate();
  }

  close(): void {
    this.keys.close();
    this.regs.close();
  }
}
