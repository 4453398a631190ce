/**
 * The model store the validator and `albedo check-model --repo --digest` read from: one
 * {@link ModelStore} that routes each reference to its backend's store by the digest form
 * (spec/validation.md §2: `sha256:<hex>` ⇒ Hippius, 40/64 hex ⇒ Hugging Face).
 */
import { hippiusStoreFromEnv } from './hippius-store.ts';
import type { ModelRef } from './model-ref.ts';
import { HfHubStore, type ModelStore, ModelStoreError, type StoreFile } from './model-store.ts';

/** Routes by `ref.backend`; a backend without a store is an INFRA-side `unavailable`. */
export class RoutingModelStore implements ModelStore {
  constructor(private readonly stores: Partial<Record<ModelRef['backend'], ModelStore>>) {}

  private storeFor(ref: ModelRef): ModelStore {
    const store = this.stores[ref.backend];
    if (!store) throw new ModelStoreError('unavailable', `no ${ref.backend} model store is configured`);
    return store;
  }

  listFiles(ref: ModelRef, signal: AbortSignal): Promise<StoreFile[]> {
    return this.storeFor(ref).listFiles(ref, signal);
  }

  readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    return this.storeFor(ref).readJson(ref, path, maxBytes, signal);
  }

  readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    return this.storeFor(ref).readRange(ref, path, start, end, signal);
  }

  async *openRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const store = this.storeFor(ref);
    if (store.openRange) yield* store.openRange(ref, path, start, end, signal);
    else yield await store.readRange(ref, path, start, end, signal);
  }
}

/** The Hugging Face store from `ALBEDO_HF_ENDPOINT` and `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN`. */
export function hfHubStoreFromEnv(env: NodeJS.ProcessEnv = process.env): HfHubStore {
  const token = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  return new HfHubStore({ endpoint: env.ALBEDO_HF_ENDPOINT?.trim() || 'https://huggingface.co', ...(token ? { token } : {}) });
}

/** Both backends' stores from the environment (Hippius: `ALBEDO_HIPPIUS_REGISTRY`, `HIPPIUS_HUB_*`). */
export function modelStoreFromEnv(env: NodeJS.ProcessEnv = process.env): RoutingModelStore {
  return new RoutingModelStore({ hippius: hippiusStoreFromEnv(env), hf: hfHubStoreFromEnv(env) });
}
