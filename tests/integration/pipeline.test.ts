import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageFault } from '../../core/faults.ts';
import type { Stage } from '../../core/ids.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { randomReveal, startInProcessPipeline } from '../support/pipeline-kit.ts';
import { bootstrapGenesis } from '../../persistence/genesis.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { waitFor } from '../support/wait.ts';

const succeed: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });

/** Instant executors; the EVAL verdict is decided by the model uri so both outcomes occur. */
function instantExecutors(sideEffects: string[]): Partial<Record<Stage, InProcessExecutor>> {
  const logging = (inner: InProcessExecutor): InProcessExecutor => async (ctx) => {
    sideEffects.push(ctx.attemptKey);
    return inner(ctx);
  };
  return {
    HIPPIUS: logging(succeed),
    PRE_EVAL: logging(succeed),
    EVAL: logging(async (ctx) => {
      const row = await ctx.db.query<{ model_uri: string }>('SELECT model_uri FROM model_submissions WHERE id = $1', [ctx.submissionId]);
      const won = (row.rows[0]?.model_uri ?? '').includes('strong');
      return { outcome: { status: 'succeeded', result: { challengerWon: won } } };
    }),
    SET_REIGN: logging(succeed),
    WEIGHT_SET: logging(succeed),
  };
}

for (const server of testServers()) {
  describe(`pipeline on ${server.name} Postgres`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await freshDatabase(server);
      await bootstrapGenesis(t.db, { netuid: 97, hotkey: 'genesis-hotkey', uid: 0, modelUri: 'teutonic/qwen3.6-35b-a3b-genesis@sha256:efd5b8d0a1c1f472be56ff919419cdd0561bdecd9013d5c2a96dd0e23e89c165' });
    });
    afterAll(async () => t?.drop());

    it('drives submissions through every stage to a terminal state with one event per transition', async () => {
      const effects: string[] = [];
      const p = await startInProcessPipeline({ db: t.db, executors: instantExecutors(effects) });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push((await p.host.ingest(randomReveal(i === 2 ? { repo: 'strong/albedo-qwen3.6-35b-x' } : {}))).id);
        const states = await waitFor(async () => {
          const { rows } = await t.db.query<{ state: string }>('SELECT state FROM model_submissions WHERE id = ANY($1)', [ids]);
          return rows.every((r) => ['COMPLETE_LOSS', 'COMPLETE_CORONATED'].includes(r.state)) ? rows.map((r) => r.state) : null;
        }, { what: 'all submissions terminal' });
        expect(states.filter((s) => s === 'COMPLETE_CORONATED')).toHaveLength(1);
        expect(new Set(effects).size).toBe(effects.length);
        const dup = await t.db.query('SELECT submission_id, event_type, count(*) FROM events GROUP BY 1, 2, message HAVING count(*) > 1');
        expect(dup.rows).toEqual([]);
        const trans = await t.db.query<{ submission_id: string; n: string; max: string }>(
          'SELECT submission_id, count(*) AS n, max(transition_seq) AS max FROM actor_transitions WHERE submission_id = ANY($1) GROUP BY 1',
          [ids],
        );
        for (const r of trans.rows) expect(Number(r.n)).toBe(Number(r.max)); // gap-free, no duplicates
        const finished = await t.db.query('SELECT count(*)::int AS n FROM model_submissions WHERE id = ANY($1) AND finished_at IS NULL', [ids]);
        expect(finished.rows[0].n).toBe(0);
        const used = await t.db.query('SELECT count(*)::int AS n FROM used_hotkeys WHERE submission_id = ANY($1)', [ids]);
        expect(used.rows[0].n).toBe(6);
      } finally {
        await p.stop();
      }
    });

    it('a MINER fault is terminal with the fault recorded, and INFRA faults retry within the stage budget', async () => {
      let calls = 0;
      const p = await startInProcessPipeline({
        db: t.db,
        executors: {
          HIPPIUS: async (ctx) => {
            const uri = (await ctx.db.query<{ model_uri: string }>('SELECT model_uri FROM model_submissions WHERE id = $1', [ctx.submissionId])).rows[0]?.model_uri ?? '';
            if (uri.includes('badrepo')) return { outcome: { status: 'failed', fault: stageFault('MINER_FAULT', 'repo_name', 'repo name does not match') } };
            calls += 1;
            return { outcome: { status: 'failed', fault: stageFault('INFRA_FAULT', 'download_failed', 'hub 503') } };
          },
        },
      });
      try {
        const bad = await p.host.ingest(randomReveal({ repo: 'x/badrepo' }));
        const flaky = await p.host.ingest(randomReveal());
        await waitFor(async () => {
          const { rows } = await t.db.query<{ id: string; state: string }>('SELECT id, state FROM model_submissions WHERE id = ANY($1)', [[bad.id, flaky.id]]);
          return rows.every((r) => r.state.startsWith('TERMINAL')) ? rows : null;
        });
        const rows = (await t.db.query('SELECT id, state, fault_class, fault_code FROM model_submissions WHERE id = ANY($1)', [[bad.id, flaky.id]])).rows;
        expect(rows.find((r) => r.id === bad.id)).toMatchObject({ state: 'TERMINAL_INVALID', fault_class: 'MINER_FAULT', fault_code: 'repo_name' });
        expect(rows.find((r) => r.id === flaky.id)).toMatchObject({ state: 'TERMINAL_INFRA_FAILED', fault_class: 'INFRA_FAULT' });
        expect(calls).toBe(5); // spec §3: VALIDATION budget 5
        const attempts = await t.db.query('SELECT count(*)::int AS n FROM stage_attempts WHERE submission_id = $1', [flaky.id]);
        expect(attempts.rows[0].n).toBe(5);
      } finally {
        await p.stop();
      }
    });

    it('operator retry revives a TERMINAL_INFRA_FAILED submission at the stage that failed; cancel ends a queued one', async () => {
      let healthy = false;
      const p = await startInProcessPipeline({
        db: t.db,
        executors: {
          ...instantExecutors([]),
          PRE_EVAL: async () =>
            healthy ? { outcome: { status: 'succeeded', result: {} } } : { outcome: { status: 'failed', fault: stageFault('INFRA_FAULT', 'worker_unreachable', 'GPU host down') } },
        },
      });
      try {
        const { id } = await p.host.ingest(randomReveal());
        await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state = 'TERMINAL_INFRA_FAILED'", [id])).rowCount, { what: 'PRE_EVAL budget exhausted' });
        healthy = true;
        await p.host.deliver(id, { type: 'OPERATOR_RETRY', at: Date.now() });
        await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state IN ('COMPLETE_LOSS','COMPLETE_CORONATED')", [id])).rowCount, { what: 'retried to the end' });
        const path = (await t.db.query<{ to_state: string }>('SELECT to_state FROM actor_transitions WHERE submission_id = $1 ORDER BY transition_seq', [id])).rows.map((r) => r.to_state);
        expect(path.slice(path.indexOf('TERMINAL_INFRA_FAILED'), path.indexOf('TERMINAL_INFRA_FAILED') + 3)).toEqual(['TERMINAL_INFRA_FAILED', 'PRE_EVAL_RETRYABLE', 'PRE_EVAL_RUNNING']);
        expect((await t.db.query("SELECT count(*)::int AS n FROM events WHERE submission_id = $1 AND event_type = 'budget_reset'", [id])).rows[0].n).toBe(1);
      } finally {
        await p.stop();
      }
      const idle = await startInProcessPipeline({ db: t.db, executors: {} }); // nothing runs HIPPIUS: it stays queued
      try {
        const { id } = await idle.host.ingest(randomReveal());
        await idle.host.deliver(id, { type: 'OPERATOR_CANCEL', reason: 'test', at: Date.now() });
        await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state = 'TERMINAL_INFRA_FAILED' AND fault_code = 'operator_cancelled' AND finished_at IS NOT NULL", [id])).rowCount, {
          what: 'the cancelled submission to end',
        }).catch(async (error) => {
          const sub = await t.db.query('SELECT state, fault_code, finished_at FROM model_submissions WHERE id = $1', [id]);
          const snap = await t.db.query('SELECT state, owner_id, last_applied_seq FROM actor_snapshots WHERE submission_id = $1', [id]);
          const inbox = await t.db.query('SELECT seq, event FROM actor_inbox WHERE submission_id = $1', [id]);
          const tr = await t.db.query('SELECT from_state, to_state, event_type FROM actor_transitions WHERE submission_id = $1 ORDER BY transition_seq', [id]);
          throw new Error(`${(error as Error).message}: ${JSON.stringify({ sub: sub.rows, snap: snap.rows, inbox: inbox.rows, tr: tr.rows })}`);
        });
      } finally {
        await idle.stop();
      }
    });

    // Regression (issue #3 pipeline benchmark): lease renewal re-adopted the host's own live actors,
    // bumping their epochs and fencing every in-memory actor out once per lease period.
    it('lease renewal keeps the epochs of live actors (no self-fencing)', async () => {
      const hang: InProcessExecutor = async () => new Promise(() => {});
      const p = await startInProcessPipeline({ db: t.db, nodeId: 'node-renew', executors: { HIPPIUS: hang }, actorLeaseMs: 150 });
      try {
        const { id } = await p.host.ingest(randomReveal());
        await waitFor(async () => (await t.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state = 'HIPPIUS_RUNNING'", [id])).rowCount);
        const epoch = async () => Number((await t.db.query('SELECT owner_epoch FROM actor_snapshots WHERE submission_id = $1', [id])).rows[0].owner_epoch);
        const before = await epoch();
        const renewedAt = async () => (await t.db.query('SELECT lease_expires_at FROM actor_snapshots WHERE submission_id = $1', [id])).rows[0].lease_expires_at.getTime();
        const first = await renewedAt();
        await waitFor(async () => (await renewedAt()) > first + 200, { what: 'several lease renewals' });
        expect(await epoch()).toBe(before);
        expect(p.host.liveActorCount).toBe(1);
      } finally {
        await p.stop();
      }
    });

    it('refuses to restore a snapshot written by another machine version (DESIGN.md §2.6)', async () => {
      const errors: string[] = [];
      // Its own database: the stale snapshot must not meet other tests' leftovers.
      const own = await freshDatabase(server);
      const first = await startInProcessPipeline({ db: own.db, nodeId: 'node-version', executors: {}, concurrency: { HIPPIUS: 0 } });
      const { id } = await first.host.ingest(randomReveal());
      await first.stop();
      await own.db.query("UPDATE actor_snapshots SET machine_version = 'deadbeefdeadbeef', lease_expires_at = now() - interval '1 second' WHERE submission_id = $1", [id]);
      const second = await startInProcessPipeline({ db: own.db, nodeId: 'node-version', executors: {}, concurrency: { HIPPIUS: 1 }, onError: (e) => errors.push(e.message) });
      try {
        expect(errors.some((m) => m.includes(`refusing snapshot of ${id}`) && m.includes('deadbeefdeadbeef'))).toBe(true);
        // The row is untouched: a build of the right version can still restore it.
        expect((await own.db.query('SELECT state FROM actor_snapshots WHERE submission_id = $1', [id])).rows[0].state).toBe('SUBMITTED');
        // ...and no dispatcher claims it meanwhile (it would hold a stage slot forever).
        await second.dispatcher.pass('HIPPIUS');
        expect((await own.db.query('SELECT count(*)::int AS n FROM stage_attempts WHERE submission_id = $1', [id])).rows[0].n).toBe(0);
      } finally {
        await second.stop();
        await own.drop();
      }
    });

    it('a backend that dies mid-stage restarts, reports executor_lost (not charged) and finishes', async () => {
      const effects: string[] = [];
      const hang: InProcessExecutor = async (ctx) => {
        effects.push(ctx.attemptKey);
        return new Promise(() => {}); // the process "dies" before this returns
      };
      // Its own database: a restart adopts every orphan it finds, and other tests leave some.
      const own = await freshDatabase(server);
      await bootstrapGenesis(own.db, { netuid: 97, hotkey: 'genesis-hotkey', uid: 0, modelUri: 'teutonic/qwen3.6-35b-a3b-genesis@sha256:efd5b8d0a1c1f472be56ff919419cdd0561bdecd9013d5c2a96dd0e23e89c165' });
      const first = await startInProcessPipeline({ db: own.db, nodeId: 'node-crash', executors: { ...instantExecutors(effects), PRE_EVAL: hang } });
      const { id } = await first.host.ingest(randomReveal());
      await waitFor(async () => (await own.db.query("SELECT 1 FROM stage_attempts WHERE submission_id = $1 AND stage = 'PRE_EVAL'", [id])).rowCount);
      await waitFor(async () => (await own.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state = 'PRE_EVAL_RUNNING'", [id])).rowCount);
      await first.stop(); // in-memory executors are gone; the DB says PRE_EVAL_RUNNING
      const second = await startInProcessPipeline({ db: own.db, nodeId: 'node-crash', executors: instantExecutors(effects) });
      try {
        await waitFor(async () => (await own.db.query("SELECT 1 FROM model_submissions WHERE id = $1 AND state IN ('COMPLETE_LOSS','COMPLETE_CORONATED')", [id])).rowCount, { what: 'terminal after restart' });
        const lost = await own.db.query("SELECT fault_code, counts_against_budget FROM stage_attempts WHERE submission_id = $1 AND stage = 'PRE_EVAL' ORDER BY attempt_number", [id]);
        expect(lost.rows[0]).toEqual({ fault_code: 'executor_lost', counts_against_budget: false });
        expect(new Set(effects).size).toBe(effects.length);
      } finally {
        await second.stop();
        await own.drop();
      }
    });
  });
}
