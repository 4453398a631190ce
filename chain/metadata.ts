/**
 * Recorded subtensor metadata (real bytes, see chain/metadata/README.md) and the one place that turns
 * metadata bytes into a decorated registry. The local dev chain serves these blobs and the tests decode
 * with them; production code never loads them — a live node serves its own metadata to `ApiPromise`.
 */
import { readFileSync } from 'node:fs';
import { Metadata, TypeRegistry } from '@polkadot/types';
import { expandMetadata } from '@polkadot/types/metadata';
import type { DecoratedMeta } from '@polkadot/types/metadata/decorate/types';
import { compactFromU8a, hexToU8a } from '@polkadot/util';
import { SUBTENSOR_SIGNED_EXTENSIONS } from './signed-extensions.ts';

/** The recorded metadata blobs shipped with the repo. */
export const RECORDED_METADATA = {
  /** node-subtensor spec 381, metadata V16 (devnet, 2026-06): the dev chain's default runtime. */
  devnetV16Spec381: new URL('./metadata/subtensor-devnet-v16-spec381.scale', import.meta.url),
  /** node-subtensor spec 343, metadata V15, recorded from finney as `Option<OpaqueMetadata>` hex. */
  finneyV15Spec343: new URL('./metadata/finney-v15-spec343.hex', import.meta.url),
} as const;
export type RecordedMetadataName = keyof typeof RECORDED_METADATA;

/** Default runtime of the local dev chain. */
export const DEFAULT_DEVNET_METADATA: RecordedMetadataName = 'devnetV16Spec381';

/**
 * Raw metadata bytes (`meta` magic + version + body) as `state_getMetadata` returns them. The V15 file is
 * the recorded `Metadata_metadata_at_version` result, so its `Option` + compact-length wrapper is stripped.
 */
export function readRecordedMetadata(name: RecordedMetadataName): Uint8Array {
  const file = RECORDED_METADATA[name];
  if (file.pathname.endsWith('.scale')) return new Uint8Array(readFileSync(file));
  const bytes = hexToU8a(readFileSync(file, 'utf8').trim());
  if (bytes[0] !== 1) return bytes; // plain metadata hex
  const [offset, length] = compactFromU8a(bytes.subarray(1));
  return bytes.subarray(1 + offset, 1 + offset + length.toNumber());
}

export interface DecoratedRuntime {
  readonly registry: TypeRegistry;
  readonly metadata: Metadata;
  /** `query` / `tx` / `consts` / `errors` / `events` decorated from the metadata (no network). */
  readonly decorated: DecoratedMeta;
  readonly specVersion: number;
  readonly transactionVersion: number;
  readonly specName: string;
}

/** A registry decorated from raw metadata bytes with subtensor's signed extensions registered. */
export function decorateMetadata(raw: Uint8Array): DecoratedRuntime {
  const registry = new TypeRegistry();
  const metadata = new Metadata(registry, raw);
  registry.setMetadata(metadata, undefined, SUBTENSOR_SIGNED_EXTENSIONS, true);
  const decorated = expandMetadata(registry, metadata);
  const version = decorated.consts.system?.version as unknown as { specVersion: { toNumber(): number }; transactionVersion: { toNumber(): number }; specName: { toString(): string } };
  return {
    registry,
    metadata,
    decorated,
    specVersion: version.specVersion.toNumber(),
    transactionVersion: version.transactionVersion.toNumber(),
    specName: version.specName.toString(),
  };
}

const cache = new Map<RecordedMetadataName, DecoratedRuntime>();
/** Decorated recorded runtime, memoised (decoding 300–600 KB of metadata costs ~100 ms). */
export function recordedRuntime(name: RecordedMetadataName = DEFAULT_DEVNET_METADATA): DecoratedRuntime {
  let runtime = cache.get(name);
  if (!runtime) {
    runtime = decorateMetadata(readRecordedMetadata(name));
    cache.set(name, runtime);
  }
  return runtime;
}
