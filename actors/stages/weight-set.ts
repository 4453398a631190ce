/**
 * WEIGHT_SET stage (spec/coronation.md §3, pipeline.md T26–T28) as an in-process executor: writes
 * the weights of the reign that crowned this submission — or of any newer reign — to the chain.
 *
 * Per attempt:
 * 1. **Done already?** If a weight epoch of this netuid whose reign version is ≥ the version that
 *    crowned the submission has SUCCEEDED, the attempt succeeds without touching the chain (T27: a
 *    superseded coronation epoch never strands a submission).
 * 2. **Claim** (transaction, `pg_advisory_xact_lock(hashtext('weight_setter'))`): epochs left RUNNING
 *    by an attempt that is no longer RUNNING are released; while another live attempt has an epoch
 *    RUNNING, or the service's own rate gate is closed, or the newest epoch is in its retry backoff,
 *    the executor waits (bounded by `maxWaitMs`, then a CHAIN fault). Otherwise it claims the newest
 *    PENDING / FAILED_RETRYABLE epoch (older ones → FAILED_TERMINAL `superseded_by_newer_weight_epoch`;
 *    none suitable ⇒ a PERIODIC_REFRESH epoch of the ACTIVE reign), sets it RUNNING with
 *    `attempt_count + 1` and records a `weight_transactions` row (CREATED, `claim_block`).
 * 3. **Payload** from the current rows of the epoch's reign; deregistered members' shares burn
 *    (`buildWeightPayload`); u16 via `normalizeWeightsU16`.
 * 4. **Submit** with `setWeightsOnce`: after an attempt whose outcome is unknown (timeout, exception,
 *    orphaned) the chain's `LastUpdate` is checked from that attempt's claim block first, so an
 *    extrinsic that landed late is never sent twice.
 * 5. **Record** the chain's answer in its own transaction right away (transaction SUCCESS with the
 *    inclusion block, epoch SUCCESS with what was actually sent, `succeeded_at`), or FAILED_RETRYABLE
 *    with the CHAIN code. These are facts about the chain, so they are written even if this attempt
 *    has lost its lease meanwhile; the submission's own state is the actor's business (REIGN_SET /
 *    WEIGHT_SET_* → COMPLETE_CORONATED on success, WEIGHT_SET_RETRYABLE on a fault).
 */
import type { ChainClient } from '../../chain/client.ts';
import { isChainError, setWeightsOnce } from '../../chain/client.ts';
import { normalizeWeightsU16 } from '../../chain/weights.ts';
import { type StageFault, stageFault } from '../../core/faults.ts';
import {
  buildWeightPayload,
  epochArrays,
  invalidWeightPayloadReason,
  periodicRefreshPolicy,
  periodicRefreshWeightHash,
  type WeightPayload,
} from '../../persistence/coronation.ts';
import { type Db, inTx, type Tx } from '../../persistence/db.ts';
import type { ExecutorContext, ExecutorResult, InProcessExecutor } from '../stage-service.ts';
import { abortableSleep } from '../../core/io.ts';

/** Advisory transaction lock of every weight-epoch claim (pipeline.md §8). */
export const WEIGHT_SETTER_LOCK = 'weight_setter';
/** `ALBEDO_WEIGHT_RETRY_BACKOFF_SECONDS`: a FAILED_RETRYABLE epoch is re-claimable after this. @default 60000 */
export const DEFAULT_WEIGHT_RETRY_BACKOFF_MS = 60_000;
/** Poll period while waiting for the rate gate, a backoff or another weight set. @default 2000 */
export const DEFAULT_WEIGHT_WAIT_POLL_MS = 2_000;
/** Longest wait inside one attempt (the attempt's hard deadline is 10 min). @default 300000 */
export const DEFAULT_WEIGHT_MAX_WAIT_MS = 300_000;
/** `last_fault_code` of an epoch replaced by a newer one (a DB value, not a stage fault code). */
export const SUPERSEDED_CODE = 'superseded_by_newer_weight_epoch';
/** `last_fault_code` of an epoch whose payload failed validation (coronation.md §3 step 3). */
export const INVALID_PAYLOAD_CODE = 'invalid_weight_payload';

export interface WeightSetExecutorOptions {
  readonly chain: ChainClient;
  readonly netuid: number;
  /** SS58 of the validator hotkey that signs (`weight_transactions.wallet_hotkey`). */
  readonly signerHotkey: string;
  readonly versionKey: number;
  /** `ALBEDO_WEIGHT_SET_RATE_BLOCKS` (v1 100, v2 101): the service's own gate between writes. */
  readonly rateLimitBlocks: number;
  /** `ALBEDO_WEIGHT_BURN_UID` (0). */
  readonly burnUid: number;
  /** Recorded as `weight_transactions.subtensor_url` (the network name). @default 'local' */
  readonly network?: string;
  /** @default DEFAULT_WEIGHT_RETRY_BACKOFF_MS */
  readonly retryBackoffMs?: number;
  /** @default DEFAULT_WEIGHT_WAIT_POLL_MS */
  readonly pollMs?: number;
  /** @default DEFAULT_WEIGHT_MAX_WAIT_MS */
  readonly maxWaitMs?: number;
}

interface EpochRow {
  id: string;
  reason: 'CORONATION' | 'PERIODIC_REFRESH' | 'SERVICE_REPLAY';
  reign_id: string | null;
  state: string;
  weight_hash: string;
  weight_policy: Record<string, unknown>;
  reign_version: number | null;
  in_backoff: boolean;
  last_fault_code: string | null;
}

interface MemberRow {
  slot: number;
  uid: number | null;
  hotkey: string;
  weight_bps: number;
}

interface Claimed {
  readonly kind: 'claimed';
  readonly epoch: EpochRow;
  readonly txId: string;
  readonly claimBlock: number;
  /** Claim block of the earliest earlier transaction of this epoch whose outcome is unknown. */
  readonly sinceBlock: number | null;
  readonly members: MemberRow[];
}

type Step =
  | { readonly kind: 'done'; readonly epochId: string; readonly weightHash: string; readonly reignVersion: number; readonly blockNumber: number | null }
  | Claimed
  | { readonly kind: 'wait'; readonly fault: StageFault }
  | { readonly kind: 'again' }
  | { readonly kind: 'lost' };

const CHAIN_CODES = new Set(['weight_set_exception', 'weight_set_rate_limited', 'weight_set_rejected', 'weight_set_not_included', 'weight_set_timeout']);

function chainFault(code: 'weight_set_exception' | 'weight_set_rate_limited' | 'weight_set_rejected' | 'weight_set_not_included' | 'weight_set_timeout', message: string): StageFault {
  return stageFault('CHAIN_FAULT', code, message);
}

function failed(fault: StageFault): ExecutorResult {
  return { outcome: { status: 'failed', fault } };
}

const sleep = abortableSleep;

/** Version of the newest reign this submission triggered, or null if it was never crowned. */
async function crowningReignVersion(db: Db, submissionId: string): Promise<number | null> {
  const { rows } = await db.query<{ v: string | null }>('SELECT max(version)::text AS v FROM reigns WHERE trigger_submission_id = $1', [submissionId]);
  const v = rows[0]?.v;
  return v === null || v === undefined ? null : Number(v);
}

const EPOCH_COLUMNS = `e.id, e.reason, e.reign_id, e.state, e.weight_hash, e.weight_policy, e.last_fault_code, r.version::int AS reign_version,
  (e.state = 'FAILED_RETRYABLE' AND e.updated_at > now() - make_interval(secs => $2::double precision / 1000)) AS in_backoff`;

/** T27: the newest SUCCESS epoch of `netuid` whose reign version is ≥ `crowning`, if any. */
async function findSucceededEpoch(q: Db | Tx, netuid: number, crowning: number): Promise<Extract<Step, { kind: 'done' }> | null> {
  const { rows } = await q.query<{ id: string; weight_hash: string; reign_version: number; block_number: string | null }>(
    `SELECT e.id, e.weight_hash, r.version::int AS reign_version,
            (SELECT max(wt.block_number)::text FROM weight_transactions wt WHERE wt.weight_epoch_id = e.id AND wt.state = 'SUCCESS') AS block_number
     FROM weight_epochs e JOIN reigns r ON r.id = e.reign_id
     WHERE e.netuid = $1 AND e.state = 'SUCCESS' AND r.version >= $2
     ORDER BY e.succeeded_at DESC NULLS LAST, e.created_at DESC LIMIT 1`,
    [netuid, crowning],
  );
  const hit = rows[0];
  if (!hit) return null;
  return { kind: 'done', epochId: hit.id, weightHash: hit.weight_hash, reignVersion: hit.reign_version, blockNumber: hit.block_number === null ? null : Number(hit.block_number) };
}

function doneResult(step: Extract<Step, { kind: 'done' }>, crowning: number): ExecutorResult {
  return {
    outcome: {
      status: 'succeeded',
      result: {
        weight_epoch_id: step.epochId,
        weight_hash: step.weightHash,
        reign_version: step.reignVersion,
        crowning_reign_version: crowning,
        block_number: step.blockNumber,
        chain_written: false,
      },
    },
  };
}

/** The EXECUTOR. See the module comment. */
export function createWeightSetExecutor(options: WeightSetExecutorOptions): InProcessExecutor {
  const pollMs = options.pollMs ?? DEFAULT_WEIGHT_WAIT_POLL_MS;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_WEIGHT_MAX_WAIT_MS;
  const backoffMs = options.retryBackoffMs ?? DEFAULT_WEIGHT_RETRY_BACKOFF_MS;

  return async (ctx): Promise<ExecutorResult> => {
    const crowning = await crowningReignVersion(ctx.db, ctx.submissionId);
    if (crowning === null) {
      return failed(stageFault('INFRA_FAULT', 'unexpected', `submission ${ctx.submissionId} triggered no reign; nothing to set weights for`));
    }
    // Without touching the chain: maybe a newer (or this) reign's weights are already set.
    const early = await findSucceededEpoch(ctx.db, options.netuid, crowning);
    if (early) return doneResult(early, crowning);
    const giveUpAt = Date.now() + maxWaitMs;
    for (;;) {
      if (ctx.signal.aborted) return failed(chainFault('weight_set_exception', 'weight set aborted before submission (shutdown or lease lost)'));
      let currentBlock: number;
      try {
        currentBlock = (await options.chain.bestBlock()).number;
      } catch (e) {
        return failed(chainFault('weight_set_exception', `could not read the best block: ${e instanceof Error ? e.message : String(e)}`));
      }
      const step = await inTx(ctx.db, (tx) => claimStep(tx, ctx, options, { crowning, currentBlock, backoffMs }));
      if (step.kind === 'lost') return failed(chainFault('weight_set_exception', `attempt ${ctx.attemptKey} is no longer RUNNING; not submitting`));
      if (step.kind === 'again') continue;
      if (step.kind === 'done') return doneResult(step, crowning);
      if (step.kind === 'wait') {
        if (Date.now() + pollMs > giveUpAt) return failed(step.fault);
        await sleep(pollMs, ctx.signal);
        continue;
      }
      return submit(ctx, options, step, crowning);
    }
  };
}

/** One claim transaction (module comment, step 1–2). */
async function claimStep(
  tx: Tx,
  ctx: ExecutorContext,
  options: WeightSetExecutorOptions,
  p: { crowning: number; currentBlock: number; backoffMs: number },
): Promise<Step> {
  const { netuid } = options;
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [WEIGHT_SETTER_LOCK]);
  const attempt = await tx.query<{ id: string; state: string }>('SELECT id, state FROM stage_attempts WHERE attempt_key = $1', [ctx.attemptKey]);
  const attemptId = attempt.rows[0]?.id;
  if (!attemptId || attempt.rows[0]?.state !== 'RUNNING') return { kind: 'lost' };

  // T27: an epoch of the crowning reign or a newer one already made it to the chain.
  const hit = await findSucceededEpoch(tx, netuid, p.crowning);
  if (hit) return hit;

  // Epochs left RUNNING by an attempt that ended (crash, sweeper, deadline): outcome unknown.
  const orphans = await tx.query<{ id: string }>(
    `UPDATE weight_epochs e SET state = 'FAILED_RETRYABLE', last_fault_class = 'CHAIN_FAULT', last_fault_code = 'weight_set_timeout'
     WHERE e.netuid = $1 AND e.state = 'RUNNING' AND NOT EXISTS (
       SELECT 1 FROM weight_transactions wt JOIN stage_attempts sa ON sa.id = wt.stage_attempt_id
       WHERE wt.weight_epoch_id = e.id AND wt.state IN ('CREATED','SUBMITTED') AND sa.state = 'RUNNING')
     RETURNING e.id`,
    [netuid],
  );
  if (orphans.rows.length > 0) {
    await tx.query(
      `UPDATE weight_transactions SET state = 'FAILED_RETRYABLE', fault_class = 'CHAIN_FAULT', fault_code = 'weight_set_timeout',
         fault_message = 'the attempt ended while this weight set was in flight; outcome unknown', updated_at = now()
       WHERE weight_epoch_id = ANY($1::uuid[]) AND state IN ('CREATED','SUBMITTED')`,
      [orphans.rows.map((r) => r.id)],
    );
  }

  // One weight set at a time per netuid.
  const live = await tx.query<{ id: string }>("SELECT id FROM weight_epochs WHERE netuid = $1 AND state = 'RUNNING' LIMIT 1", [netuid]);
  if (live.rows[0]) return { kind: 'wait', fault: chainFault('weight_set_timeout', `weight epoch ${live.rows[0].id} is being set by another attempt`) };

  // The service's own rate gate (coronation.md §3 step 1).
  const gate = await tx.query<{ b: string | null }>(
    `SELECT (CASE WHEN wt.state = 'SUCCESS' THEN wt.block_number ELSE wt.claim_block END)::text AS b
     FROM weight_transactions wt JOIN weight_epochs e ON e.id = wt.weight_epoch_id
     WHERE e.netuid = $1 AND (wt.state = 'SUCCESS' OR wt.fault_code = 'weight_set_rate_limited')
     ORDER BY wt.updated_at DESC, wt.created_at DESC LIMIT 1`,
    [netuid],
  );
  const gateBlock = gate.rows[0]?.b;
  if (gateBlock !== null && gateBlock !== undefined && p.currentBlock - Number(gateBlock) < options.rateLimitBlocks) {
    return { kind: 'wait', fault: chainFault('weight_set_rate_limited', `last weight write at block ${gateBlock}; the service gate needs ${options.rateLimitBlocks} blocks (now ${p.currentBlock})`) };
  }

  // The newest live epoch.
  const newest = await tx.query<EpochRow>(
    `SELECT ${EPOCH_COLUMNS} FROM weight_epochs e LEFT JOIN reigns r ON r.id = e.reign_id
     WHERE e.netuid = $1 AND e.state IN ('PENDING','FAILED_RETRYABLE') ORDER BY e.created_at DESC, e.id DESC LIMIT 1`,
    [netuid, p.backoffMs],
  );
  const epoch = newest.rows[0];
  if (!epoch || epoch.reign_version === null || epoch.reign_version < p.crowning) {
    return createRefreshEpoch(tx, options, p);
  }
  if (epoch.in_backoff) {
    const code = epoch.last_fault_code !== null && CHAIN_CODES.has(epoch.last_fault_code) ? epoch.last_fault_code : 'weight_set_exception';
    return { kind: 'wait', fault: chainFault(code as 'weight_set_exception', `weight epoch ${epoch.id} failed recently (${epoch.last_fault_code ?? 'unknown'}); retry backoff not elapsed`) };
  }

  // Claim it; older live epochs are superseded.
  const superseded = await tx.query<{ id: string; weight_hash: string; trigger_submission_id: string | null }>(
    `UPDATE weight_epochs e SET state = 'FAILED_TERMINAL', last_fault_class = 'CHAIN_FAULT', last_fault_code = $3, updated_at = now()
     FROM weight_epochs c
     WHERE c.id = $2 AND e.netuid = $1 AND e.id <> c.id AND e.state IN ('PENDING','FAILED_RETRYABLE') AND (e.created_at, e.id) < (c.created_at, c.id)
     RETURNING e.id, e.weight_hash, (SELECT trigger_submission_id FROM reigns WHERE id = e.reign_id) AS trigger_submission_id`,
    [netuid, epoch.id, SUPERSEDED_CODE],
  );
  for (const s of superseded.rows) {
    await tx.query(
      `INSERT INTO events (submission_id, stage_attempt_id, event_type, severity, message, data, dedup_key)
       VALUES ($1, $2, 'weight_epoch_superseded', 'INFO', $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING`,
      [s.trigger_submission_id, attemptId, `Weight epoch ${s.id} superseded by ${epoch.id}`, { weight_epoch_id: s.id, weight_hash: s.weight_hash, superseded_by: epoch.id }, `weight_epoch_superseded:${s.id}`],
    );
  }
  await tx.query("UPDATE weight_epochs SET state = 'RUNNING', attempt_count = attempt_count + 1, updated_at = now() WHERE id = $1", [epoch.id]);
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO weight_transactions (weight_epoch_id, stage_attempt_id, wallet_hotkey, subtensor_url, state, claim_block)
     VALUES ($1, $2, $3, $4, 'CREATED', $5) RETURNING id`,
    [epoch.id, attemptId, options.signerHotkey, options.network ?? 'local', p.currentBlock],
  );
  const unknown = await tx.query<{ b: string | null }>(
    `SELECT min(claim_block)::text AS b FROM weight_transactions
     WHERE weight_epoch_id = $1 AND state IN ('FAILED_RETRYABLE','FAILED_TERMINAL') AND fault_code IN ('weight_set_timeout','weight_set_exception')`,
    [epoch.id],
  );
  const txId = inserted.rows[0]?.id;
  if (txId === undefined) throw new Error('weight_transactions insert returned no row');
  const members = epoch.reign_id === null
    ? { rows: [] as MemberRow[] }
    : await tx.query<MemberRow>('SELECT slot, uid, hotkey, weight_bps FROM reign_members WHERE reign_id = $1 ORDER BY slot', [epoch.reign_id]);
  const since = unknown.rows[0]?.b;
  return {
    kind: 'claimed',
    epoch,
    txId,
    claimBlock: p.currentBlock,
    sinceBlock: since === null || since === undefined ? null : Number(since),
    members: members.rows,
  };
}

/** No suitable epoch: a PERIODIC_REFRESH epoch of the ACTIVE reign (coronation.md §3 step 1). */
async function createRefreshEpoch(tx: Tx, options: WeightSetExecutorOptions, p: { crowning: number; currentBlock: number }): Promise<Step> {
  const reign = await tx.query<{ id: string; version: number }>("SELECT id, version::int AS version FROM reigns WHERE state = 'ACTIVE'");
  const active = reign.rows[0];
  if (!active || active.version < p.crowning) {
    return { kind: 'wait', fault: chainFault('weight_set_exception', `no ACTIVE reign of version >= ${p.crowning} to set weights for`) };
  }
  const members = await tx.query<MemberRow>('SELECT slot, uid, hotkey, weight_bps FROM reign_members WHERE reign_id = $1 ORDER BY slot', [active.id]);
  const planned = members.rows.map((m) => ({ slot: m.slot, uid: m.uid, weightBps: m.weight_bps }));
  const policy = periodicRefreshPolicy({ burnUid: options.burnUid, currentBlock: p.currentBlock, rateLimitBlocks: options.rateLimitBlocks, reignVersion: active.version, members: planned });
  const hash = periodicRefreshWeightHash({ netuid: options.netuid, reignId: active.id, currentBlock: p.currentBlock, rateLimitBlocks: options.rateLimitBlocks });
  const arrays = epochArrays(planned, options.burnUid);
  const ins = await tx.query(
    `INSERT INTO weight_epochs (netuid, reason, reign_id, state, uids, weights, weight_policy, weight_hash)
     VALUES ($1, 'PERIODIC_REFRESH', $2, 'PENDING', $3::int[], $4::numeric[], $5, $6) ON CONFLICT (netuid, weight_hash) DO NOTHING`,
    [options.netuid, active.id, arrays.uids, arrays.weights, policy, hash],
  );
  if ((ins.rowCount ?? 0) > 0) return { kind: 'again' };
  // This window's refresh epoch exists already and is not claimable: wait for the next window.
  return { kind: 'wait', fault: chainFault('weight_set_rate_limited', `refresh epoch ${hash} of this window is not claimable; waiting for the next window`) };
}

/** Module comment, steps 3–5. */
async function submit(ctx: ExecutorContext, options: WeightSetExecutorOptions, c: Claimed, crowning: number): Promise<ExecutorResult> {
  const { chain, netuid } = options;
  await ctx.emit({ type: 'weight_epoch_claimed', data: { weight_epoch_id: c.epoch.id, weight_hash: c.epoch.weight_hash, claim_block: c.claimBlock } }).catch(() => {});

  let payload: WeightPayload;
  try {
    const keys = new Map<number, string | null>();
    for (const m of c.members) if (m.uid !== null && !keys.has(m.uid)) keys.set(m.uid, await chain.hotkeyOf(netuid, m.uid));
    payload = buildWeightPayload(
      c.members.map((m) => ({ slot: m.slot, uid: m.uid, hotkey: m.hotkey, weightBps: m.weight_bps })),
      keys,
      options.burnUid,
    );
  } catch (e) {
    return recordFailure(ctx.db, c, chainFault('weight_set_exception', `could not read Keys(${netuid}, uid): ${e instanceof Error ? e.message : String(e)}`));
  }

  let invalid = invalidWeightPayloadReason(payload.uids, payload.weights);
  let u16: { uids: number[]; weights: number[] } = { uids: [], weights: [] };
  if (invalid === null) {
    try {
      u16 = normalizeWeightsU16(payload.uids, payload.weights);
    } catch (e) {
      invalid = e instanceof Error ? e.message : String(e); // e.g. a uid outside u16
    }
  }
  if (invalid !== null || u16.uids.length === 0) {
    // FAILED_TERMINAL for the epoch (it can never be sent); the stage fault stays retryable so a
    // later attempt sets a fresh (refresh) epoch. `invalid_weight_payload` is not a stage fault code.
    const fault = chainFault('weight_set_rejected', `${INVALID_PAYLOAD_CODE}: ${invalid ?? 'nothing left after u16 normalisation'}`);
    await inTx(ctx.db, async (tx) => {
      await tx.query(
        "UPDATE weight_transactions SET state = 'FAILED_TERMINAL', fault_class = 'CHAIN_FAULT', fault_code = $2, fault_message = $3, updated_at = now() WHERE id = $1",
        [c.txId, INVALID_PAYLOAD_CODE, fault.message],
      );
      await tx.query(
        "UPDATE weight_epochs SET state = 'FAILED_TERMINAL', last_fault_class = 'CHAIN_FAULT', last_fault_code = $2, updated_at = now() WHERE id = $1",
        [c.epoch.id, INVALID_PAYLOAD_CODE],
      );
    });
    return failed(fault);
  }

  await ctx.db.query("UPDATE weight_transactions SET state = 'SUBMITTED', updated_at = now() WHERE id = $1", [c.txId]);
  let sent: { extrinsicHash: string | null; includedInBlock: number; alreadyIncluded: boolean };
  try {
    sent = await setWeightsOnce(
      chain,
      { netuid, uids: u16.uids, weights: u16.weights, versionKey: options.versionKey, signer: options.signerHotkey },
      // No earlier attempt of this epoch with an unknown outcome ⇒ nothing can have landed for it.
      { sinceBlock: c.sinceBlock ?? Number.MAX_SAFE_INTEGER },
    );
  } catch (e) {
    const fault = isChainError(e) ? e.toStageFault() : chainFault('weight_set_exception', `weight set failed: ${e instanceof Error ? e.message : String(e)}`);
    return recordFailure(ctx.db, c, fault, isChainError(e) ? e.extrinsicHash : null);
  }

  const policy = {
    ...c.epoch.weight_policy,
    burn_uid: options.burnUid,
    deregistered_slots: payload.deregisteredSlots,
    submitted_members: payload.submittedMembers,
    ...(payload.emptyReignBurned ? { empty_reign_burned: true } : {}),
  };
  await inTx(ctx.db, async (tx) => {
    await tx.query(
      "UPDATE weight_transactions SET state = 'SUCCESS', extrinsic_hash = $2, block_number = $3, fault_class = NULL, fault_code = NULL, fault_message = NULL, updated_at = now() WHERE id = $1",
      [c.txId, sent.extrinsicHash, sent.includedInBlock],
    );
    await tx.query(
      `UPDATE weight_epochs SET state = 'SUCCESS', uids = $2::int[], weights = $3::numeric[], weight_policy = $4, succeeded_at = now(), updated_at = now(),
         last_fault_class = NULL, last_fault_code = NULL
       WHERE id = $1`,
      [c.epoch.id, payload.uids, payload.decimals, policy],
    );
  });
  await ctx.emit({ type: 'weight_set_included', data: { weight_epoch_id: c.epoch.id, block_number: sent.includedInBlock, extrinsic_hash: sent.extrinsicHash } }).catch(() => {});
  return {
    outcome: {
      status: 'succeeded',
      result: {
        weight_epoch_id: c.epoch.id,
        weight_hash: c.epoch.weight_hash,
        reason: c.epoch.reason,
        reign_version: c.epoch.reign_version,
        crowning_reign_version: crowning,
        block_number: sent.includedInBlock,
        extrinsic_hash: sent.extrinsicHash,
        already_included: sent.alreadyIncluded,
        chain_written: true,
        uids: u16.uids,
        u16_weights: u16.weights,
      },
    },
  };
}

/** Transaction and epoch → FAILED_RETRYABLE with the CHAIN fault (coronation.md §3 step 6). */
async function recordFailure(db: Db, c: Claimed, fault: StageFault, extrinsicHash: string | null = null): Promise<ExecutorResult> {
  await inTx(db, async (tx) => {
    await tx.query(
      `UPDATE weight_transactions SET state = 'FAILED_RETRYABLE', fault_class = $2, fault_code = $3, fault_message = $4,
         extrinsic_hash = coalesce($5, extrinsic_hash), updated_at = now() WHERE id = $1`,
      [c.txId, fault.faultClass, fault.code, fault.message, extrinsicHash],
    );
    await tx.query(
      "UPDATE weight_epochs SET state = 'FAILED_RETRYABLE', last_fault_class = $2, last_fault_code = $3, updated_at = now() WHERE id = $1 AND state = 'RUNNING'",
      [c.epoch.id, fault.faultClass, fault.code],
    );
  });
  return failed(fault);
}
