import type { ExecutorContext, ExecutorResult, InProcessExecutor } from '../actors/stage-service.ts';
import { AlbedoError, type StageFault, stageFault } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { type Db, inTx, type Tx } from '../persistence/db.ts';
import { ALLOWLIST_PROFILES, type AllowlistProfile } from './allowlist.ts';
import { type ArchitectureSpec, bundledArchitectureSpec, loadArchitectureSpec } from './architecture.ts';
import { type CheckRecord, MODEL_CHECKS, type ModelCheckReport, runModelChecks, skippedChecks } from './checks.ts';
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
import { HfHubStore, MAX_RANGE_BYTES, type ModelStore } from './model-store.ts';
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
}

interface SubmissionRow {
  readonly id: SubmissionId;
  readonly hotkey: string;
  readonly netuid: number;
  readonly model_uri: string;
  readonly commit_hash: string | null;
}

async function readSubmission(db: Db, id: SubmissionId): Promise<SubmissionRow | undefined> {
  const { rows } = await db.query<SubmissionRow>('SELECT id, hotkey, netuid, model_uri, commit_hash FROM model_submissions WHERE id = $1', [id]);
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

function validateOptions(o: ValidationExecutorOptions): void {
  const cap = o.maxHeaderBytes ?? DEFAULT_MAX_SAFETENSORS_HEADER_BYTES;
  if (!Number.isSafeInteger(cap) || cap < 2 || cap > MAX_RANGE_BYTES) {
    throw new AlbedoError('CONFIG', `ALBEDO_MAX_SAFETENSORS_HEADER_BYTES must be an integer in [2, ${MAX_RANGE_BYTES}], got ${cap}`);
  }
  const strikes = o.maxStrikes ?? DEFAULT_MAX_STRIKES;
  if (!Number.isSafeInteger(strikes) || strikes < 0) throw new AlbedoError('CONFIG', `ALBEDO_HOTKEY_MAX_STRIKES must be a non-negative integer, got ${strikes}`);
  for (const b of o.backends ?? []) if (!MODEL_BACKENDS.includes(b)) throw new AlbedoError('CONFIG', `unknown model backend ${String(b)}`);
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

  const minerFailure = async (ctx: ExecutorContext, sub: SubmissionRow, fault: StageFault, checks: readonly CheckRecord[]): Promise<ExecutorResult> => {
    const standing = await assessMinerFault(ctx.db, sub.hotkey, sub.id, fault, policy);
    const final = withStandingSuffix(fault, standing);
    return {
      outcome: { status: 'failed', fault: final },
      apply: async (tx) => {
        await recordMinerFault(tx, { hotkey: sub.hotkey, netuid: sub.netuid, submissionId: sub.id, stageAttemptId: await attemptRowId(tx, ctx), fault: final, policy });
        // An invalid submission never holds a digest (a reservation of an earlier, lost attempt).
        await tx.query('UPDATE model_submissions SET model_hash = NULL WHERE id = $1 AND model_hash IS NOT NULL', [sub.id]);
        await storeChecks(tx, ctx, { checks, model_uri: sub.model_uri, strikes: standing.strikes });
      },
    };
  };

  const infraFailure = (ctx: ExecutorContext, sub: SubmissionRow, fault: StageFault, checks: readonly CheckRecord[]): ExecutorResult => ({
    outcome: { status: 'failed', fault },
    apply: (tx) => storeChecks(tx, ctx, { checks, model_uri: sub.model_uri }),
  });

  return async (ctx) => {
    const sub = await readSubmission(ctx.db, ctx.submissionId);
    if (!sub) return { outcome: { status: 'failed', fault: stageFault('INFRA_FAULT', 'unexpected', `submission ${ctx.submissionId} not found`) } };
    const subject: PreCheckSubject = { id: sub.id, hotkey: sub.hotkey, digest: digestOf(sub) };
    const checks: CheckRecord[] = [];

    // T4: before any store I/O.
    const pre = await runPreChecks(ctx.db, subject);
    for (const name of pre.passed) checks.push({ name, status: 'passed', detail: 'ok' });
    if (pre.failure) {
      const record: CheckRecord = { name: pre.failure.check, status: 'failed', faultCode: pre.failure.fault.code, detail: pre.failure.fault.message };
      checks.push(record);
      const rest = (['hotkey_banned', 'hotkey_already_validated', 'duplicate_digest'] as const).filter((n) => !pre.passed.includes(n) && n !== pre.failure?.check);
      checks.push(...skippedChecks([...rest, ...MODEL_CHECKS, 'digest_reservation'], pre.failure.check));
      await emit(ctx, record);
      return minerFailure(ctx, sub, pre.failure.fault, checks);
    }

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
        onCheck: (r) => emit(ctx, r),
      },
      ctx.signal,
    );
    checks.push(...report.checks);
    if (report.fault) {
      checks.push(...skippedChecks(['digest_reservation'], report.checks.find((c) => c.status === 'failed')?.name ?? 'a check'));
      return report.fault.faultClass === 'MINER_FAULT' ? minerFailure(ctx, sub, report.fault, checks) : infraFailure(ctx, sub, report.fault, checks);
    }
    const ref = report.ref as ModelRef;

    // T5 guard: reserve the digest now, so the unique index can never fail inside the finaliser.
    const gate = await reserveDigest(ctx, sub, ref.digest);
    const gateRecord: CheckRecord = gate.ok
      ? { name: 'digest_reservation', status: 'passed', detail: `model_hash = ${ref.digest}` }
      : { name: 'digest_reservation', status: 'failed', faultCode: gate.fault.code, detail: gate.fault.message };
    checks.push(gateRecord);
    await emit(ctx, gateRecord);
    if (!gate.ok) return gate.fault.faultClass === 'MINER_FAULT' ? minerFailure(ctx, sub, gate.fault, checks) : infraFailure(ctx, sub, gate.fault, checks);

    const uri = manifestUri(ref, registryHost);
    const result = { checks, modelHash: ref.digest, modelUri: ref.uri, backend: ref.backend, modelManifestUri: uri, nTensors: report.nTensors, shards: report.shards };
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
      },
    };
  };
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
export function validationOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, protocolVersion: 'v1' | 'v2' = 'v1'): Omit<ValidationExecutorOptions, 'store'> {
  const backendsRaw = env.ALBEDO_MODEL_BACKENDS?.trim() || (protocolVersion === 'v2' ? 'hippius,hf' : 'hippius');
  const backends = backendsRaw.split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of backends) if (!MODEL_BACKENDS.includes(b as ModelBackend)) throw new AlbedoError('CONFIG', `ALBEDO_MODEL_BACKENDS: unknown backend ${JSON.stringify(b)}`);
  const profile = env.ALBEDO_ALLOWLIST_PROFILE?.trim() || (protocolVersion === 'v2' ? 'v2' : 'seed-live');
  if (!ALLOWLIST_PROFILES.includes(profile as AllowlistProfile)) throw new AlbedoError('CONFIG', `ALBEDO_ALLOWLIST_PROFILE must be seed-live or v2, got ${JSON.stringify(profile)}`);
  const maxStrikes = envInt(env, 'ALBEDO_HOTKEY_MAX_STRIKES') ?? envInt(env, 'ALBEDO_HV_MAX_FAILS');
  const maxHeaderBytes = envInt(env, 'ALBEDO_MAX_SAFETENSORS_HEADER_BYTES');
  const opts: Omit<ValidationExecutorOptions, 'store'> = {
    repoPattern: compileRepoNamePattern(env.ALBEDO_REPO_NAME_PATTERN),
    backends: backends as ModelBackend[],
    allowMutableRef: envBool(env, 'ALBEDO_ALLOW_MUTABLE_REF', false),
    allowlistProfile: profile as AllowlistProfile,
    banOnDuplicate: envBool(env, 'ALBEDO_BAN_ON_DUPLICATE', true),
    hippiusRegistryHost: registryHostOf(env.ALBEDO_HIPPIUS_REGISTRY?.trim() || 'https://registry.hippius.com'),
    ...(maxStrikes !== undefined ? { maxStrikes } : {}),
    ...(maxHeaderBytes !== undefined ? { maxHeaderBytes } : {}),
    ...(env.ALBEDO_ARCH_SPEC?.trim() ? { archSpec: loadArchitectureSpec(env.ALBEDO_ARCH_SPEC.trim()) } : {}),
  };
  validateOptions({ ...opts, store: undefined as unknown as ModelStore });
  return opts;
}

/** The Hugging Face store from `ALBEDO_HF_ENDPOINT` and `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN`. */
export function hfHubStoreFromEnv(env: NodeJS.ProcessEnv = process.env): HfHubStore {
  const token = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  return new HfHubStore({ endpoint: env.ALBEDO_HF_ENDPOINT?.trim() || 'https://huggingface.co', ...(token ? { token } : {}) });
}
