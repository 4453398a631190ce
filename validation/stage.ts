import type { ExecutorContext, ExecutorResult, InProcessExecutor } from '../actors/stage-service.ts';
import { AlbedoError, type StageFault, stageFault } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { type Db, inTx, type Tx } from '../persistence/db.ts';
import { ALLOWLIST_PROFILES, type AllowlistProfile } from './allowlist.ts';
import { type ArchitectureSpec, bundledArchitectureSpec, loadArchitectureSpec } from './architecture.ts';
import { type ArtifactRecord, type ArtifactStore } from '../persistence/artifact-store.ts';
import { artifactRowOf, recordArtifact } from '../persistence/artifacts.ts';
import { type CheckName, type CheckRecord, type GenesisPins, type ModelCheckReport, modelChecksFor, runModelChecks, skippedChecks } from './checks.ts';
import { type DedupPassDetail, type DedupRules, decideDedup, type LiveReference } from './dedup/decide.ts';
import { type DedupIndex, dedupConfigFromEnv, fingerprintDoc } from './dedup/index.ts';
import { DEEP_CHECKS, runDeepChecks } from './deep-checks.ts';
import { stallSettingsFromEnv } from './download.ts';
import { putValidationFault, recordValidationFault, validationFaultKey } from './fault-artifact.ts';
import { fingerprintJson } from './fingerprint.ts';
import type { ModelCache } from './model-cache.ts';
import { liveReferences, validatedReferences } from './references.ts';
import {
  assessMinerFault,
  checkDuplicateDigest,
  checkHotkeyAlreadyValidated,
  checkHotkeyBanned,
  DEFAULT_MAX_STRIKES,
  type HotkeyPolicy,
  type PreCheckSubject,
  recordMinerFault,
  runPreChecks,
  withStandingSuffix,
} from './hotkey-rules.ts';
import {
  compileRepoNamePattern,
  DEFAULT_HIPPIUS_REGISTRY_HOST,
  DEFAULT_REPO_NAME_PATTERN,
  MODEL_BACKENDS,
  type ModelBackend,
  type ModelRef,
  manifestUri,
  registryHostOf,
  storageBackendOfUri,
} from './model-ref.ts';
import { MAX_RANGE_BYTES, type ModelStore } from './model-store.ts';
import { DEFAULT_MAX_SAFETENSORS_HEADER_BYTES } from './safetensors.ts';

/**
 * The HIPPIUS (validation) stage executor: T4 pre-checks, the artifact checks, and the T5/T6/T7
 * outcome with its database writes committed atomically with the attempt finaliser.
 */
export interface ValidationExecutorOptions {
  readonly store: ModelStore;
  /** `ALBEDO_REPO_NAME_PATTERN`. @default DEFAULT_REPO_NAME_PATTERN */
  readonly repoPattern?: RegExp;
  /** `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES`. @default 104857600 */
  readonly maxHeaderBytes?: number;
  /** `ALBEDO_HOTKEY_MAX_STRIKES`; 0 disables strike bans. @default 3 */
  readonly maxStrikes?: number;
  /** `ALBEDO_BAN_ON_DUPLICATE`. @default true */
  readonly banOnDuplicate?: boolean;
  /** `ALBEDO_MODEL_BACKENDS`. @default ['hippius'] (v1) */
  readonly backends?: readonly ModelBackend[];
  /** `ALBEDO_ALLOW_MUTABLE_REF` (dev only). @default false */
  readonly allowMutableRef?: boolean;
  /** `ALBEDO_ALLOWLIST_PROFILE`. @default 'seed-live' */
  readonly allowlistProfile?: AllowlistProfile;
  /** `ALBEDO_ARCH_SPEC`. @default the bundled architecture_spec.json */
  readonly archSpec?: ArchitectureSpec;
  /** Delay before a hub 404 is confirmed. @default 60000 */
  readonly notFoundRecheckMs?: number;
  /** Host used in Hippius MODEL_MANIFEST uris. @default 'registry.hippius.com' */
  readonly hippiusRegistryHost?: string;
  /** v2 byte pins (`ALBEDO_CHAT_TEMPLATE_SHA256`, `ALBEDO_GENESIS_FILE_HASHES`); required under `v2`. */
  readonly genesisPins?: GenesisPins;
  /** The model cache of step 7 (`ALBEDO_MODEL_CACHE_DIR`). */
  readonly cache: ModelCache;
  /** The dedup index of step 11 (`ALBEDO_DEDUP_BACKEND`). */
  readonly dedup: DedupIndex;
  /** `ALBEDO_KNN_CANDIDATES`, `ALBEDO_SIM_THRESHOLD`, `ALBEDO_MIN_DIVERGENCE`, `ALBEDO_SAME_COLDKEY_STRICT`. @default the spec's */
  readonly dedupRules?: DedupRules;
  /** Where `fault.json` and `fingerprint.json` go; null skips the uploads (spec: no bucket configured). */
  readonly artifacts: ArtifactStore | null;
  /** Stall watchdog per backend (spec §5). @default stallSettingsFromEnv of each backend's defaults */
  readonly stall?: Partial<Record<ModelBackend, { readonly stallMs: number; readonly stallRetries: number }>>;
  /** `ALBEDO_MAX_KNN_DIM`. @default DEFAULT_MAX_KNN_DIM */
  readonly maxKnnDim?: number;
  /** Fingerprint worker threads. @default both cores */
  readonly fingerprintThreads?: number;
  /** Reports a best-effort side effect that failed (an artifact upload): logged, never a verdict. */
  readonly onWarning?: (message: string) => void;
}

interface SubmissionRow {
  readonly id: SubmissionId;
  readonly hotkey: string;
  readonly netuid: number;
  readonly model_uri: string;
  readonly commit_hash: string | null;
  readonly block_number: string | null;
  /** The reveal's block hash: the divergence salt the miner cannot know when uploading (§9.2). */
  readonly block_hash: string | null;
  readonly coldkey: string | null;
}

async function readSubmission(db: Db, id: SubmissionId): Promise<SubmissionRow | undefined> {
  const { rows } = await db.query<SubmissionRow>(
    `SELECT ms.id, ms.hotkey, ms.netuid, ms.model_uri, ms.commit_hash, ms.block_number::text AS block_number, cc.block_hash, mi.coldkey
       FROM model_submissions ms
       LEFT JOIN chain_commits cc ON cc.id = ms.chain_commit_id
       LEFT JOIN miners mi ON mi.hotkey = ms.hotkey
      WHERE ms.id = $1`,
    [id],
  );
  return rows[0];
}

/** The digest as written in the uri (split at the first `@`); null when there is none. */
function digestOf(sub: SubmissionRow): string | null {
  const at = sub.model_uri.indexOf('@');
  return at >= 0 ? sub.model_uri.slice(at + 1) : sub.commit_hash;
}

async function attemptRowId(tx: Tx, ctx: ExecutorContext): Promise<string | null> {
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM stage_attempts WHERE attempt_key = $1', [ctx.attemptKey]);
  return rows[0]?.id ?? null;
}

/** Keeps the per-check records on the failed attempt (`result_summary` is otherwise null for failures). */
async function storeChecks(tx: Tx, ctx: ExecutorContext, summary: Record<string, unknown>): Promise<void> {
  await tx.query('UPDATE stage_attempts SET result_summary = $2 WHERE attempt_key = $1', [ctx.attemptKey, summary]);
}

function validateOptions(o: ValidationSettings): void {
  const cap = o.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES;
  if (!Number.isSafeInteger(cap) || cap < 2 || cap > MAX_RANGE_BYTES) {
    throw new AlbedoError('CONFIG', `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES must be an integer in [2, ${MAX_RANGE_BYTES}], got ${cap}`);
  }
  const strikes = o.maxStrikes ?? DEFAULT_MAX_STRIKES;
  if (!Number.isSafeInteger(strikes) || strikes < 0) throw new AlbedoError('CONFIG', `ALBEDO_HOTKEY_MAX_STRIKES must be a non-negative integer, got ${strikes}`);
  for (const b of o.backends ?? []) if (!MODEL_BACKENDS.includes(b)) throw new AlbedoError('CONFIG', `unknown model backend ${String(b)}`);
  if (o.allowlistProfile === 'v2' && !o.genesisPins) throw new AlbedoError('CONFIG', 'the v2 allowlist profile needs ALBEDO_CHAT_TEMPLATE_SHA256 and ALBEDO_GENESIS_FILE_HASHES (spec/validation.md §6.1)');
  if ((o.backends ?? ['hippius']).length === 0) throw new AlbedoError('CONFIG', 'ALBEDO_MODEL_BACKENDS is empty');
}

/**
 * Creates the HIPPIUS stage executor. It reads the submission (hotkey, model_uri) by
 * `ctx.submissionId`, then:
 * - runs the T4 pre-checks before any store I/O (`hotkey_banned`, `hotkey_already_validated`,
 *   `duplicate`);
 * - runs the artifact checks ({@link runModelChecks});
 * - on success reserves the digest (`model_hash`, unique) under a per-hotkey lock after re-running
 *   T4, and returns `{checks, modelHash, …}` with an `apply` that writes the MODEL_MANIFEST artifact;
 * - on a MINER fault returns the fault with the strike suffix and an `apply` that records bans;
 * - on an INFRA fault returns it (retryable, never a strike).
 */
export function createValidationExecutor(options: ValidationExecutorOptions): InProcessExecutor {
  validateOptions(options);
  const policy: HotkeyPolicy = { maxStrikes: options.maxStrikes ?? DEFAULT_MAX_STRIKES, banOnDuplicate: options.banOnDuplicate ?? true };
  const archSpec = options.archSpec ?? bundledArchitectureSpec();
  const registryHost = options.hippiusRegistryHost ?? DEFAULT_HIPPIUS_REGISTRY_HOST;

  const emit = async (ctx: ExecutorContext, record: CheckRecord) => {
    try {
      await ctx.emit({ type: 'validation_check', data: { name: record.name, status: record.status, ...(record.faultCode ? { faultCode: record.faultCode } : {}) } });
    } catch {
      // progress is best effort
    }
  };

  const warn = (message: string) => {
    try {
      options.onWarning?.(message);
    } catch {
      // a logger's failure is not the miner's
    }
  };

  /**
   * `fault.json` (§10) is uploaded before the finaliser (no transaction spans network I/O) and
   * recorded inside it. It is a record, not a verdict: an upload failure is logged and the fault
   * stands without `fault_uri` — a storage outage must neither lose nor change a miner's verdict.
   */
  const uploadFault = async (sub: SubmissionRow, fault: StageFault, summary: Record<string, unknown>, dedupDetail: Readonly<Record<string, unknown>> | null): Promise<ArtifactRecord | null> => {
    if (!options.artifacts) return null;
    try {
      return await putValidationFault(options.artifacts, {
        modelUri: sub.model_uri,
        hotkey: sub.hotkey,
        digest: digestOf(sub) ?? 'none',
        blockNumber: sub.block_number === null ? null : Number(sub.block_number),
        fault,
        dedupDetail,
        resultSummary: summary,
      });
    } catch (error) {
      warn(`fault.json for ${sub.model_uri} was not uploaded: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  };

  const minerFailure = async (ctx: ExecutorContext, sub: SubmissionRow, fault: StageFault, checks: readonly CheckRecord[], dedupDetail: Readonly<Record<string, unknown>> | null = null): Promise<ExecutorResult> => {
    const standing = await assessMinerFault(ctx.db, sub.hotkey, sub.id, fault, policy);
    const final = withStandingSuffix(fault, standing);
    const summary: Record<string, unknown> = { checks, model_uri: sub.model_uri, strikes: standing.strikes, ...(dedupDetail ? { dedup: dedupDetail } : {}) };
    const uploaded = await uploadFault(sub, final, summary, dedupDetail);
    return {
      outcome: { status: 'failed', fault: final },
      apply: async (tx) => {
        const stageAttemptId = await attemptRowId(tx, ctx);
        await recordMinerFault(tx, { hotkey: sub.hotkey, netuid: sub.netuid, submissionId: sub.id, stageAttemptId, fault: final, policy });
        // An invalid submission never holds a digest (a reservation of an earlier, lost attempt).
        await tx.query('UPDATE model_submissions SET model_hash = NULL WHERE id = $1 AND model_hash IS NOT NULL', [sub.id]);
        if (uploaded) await recordValidationFault(tx, uploaded, { submissionId: sub.id, stageAttemptId });
        await storeChecks(tx, ctx, { ...summary, fault_uri: uploaded?.uri ?? null });
      },
    };
  };

  const infraFailure = (ctx: ExecutorContext, sub: SubmissionRow, fault: StageFault, checks: readonly CheckRecord[]): ExecutorResult => ({
    outcome: { status: 'failed', fault },
    apply: (tx) => storeChecks(tx, ctx, { checks, model_uri: sub.model_uri }),
  });

  const failure = (ctx: ExecutorContext, sub: SubmissionRow, fault: StageFault, checks: readonly CheckRecord[], dedupDetail: Readonly<Record<string, unknown>> | null = null) =>
    fault.faultClass === 'MINER_FAULT' ? minerFailure(ctx, sub, fault, checks, dedupDetail) : infraFailure(ctx, sub, fault, checks);

  const stallFor = (backend: ModelBackend) => options.stall?.[backend] ?? stallSettingsFromEnv(backend, {});

  return async (ctx) => {
    const sub = await readSubmission(ctx.db, ctx.submissionId);
    if (!sub) return { outcome: { status: 'failed', fault: stageFault('INFRA_FAULT', 'unexpected', `submission ${ctx.submissionId} not found`) } };
    const subject: PreCheckSubject = { id: sub.id, hotkey: sub.hotkey, digest: digestOf(sub) };
    const checks: CheckRecord[] = [];
    const later = (after: readonly CheckName[]) => [...after, 'dedup', 'digest_reservation'] as CheckName[];

    // T4: before any store I/O.
    const pre = await runPreChecks(ctx.db, subject);
    for (const name of pre.passed) checks.push({ name, status: 'passed', detail: 'ok' });
    if (pre.failure) {
      const record: CheckRecord = { name: pre.failure.check, status: 'failed', faultCode: pre.failure.fault.code, detail: pre.failure.fault.message };
      checks.push(record);
      const rest = (['hotkey_banned', 'hotkey_already_validated', 'duplicate_digest'] as const).filter((n) => !pre.passed.includes(n) && n !== pre.failure?.check);
      checks.push(...skippedChecks(later([...rest, ...modelChecksFor(options.allowlistProfile ?? 'seed-live'), ...DEEP_CHECKS]), pre.failure.check));
      await emit(ctx, record);
      return minerFailure(ctx, sub, pre.failure.fault, checks);
    }

    // Steps 1–6b and 9: everything that needs no full download.
    const report: ModelCheckReport = await runModelChecks(
      sub.model_uri,
      {
        store: options.store,
        repoPattern: options.repoPattern ?? DEFAULT_REPO_NAME_PATTERN,
        maxHeaderBytes: options.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES,
        backends: options.backends ?? ['hippius'],
        allowMutableRef: options.allowMutableRef ?? false,
        allowlistProfile: options.allowlistProfile ?? 'seed-live',
        archSpec,
        ...(options.notFoundRecheckMs !== undefined ? { notFoundRecheckMs: options.notFoundRecheckMs } : {}),
        ...(options.genesisPins ? { genesisPins: options.genesisPins } : {}),
        onCheck: (r) => emit(ctx, r),
      },
      ctx.signal,
    );
    checks.push(...report.checks);
    if (report.fault) {
      checks.push(...skippedChecks(later([...DEEP_CHECKS]), report.checks.find((c) => c.status === 'failed')?.name ?? 'a check'));
      return failure(ctx, sub, report.fault, checks);
    }
    const ref = report.ref as ModelRef;

    // Steps 7, 8, 10: download, on-disk headers, fingerprint (+ samples under the reveal's block hash).
    let lastProgress = 0;
    const deep = await runDeepChecks({
      store: options.store,
      cache: options.cache,
      ref,
      files: report.files,
      stall: stallFor(ref.backend),
      salts: sub.block_hash ? [sub.block_hash] : [],
      ...(options.maxHeaderBytes !== undefined ? { maxHeaderBytes: options.maxHeaderBytes } : {}),
      ...(options.maxKnnDim !== undefined ? { maxKnnDim: options.maxKnnDim } : {}),
      ...(options.fingerprintThreads !== undefined ? { threads: options.fingerprintThreads } : {}),
      signal: ctx.signal,
      onCheck: (r) => emit(ctx, r),
      onDownloadProgress: (p) => {
        const now = Date.now();
        if (now - lastProgress < 1000 && p.bytesDone < p.bytesTotal) return;
        lastProgress = now;
        ctx.emit({ type: 'validation_download', data: { file: p.file, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, bytesPerSecond: Math.round(p.bytesPerSecond), etaSeconds: p.etaSeconds } }).catch(() => {});
      },
    });
    checks.push(...deep.checks);
    if (deep.fault || !deep.fingerprint) {
      checks.push(...skippedChecks(later([]), deep.checks.find((c) => c.status === 'failed')?.name ?? 'a check'));
      return failure(ctx, sub, deep.fault ?? stageFault('INFRA_FAULT', 'fingerprint_failed', 'no fingerprint'), checks);
    }
    const fp = deep.fingerprint;

    // T5 guard: reserve the digest now, so the unique index can never fail inside the finaliser,
    // and so a concurrent validation's dedup sees this model as a reference from here on.
    const gate = await reserveDigest(ctx, sub, ref.digest);
    const gateRecord: CheckRecord = gate.ok
      ? { name: 'digest_reservation', status: 'passed', detail: `model_hash = ${ref.digest}` }
      : { name: 'digest_reservation', status: 'failed', faultCode: gate.fault.code, detail: gate.fault.message };
    checks.push(gateRecord);
    await emit(ctx, gateRecord);
    if (!gate.ok) {
      checks.push(...skippedChecks(['dedup'], 'digest_reservation'));
      return failure(ctx, sub, gate.fault, checks);
    }

    // The kings and genesis re-sampled under this reveal's salt: read (and, on a fresh cache,
    // downloaded) before the lock below, which every validation's dedup waits on.
    let live: LiveReference[] = [];
    let liveFault: StageFault | null = null;
    if (sub.block_hash) {
      try {
        live = await liveReferences({ db: ctx.db, cache: options.cache, store: options.store, index: options.dedup, salt: sub.block_hash, signal: ctx.signal, ...(options.fingerprintThreads !== undefined ? { threads: options.fingerprintThreads } : {}) });
      } catch (error) {
        liveFault = stageFault('INFRA_FAULT', 'dedup_backend_failed', `reading the kings for the divergence check: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    // Step 11 (+ the index write of step 12), serialised across validators: two copies validated at
    // once must not both pass because neither saw the other.
    const dd = liveFault ? { ok: false as const, fault: liveFault, detail: null } : await withDedupLock(ctx.db, async () => {
      const index = validatedReferences(options.dedup, ctx.db);
      const decision = await decideDedup(
        { model_uri: sub.model_uri, hotkey: sub.hotkey, coldkey: sub.coldkey, weights_hash: fp.weightsHash, fingerprint: fp.fingerprint, samples: fp.samples },
        index,
        options.dedupRules ?? {},
        live,
      );
      if (!decision.ok) return decision;
      try {
        await options.dedup.index(fingerprintDoc({ model_uri: sub.model_uri, hotkey: sub.hotkey, coldkey: sub.coldkey, repo: ref.repo, digest: ref.digest }, fp));
      } catch (error) {
        return { ok: false as const, fault: stageFault('INFRA_FAULT', 'dedup_index_failed', `indexing the fingerprint of ${sub.model_uri}: ${error instanceof Error ? error.message : String(error)}`), detail: null };
      }
      return decision;
    });
    const dedupRecord: CheckRecord = dd.ok
      ? { name: 'dedup', status: 'passed', detail: dedupPassText(dd.detail), data: { ...dd.detail } }
      : { name: 'dedup', status: 'failed', faultCode: dd.fault.code, detail: dd.fault.message, ...(dd.detail ? { data: { ...dd.detail } } : {}) };
    checks.push(dedupRecord);
    await emit(ctx, dedupRecord);
    if (!dd.ok) return failure(ctx, sub, dd.fault, checks, dd.detail ? { ...dd.detail } : null);

    // Step 12: the fingerprint as an artifact (best effort, like fault.json), then success.
    const uri = manifestUri(ref, registryHost);
    let fingerprintRecord: ArtifactRecord | null = null;
    if (options.artifacts) {
      try {
        fingerprintRecord = await options.artifacts.put(fingerprintKey(sub.hotkey, ref.digest), fingerprintJson(fp.fingerprint), { contentType: 'application/json', artifactType: 'FINGERPRINT' });
      } catch (error) {
        warn(`fingerprint.json for ${sub.model_uri} was not uploaded: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const result = {
      checks,
      modelHash: ref.digest,
      modelUri: ref.uri,
      backend: ref.backend,
      modelManifestUri: uri,
      nTensors: fp.nTensors,
      shards: report.shards,
      // spec/validation.md §1 success result_summary
      similarity: dd.detail.similarity,
      threshold: dd.detail.threshold,
      divergence: dd.detail.divergence,
      min_divergence: dd.detail.min_divergence,
      nearest_model_uri: dd.detail.nearest_model_uri,
      n_tensors: fp.nTensors,
      weights_hash: fp.weightsHash,
      model_manifest_uri: uri,
      fingerprint_uri: fingerprintRecord?.uri ?? null,
    };
    return {
      outcome: { status: 'succeeded', result },
      apply: async (tx) => {
        await applyValidated(tx, sub.id, ref.digest);
        const attemptId = await attemptRowId(tx, ctx);
        const exists = await tx.query("SELECT 1 FROM artifacts WHERE submission_id = $1 AND artifact_type = 'MODEL_MANIFEST' AND uri = $2", [sub.id, uri]);
        if (!exists.rowCount) {
          await tx.query(
            `INSERT INTO artifacts (submission_id, stage_attempt_id, artifact_type, storage_backend, uri)
             VALUES ($1, $2, 'MODEL_MANIFEST', $3, $4)`,
            [sub.id, attemptId, storageBackendOfUri(uri), uri],
          );
        }
        if (fingerprintRecord) await recordArtifact(tx, artifactRowOf(fingerprintRecord, { submissionId: sub.id, stageAttemptId: attemptId }));
      },
    };
  };
}

function dedupPassText(d: DedupPassDetail): string {
  const div = d.divergence === null ? 'no divergence reference' : `divergence ${d.divergence.toFixed(6)} >= ${d.min_divergence}`;
  return `similarity ${d.similarity.toFixed(6)} < ${d.threshold}; ${div}; ${d.candidates_checked} candidate(s) checked`;
}

/** `hippius_validation/<hotkey>/<digest ':'→'_'>/fingerprint.json`, next to the fault.json layout of §10. */
function fingerprintKey(hotkey: string, digest: string): string {
  return validationFaultKey(hotkey, digest).replace(/fault\.json$/, 'fingerprint.json');
}

/** Dedup decisions and index writes run one at a time (session advisory lock on a dedicated client). */
async function withDedupLock<T>(db: Db, run: () => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('albedo_dedup'))");
    try {
      return await run();
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext('albedo_dedup'))").catch(() => {});
    }
  } finally {
    client.release();
  }
}

type GateResult = { readonly ok: true } | { readonly ok: false; readonly fault: StageFault };

const UNIQUE_VIOLATION = '23505';

/**
 * Re-runs T4 under a per-hotkey advisory lock and sets `model_hash` = digest (spec T5). Run just
 * before the success outcome is returned: the unique index then decides between two concurrent
 * submissions of one digest *here*, where a violation can still become MINER `duplicate`; the
 * finaliser's `apply` only re-asserts it. A savepoint keeps a violation from aborting the
 * transaction.
 */
async function reserveDigest(ctx: ExecutorContext, sub: SubmissionRow, digest: string): Promise<GateResult> {
  return inTx(ctx.db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`albedo_hotkey:${sub.hotkey}`]);
    const live = await tx.query("SELECT 1 FROM stage_attempts WHERE attempt_key = $1 AND state = 'RUNNING'", [ctx.attemptKey]);
    if (!live.rowCount) return { ok: false, fault: stageFault('INFRA_FAULT', 'unexpected', `attempt ${ctx.attemptKey} is no longer running; not reserving ${digest}`) };
    const subject: PreCheckSubject = { id: sub.id, hotkey: sub.hotkey, digest };
    for (const check of [checkHotkeyBanned, checkHotkeyAlreadyValidated, checkDuplicateDigest]) {
      const r = await check(tx, subject);
      if (!r.ok) return { ok: false, fault: r.fault };
    }
    await tx.query('SAVEPOINT albedo_reserve_digest');
    try {
      await tx.query('UPDATE model_submissions SET model_hash = $2 WHERE id = $1', [sub.id, digest]);
      await tx.query('RELEASE SAVEPOINT albedo_reserve_digest');
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT albedo_reserve_digest');
      const other = await tx.query<{ model_uri: string }>('SELECT model_uri FROM model_submissions WHERE model_hash = $1 AND id <> $2', [digest, sub.id]);
      const of = other.rows[0]?.model_uri ?? 'another submission';
      return { ok: false, fault: stageFault('MINER_FAULT', 'duplicate', `duplicate of ${of}: digest ${digest} was validated concurrently by another submission`) };
    }
    return { ok: true };
  });
}

/**
 * Success writes in the finaliser transaction: `model_hash` = digest. The reservation made this a
 * no-op unless the row changed since; a conflicting row (impossible while reservations are the
 * only writer of `model_hash`) aborts the finaliser instead of validating a duplicate — the
 * attempt is then retried after its lease and the T4 pre-check rejects it as `duplicate`.
 */
async function applyValidated(tx: Tx, id: SubmissionId, digest: string): Promise<void> {
  const other = await tx.query<{ id: string }>('SELECT id FROM model_submissions WHERE model_hash = $1 AND id <> $2 FOR UPDATE', [digest, id]);
  if (other.rowCount) throw new AlbedoError('CONFLICT', `digest ${digest} is already the model_hash of submission ${other.rows[0]?.id}`);
  await tx.query('UPDATE model_submissions SET model_hash = $2 WHERE id = $1 AND model_hash IS DISTINCT FROM $2', [id, digest]);
}

// ---------------------------------------------------------------------------------------------
// Configuration (spec/config.md "Validation worker")
// ---------------------------------------------------------------------------------------------

const TRUE = new Set(['1', 'true', 'yes']);
const FALSE = new Set(['0', 'false', 'no']);

function envBool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return fallback;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new AlbedoError('CONFIG', `${name} must be one of 1/true/yes/0/false/no, got ${JSON.stringify(v)}`);
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name]?.trim();
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new AlbedoError('CONFIG', `${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Executor options from the environment (everything but the store); invalid values are CONFIG errors. */
/** The executor settings that come from the environment; the store, cache, index and artifact store are built by the caller. */
export type ValidationSettings = Omit<ValidationExecutorOptions, 'store' | 'cache' | 'dedup' | 'artifacts'>;

/** Executor settings from the environment; invalid values are CONFIG errors. */
export function validationOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, protocolVersion: 'v1' | 'v2' = 'v1'): ValidationSettings {
  const backendsRaw = env.ALBEDO_MODEL_BACKENDS?.trim() || (protocolVersion === 'v2' ? 'hippius,hf' : 'hippius');
  const backends = backendsRaw.split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of backends) if (!MODEL_BACKENDS.includes(b as ModelBackend)) throw new AlbedoError('CONFIG', `ALBEDO_MODEL_BACKENDS: unknown backend ${JSON.stringify(b)}`);
  const profile = env.ALBEDO_ALLOWLIST_PROFILE?.trim() || (protocolVersion === 'v2' ? 'v2' : 'seed-live');
  if (!ALLOWLIST_PROFILES.includes(profile as AllowlistProfile)) throw new AlbedoError('CONFIG', `ALBEDO_ALLOWLIST_PROFILE must be seed-live or v2, got ${JSON.stringify(profile)}`);
  const maxStrikes = envInt(env, 'ALBEDO_HOTKEY_MAX_STRIKES') ?? envInt(env, 'ALBEDO_HV_MAX_FAILS');
  const maxHeaderBytes = envInt(env, 'ALBEDO_MAX_SAFETENSORS_HEADER_BYTES');
  const dedup = dedupConfigFromEnv(env);
  const opts: ValidationSettings = {
    dedupRules: {
      knnCandidates: dedup.knnCandidates,
      simThreshold: dedup.simThreshold,
      minDivergence: dedup.minDivergence,
      sameColdkeyStrict: dedup.sameColdkeyStrict,
      divergenceNeighbours: dedup.divergenceNeighbours,
    },
    maxKnnDim: dedup.maxKnnDim,
    stall: { hippius: stallSettingsFromEnv('hippius', env), hf: stallSettingsFromEnv('hf', env) },
    repoPattern: compileRepoNamePattern(env.ALBEDO_REPO_NAME_PATTERN),
    backends: backends as ModelBackend[],
    allowMutableRef: envBool(env, 'ALBEDO_ALLOW_MUTABLE_REF', false),
    allowlistProfile: profile as AllowlistProfile,
    banOnDuplicate: envBool(env, 'ALBEDO_BAN_ON_DUPLICATE', true),
    hippiusRegistryHost: registryHostOf(env.ALBEDO_HIPPIUS_REGISTRY?.trim() || 'https://registry.hippius.com'),
    ...(maxStrikes !== undefined ? { maxStrikes } : {}),
    ...(maxHeaderBytes !== undefined ? { maxHeaderBytes } : {}),
    ...(env.ALBEDO_ARCH_SPEC?.trim() ? { archSpec: loadArchitectureSpec(env.ALBEDO_ARCH_SPEC.trim()) } : {}),
    ...(genesisPinsFromEnv(env) ?? {}),
  };
  validateOptions(opts);
  return opts;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** `ALBEDO_CHAT_TEMPLATE_SHA256` + `ALBEDO_GENESIS_FILE_HASHES` (+ `ALBEDO_GENESIS_MODEL_URI` for messages); both or neither. */
function genesisPinsFromEnv(env: NodeJS.ProcessEnv): { genesisPins: GenesisPins } | null {
  const template = env.ALBEDO_CHAT_TEMPLATE_SHA256?.trim().toLowerCase();
  const filesRaw = env.ALBEDO_GENESIS_FILE_HASHES?.trim();
  if (!template && !filesRaw) return null;
  if (!template || !SHA256_HEX.test(template)) throw new AlbedoError('CONFIG', 'ALBEDO_CHAT_TEMPLATE_SHA256 must be 64 lowercase hex digits when ALBEDO_GENESIS_FILE_HASHES is set');
  let files: unknown;
  try {
    files = JSON.parse(filesRaw ?? '');
  } catch {
    throw new AlbedoError('CONFIG', 'ALBEDO_GENESIS_FILE_HASHES must be a JSON object {file: sha256}');
  }
  if (typeof files !== 'object' || files === null || Array.isArray(files)) throw new AlbedoError('CONFIG', 'ALBEDO_GENESIS_FILE_HASHES must be a JSON object {file: sha256}');
  for (const [name, hash] of Object.entries(files)) {
    if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) throw new AlbedoError('CONFIG', `ALBEDO_GENESIS_FILE_HASHES[${JSON.stringify(name)}] must be 64 lowercase hex digits`);
  }
  return { genesisPins: { chatTemplateSha256: template, fileHashes: files as Record<string, string>, genesisRef: env.ALBEDO_GENESIS_MODEL_URI?.trim() || 'the genesis model' } };
}
