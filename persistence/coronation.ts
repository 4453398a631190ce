/**
 * Coronation (spec/coronation.md §1–§3): the equal weight split, the reign plan, the weight policies
 * and hashes (pure), and `crown`, which writes one promotion inside a caller's transaction.
 *
 * Everything hashed here goes through `canonicalJson` (compat.md §2): integers stay integers
 * (`weight_bps`, `slot_weight_bps`, versions, uids), uuids are lowercase hyphenated strings.
 */
import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson, type CanonicalJsonValue } from '../chain/compat.ts';
import { type StageFault, stageFault } from '../core/faults.ts';
import type { Tx } from './db.ts';

/** Reign slots (coronation.md §1 step 5: challenger + first 4 of the remaining). */
export const MAX_REIGN_SLOTS = 5;
/** Total basis points of a reign's weight. */
export const TOTAL_BPS = 10_000;
/** `empty_reign_burn_uid` of the coronation policy (coronation.md §2, a literal 0). */
export const CORONATION_EMPTY_REIGN_BURN_UID = 0;
export const CORONATION_POLICY_NAME = 'five_king_genesis_split_v1';
export const CORONATION_GENESIS_RULE = 'new_challenger_slot_1; shift_existing_down; split_weight_evenly';
export const PERIODIC_REFRESH_POLICY_NAME = 'periodic_refresh_v1';
/** Advisory transaction lock of every reign promotion (pipeline.md §8). */
export const REIGN_PROMOTION_LOCK = 'reign_promotion';

// ---- pure rules ------------------------------------------------------------------------------------

/**
 * `weight_bps_for_member_count(n)` (coronation.md §2): equal split of 10000 bps over `n` members,
 * the first `10000 mod n` slots get one extra bps, so the result always sums to 10000.
 * @example weightBpsForMemberCount(3) // [3334, 3333, 3333]
 * @throws RangeError unless `0 <= n <= 5` is an integer
 */
export function weightBpsForMemberCount(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > MAX_REIGN_SLOTS) throw new RangeError(`member count must be an integer in 0..${MAX_REIGN_SLOTS}, got ${n}`);
  if (n === 0) return [];
  const base = Math.floor(TOTAL_BPS / n);
  const remainder = TOTAL_BPS % n;
  return Array.from({ length: n }, (_, i) => base + (i < remainder ? 1 : 0));
}

/**
 * Exact decimal string of `bps / 10000` (coronation.md §1 step 7: "exact decimals"), minimal form.
 * @example bpsToDecimal(3334) // "0.3334"; bpsToDecimal(10000) // "1"; bpsToDecimal(5000) // "0.5"
 */
export function bpsToDecimal(bps: number): string {
  if (!Number.isSafeInteger(bps) || bps < 0) throw new RangeError(`bps must be a non-negative integer, got ${bps}`);
  const whole = Math.floor(bps / TOTAL_BPS);
  const frac = String(bps % TOTAL_BPS).padStart(4, '0').replace(/0+$/, '');
  return frac === '' ? String(whole) : `${whole}.${frac}`;
}

/** A current member of the ACTIVE reign (a `reign_members` row). */
export interface ReignMember {
  readonly slot: number;
  readonly kingVersionId: string;
  readonly submissionId: string;
  readonly hotkey: string;
  readonly uid: number | null;
  readonly modelHash: string;
}

/** The new king: its `king_versions` id is generated before planning (coronation.md §1 step 6). */
export interface Challenger {
  readonly kingVersionId: string;
  readonly submissionId: string;
  readonly hotkey: string;
  readonly uid: number | null;
  readonly modelHash: string;
}

export interface PlannedMember extends ReignMember {
  readonly weightBps: number;
  readonly isChallenger: boolean;
}

export type RetireReason = 'SHIFTED_OUT' | 'REPLACED_DUPLICATE';

export interface RetiredMember {
  readonly kingVersionId: string;
  readonly submissionId: string;
  readonly slot: number;
  readonly retireReason: RetireReason;
}

export interface ReignPlan {
  /** In slot order, slot = position + 1. */
  readonly members: readonly PlannedMember[];
  /** Current members not in the plan, in their old slot order. */
  readonly retired: readonly RetiredMember[];
}

/**
 * `build_reign_plan(active_members, challenger)` (coronation.md §1 step 5): the challenger takes slot
 * 1; every current member sharing its hotkey, model hash or submission is dropped; the first 4 of the
 * rest shift down one slot; the weight is split equally. Dropped and pushed-out members are retired:
 * `REPLACED_DUPLICATE` when it is the challenger's own submission, else `SHIFTED_OUT`.
 */
export function buildReignPlan(activeMembers: readonly ReignMember[], challenger: Challenger): ReignPlan {
  const active = [...activeMembers].sort((a, b) => a.slot - b.slot);
  const remaining = active.filter(
    (m) => m.hotkey !== challenger.hotkey && m.modelHash !== challenger.modelHash && m.submissionId !== challenger.submissionId,
  );
  const ordered: ReignMember[] = [{ ...challenger, slot: 1 }, ...remaining.slice(0, MAX_REIGN_SLOTS - 1)];
  const bps = weightBpsForMemberCount(ordered.length);
  const members = ordered.map((m, i) => ({
    slot: i + 1,
    kingVersionId: m.kingVersionId,
    submissionId: m.submissionId,
    hotkey: m.hotkey,
    uid: m.uid,
    modelHash: m.modelHash,
    weightBps: bps[i] as number,
    isChallenger: i === 0,
  }));
  const kept = new Set(members.map((m) => m.kingVersionId));
  const retired = active
    .filter((m) => !kept.has(m.kingVersionId))
    .map((m) => ({
      kingVersionId: m.kingVersionId,
      submissionId: m.submissionId,
      slot: m.slot,
      retireReason: (m.submissionId === challenger.submissionId ? 'REPLACED_DUPLICATE' : 'SHIFTED_OUT') as RetireReason,
    }));
  return { members, retired };
}

/** `{"1": bps1, "2": bps2, …}` keyed by slot. */
function slotWeightBps(members: ReadonlyArray<{ slot: number; weightBps: number }>): { [slot: string]: number } {
  const out: { [slot: string]: number } = {};
  for (const m of members) out[String(m.slot)] = m.weightBps;
  return out;
}

export type CoronationWeightPolicy = {
  readonly policy: typeof CORONATION_POLICY_NAME;
  readonly reign_version: number;
  readonly genesis_rule: typeof CORONATION_GENESIS_RULE;
  readonly max_slots: number;
  readonly member_count: number;
  readonly empty_reign_burn_uid: number;
  readonly slot_weight_bps: { readonly [slot: string]: number };
};

/** The coronation weight policy JSON (coronation.md §2). */
export function coronationWeightPolicy(reignVersion: number, members: ReadonlyArray<{ slot: number; weightBps: number }>): CoronationWeightPolicy {
  return {
    policy: CORONATION_POLICY_NAME,
    reign_version: reignVersion,
    genesis_rule: CORONATION_GENESIS_RULE,
    max_slots: MAX_REIGN_SLOTS,
    member_count: members.length,
    empty_reign_burn_uid: CORONATION_EMPTY_REIGN_BURN_UID,
    slot_weight_bps: slotWeightBps(members),
  };
}

/** A planned member as hashed and as reported in the SET_REIGN summary (snake_case, slot order). */
export type HashedMember = {
  readonly slot: number;
  readonly king_version_id: string;
  readonly submission_id: string;
  readonly hotkey: string;
  readonly uid: number | null;
  readonly model_hash: string;
  readonly weight_bps: number;
  readonly is_challenger: boolean;
};

export function hashedMember(m: PlannedMember): HashedMember {
  return {
    slot: m.slot,
    king_version_id: m.kingVersionId,
    submission_id: m.submissionId,
    hotkey: m.hotkey,
    uid: m.uid,
    model_hash: m.modelHash,
    weight_bps: m.weightBps,
    is_challenger: m.isChallenger,
  };
}

export function sha256Prefixed(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/**
 * Coronation weight hash (coronation.md §2): `"sha256:" + sha256_hex(canonical_json({"netuid",
 * "reign_version", "members": [...in slot order], "weight_policy"}))`.
 */
export function coronationWeightHash(input: {
  readonly netuid: number;
  readonly reignVersion: number;
  readonly members: readonly PlannedMember[];
  readonly policy: CoronationWeightPolicy;
}): string {
  const members = [...input.members].sort((a, b) => a.slot - b.slot).map(hashedMember);
  const doc = { netuid: input.netuid, reign_version: input.reignVersion, members, weight_policy: input.policy };
  return sha256Prefixed(canonicalJson(doc as unknown as CanonicalJsonValue));
}

/** `floor(current_block / max(rate_limit_blocks, 1))` (coronation.md §2). */
export function refreshWindow(currentBlock: number, rateLimitBlocks: number): number {
  return Math.floor(currentBlock / Math.max(rateLimitBlocks, 1));
}

/**
 * Periodic refresh hash (coronation.md §2): at most one refresh epoch per window per reign.
 * `reignId` is the lowercase hyphenated uuid, or null when there is no ACTIVE reign.
 */
export function periodicRefreshWeightHash(input: { readonly netuid: number; readonly reignId: string | null; readonly currentBlock: number; readonly rateLimitBlocks: number }): string {
  return sha256Prefixed(
    canonicalJson({
      netuid: input.netuid,
      reign_id: input.reignId === null ? null : input.reignId.toLowerCase(),
      reason: 'PERIODIC_REFRESH',
      refresh_window: refreshWindow(input.currentBlock, input.rateLimitBlocks),
    }),
  );
}

export type PeriodicRefreshPolicy = {
  readonly policy: typeof PERIODIC_REFRESH_POLICY_NAME;
  readonly burn_uid: number;
  readonly current_block: number;
  readonly rate_limit_blocks: number;
  readonly refresh_window: number;
  readonly reign_version: number | null;
  readonly member_count: number;
  readonly slot_weight_bps: { readonly [slot: string]: number };
  readonly empty_reign_burned: boolean;
};

export function periodicRefreshPolicy(input: {
  readonly burnUid: number;
  readonly currentBlock: number;
  readonly rateLimitBlocks: number;
  readonly reignVersion: number | null;
  readonly members: ReadonlyArray<{ slot: number; weightBps: number }>;
}): PeriodicRefreshPolicy {
  return {
    policy: PERIODIC_REFRESH_POLICY_NAME,
    burn_uid: input.burnUid,
    current_block: input.currentBlock,
    rate_limit_blocks: input.rateLimitBlocks,
    refresh_window: refreshWindow(input.currentBlock, input.rateLimitBlocks),
    reign_version: input.reignVersion,
    member_count: input.members.length,
    slot_weight_bps: slotWeightBps(input.members),
    empty_reign_burned: input.members.length === 0,
  };
}

/**
 * The stored arrays of an epoch (coronation.md §1 step 7 / §3 step 1): `uids` in slot order,
 * `weights = bps/10000` as exact decimals; no members ⇒ `[burnUid] → ["1"]`. A member without a
 * uid (never registered) gets no destination of its own: its share is stored under `burnUid`.
 */
export function epochArrays(members: ReadonlyArray<{ slot: number; uid: number | null; weightBps: number }>, burnUid: number): { uids: number[]; weights: string[] } {
  if (members.length === 0) return { uids: [burnUid], weights: ['1'] };
  const sorted = [...members].sort((a, b) => a.slot - b.slot);
  return { uids: sorted.map((m) => m.uid ?? burnUid), weights: sorted.map((m) => bpsToDecimal(m.weightBps)) };
}

export type DeregisteredSlot = {
  readonly slot: number;
  readonly expected_uid: number | null;
  readonly expected_hotkey: string;
  readonly current_hotkey: string | null;
  readonly weight_bps: number;
};

export type SubmittedMember = { readonly slot: number; readonly uid: number; readonly hotkey: string; readonly weight_bps: number };

export interface WeightPayload {
  /** Burn uid first (if it has weight), then ascending uid; duplicates merged. */
  readonly uids: number[];
  /** float64 `bps/10000` per uid, parallel to `uids`. */
  readonly weights: number[];
  /** Exact decimal of each weight (what the epoch stores as "actually sent"). */
  readonly decimals: string[];
  readonly bps: number[];
  readonly burnedBps: number;
  readonly deregisteredSlots: DeregisteredSlot[];
  readonly submittedMembers: SubmittedMember[];
  readonly emptyReignBurned: boolean;
}

/**
 * Weight payload of an epoch from the current rows of its reign (coronation.md §3 step 2): a member
 * whose uid is now held by another hotkey (`currentHotkeys.get(uid) !== hotkey`) gets nothing and its
 * share goes to `burnUid`; no members ⇒ everything to `burnUid`.
 */
export function buildWeightPayload(
  members: ReadonlyArray<{ slot: number; uid: number | null; hotkey: string; weightBps: number }>,
  currentHotkeys: ReadonlyMap<number, string | null>,
  burnUid: number,
): WeightPayload {
  const sorted = [...members].sort((a, b) => a.slot - b.slot);
  const byUid = new Map<number, number>();
  const deregisteredSlots: DeregisteredSlot[] = [];
  const submittedMembers: SubmittedMember[] = [];
  let burnedBps = 0;
  for (const m of sorted) {
    const current = m.uid === null ? null : (currentHotkeys.get(m.uid) ?? null);
    if (m.uid !== null && current === m.hotkey) {
      byUid.set(m.uid, (byUid.get(m.uid) ?? 0) + m.weightBps);
      submittedMembers.push({ slot: m.slot, uid: m.uid, hotkey: m.hotkey, weight_bps: m.weightBps });
    } else {
      burnedBps += m.weightBps;
      deregisteredSlots.push({ slot: m.slot, expected_uid: m.uid, expected_hotkey: m.hotkey, current_hotkey: current, weight_bps: m.weightBps });
    }
  }
  const emptyReignBurned = sorted.length === 0;
  if (emptyReignBurned) burnedBps = TOTAL_BPS;
  if (burnedBps > 0) byUid.set(burnUid, (byUid.get(burnUid) ?? 0) + burnedBps);
  const order = [...byUid.keys()].filter((u) => u !== burnUid).sort((a, b) => a - b);
  if (byUid.has(burnUid)) order.unshift(burnUid);
  const bps = order.map((u) => byUid.get(u) as number);
  return {
    uids: order,
    weights: bps.map((b) => b / TOTAL_BPS),
    decimals: bps.map(bpsToDecimal),
    bps,
    burnedBps,
    deregisteredSlots,
    submittedMembers,
    emptyReignBurned,
  };
}

/** coronation.md §3 step 3: non-empty, equal lengths, all > 0, `|Σw − 1| <= 1e-9`. Returns the reason, or null. */
export function invalidWeightPayloadReason(uids: readonly number[], weights: readonly number[]): string | null {
  if (uids.length === 0) return 'empty weight vector';
  if (uids.length !== weights.length) return `uids and weights differ in length (${uids.length} vs ${weights.length})`;
  if (!weights.every((w) => Number.isFinite(w) && w > 0)) return 'every weight must be > 0';
  const sum = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-9) return `weights sum to ${sum}, not 1`;
  return null;
}

// ---- the promotion transaction -------------------------------------------------------------------

/** `result_summary` of a SET_REIGN attempt and data of its `reign_set` event (coronation.md §1 step 8). */
export type CoronationSummary = {
  readonly reign_id: string;
  readonly reign_version: number;
  readonly king_version_id: string;
  readonly king_version: number;
  readonly members: HashedMember[];
  readonly retired_king_version_ids: string[];
  readonly weight_hash: string;
};

export type CrownResult = { readonly ok: true; readonly summary: CoronationSummary } | { readonly ok: false; readonly fault: StageFault };

export interface CrownOptions {
  readonly submissionId: string;
  /** `king_versions.activated_by`. */
  readonly workerId: string;
  readonly netuid: number;
  /**
   * Ids of the rows to create. Generated when omitted; pass them to make two runs over the same
   * database state produce the same summary (the SET_REIGN executor's precheck and its commit).
   */
  readonly kingVersionId?: string;
  readonly reignId?: string;
}

interface MemberRow {
  slot: number;
  king_version_id: string;
  submission_id: string;
  hotkey: string;
  uid: number | null;
  model_hash: string;
}

function infra(code: 'missing_winning_eval_run' | 'challenger_model_hash_mismatch' | 'missing_active_reign' | 'missing_active_lead_king' | 'missing_challenger_model_artifact' | 'stale_winning_eval', message: string): CrownResult {
  return { ok: false, fault: stageFault('INFRA_FAULT', code, message) };
}

/**
 * One promotion, coronation.md §1 steps 2–7, inside `tx` (the caller commits or rolls back):
 * winning run → ACTIVE reign and slot-1 king (stale ⇒ `stale_winning_eval`) → MODEL_MANIFEST →
 * plan → new king version, reign, members, retirements → CORONATION weight epoch. Takes
 * `pg_advisory_xact_lock(hashtext('reign_promotion'))` first, so promotions are serial.
 *
 * Returns a fault (and writes nothing) for every failure of steps 2–4. It never changes
 * `model_submissions.state` or the attempt row: the submission actor and the stage service own those.
 */
export async function crown(tx: Tx, opts: CrownOptions): Promise<CrownResult> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [REIGN_PROMOTION_LOCK]);

  const sub = await tx.query<{ hotkey: string; uid: number | null; model_hash: string | null }>('SELECT hotkey, uid, model_hash FROM model_submissions WHERE id = $1', [opts.submissionId]);
  const submission = sub.rows[0];
  if (!submission) return infra('missing_winning_eval_run', `submission ${opts.submissionId} does not exist`);

  // Step 2: the winning run.
  const runs = await tx.query<{ id: string; king_submission_id: string | null; king_model_hash: string; challenger_model_hash: string }>(
    `SELECT id, king_submission_id, king_model_hash, challenger_model_hash FROM eval_runs
     WHERE submission_id = $1 AND state = 'SUCCEEDED' AND challenger_won
     ORDER BY finished_at DESC NULLS LAST, started_at DESC NULLS LAST, id DESC LIMIT 1`,
    [opts.submissionId],
  );
  const run = runs.rows[0];
  if (!run) return infra('missing_winning_eval_run', `submission ${opts.submissionId} has no SUCCEEDED eval run with challenger_won`);
  if (submission.model_hash === null || run.challenger_model_hash !== submission.model_hash) {
    return infra('challenger_model_hash_mismatch', `winning eval run ${run.id} judged ${run.challenger_model_hash}, but the submission's model_hash is ${submission.model_hash ?? 'null'}`);
  }

  // Step 3: the ACTIVE reign and its slot-1 king, locked.
  const reigns = await tx.query<{ id: string; version: string }>("SELECT id, version FROM reigns WHERE state = 'ACTIVE' FOR UPDATE");
  const active = reigns.rows[0];
  if (!active) return infra('missing_active_reign', 'there is no ACTIVE reign (run genesis first)');
  const memberRows = await tx.query<MemberRow>(
    'SELECT slot, king_version_id, submission_id, hotkey, uid, model_hash FROM reign_members WHERE reign_id = $1 ORDER BY slot FOR UPDATE',
    [active.id],
  );
  const lead = memberRows.rows.find((m) => m.slot === 1);
  if (!lead) return infra('missing_active_lead_king', `ACTIVE reign version ${active.version} has no slot-1 member`);
  if (run.king_submission_id !== lead.submission_id || run.king_model_hash !== lead.model_hash) {
    return infra(
      'stale_winning_eval',
      `winning eval run ${run.id} faced king ${run.king_submission_id ?? 'null'} (${run.king_model_hash}), but the slot-1 king of reign ${active.version} is now ${lead.submission_id} (${lead.model_hash}); a new duel is needed`,
    );
  }

  // Step 4: the challenger's latest MODEL_MANIFEST.
  const artifacts = await tx.query<{ id: string }>(
    "SELECT id FROM artifacts WHERE submission_id = $1 AND artifact_type = 'MODEL_MANIFEST' ORDER BY created_at DESC, id DESC LIMIT 1",
    [opts.submissionId],
  );
  const artifact = artifacts.rows[0];
  if (!artifact) return infra('missing_challenger_model_artifact', `submission ${opts.submissionId} has no MODEL_MANIFEST artifact`);

  // Step 5: the plan.
  const kingVersionId = opts.kingVersionId ?? randomUUID();
  const reignId = opts.reignId ?? randomUUID();
  const current: ReignMember[] = memberRows.rows.map((m) => ({
    slot: m.slot,
    kingVersionId: m.king_version_id,
    submissionId: m.submission_id,
    hotkey: m.hotkey,
    uid: m.uid,
    modelHash: m.model_hash,
  }));
  const plan = buildReignPlan(current, { kingVersionId, submissionId: opts.submissionId, hotkey: submission.hotkey, uid: submission.uid, modelHash: submission.model_hash });

  // Step 6: write.
  const versions = await tx.query<{ king: string; reign: string }>(
    'SELECT (SELECT coalesce(max(version), 0) + 1 FROM king_versions)::text AS king, (SELECT coalesce(max(version), 0) + 1 FROM reigns)::text AS reign',
  );
  const kingVersion = Number(versions.rows[0]?.king);
  const reignVersion = Number(versions.rows[0]?.reign);
  await tx.query("UPDATE reigns SET state = 'SUPERSEDED' WHERE id = $1", [active.id]);
  await tx.query(
    `INSERT INTO reigns (id, version, reason, state, trigger_eval_run_id, trigger_submission_id, previous_reign_id, activated_at)
     VALUES ($1, $2, 'CORONATION', 'ACTIVE', $3, $4, $5, now())`,
    [reignId, reignVersion, run.id, opts.submissionId, active.id],
  );
  await tx.query(
    `INSERT INTO king_versions (id, submission_id, model_hash, artifact_id, eval_run_id, version, entered_reign_id, entered_slot, activated_at, activated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, now(), $8)`,
    [kingVersionId, opts.submissionId, submission.model_hash, artifact.id, run.id, kingVersion, reignId, opts.workerId],
  );
  for (const r of plan.retired) {
    await tx.query('UPDATE king_versions SET retired_at = now(), retire_reason = $2 WHERE id = $1 AND retired_at IS NULL', [r.kingVersionId, r.retireReason]);
  }
  for (const m of plan.members) {
    await tx.query(
      `INSERT INTO reign_members (reign_id, slot, king_version_id, submission_id, hotkey, uid, model_hash, weight_bps)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [reignId, m.slot, m.kingVersionId, m.submissionId, m.hotkey, m.uid, m.modelHash, m.weightBps],
    );
  }

  // Step 7: the CORONATION weight epoch.
  const policy = coronationWeightPolicy(reignVersion, plan.members);
  const weightHash = coronationWeightHash({ netuid: opts.netuid, reignVersion, members: plan.members, policy });
  const arrays = epochArrays(plan.members, CORONATION_EMPTY_REIGN_BURN_UID);
  await tx.query(
    `INSERT INTO weight_epochs (netuid, reason, reign_id, state, uids, weights, weight_policy, weight_hash)
     VALUES ($1, 'CORONATION', $2, 'PENDING', $3::int[], $4::numeric[], $5, $6)
     ON CONFLICT (netuid, weight_hash) DO NOTHING`,
    [opts.netuid, reignId, arrays.uids, arrays.weights, policy, weightHash],
  );

  return {
    ok: true,
    summary: {
      reign_id: reignId,
      reign_version: reignVersion,
      king_version_id: kingVersionId,
      king_version: kingVersion,
      members: plan.members.map(hashedMember),
      retired_king_version_ids: plan.retired.map((r) => r.kingVersionId),
      weight_hash: weightHash,
    },
  };
}
