/**
 * Typed access to metadata-defined storage items and calls. `@polkadot/api` without a chain-specific
 * augmentation types every pallet as optional; a runtime that lacks an item we need is a configuration
 * error worth one clear message, not a `TypeError: cannot read properties of undefined`.
 */
import type { ApiPromise } from '@polkadot/api';
import type { QueryableStorageEntry, SubmittableExtrinsicFunction } from '@polkadot/api/types';
import { ChainConfigError } from './provider.ts';

type QuerySource = Pick<ApiPromise, 'query'>;

export function storageItem(api: QuerySource, section: string, method: string): QueryableStorageEntry<'promise'> {
  const item = api.query[section]?.[method];
  if (!item) throw new ChainConfigError(`this runtime has no storage item ${section}.${method}`);
  return item;
}

export function hasStorageItem(api: QuerySource, section: string, method: string): boolean {
  return api.query[section]?.[method] !== undefined;
}

export function call(api: Pick<ApiPromise, 'tx'>, section: string, method: string): SubmittableExtrinsicFunction<'promise'> {
  const fn = api.tx[section]?.[method];
  if (!fn) throw new ChainConfigError(`this runtime has no call ${section}.${method}`);
  return fn;
}

export function hasCall(api: Pick<ApiPromise, 'tx'>, section: string, method: string): boolean {
  return api.tx[section]?.[method] !== undefined;
}
