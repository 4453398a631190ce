/**
 * Coronation and weights end to end (spec/coronation.md, pipeline.md T24–T28) on real Postgres and
 * the local subtensor dev chain through the production `@polkadot/api` client: submissions run through the in-process pipeline with instant validation
 * and pre-eval, an EVAL stand-in that records real `eval_runs`, and the real SET_REIGN and
 * WEIGHT_SET executors.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSetReignExecutor } from '../../actors/stages/set-reign.ts';
import { createWeightSetExecutor, type WeightSetExecutorOptions } from '../../actors/stages/weight-set.ts';
import type { ExecutorContext, ExecutorResult, InProcessExecutor } from '../../actors/stage-service.ts';
import { randomReveal, startInProcessPipeline } from '../support/pipeline-kit.ts';
import { type ChainClient, ChainError } from '../../chain/client.ts';
import { normalizeWeightsU16, sdkVersionKey } from '../../chain/weights.ts';
import { attemptKey, type AttemptKey, type Stage, type SubmissionId } from '../../core/ids.ts';
import { coronationWeightHash, coronationWeightPolicy, crown, type PlannedMember, weightBpsForMemberCount } from '../../persistence/coronation.ts';
import { type Db, inTx, type Tx } from '../../persistence/db.ts';
import { bootstrapGenesis } from '../../persistence/genesis.ts';
import { insertSubmission } from '../../persistence/submissions.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { TestChain } from '../support/test-chain.ts';
import { waitFor } from '../support/wait.ts';

const NETUID = 97;
const GENESIS_URI = 'teutonic/qwen3.6-35b-a3b-genesis@sha256:efd5b8d0a1c1f472be56ff919419cdd0561bdecd9013d5c2a96dd0e23e89c165';
const WORKER_ID = 'set-reign-test';

const ok = (result: Record<string, unknown> = {}) => ({ status: 'succeeded' as const, result });

interface KingRow {
  submission_id: string;
  model_hash: string;
}

async function currentKing(q: Db | Tx): Promise<KingRow> {
  const { rows } = await q.query<KingRow>(
    "SELECT m.submission_id, m.model_hash FROM reigns r JOIN reign_members m ON m.reign_id = r.id AND m.slot = 1 WHERE r.state = 'ACTIVE'",
  );
  if (!rows[0]) throw new Error('no active king');
  return rows[0];
}

/** Inserts an attempt row directly (for submissions that have no actor). */
async function insertAttempt(tx: Tx, submissionId: string, stage: Stage, state: 'RUNNING' | 'SUCCEEDED'): Promise<{ id: string; key: AttemptKey; n: number }> {
  const n = Number((await tx.query<{ n: number }>('SELECT coalesce(max(attempt_number), 0) + 1 AS n FROM stage_attempts WHERE submission_id = $1 AND stage = $2', [submissionId, stage])).rows[0]?.n);
  const key = attemptKey(submissionId as SubmissionId, stage, n);
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO stage_attempts (submission_id, stage, attempt_number, attempt_key, state, lease_token, lease_expires_at, deadline_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, gen_random_uuid(), now() + interval '1 hour', now() + interval '1 hour', CASE WHEN $5 = 'RUNNING' THEN NULL ELSE now() END) RETURNING id`,
    [submissionId, stage, n, key, state],
  );
  return { id: rows[0]!.id, key, n };
}

/** What validation writes on success (T5): `model_hash` = digest and a MODEL_MANIFEST artifact. */
async function markValidated(tx: Tx, submissionId: string, attemptId: string | null): Promise<void> {
  await tx.query('UPDATE model_submissions SET model_hash = commit_hash WHERE id = $1', [submissionId]);
  await tx.query(
    `INSERT INTO artifacts (submission_id, stage_attempt_id, artifact_type, storage_backend, uri)
     SELECT id, $2, 'MODEL_MANIFEST', 'hippius', model_uri FROM model_submissions WHERE id = $1`,
    [submissionId, attemptId],
  );
}

/** What the eval dispatcher writes for a finished duel. */
async function insertEvalRun(tx: Tx, r: { submissionId: string; attemptId: string; king: KingRow; challengerHash: string; won: boolean }): Promise<string> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO eval_runs (submission_id, stage_attempt_id, king_submission_id, king_model_hash, challenger_model_hash, state, challenger_won,
       score_challenger, score_king, started_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, 'SUCCEEDED', $6, $7, 0.5, now(), clock_timestamp()) RETURNING id`,
    [r.submissionId, r.attemptId, r.king.submission_id, r.king.model_hash, r.challengerHash, r.won, r.won ? 0.7 : 0.3],
  );
  return rows[0]!.id;
}

function fakeCtx(db: Db, submissionId: string, key: AttemptKey, n: number, stage: Stage): ExecutorContext {
  return { db, attemptKey: key, submissionId: submissionId as SubmissionId, stage, attemptNumber: n, input: {}, signal: new AbortController().signal, emit: async () => {} };
}

for (const server of testServers()) {
  describe(`coronation on ${server.name} Postgres and the stand-in chain`, () => {
    let t: TestDatabase;
    let chain: TestChain;
    let client: TestChain['client'];
    let VALIDATOR: string;
    let genesisId: string;
    const weightOptions = (): WeightSetExecutorOptions => ({
      chain: client,
      netuid: NETUID,
      signerHotkey: VALIDATOR,
      versionKey: sdkVersionKey('10.3.0'),
      rateLimitBlocks: 1,
      burnUid: 0,
      network: 'albedo-devnet',
      retryBackoffMs: 0,
      pollMs: 20,
      maxWaitMs: 20_000,
    });

    /** A registered miner's reveal; "strong" repos win their duel. */
    async function registeredReveal(strong: boolean) {
      const { hotkey, uid } = await chain.register();
      const repo = `${strong ? 'strong' : 'weak'}${randomBytes(3).toString('hex')}/albedo-qwen3.6-35b`;
      return randomReveal({ hotkey, uid, repo });
    }

    /**
     * A submission without an actor (never claimed by the pipeline), validated, with a SUCCEEDED eval
     * run against the current king unless told otherwise.
     */
    async function outOfBand(opts: { validated?: boolean; run?: 'win' | 'none' | 'mismatch' | 'stale' } = {}): Promise<{ id: string; uid: number; hotkey: string }> {
      const reveal = await registeredReveal(true);
      const id = await inTx(t.db, async (tx) => {
        const { id } = await insertSubmission(tx, reveal);
        if (opts.validated !== false) await markValidated(tx, id, null);
        const run = opts.run ?? 'win';
        if (run !== 'none') {
          const attempt = await insertAttempt(tx, id, 'EVAL', 'SUCCEEDED');
          const king = run === 'stale' ? { submission_id: genesisId, model_hash: 'sha256:some-older-king' } : await currentKing(tx);
          await insertEvalRun(tx, { submissionId: id, attemptId: attempt.id, king, challengerHash: run === 'mismatch' ? 'sha256:other-model' : reveal.digest, won: true });
        }
        return id;
      });
      return { id, uid: reveal.uid, hotkey: reveal.hotkey };
    }

    /** The pipeline's executors: instant HIPPIUS / PRE_EVAL / EVAL stand-ins and the real SET_REIGN / WEIGHT_SET. */
    function executors(over: Partial<Record<Stage, InProcessExecutor>> = {}): Partial<Record<Stage, InProcessExecutor>> {
      return {
        HIPPIUS: async (ctx) => ({
          outcome: ok(),
          apply: async (tx) => {
            const attempt = await tx.query<{ id: string }>('SELECT id FROM stage_attempts WHERE attempt_key = $1', [ctx.attemptKey]);
            await markValidated(tx, ctx.submissionId, attempt.rows[0]?.id ?? null);
          },
        }),
        PRE_EVAL: async () => ({ outcome: ok() }),
        EVAL: async (ctx): Promise<ExecutorResult> => {
          // The duel faces the king of the moment it starts (pipeline.md §4.4 step 6).
          const king = await currentKing(ctx.db);
          const sub = (await ctx.db.query<{ model_uri: string; model_hash: string }>('SELECT model_uri, model_hash FROM model_submissions WHERE id = $1', [ctx.submissionId])).rows[0]!;
          const won = sub.model_uri.startsWith('strong');
          return {
            outcome: ok({ challengerWon: won }),
            apply: async (tx) => {
              const attempt = await tx.query<{ id: string }>('SELECT id FROM stage_attempts WHERE attempt_key = $1', [ctx.attemptKey]);
              await insertEvalRun(tx, { submissionId: ctx.submissionId, attemptId: attempt.rows[0]!.id, king, challengerHash: sub.model_hash, won });
            },
          };
        },
        SET_REIGN: createSetReignExecutor({ workerId: WORKER_ID, netuid: NETUID }),
        WEIGHT_SET: createWeightSetExecutor(weightOptions()),
        ...over,
      };
    }

    /** An out-of-band submission crowned directly (its CORONATION epoch is PENDING). */
    async function crownNew() {
      const s = await outOfBand();
      const r = await inTx(t.db, (tx) => crown(tx, { submissionId: s.id, workerId: WORKER_ID, netuid: NETUID }));
      if (!r.ok) throw new Error(r.fault.message);
      return { ...s, reignVersion: r.summary.reign_version, weightHash: r.summary.weight_hash };
    }

    /** Runs the WEIGHT_SET executor for one attempt of `submissionId`, then finalises the attempt row. */
    async function runWeightSet(submissionId: string, chainClient: ChainClient) {
      const a = await inTx(t.db, (tx) => insertAttempt(tx, submissionId, 'WEIGHT_SET', 'RUNNING'));
      const out = await createWeightSetExecutor({ ...weightOptions(), chain: chainClient })(fakeCtx(t.db, submissionId, a.key, a.n, 'WEIGHT_SET'));
      const state = out.outcome.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED_RETRYABLE';
      await t.db.query('UPDATE stage_attempts SET state = $2, finished_at = now() WHERE attempt_key = $1', [a.key, state]);
      return out.outcome;
    }

    async function expectChainWeightsOfActiveReign(): Promise<void> {
      const members = (await t.db.query<{ uid: number; weight_bps: number }>(
        "SELECT m.uid, m.weight_bps FROM reigns r JOIN reign_members m ON m.reign_id = r.id WHERE r.state = 'ACTIVE' ORDER BY m.uid",
      )).rows;
      const expected = normalizeWeightsU16(members.map((m) => m.uid), members.map((m) => m.weight_bps / 10000));
      const entry = await chain.weightsOf(VALIDATOR);
      expect(entry).toBeDefined();
      expect({ uids: entry?.uids, weights: entry?.weights }).toEqual(expected);
      const last = await t.db.query<{ b: string }>("SELECT max(block_number)::text AS b FROM weight_transactions WHERE state = 'SUCCESS'");
      expect(entry?.block).toBe(Number(last.rows[0]?.b));
    }

    beforeAll(async () => {
      t = await freshDatabase(server);
      chain = await TestChain.start({ netuid: NETUID }); // the validator holds uid 0 = the burn uid
      client = chain.client;
      VALIDATOR = chain.validator.address;
      const genesis = await chain.register();
      genesisId = (await bootstrapGenesis(t.db, { netuid: NETUID, hotkey: genesis.hotkey, uid: genesis.uid, modelUri: GENESIS_URI })).submissionId;
    });
    afterAll(async () => {
      await chain?.close();
      await t?.drop();
    });

    it('six coronations shift the slots, split weight equally, push genesis out and write every reign to the chain', { timeout: 120_000 }, async () => {
      const p = await startInProcessPipeline({ db: t.db, executors: executors() });
      const winners: string[] = [];
      const losers: string[] = [];
      try {
        for (let i = 0; i < 8; i++) {
          const strong = i !== 2 && i !== 5;
          const { id } = await p.host.ingest(await registeredReveal(strong));
          (strong ? winners : losers).push(id);
        }
        await waitFor(
          async () => {
            const { rows } = await t.db.query<{ state: string }>('SELECT state FROM model_submissions WHERE id = ANY($1)', [[...winners, ...losers]]);
            return rows.every((r) => r.state === 'COMPLETE_CORONATED' || r.state === 'COMPLETE_LOSS');
          },
          { timeoutMs: 90_000, what: 'all submissions terminal' },
        );
      } finally {
        await p.stop();
      }

      const states = await t.db.query<{ id: string; state: string; finished_at: Date | null }>('SELECT id, state, finished_at FROM model_submissions WHERE id = ANY($1)', [[...winners, ...losers]]);
      for (const r of states.rows) expect(r.state).toBe(winners.includes(r.id) ? 'COMPLETE_CORONATED' : 'COMPLETE_LOSS');
      // spec §7: `reign_set` says which reign version it created and carries the coronation summary.
      const reignSetEvents = await t.db.query<{ message: string; data: { reign_version?: number } }>(
        "SELECT message, data FROM events WHERE event_type = 'reign_set' AND submission_id = ANY($1) ORDER BY id",
        [winners],
      );
      expect(reignSetEvents.rows).toHaveLength(winners.length);
      for (const r of reignSetEvents.rows) expect(r.message).toBe(`Created active reign version ${r.data.reign_version}`);

      // Reigns 1..7, one ACTIVE, each a CORONATION of one winner, chained by previous_reign_id.
      const reigns = (await t.db.query<{ id: string; version: number; reason: string; state: string; trigger_submission_id: string; trigger_eval_run_id: string | null; previous_reign_id: string | null }>(
        'SELECT id, version::int AS version, reason, state, trigger_submission_id, trigger_eval_run_id, previous_reign_id FROM reigns ORDER BY version',
      )).rows;
      expect(reigns.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(reigns.map((r) => r.state)).toEqual(['SUPERSEDED', 'SUPERSEDED', 'SUPERSEDED', 'SUPERSEDED', 'SUPERSEDED', 'SUPERSEDED', 'ACTIVE']);
      expect(reigns.slice(1).every((r) => r.reason === 'CORONATION' && r.trigger_eval_run_id !== null)).toBe(true);
      for (let i = 1; i < reigns.length; i++) expect(reigns[i]?.previous_reign_id).toBe(reigns[i - 1]?.id);
      const crowned = reigns.slice(1).map((r) => r.trigger_submission_id);
      expect([...crowned].sort()).toEqual([...winners].sort());

      // Slot shifting and the equal split: reign v = [T_v, T_{v-1}, …, T_2, genesis][:5].
      const kingVersionOf = new Map<string, string>();
      for (const [i, reign] of reigns.entries()) {
        const members = (await t.db.query<{ slot: number; submission_id: string; king_version_id: string; hotkey: string; uid: number; model_hash: string; weight_bps: number }>(
          'SELECT slot, submission_id, king_version_id, hotkey, uid, model_hash, weight_bps FROM reign_members WHERE reign_id = $1 ORDER BY slot',
          [reign.id],
        )).rows;
        const expected = [...crowned.slice(0, i).reverse(), genesisId].slice(0, 5);
        expect(members.map((m) => m.submission_id)).toEqual(expected);
        expect(members.map((m) => m.slot)).toEqual(expected.map((_, j) => j + 1));
        expect(members.map((m) => m.weight_bps)).toEqual(weightBpsForMemberCount(expected.length));
        for (const m of members) {
          // Continuing members keep their king version.
          if (kingVersionOf.has(m.submission_id)) expect(m.king_version_id).toBe(kingVersionOf.get(m.submission_id));
          else kingVersionOf.set(m.submission_id, m.king_version_id);
        }
        if (i === 0) continue;
        // The CORONATION epoch: one per reign, hash recomputed from the rows.
        const planned: PlannedMember[] = members.map((m) => ({
          slot: m.slot,
          kingVersionId: m.king_version_id,
          submissionId: m.submission_id,
          hotkey: m.hotkey,
          uid: m.uid,
          modelHash: m.model_hash,
          weightBps: m.weight_bps,
          isChallenger: m.slot === 1,
        }));
        const policy = coronationWeightPolicy(reign.version, planned);
        const epochs = (await t.db.query<{ weight_hash: string; weight_policy: Record<string, unknown>; state: string; uids: number[]; weights: string[] }>(
          "SELECT weight_hash, weight_policy, state, uids, weights::text[] AS weights FROM weight_epochs WHERE reign_id = $1 AND reason = 'CORONATION'",
          [reign.id],
        )).rows;
        expect(epochs).toHaveLength(1);
        expect(epochs[0]?.weight_hash).toBe(coronationWeightHash({ netuid: NETUID, reignVersion: reign.version, members: planned, policy }));
        expect(epochs[0]?.weight_policy).toMatchObject(policy);
        expect(['SUCCESS', 'FAILED_TERMINAL']).toContain(epochs[0]?.state);
        // Stored as exact decimals (slot order when created; the sent uid order once SUCCESS).
        if (expected.length === 3) expect([...(epochs[0]?.weights ?? [])].sort()).toEqual(['0.3333', '0.3333', '0.3334']);
      }

      // King versions 1..7; genesis shifted out by reign 6, the first winner by reign 7.
      const kings = (await t.db.query<{ submission_id: string; version: number; retired_at: Date | null; retire_reason: string | null; entered_slot: number; activated_by: string; eval_run_id: string | null; artifact_ok: boolean }>(
        `SELECT kv.submission_id, kv.version::int AS version, kv.retired_at, kv.retire_reason, kv.entered_slot, kv.activated_by, kv.eval_run_id,
                EXISTS (SELECT 1 FROM artifacts a WHERE a.id = kv.artifact_id AND a.submission_id = kv.submission_id AND a.artifact_type = 'MODEL_MANIFEST') AS artifact_ok
         FROM king_versions kv ORDER BY kv.version`,
      )).rows;
      expect(kings.map((k) => k.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(kings.map((k) => k.submission_id)).toEqual([genesisId, ...crowned]);
      expect(kings.map((k) => k.retire_reason)).toEqual(['SHIFTED_OUT', 'SHIFTED_OUT', null, null, null, null, null]);
      expect(kings.slice(1).every((k) => k.entered_slot === 1 && k.activated_by === WORKER_ID && k.eval_run_id !== null && k.artifact_ok)).toBe(true);
      expect(kings.slice(1).map((k) => k.eval_run_id)).toEqual(reigns.slice(1).map((r) => r.trigger_eval_run_id));

      // SET_REIGN result summaries (coronation.md §1 step 8) and the reign_set events.
      const summaries = (await t.db.query<{ submission_id: string; result_summary: Record<string, unknown> }>(
        "SELECT submission_id, result_summary FROM stage_attempts WHERE stage = 'SET_REIGN' AND state = 'SUCCEEDED' ORDER BY (result_summary->>'reign_version')::int",
      )).rows;
      expect(summaries.map((s) => s.submission_id)).toEqual(crowned);
      for (const [i, s] of summaries.entries()) {
        expect(s.result_summary).toMatchObject({ reign_id: reigns[i + 1]?.id, reign_version: i + 2, king_version: i + 2, king_version_id: kingVersionOf.get(crowned[i]!) });
        expect((s.result_summary.members as unknown[]).length).toBe(Math.min(i + 2, 5));
      }
      expect(summaries[4]?.result_summary.retired_king_version_ids).toEqual([kingVersionOf.get(genesisId)]);
      expect(summaries[5]?.result_summary.retired_king_version_ids).toEqual([kingVersionOf.get(crowned[0]!)]);
      const reignSet = await t.db.query("SELECT count(*)::int AS n FROM events WHERE event_type = 'reign_set' AND submission_id = ANY($1)", [winners]);
      expect(reignSet.rows[0].n).toBe(6);

      // Weight epochs: unique by hash; nothing left pending; the newest reign's epoch succeeded.
      const dup = await t.db.query('SELECT weight_hash FROM weight_epochs GROUP BY netuid, weight_hash HAVING count(*) > 1');
      expect(dup.rows).toEqual([]);
      const open = await t.db.query("SELECT id, state FROM weight_epochs WHERE state NOT IN ('SUCCESS','FAILED_TERMINAL')");
      expect(open.rows).toEqual([]);
      const last = await t.db.query<{ state: string; attempt_count: number; succeeded_at: Date | null }>(
        "SELECT e.state, e.attempt_count, e.succeeded_at FROM weight_epochs e JOIN reigns r ON r.id = e.reign_id WHERE r.state = 'ACTIVE' AND e.reason = 'CORONATION'",
      );
      expect(last.rows[0]).toMatchObject({ state: 'SUCCESS', attempt_count: 1 });
      expect(last.rows[0]?.succeeded_at).not.toBeNull();
      const superseded = await t.db.query("SELECT count(*)::int AS n FROM weight_epochs WHERE state = 'FAILED_TERMINAL' AND last_fault_code <> 'superseded_by_newer_weight_epoch'");
      expect(superseded.rows[0].n).toBe(0);

      // Weight transactions: SUCCESS rows carry inclusion and claim blocks; one per successful epoch.
      const txs = (await t.db.query<{ state: string; claim_block: string; block_number: string | null; extrinsic_hash: string | null; wallet_hotkey: string; subtensor_url: string; stage_attempt_id: string | null }>(
        "SELECT wt.state, wt.claim_block, wt.block_number, wt.extrinsic_hash, wt.wallet_hotkey, wt.subtensor_url, wt.stage_attempt_id FROM weight_transactions wt",
      )).rows;
      const successes = txs.filter((x) => x.state === 'SUCCESS');
      const successfulEpochs = await t.db.query("SELECT count(*)::int AS n FROM weight_epochs WHERE state = 'SUCCESS'");
      expect(successes.length).toBe(successfulEpochs.rows[0].n);
      for (const x of successes) {
        expect(Number(x.block_number)).toBeGreaterThan(Number(x.claim_block));
        expect(x.extrinsic_hash).toMatch(/^0x[0-9a-f]{64}$/);
        expect(x).toMatchObject({ wallet_hotkey: VALIDATOR, subtensor_url: 'albedo-devnet' });
        expect(x.stage_attempt_id).not.toBeNull();
      }

      // WEIGHT_SET: every winner finished it; a 3-member reign sent [65535, 65515, 65515] if it was written.
      const ws = (await t.db.query<{ result_summary: Record<string, unknown> }>("SELECT result_summary FROM stage_attempts WHERE stage = 'WEIGHT_SET' AND state = 'SUCCEEDED'")).rows;
      expect(new Set((await t.db.query("SELECT DISTINCT submission_id FROM stage_attempts WHERE stage = 'WEIGHT_SET' AND state = 'SUCCEEDED'")).rows.map((r) => r.submission_id))).toEqual(new Set(winners));
      for (const r of ws) {
        expect(r.result_summary.reign_version as number).toBeGreaterThanOrEqual(r.result_summary.crowning_reign_version as number);
        if (r.result_summary.chain_written && (r.result_summary.uids as number[]).length === 3) expect([...(r.result_summary.u16_weights as number[])].sort()).toEqual([65515, 65515, 65535]);
      }
      await expectChainWeightsOfActiveReign();
    });

    it('a stale win (the king changed between eval and coronation) goes back to EVAL_QUEUED for a fresh duel, then is crowned', { timeout: 60_000 }, async () => {
      let interloper: { id: string } | null = null;
      const realSetReign = createSetReignExecutor({ workerId: WORKER_ID, netuid: NETUID });
      const p = await startInProcessPipeline({
        db: t.db,
        executors: executors({
          SET_REIGN: async (ctx) => {
            if (ctx.attemptNumber === 1 && interloper === null) {
              // Another coronation lands between this submission's duel and its coronation.
              interloper = await outOfBand();
              const crowned = await inTx(ctx.db, (tx) => crown(tx, { submissionId: interloper!.id, workerId: 'interloper', netuid: NETUID }));
              expect(crowned.ok).toBe(true);
            }
            return realSetReign(ctx);
          },
        }),
      });
      let id: string;
      try {
        id = (await p.host.ingest(await registeredReveal(true))).id;
        await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state = 'COMPLETE_CORONATED'", [id])).rowCount, {
          timeoutMs: 45_000,
          what: 'crowned after the re-duel',
        });
      } finally {
        await p.stop();
      }
      const h = interloper as { id: string } | null;
      expect(h).not.toBeNull();

      const attempts = (await t.db.query<{ stage: string; attempt_number: number; state: string; fault_code: string | null }>(
        "SELECT stage, attempt_number, state, fault_code FROM stage_attempts WHERE submission_id = $1 AND stage IN ('EVAL','SET_REIGN') ORDER BY started_at",
        [id],
      )).rows;
      expect(attempts).toEqual([
        { stage: 'EVAL', attempt_number: 1, state: 'SUCCEEDED', fault_code: null },
        { stage: 'SET_REIGN', attempt_number: 1, state: 'FAILED_RETRYABLE', fault_code: 'stale_winning_eval' },
        { stage: 'EVAL', attempt_number: 2, state: 'SUCCEEDED', fault_code: null },
        { stage: 'SET_REIGN', attempt_number: 2, state: 'SUCCEEDED', fault_code: null },
      ]);
      const path = (await t.db.query<{ from_state: string; to_state: string }>('SELECT from_state, to_state FROM actor_transitions WHERE submission_id = $1 ORDER BY transition_seq', [id])).rows;
      expect(path.some((r) => r.from_state === 'SET_REIGN_RUNNING' && r.to_state === 'EVAL_QUEUED')).toBe(true);
      const stale = await t.db.query("SELECT severity FROM events WHERE submission_id = $1 AND event_type = 'set_reign_requeued_stale'", [id]);
      expect(stale.rows).toEqual([{ severity: 'WARN' }]);
      // The second duel faced the interloper, and only one reign was created for this submission.
      const runs = (await t.db.query<{ king_submission_id: string }>('SELECT king_submission_id FROM eval_runs WHERE submission_id = $1 ORDER BY started_at', [id])).rows;
      expect(runs[1]?.king_submission_id).toBe(h?.id);
      const mine = await t.db.query('SELECT version::int AS version FROM reigns WHERE trigger_submission_id = $1', [id]);
      expect(mine.rows).toHaveLength(1);
      const top = (await t.db.query<{ submission_id: string }>("SELECT m.submission_id FROM reigns r JOIN reign_members m ON m.reign_id = r.id WHERE r.state = 'ACTIVE' ORDER BY m.slot")).rows;
      expect(top.slice(0, 2).map((m) => m.submission_id)).toEqual([id, h?.id]);
      await expectChainWeightsOfActiveReign();
    });

    it('crown() returns the spec faults for steps 2–4 and writes nothing', async () => {
      const reignsBefore = (await t.db.query('SELECT count(*)::int AS n FROM reigns')).rows[0].n;
      const attempt = async (id: string, setup?: (tx: Tx) => Promise<void>) => {
        const client = await t.db.connect();
        try {
          await client.query('BEGIN');
          await setup?.(client);
          return await crown(client, { submissionId: id, workerId: WORKER_ID, netuid: NETUID });
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
      };
      const codeOf = (r: Awaited<ReturnType<typeof crown>>) => (r.ok ? 'ok' : `${r.fault.faultClass}/${r.fault.code}/${r.fault.retryable}`);
      expect(codeOf(await attempt((await outOfBand({ run: 'none' })).id))).toBe('INFRA_FAULT/missing_winning_eval_run/true');
      expect(codeOf(await attempt((await outOfBand({ run: 'mismatch' })).id))).toBe('INFRA_FAULT/challenger_model_hash_mismatch/true');
      expect(codeOf(await attempt((await outOfBand({ run: 'stale' })).id))).toBe('INFRA_FAULT/stale_winning_eval/true');
      const good = await outOfBand();
      expect(codeOf(await attempt(good.id, (tx) => tx.query("UPDATE reigns SET state = 'SUPERSEDED' WHERE state = 'ACTIVE'").then(() => {})))).toBe('INFRA_FAULT/missing_active_reign/true');
      expect(
        codeOf(await attempt(good.id, (tx) => tx.query("DELETE FROM reign_members WHERE slot = 1 AND reign_id = (SELECT id FROM reigns WHERE state = 'ACTIVE')").then(() => {}))),
      ).toBe('INFRA_FAULT/missing_active_lead_king/true');
      expect(codeOf(await attempt(good.id, (tx) => tx.query("DELETE FROM artifacts WHERE submission_id = $1", [good.id]).then(() => {})))).toBe(
        'INFRA_FAULT/missing_challenger_model_artifact/true',
      );
      expect(codeOf(await attempt(good.id))).toBe('ok');
      expect((await t.db.query('SELECT count(*)::int AS n FROM reigns')).rows[0].n).toBe(reignsBefore);
    });

    it('SET_REIGN commits the reign only with the attempt; a reign that moved after the decision rolls the commit back', async () => {
      const executor = createSetReignExecutor({ workerId: WORKER_ID, netuid: NETUID });
      const x = await outOfBand();
      const a = await inTx(t.db, (tx) => insertAttempt(tx, x.id, 'SET_REIGN', 'RUNNING'));
      const decided = await executor(fakeCtx(t.db, x.id, a.key, a.n, 'SET_REIGN'));
      expect(decided.outcome.status).toBe('succeeded');
      const before = (await t.db.query('SELECT count(*)::int AS n FROM reigns')).rows[0].n;
      // Another promotion lands between the decision and the commit: the commit must not happen.
      const y = await outOfBand();
      expect((await inTx(t.db, (tx) => crown(tx, { submissionId: y.id, workerId: 'other', netuid: NETUID }))).ok).toBe(true);
      await expect(inTx(t.db, (tx) => decided.apply!(tx))).rejects.toThrow(/no longer applies|changed/);
      expect((await t.db.query('SELECT count(*)::int AS n FROM reigns')).rows[0].n).toBe(before + 1);
      expect((await t.db.query('SELECT count(*)::int AS n FROM reigns WHERE trigger_submission_id = $1', [x.id])).rows[0].n).toBe(0);

      // A fresh decision over an unchanged reign commits exactly what it reported.
      const z = await outOfBand();
      const b = await inTx(t.db, (tx) => insertAttempt(tx, z.id, 'SET_REIGN', 'RUNNING'));
      const fresh = await executor(fakeCtx(t.db, z.id, b.key, b.n, 'SET_REIGN'));
      if (fresh.outcome.status !== 'succeeded') throw new Error('expected success');
      await inTx(t.db, (tx) => fresh.apply!(tx));
      const reign = (await t.db.query<{ id: string; version: number }>("SELECT id, version::int AS version FROM reigns WHERE state = 'ACTIVE'")).rows[0];
      expect(fresh.outcome.result).toMatchObject({ reign_id: reign?.id, reign_version: reign?.version });
      const members = (await t.db.query<{ submission_id: string }>('SELECT submission_id FROM reign_members WHERE reign_id = $1 ORDER BY slot', [reign?.id])).rows;
      expect(members.map((m) => m.submission_id).slice(0, 2)).toEqual([z.id, y.id]);
    });

    it('WEIGHT_SET never double-submits after a timeout, maps chain errors to CHAIN faults, and skips the chain when a newer reign is set', { timeout: 60_000 }, async () => {
      let sends = 0;
      const wrap = (setWeights: ChainClient['setWeights']): ChainClient => ({
        bestBlock: () => client.bestBlock(),
        revealedCommitments: (n, b) => client.revealedCommitments(n, b),
        uidOf: (n, h) => client.uidOf(n, h),
        hotkeyOf: (n, u) => client.hotkeyOf(n, u),
        lastWeightsSetBlock: (n, h) => client.lastWeightsSetBlock(n, h),
        setWeights: (req) => {
          sends += 1;
          return setWeights(req);
        },
        close: async () => {},
      });

      // 1. The extrinsic lands but the answer is lost (timeout): the epoch is FAILED_RETRYABLE.
      const a = await crownNew();
      const lost = await runWeightSet(
        a.id,
        wrap(async (req) => {
          const r = await client.setWeights(req);
          throw new ChainError('weight_set_timeout', 'inclusion wait expired', r.extrinsicHash);
        }),
      );
      expect(lost).toMatchObject({ status: 'failed', fault: { faultClass: 'CHAIN_FAULT', code: 'weight_set_timeout', retryable: true } });
      const epochA = (await t.db.query<{ state: string; last_fault_code: string; attempt_count: number }>('SELECT state, last_fault_code, attempt_count FROM weight_epochs WHERE weight_hash = $1', [a.weightHash])).rows[0];
      expect(epochA).toEqual({ state: 'FAILED_RETRYABLE', last_fault_code: 'weight_set_timeout', attempt_count: 1 });
      const landed = (await chain.weightsOf(VALIDATOR))!.block;

      // 2. The retry sees the landed extrinsic on chain and does not send again.
      sends = 0;
      const retried = await runWeightSet(a.id, wrap((req) => client.setWeights(req)));
      expect(sends).toBe(0);
      expect(retried).toMatchObject({ status: 'succeeded', result: { already_included: true, block_number: landed, chain_written: true } });
      const txsA = (await t.db.query<{ state: string; fault_code: string | null; block_number: string | null }>(
        'SELECT wt.state, wt.fault_code, wt.block_number::text FROM weight_transactions wt JOIN weight_epochs e ON e.id = wt.weight_epoch_id WHERE e.weight_hash = $1 ORDER BY wt.created_at',
        [a.weightHash],
      )).rows;
      expect(txsA).toEqual([
        { state: 'FAILED_RETRYABLE', fault_code: 'weight_set_timeout', block_number: null },
        { state: 'SUCCESS', fault_code: null, block_number: String(landed) },
      ]);
      expect((await t.db.query('SELECT state, attempt_count FROM weight_epochs WHERE weight_hash = $1', [a.weightHash])).rows[0]).toEqual({ state: 'SUCCESS', attempt_count: 2 });

      // 3. Chain errors become retryable CHAIN faults; anything else is weight_set_exception.
      const b = await crownNew();
      const rejected = await runWeightSet(b.id, wrap(async () => {
        throw new ChainError('weight_set_rejected', 'HotKeyNotRegisteredInSubNet');
      }));
      expect(rejected).toMatchObject({ status: 'failed', fault: { faultClass: 'CHAIN_FAULT', code: 'weight_set_rejected', retryable: true } });
      const boom = await runWeightSet(b.id, wrap(async () => {
        throw new Error('socket hang up');
      }));
      expect(boom).toMatchObject({ status: 'failed', fault: { faultClass: 'CHAIN_FAULT', code: 'weight_set_exception' } });
      expect((await t.db.query('SELECT state, last_fault_code, attempt_count FROM weight_epochs WHERE weight_hash = $1', [b.weightHash])).rows[0]).toEqual({
        state: 'FAILED_RETRYABLE',
        last_fault_code: 'weight_set_exception',
        attempt_count: 2,
      });

      // 4. A newer coronation supersedes b's pending epoch; its weights complete both b and c.
      const c = await crownNew();
      const setC = await runWeightSet(c.id, wrap((req) => client.setWeights(req)));
      expect(setC).toMatchObject({ status: 'succeeded', result: { reign_version: c.reignVersion, chain_written: true, already_included: false } });
      expect((await t.db.query('SELECT state, last_fault_code FROM weight_epochs WHERE weight_hash = $1', [b.weightHash])).rows[0]).toEqual({
        state: 'FAILED_TERMINAL',
        last_fault_code: 'superseded_by_newer_weight_epoch',
      });
      const supersededEvent = await t.db.query("SELECT submission_id FROM events WHERE event_type = 'weight_epoch_superseded' AND data->>'superseded_by' IS NOT NULL AND submission_id = $1", [b.id]);
      expect(supersededEvent.rowCount).toBe(1);
      sends = 0;
      const noChain: ChainClient = {
        bestBlock: () => Promise.reject(new Error('must not touch the chain')),
        revealedCommitments: () => Promise.reject(new Error('must not touch the chain')),
        uidOf: () => Promise.reject(new Error('must not touch the chain')),
        hotkeyOf: () => Promise.reject(new Error('must not touch the chain')),
        lastWeightsSetBlock: () => Promise.reject(new Error('must not touch the chain')),
        setWeights: () => Promise.reject(new Error('must not touch the chain')),
        close: async () => {},
      };
      const setB = await runWeightSet(b.id, noChain);
      expect(setB).toMatchObject({ status: 'succeeded', result: { reign_version: c.reignVersion, crowning_reign_version: b.reignVersion, chain_written: false } });
      await expectChainWeightsOfActiveReign();
    });

    it("a deregistered king's share burns to the burn uid, listed first on chain (coronation.md §3 step 2)", { timeout: 30_000 }, async () => {
      const d = await crownNew();
      const members = (await t.db.query<{ slot: number; uid: number; hotkey: string; weight_bps: number }>(
        "SELECT m.slot, m.uid, m.hotkey, m.weight_bps FROM reigns r JOIN reign_members m ON m.reign_id = r.id WHERE r.state = 'ACTIVE' ORDER BY m.slot",
      )).rows;
      expect(members).toHaveLength(5);
      const victim = members[2]!;
      const newcomer = await chain.giveUidToNewHotkey(victim.uid); // the uid now belongs to someone else
      const out = await runWeightSet(d.id, client);
      expect(out).toMatchObject({ status: 'succeeded', result: { chain_written: true, reign_version: d.reignVersion } });
      const others = members.filter((m) => m.slot !== 3).map((m) => m.uid).sort((a, b) => a - b);
      const entry = await chain.weightsOf(VALIDATOR);
      expect(entry?.uids).toEqual([0, ...others]);
      expect(entry?.weights).toEqual(normalizeWeightsU16([0, ...others], [0.2, 0.2, 0.2, 0.2, 0.2]).weights);
      const epoch = (await t.db.query<{ uids: number[]; weights: string[]; weight_policy: Record<string, unknown> }>(
        'SELECT uids, weights::text[] AS weights, weight_policy FROM weight_epochs WHERE weight_hash = $1',
        [d.weightHash],
      )).rows[0];
      expect(epoch?.uids).toEqual([0, ...others]);
      expect(epoch?.weights).toEqual(['0.2', '0.2', '0.2', '0.2', '0.2']);
      expect(epoch?.weight_policy).toMatchObject({
        policy: 'five_king_genesis_split_v1',
        burn_uid: 0,
        deregistered_slots: [{ slot: 3, expected_uid: victim.uid, expected_hotkey: victim.hotkey, current_hotkey: newcomer, weight_bps: 2000 }],
      });
      expect((epoch!.weight_policy.submitted_members as unknown[]).length).toBe(4);
    });
  });
}
