import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type FaultCode, type StageFault, stageFault } from '../core/faults.ts';
import { compareCodePoints } from '../core/py-compat.ts';
import type { CheckRecord } from './checks.ts';
import { DownloadError, type DownloadProgress } from './download.ts';
import { FingerprintError, fingerprintModel } from './fingerprint.ts';
import { DEFAULT_MAX_KNN_DIM, type ModelFingerprint } from './fingerprint-types.ts';
import { type CacheMarker, type ModelCache, ModelCacheError, markerSha256 } from './model-cache.ts';
import type { ModelRef } from './model-ref.ts';
import type { ModelStore, StoreFile } from './model-store.ts';
import { DEFAULT_MAX_SAFETENSORS_HEADER_BYTES, readShardHeaderFile } from './safetensors.ts';

/**
 * Steps 7, 8 and 10 of spec/validation.md §1, after the checks that need no download: the full
 * download into the model cache, the §4.2 header validation against the bytes on disk (the
 * listing's sizes were the store's word; these are the file's), and the fingerprint with the
 * weights hash. Dedup (step 11) is the stage's, since it needs the database and the index.
 *
 * Like the other checks, {@link runDeepChecks} never throws: each outcome is a check record and at
 * most one fault. Our side's failures (transport, disk, a crashed worker) are INFRA and retried;
 * only properties of the miner's files are MINER faults.
 */

export const DEEP_CHECKS = ['download', 'disk_headers', 'fingerprint'] as const;
export type DeepCheckName = (typeof DEEP_CHECKS)[number];

export interface DeepCheckOptions {
  readonly store: ModelStore;
  readonly cache: ModelCache;
  readonly ref: ModelRef;
  /** The listing of step 3 (sizes and, when the store knows them, sha256 digests). */
  readonly files: readonly StoreFile[];
  /** Stall watchdog of the ref's backend (spec §5). */
  readonly stall: { readonly stallMs: number; readonly stallRetries: number };
  /** Extra divergence salts (the commit block hash, spec §9.2). @default [] */
  readonly salts?: readonly string[];
  /** `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES`. @default DEFAULT_MAX_SAFETENSORS_HEADER_BYTES */
  readonly maxHeaderBytes?: number;
  /** `ALBEDO_MAX_KNN_DIM`. @default DEFAULT_MAX_KNN_DIM */
  readonly maxKnnDim?: number;
  /** Fingerprint worker threads. @default the engine's default (both cores) */
  readonly threads?: number;
  readonly signal: AbortSignal;
  readonly onCheck?: (record: CheckRecord) => void | Promise<void>;
  /** Download progress (bytes, rate, ETA), throttled by the downloader. */
  readonly onDownloadProgress?: (p: DownloadProgress) => void;
  /** Fingerprint progress in bytes. */
  readonly onFingerprintProgress?: (done: number, total: number) => void;
}

export interface DeepCheckReport {
  readonly checks: readonly CheckRecord[];
  readonly fault: StageFault | null;
  /** The complete cached copy (set once the download passed). */
  readonly dir: string | null;
  readonly marker: CacheMarker | null;
  readonly fingerprint: ModelFingerprint | null;
}

type Outcome = { readonly ok: true; readonly detail: string; readonly data?: Record<string, unknown> } | { readonly ok: false; readonly fault: StageFault };

const miner = (code: FaultCode, message: string): Outcome => ({ ok: false, fault: stageFault('MINER_FAULT', code, message) });
const infra = (code: FaultCode, message: string): Outcome => ({ ok: false, fault: stageFault('INFRA_FAULT', code, message) });
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Step 7. Transport and disk trouble is ours (INFRA); a repo that cannot be cached safely is the miner's. */
async function download(o: DeepCheckOptions): Promise<{ outcome: Outcome; dir: string | null; marker: CacheMarker | null }> {
  try {
    const ensured = await o.cache.ensureModel(o.ref, o.store, o.files, {
      signal: o.signal,
      stallMs: o.stall.stallMs,
      stallRetries: o.stall.stallRetries,
      ...(o.onDownloadProgress ? { onProgress: o.onDownloadProgress } : {}),
    });
    const shards = Object.keys(ensured.marker.files).filter((f) => f.endsWith('.safetensors'));
    if (shards.length === 0) return { outcome: miner('incomplete_repo', `no *.safetensors files on disk after downloading ${o.ref.uri}`), dir: null, marker: null };
    const bytes = Object.values(ensured.marker.files).reduce((a, f) => a + f.size, 0);
    return { outcome: { ok: true, detail: `${shards.length} shard(s), ${bytes} bytes in the cache`, data: { shards: shards.length, bytes } }, dir: ensured.dir, marker: ensured.marker };
  } catch (error) {
    if (error instanceof ModelCacheError && error.code === 'unsafe_path') return { outcome: miner('invalid_ref', `${o.ref.uri} cannot be stored safely: ${error.message}`), dir: null, marker: null };
    if (error instanceof ModelCacheError && error.code === 'too_many_files') return { outcome: miner('file_manifest', error.message), dir: null, marker: null };
    const what = error instanceof DownloadError ? `${error.code}: ${error.message}` : messageOf(error);
    return { outcome: infra('download_failed', `downloading ${o.ref.uri}: ${what}`), dir: null, marker: null };
  }
}

/** Step 8: §4.2 on the bytes on disk, with the real file sizes. */
export async function validateHeadersOnDisk(dir: string, maxHeaderBytes: number = DEFAULT_MAX_SAFETENSORS_HEADER_BYTES): Promise<{ ok: true; shards: number; tensors: number } | { ok: false; message: string }> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort(compareCodePoints);
  let tensors = 0;
  for (const name of names) {
    const header = await readShardHeaderFile(join(dir, name), name, maxHeaderBytes);
    if (!header.ok) return { ok: false, message: header.message };
    tensors += header.value.tensors.length;
  }
  return { ok: true, shards: names.length, tensors };
}

async function diskHeaders(o: DeepCheckOptions, dir: string): Promise<Outcome> {
  try {
    const r = await validateHeadersOnDisk(dir, o.maxHeaderBytes);
    if (!r.ok) return miner('safetensors_header', r.message);
    return { ok: true, detail: `${r.shards} shard header(s), ${r.tensors} tensor(s) consistent with the files on disk` };
  } catch (error) {
    return infra('download_failed', `reading the cached shards of ${o.ref.uri}: ${messageOf(error)}`);
  }
}

/** Step 10. The downloader verified every file's sha256, so the weights hash reuses them. */
async function fingerprint(o: DeepCheckOptions, dir: string, marker: CacheMarker): Promise<{ outcome: Outcome; fp: ModelFingerprint | null }> {
  let fp: ModelFingerprint;
  try {
    fp = await fingerprintModel(dir, {
      knownSha256: markerSha256(marker),
      salts: o.salts ?? [],
      signal: o.signal,
      ...(o.maxHeaderBytes !== undefined ? { maxHeaderBytes: o.maxHeaderBytes } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.onFingerprintProgress ? { onProgress: o.onFingerprintProgress } : {}),
    });
  } catch (error) {
    if (error instanceof FingerprintError) {
      if (error.code === 'non_finite') return { outcome: miner('non_finite_weights', error.message), fp: null };
      if (error.code === 'header') return { outcome: miner('safetensors_header', error.message), fp: null };
      if (error.code === 'no_shards') return { outcome: miner('incomplete_repo', error.message), fp: null };
    }
    return { outcome: infra('fingerprint_failed', `fingerprinting ${o.ref.uri}: ${messageOf(error)}`), fp: null };
  }
  const cap = o.maxKnnDim ?? DEFAULT_MAX_KNN_DIM;
  if (fp.nTensors > cap) return { outcome: miner('fingerprint_too_large', `fingerprint dimension ${fp.nTensors} exceeds ALBEDO_MAX_KNN_DIM ${cap}`), fp: null };
  return { outcome: { ok: true, detail: `${fp.nTensors} tensor(s), weights_hash ${fp.weightsHash}`, data: { dim: fp.nTensors, weights_hash: fp.weightsHash } }, fp };
}

/** Runs steps 7, 8 and 10 in order; the first failure decides and the rest are `skipped`. */
export async function runDeepChecks(o: DeepCheckOptions): Promise<DeepCheckReport> {
  const checks: CheckRecord[] = [];
  const record = async (name: DeepCheckName, outcome: Outcome): Promise<boolean> => {
    const r: CheckRecord = outcome.ok
      ? { name, status: 'passed', detail: outcome.detail, ...(outcome.data ? { data: outcome.data } : {}) }
      : { name, status: 'failed', faultCode: outcome.fault.code, detail: outcome.fault.message };
    checks.push(r);
    try {
      await o.onCheck?.(r);
    } catch {
      // progress reporting never decides validation
    }
    if (!outcome.ok) checks.push(...DEEP_CHECKS.slice(DEEP_CHECKS.indexOf(name) + 1).map((n) => ({ name: n, status: 'skipped' as const, detail: `not run: ${name} failed` })));
    return outcome.ok;
  };
  const failed = (outcome: Outcome, dir: string | null = null, marker: CacheMarker | null = null): DeepCheckReport => ({
    checks,
    fault: outcome.ok ? null : outcome.fault,
    dir,
    marker,
    fingerprint: null,
  });

  const dl = await download(o);
  if (!(await record('download', dl.outcome)) || dl.dir === null || dl.marker === null) return failed(dl.outcome);
  // Keeps the cache GC off this model while it is read.
  const release = o.cache.acquire(o.ref);
  try {
    const headers = await diskHeaders(o, dl.dir);
    if (!(await record('disk_headers', headers))) return failed(headers, dl.dir, dl.marker);
    const fp = await fingerprint(o, dl.dir, dl.marker);
    if (!(await record('fingerprint', fp.outcome))) return failed(fp.outcome, dl.dir, dl.marker);
    return { checks, fault: null, dir: dl.dir, marker: dl.marker, fingerprint: fp.fp };
  } finally {
    release();
  }
}
