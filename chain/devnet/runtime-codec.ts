/**
 * Registry-driven encoding for the LOCAL STAND-IN dev chain: storage keys and values, events, dispatch
 * errors. Everything goes through the recorded metadata's registry (spec/chain.md §10: "do not
 * hand-write storage or call types"), so what `ApiPromise` decodes is exactly what a subtensor node of
 * the same spec would have written.
 */
import type { DecoratedRuntime } from '../metadata.ts';
import type { Codec } from '@polkadot/types/types';
import { compactToU8a, hexToU8a, stringCamelCase, u8aConcat, u8aToHex } from '@polkadot/util';
import type { StateView } from './runtime-storage.ts';

/** A decorated storage entry (`decorated.query.<section>.<method>`), reduced to what we use. */
export interface StorageEntryLike {
  (...args: unknown[]): Uint8Array;
  readonly section: string;
  readonly method: string;
  keyPrefix(...args: unknown[]): Uint8Array;
  readonly meta: {
    readonly type: {
      readonly isMap: boolean;
      readonly asMap: { readonly value: { toNumber(): number } };
      readonly asPlain: { toNumber(): number };
    };
    readonly modifier: { readonly isOptional: boolean };
    readonly fallback: { toHex(): string };
  };
}

/** Mutable access to a state (the block overlay). */
export interface StateWriter extends StateView {
  set(key: string, value: string | null): void;
}

/** Pallets whose events and errors the dev chain emits (metadata pallet names). */
export type PalletName = 'System' | 'Timestamp' | 'SubtensorModule' | 'Commitments' | 'Drand' | 'Balances';

/** `DispatchError::Module` contents. */
export interface ModuleErrorRef {
  readonly pallet: PalletName;
  readonly name: string;
  readonly index: number;
  readonly error: Uint8Array;
}

/** Phase of an event record. */
export type Phase = { readonly applyExtrinsic: number } | 'Initialization' | 'Finalization';

function asNumber(value: unknown, what: string): number {
  if (typeof value === 'object' && value !== null && 'toNumber' in value && typeof value.toNumber === 'function') {
    const n: unknown = value.toNumber();
    if (typeof n === 'number') return n;
  }
  throw new Error(`${what}: not a number codec`);
}

interface EventMetaLike {
  readonly meta: { readonly index: { toNumber(): number }; readonly fields: ReadonlyArray<{ readonly type: { toNumber(): number } }> };
}

/**
 * Encoders bound to one decorated runtime. Built once per runtime; every lookup by name is checked
 * against the metadata and throws for a name that does not exist, so a typo fails the first test
 * instead of emitting an event `ApiPromise` cannot decode.
 */
export class RuntimeCodec {
  readonly runtime: DecoratedRuntime;
  readonly #palletIndex = new Map<string, number>();
  readonly #valueTypes = new Map<string, string>();

  constructor(runtime: DecoratedRuntime) {
    this.runtime = runtime;
    for (const pallet of runtime.metadata.asLatest.pallets) this.#palletIndex.set(pallet.name.toString(), pallet.index.toNumber());
  }

  get registry(): DecoratedRuntime['registry'] {
    return this.runtime.registry;
  }

  palletIndex(pallet: PalletName): number {
    const index = this.#palletIndex.get(pallet);
    if (index === undefined) throw new Error(`metadata has no pallet ${pallet}`);
    return index;
  }

  /** `decorated.query.<section>.<method>`; throws when the runtime lacks it. */
  entry(pallet: PalletName, item: string): StorageEntryLike {
    const section = (this.runtime.decorated.query as Record<string, Record<string, unknown> | undefined>)[stringCamelCase(pallet)];
    const entry = section?.[stringCamelCase(item)];
    if (typeof entry !== 'function') throw new Error(`metadata has no storage item ${pallet}.${item}`);
    return entry as StorageEntryLike;
  }

  /** Lookup type name (e.g. `Lookup40`) of an entry's value — the inner type for `OptionQuery` items. */
  valueType(entry: StorageEntryLike): string {
    const id = `${entry.section}.${entry.method}`;
    let type = this.#valueTypes.get(id);
    if (type === undefined) {
      const t = entry.meta.type;
      type = this.registry.createLookupType((t.isMap ? t.asMap.value : t.asPlain).toNumber());
      this.#valueTypes.set(id, type);
    }
    return type;
  }

  /** Full storage key (hex) of `entry(args)`. */
  key(entry: StorageEntryLike, args: readonly unknown[]): string {
    return this.registry.createType('StorageKey', [entry, args]).toHex();
  }

  /** Key prefix (hex) of a map entry with the first `args` fixed. */
  prefix(entry: StorageEntryLike, args: readonly unknown[]): string {
    return u8aToHex(entry.keyPrefix(...args));
  }

  /** Decodes the key arguments of a full key of `entry` (concat hashers only carry their argument). */
  keyArgs(entry: StorageEntryLike, key: string): Codec[] {
    const storageKey = this.registry.createType('StorageKey', key);
    storageKey.setMeta(entry.meta as never, entry.section, entry.method);
    return storageKey.args;
  }

  /**
   * Encodes a storage value of `entry` from a JS value or codec. Pass `Bytes` (Vec<u8>) fields as 0x-hex:
   * polkadot.js reads a raw `Uint8Array` as an already length-prefixed encoding.
   */
  encodeValue(entry: StorageEntryLike, value: unknown): string {
    // Not `.toHex()`: integer codecs render that big-endian for display; storage needs SCALE (LE).
    return u8aToHex(this.registry.createType(this.valueType(entry), value).toU8a());
  }

  decodeValue(entry: StorageEntryLike, hex: string): Codec {
    return this.registry.createType(this.valueType(entry), hexToU8a(hex));
  }

  /** `DispatchError::Module` of a pallet error given by its metadata name. */
  moduleError(pallet: PalletName, name: string): ModuleErrorRef {
    const errors = (this.runtime.decorated.errors as Record<string, Record<string, { meta: { index: { toNumber(): number } } }> | undefined>)[stringCamelCase(pallet)];
    const meta = errors?.[name];
    if (meta === undefined) throw new Error(`metadata has no error ${pallet}.${name}`);
    return { pallet, name, index: this.palletIndex(pallet), error: Uint8Array.from([meta.meta.index.toNumber(), 0, 0, 0]) };
  }

  #eventMeta(pallet: PalletName, name: string): EventMetaLike {
    const events = (this.runtime.decorated.events as Record<string, Record<string, EventMetaLike> | undefined>)[stringCamelCase(pallet)];
    const meta = events?.[name];
    if (meta === undefined) throw new Error(`metadata has no event ${pallet}.${name}`);
    return meta;
  }

  /**
   * SCALE of `RuntimeEvent::<pallet>(<name>(args…))`: pallet index, event index, then each field encoded
   * with its metadata type. Fields are positional, in metadata order.
   */
  encodeEvent(pallet: PalletName, name: string, args: readonly unknown[]): Uint8Array {
    const meta = this.#eventMeta(pallet, name);
    const fields = meta.meta.fields;
    if (fields.length !== args.length) throw new Error(`event ${pallet}.${name} has ${fields.length} fields, got ${args.length}`);
    const parts: Uint8Array[] = [Uint8Array.from([this.palletIndex(pallet), asNumber(meta.meta.index, 'event index')])];
    fields.forEach((field, i) => {
      parts.push(this.registry.createType(this.registry.createLookupType(field.type.toNumber()), args[i]).toU8a());
    });
    return u8aConcat(...parts);
  }

  /** SCALE `EventRecord {phase, event, topics: []}`. */
  eventRecord(phase: Phase, event: Uint8Array): Uint8Array {
    const phaseValue = typeof phase === 'string' ? phase : { ApplyExtrinsic: phase.applyExtrinsic };
    return u8aConcat(this.registry.createType('FrameSystemPhase', phaseValue).toU8a(), event, compactToU8a(0));
  }

  /** SCALE `Vec<EventRecord>` from encoded records (the `System.Events` value). */
  eventsValue(records: readonly Uint8Array[]): string {
    return u8aToHex(u8aConcat(compactToU8a(records.length), ...records));
  }
}

/** Narrowing helpers for polkadot.js codecs (their TS types are structural and loose). */
export function codecNumber(value: unknown, what = 'value'): number {
  return asNumber(value, what);
}

export function codecBigInt(value: unknown, what = 'value'): bigint {
  if (typeof value === 'object' && value !== null && 'toBigInt' in value && typeof value.toBigInt === 'function') {
    const n: unknown = value.toBigInt();
    if (typeof n === 'bigint') return n;
  }
  throw new Error(`${what}: not an integer codec`);
}

export function codecBytes(value: unknown, what = 'value'): Uint8Array {
  if (typeof value === 'object' && value !== null && 'toU8a' in value && typeof value.toU8a === 'function') {
    const out: unknown = value.toU8a(true);
    if (out instanceof Uint8Array) return out;
  }
  throw new Error(`${what}: not a codec`);
}

/** Elements of a `Vec<…>` / `BTreeSet<…>` codec. */
export function codecArray(value: unknown, what = 'value'): unknown[] {
  if (Array.isArray(value) || value instanceof Set) return [...value];
  throw new Error(`${what}: not a vector codec`);
}

/**
 * Field of a struct codec. polkadot.js structs are `Map`s with camelCased getters; `.get()` first, since a
 * field named like a `Map` method (`values`, `keys`, …) is shadowed by that method.
 */
export function codecField(value: unknown, field: string): unknown {
  if (value instanceof Map && value.has(field)) return value.get(field);
  if (typeof value === 'object' && value !== null && field in value) return (value as Record<string, unknown>)[field];
  throw new Error(`codec has no field ${field}`);
}

/**
 * Typed storage access over a raw state: keys and values encoded through the registry. Pallet logic
 * names items as in the metadata (`'SubtensorModule', 'Uids'`).
 */
export class TypedState {
  readonly codec: RuntimeCodec;
  readonly raw: StateWriter;

  constructor(codec: RuntimeCodec, raw: StateWriter) {
    this.codec = codec;
    this.raw = raw;
  }

  key(pallet: PalletName, item: string, args: readonly unknown[] = []): string {
    return this.codec.key(this.codec.entry(pallet, item), args);
  }

  /** Stored value, or `null` when the key is absent (also for `ValueQuery` items). */
  get(pallet: PalletName, item: string, args: readonly unknown[] = []): Codec | null {
    const entry = this.codec.entry(pallet, item);
    const hex = this.raw.get(this.codec.key(entry, args));
    return hex === null ? null : this.codec.decodeValue(entry, hex);
  }

  /** Stored value or the item's metadata default (what a `ValueQuery` read returns). */
  getOrDefault(pallet: PalletName, item: string, args: readonly unknown[] = []): Codec {
    const entry = this.codec.entry(pallet, item);
    const hex = this.raw.get(this.codec.key(entry, args));
    return this.codec.decodeValue(entry, hex ?? entry.meta.fallback.toHex());
  }

  has(pallet: PalletName, item: string, args: readonly unknown[] = []): boolean {
    return this.raw.get(this.key(pallet, item, args)) !== null;
  }

  set(pallet: PalletName, item: string, args: readonly unknown[], value: unknown): void {
    const entry = this.codec.entry(pallet, item);
    this.raw.set(this.codec.key(entry, args), this.codec.encodeValue(entry, value));
  }

  remove(pallet: PalletName, item: string, args: readonly unknown[] = []): void {
    this.raw.set(this.key(pallet, item, args), null);
  }

  /** Full keys of a map item under the given leading arguments. */
  keys(pallet: PalletName, item: string, prefixArgs: readonly unknown[] = []): string[] {
    return this.raw.keys(this.codec.prefix(this.codec.entry(pallet, item), prefixArgs));
  }

  /** Key arguments of a full key of `pallet.item`. */
  keyArgs(pallet: PalletName, item: string, key: string): Codec[] {
    return this.codec.keyArgs(this.codec.entry(pallet, item), key);
  }
}
