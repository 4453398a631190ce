/**
 * Test helpers for the LOCAL STAND-IN dev chain runtime: sign extrinsics offline with the runtime's own
 * registry (exactly what `ApiPromise` would produce), submit, produce a block and read the outcome back
 * from `System.Events`. Used by the runtime tests only.
 */
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { RuntimeVersion } from '@polkadot/types/interfaces';
import type { Codec } from '@polkadot/types/types';
import type { BlockRecord, DevnetRuntime } from './runtime.ts';

/** Dev keys (`//Alice` …), sr25519, SS58 prefix 42. */
export function devKey(uri: string): KeyringPair {
  return new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri(uri);
}

/** A decorated call, e.g. `tx(rt).subtensorModule.burnedRegister(97, hotkey)`. */
export function tx(rt: DevnetRuntime): Record<string, Record<string, (...args: unknown[]) => Codec>> {
  return (rt.runtime.decorated as unknown as { tx: Record<string, Record<string, (...args: unknown[]) => Codec>> }).tx;
}

export interface SignOptions {
  readonly nonce?: number;
  /** Mortal era period (default 64); 0 = immortal. */
  readonly period?: number;
  readonly genesisHash?: string;
  readonly specVersion?: number;
  /** Era birth block (default: best). */
  readonly birth?: BlockRecord;
  /** Sign with `CheckMetadataHash` mode 1 and this hash (the dev chain only accepts mode 0). */
  readonly metadataHash?: string;
}

/** Signs `call` as `pair` against the runtime's current best block; returns the extrinsic hex. */
export function sign(rt: DevnetRuntime, pair: KeyringPair, call: Codec, options: SignOptions = {}): string {
  const registry = rt.registry;
  const birth = options.birth ?? rt.best();
  const period = options.period ?? 64;
  const era = period === 0 ? registry.createType('ExtrinsicEra') : registry.createType('ExtrinsicEra', { current: birth.number, period });
  const ext = registry.createType('Extrinsic', call);
  ext.sign(pair, {
    blockHash: period === 0 ? rt.genesisHash : birth.hash,
    era,
    genesisHash: options.genesisHash ?? rt.genesisHash,
    nonce: options.nonce ?? rt.nextIndex(pair.publicKey),
    runtimeVersion: registry.createType<RuntimeVersion>('RuntimeVersion', { ...rt.runtimeVersionJson(), specVersion: options.specVersion ?? rt.specVersion }),
    signedExtensions: registry.signedExtensions,
    ...(options.metadataHash === undefined ? {} : { mode: 1, metadataHash: options.metadataHash }),
  });
  return ext.toHex();
}

export interface EventView {
  readonly phase: number | 'init';
  readonly section: string;
  readonly method: string;
  readonly data: Codec[];
}

/** Decoded `System.Events` of a block. */
export function blockEvents(rt: DevnetRuntime, block: BlockRecord): EventView[] {
  const raw = rt.getStorage(rt.codec.key(rt.codec.entry('System', 'Events'), []), block.hash);
  const records = rt.registry.createType('Vec<FrameSystemEventRecord>', raw ?? '0x00') as unknown as Array<{
    phase: { isApplyExtrinsic: boolean; asApplyExtrinsic: { toNumber(): number } };
    event: { section: string; method: string; data: Codec[] };
  }>;
  return records.map((r) => ({
    phase: r.phase.isApplyExtrinsic ? r.phase.asApplyExtrinsic.toNumber() : 'init',
    section: r.event.section,
    method: r.event.method,
    data: [...r.event.data],
  }));
}

export interface Outcome {
  readonly block: BlockRecord;
  /** `'ok'` or the pallet error name decoded with `registry.findMetaError`. */
  readonly result: string;
  /** `section.method` of the extrinsic's events, in order. */
  readonly events: string[];
}

/** Outcome of extrinsic `index` of `block`. */
export function outcome(rt: DevnetRuntime, block: BlockRecord, index: number): Outcome {
  const mine = blockEvents(rt, block).filter((e) => e.phase === index);
  const failed = mine.find((e) => e.method === 'ExtrinsicFailed');
  let result = 'ok';
  if (failed !== undefined) {
    const error = failed.data[0] as unknown as { isModule: boolean; asModule: Parameters<DevnetRuntime['registry']['findMetaError']>[0]; type: string };
    result = error.isModule ? rt.registry.findMetaError(error.asModule).name : error.type;
  } else if (!mine.some((e) => e.method === 'ExtrinsicSuccess')) {
    throw new Error(`extrinsic ${index} has no result event in block #${block.number}`);
  }
  return { block, result, events: mine.map((e) => `${e.section}.${e.method}`) };
}

/** Submits one signed call, produces one block and returns the call's outcome. */
export function apply(rt: DevnetRuntime, pair: KeyringPair, call: Codec, options: SignOptions = {}): Outcome {
  const { hash } = rt.submit(sign(rt, pair, call, options));
  const [block] = rt.produceBlocks(1) as [BlockRecord];
  const index = block.extrinsics.findIndex((e) => rt.registry.createType('Extrinsic', e).hash.toHex() === hash);
  if (index < 0) throw new Error('extrinsic was not included');
  return outcome(rt, block, index);
}
