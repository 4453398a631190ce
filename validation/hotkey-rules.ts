import { BOOKKEEPING_CODES, type StageFault, stageFault } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import type { SubmissionState } from '../core/states.ts';
import type { Db, Tx } from '../persistence/db.ts';

/**
 * Hotkey rules of spec/pipeline.md §6 that validation enforces: the T4 pre-checks, strikes and
 * structured bans, and the strike suffix of MINER fault messages. Stage-agnostic, so pre-eval can
 * record its own MINER faults through {@link recordMinerFault} too.
 */

type Queryable = Db | Tx;

/** `ALBEDO_HOTKEY_MAX_STRIKES`. 0 disables strike bans. @default 3 */
export const DEFAULT_MAX_STRIKES = 3;

export type BanKind = 'strikes' | 'duplicate' | 'injection' | 'low_vocab' | 'operator';

export interface HotkeyPolicy {
  /** Strikes that ban a hotkey; 0 disables the `strikes` ban kind. */
  readonly maxStrikes: number;
  /** `ALBEDO_BAN_ON_DUPLICATE`: a `duplicate`/`too_similar` rejection bans at once. */
  readonly banOnDuplicate: boolean;
}

export const DEFAULT_HOTKEY_POLICY: HotkeyPolicy = { maxStrikes: DEFAULT_MAX_STRIKES, banOnDuplicate: true };

/** States at or after HIPPIUS_VALIDATED, including COMPLETE_LOSS (rule 1, T4). */
export const VALIDATED_OR_LATER: readonly SubmissionState[] = [
  'HIPPIUS_VALIDATED', 'PRE_EVAL_QUEUED', 'PRE_EVAL_RUNNING', 'PRE_EVAL_RETRYABLE', 'PRE_EVAL_PASSED',
  'EVAL_QUEUED', 'EVAL_RUNNING', 'EVAL_RETRYABLE', 'EVAL_WIN', 'SET_REIGN_RUNNING', 'SET_REIGN_RETRYABLE', 'REIGN_SET',
  'WEIGHT_SET_RUNNING', 'WEIGHT_SET_RETRYABLE', 'COMPLETE_CORONATED', 'COMPLETE_LOSS',
];

/** A terminal MINER fault counts as a strike unless its code is a bookkeeping code (§5). */
export function isStrike(fault: Pick<StageFault, 'faultClass' | 'code'>): boolean {
  return fault.faultClass === 'MINER_FAULT' && !BOOKKEEPING_CODES.has(fault.code);
}

function isDuplicateKind(fault: Pick<StageFault, 'code'>): boolean {
  return fault.code === 'duplicate' || fault.code === 'too_similar';
}

const BOOKKEEPING = [...BOOKKEEPING_CODES];

/**
 * Strikes of a hotkey from its other submissions: distinct submissions that ended with a MINER
 * fault that is not a bookkeeping code, whether recorded on the submission (any stage, incl.
 * claim-time rejections) or on a terminal attempt whose submission row the actor has not written yet.
 */
export async function countStrikes(q: Queryable, hotkey: string, exceptSubmissionId: SubmissionId): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM model_submissions s
     WHERE s.hotkey = $1 AND s.id <> $2 AND (
       (s.state = 'TERMINAL_INVALID' AND s.fault_class = 'MINER_FAULT' AND NOT (coalesce(s.fault_code, '') = ANY($3::text[])))
       OR EXISTS (SELECT 1 FROM stage_attempts a WHERE a.submission_id = s.id AND a.state = 'FAILED_TERMINAL'
                  AND a.fault_class = 'MINER_FAULT' AND NOT (coalesce(a.fault_code, '') = ANY($3::text[]))))`,
    [hotkey, exceptSubmissionId, BOOKKEEPING],
  );
  return rows[0]?.n ?? 0;
}

export async function banKinds(q: Queryable, hotkey: string): Promise<BanKind[]> {
  const { rows } = await q.query<{ kind: BanKind }>('SELECT kind FROM hotkey_bans WHERE hotkey = $1 ORDER BY created_at, kind', [hotkey]);
  return rows.map((r) => r.kind);
}

export interface HotkeyStanding {
  /** Strikes including the fault being recorded. */
  readonly strikes: number;
  /** Bans in force before this fault. */
  readonly existingBans: readonly BanKind[];
  /** Bans this fault adds. */
  readonly newBans: readonly BanKind[];
  readonly banned: boolean;
  /** ` — hotkey has N attempt(s) left before ban` / ` — hotkey is now banned from further submissions`, or '' when strike bans are off. */
  readonly suffix: string;
}

/** Computes what recording `fault` for this submission means for the hotkey (no writes). */
export async function assessMinerFault(q: Queryable, hotkey: string, submissionId: SubmissionId, fault: StageFault, policy: HotkeyPolicy): Promise<HotkeyStanding> {
  const existingBans = await banKinds(q, hotkey);
  const strikes = (await countStrikes(q, hotkey, submissionId)) + (isStrike(fault) ? 1 : 0);
  const newBans: BanKind[] = [];
  if (policy.maxStrikes > 0 && strikes >= policy.maxStrikes && !existingBans.includes('strikes')) newBans.push('strikes');
  if (policy.banOnDuplicate && isDuplicateKind(fault) && !existingBans.includes('duplicate')) newBans.push('duplicate');
  const banned = existingBans.length > 0 || newBans.length > 0;
  const suffix = banned
    ? ' — hotkey is now banned from further submissions'
    : policy.maxStrikes > 0
      ? ` — hotkey has ${Math.max(0, policy.maxStrikes - strikes)} attempt(s) left before ban`
      : '';
  return { strikes, existingBans, newBans, banned, suffix };
}

/** The fault with the standing suffix appended; the base message is shortened so the suffix survives the 2000-char cap. */
export function withStandingSuffix(fault: StageFault, standing: HotkeyStanding): StageFault {
  if (!standing.suffix) return fault;
  const room = 2000 - standing.suffix.length;
  const base = fault.message.length > room ? `${fault.message.slice(0, room - 1)}…` : fault.message;
  return stageFault(fault.faultClass, fault.code, `${base}${standing.suffix}`);
}

export interface RecordMinerFaultInput {
  readonly hotkey: string;
  readonly netuid: number;
  readonly submissionId: SubmissionId;
  readonly stageAttemptId: string | null;
  readonly fault: StageFault;
  readonly policy: HotkeyPolicy;
}

/**
 * Writes the bans a MINER fault earns (in the attempt finaliser's transaction). Serialised per
 * hotkey by an advisory lock and recounted, so concurrent failures of one hotkey cannot both miss
 * the threshold. Each new ban writes one `hotkey_banned` event (WARN).
 */
export async function recordMinerFault(tx: Tx, input: RecordMinerFaultInput): Promise<HotkeyStanding> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`albedo_hotkey:${input.hotkey}`]);
  const standing = await assessMinerFault(tx, input.hotkey, input.submissionId, input.fault, input.policy);
  for (const kind of standing.newBans) {
    const reason = kind === 'strikes' ? `${standing.strikes} strike(s); last: ${input.fault.code}` : `${input.fault.code}: ${input.fault.message}`.slice(0, 2000);
    const ins = await tx.query(
      `INSERT INTO hotkey_bans (hotkey, netuid, kind, submission_id, reason) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hotkey, kind) DO NOTHING`,
      [input.hotkey, input.netuid, kind, input.submissionId, reason],
    );
    if ((ins.rowCount ?? 0) > 0) {
      await tx.query(
        `INSERT INTO events (submission_id, stage_attempt_id, event_type, severity, message, data, dedup_key)
         VALUES ($1, $2, 'hotkey_banned', 'WARN', $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING`,
        [input.submissionId, input.stageAttemptId, `Hotkey ${input.hotkey} banned (${kind})`, { hotkey: input.hotkey, kind, fault_code: input.fault.code, strikes: standing.strikes }, `ban:${input.hotkey}:${kind}`],
      );
    }
  }
  return standing;
}

// ---------------------------------------------------------------------------------------------
// T4 pre-checks
// ---------------------------------------------------------------------------------------------

export interface PreCheckSubject {
  readonly id: SubmissionId;
  readonly hotkey: string;
  readonly digest: string | null;
}

export type PreCheckResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly check: 'hotkey_banned' | 'hotkey_already_validated' | 'duplicate_digest'; readonly fault: StageFault };

/** T4 step 1: a row in `hotkey_bans`. */
export async function checkHotkeyBanned(q: Queryable, s: PreCheckSubject): Promise<PreCheckResult> {
  const bans = await banKinds(q, s.hotkey);
  if (bans.length === 0) return { ok: true };
  return { ok: false, check: 'hotkey_banned', fault: stageFault('MINER_FAULT', 'hotkey_banned', `hotkey ${s.hotkey} is banned (${bans.join(', ')})`) };
}

/**
 * T4 step 2 / rule 1: another submission of the hotkey is in HIPPIUS_VALIDATED or later, or has
 * ever passed validation (its `model_hash` is set — e.g. validated, then failed pre-eval).
 */
export async function checkHotkeyAlreadyValidated(q: Queryable, s: PreCheckSubject): Promise<PreCheckResult> {
  const { rows } = await q.query<{ model_uri: string; state: string }>(
    `SELECT model_uri, state FROM model_submissions
     WHERE hotkey = $1 AND id <> $2 AND (state = ANY($3::text[]) OR model_hash IS NOT NULL)
     ORDER BY created_at LIMIT 1`,
    [s.hotkey, s.id, VALIDATED_OR_LATER],
  );
  const other = rows[0];
  if (!other) return { ok: true };
  return {
    ok: false,
    check: 'hotkey_already_validated',
    fault: stageFault('MINER_FAULT', 'hotkey_already_validated', `hotkey ${s.hotkey} already has a validated submission (${other.model_uri}, ${other.state})`),
  };
}

/** T4 step 3 / rule 4: another submission already has `model_hash` = this digest. */
export async function checkDuplicateDigest(q: Queryable, s: PreCheckSubject): Promise<PreCheckResult> {
  if (!s.digest) return { ok: true };
  const { rows } = await q.query<{ model_uri: string }>('SELECT model_uri FROM model_submissions WHERE model_hash = $1 AND id <> $2 LIMIT 1', [s.digest, s.id]);
  const other = rows[0];
  if (!other) return { ok: true };
  return { ok: false, check: 'duplicate_digest', fault: stageFault('MINER_FAULT', 'duplicate', `duplicate of ${other.model_uri}: digest ${s.digest} was already submitted and validated`) };
}

/** T4 in order; the first failure decides. */
export async function runPreChecks(q: Queryable, s: PreCheckSubject): Promise<{ passed: Array<'hotkey_banned' | 'hotkey_already_validated' | 'duplicate_digest'>; failure: PreCheckResult & { ok: false } | null }> {
  const passed: Array<'hotkey_banned' | 'hotkey_already_validated' | 'duplicate_digest'> = [];
  const steps: Array<[typeof passed[number], (q: Queryable, s: PreCheckSubject) => Promise<PreCheckResult>]> = [
    ['hotkey_banned', checkHotkeyBanned],
    ['hotkey_already_validated', checkHotkeyAlreadyValidated],
    ['duplicate_digest', checkDuplicateDigest],
  ];
  for (const [name, check] of steps) {
    const r = await check(q, s);
    if (!r.ok) return { passed, failure: r };
    passed.push(name);
  }
  return { passed, failure: null };
}
