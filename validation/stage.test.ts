import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InProcessExecutor } from '../actors/stage-service.ts';
import { type InProcessPipeline, randomReveal, startInProcessPipeline } from '../tests/support/pipeline-kit.ts';
import type { Stage } from '../core/ids.ts';
import { bootstrapGenesis } from '../persistence/genesis.ts';
import { freshDatabase, type TestDatabase, testServers } from '../tests/support/pg.ts';
import { waitFor } from '../tests/support/wait.ts';
import { VALIDATED_OR_LATER } from './hotkey-rules.ts';
import { type LocalHub, startLocalHub } from './local-hub.ts';
import type { ModelRef } from './model-ref.ts';
import { HfHubStore, LocalDirStore, type ModelStore } from './model-store.ts';
import { LocalDirArtifactStore } from '../persistence/artifact-store.ts';
import { PostgresDedupIndex } from './dedup/postgres.ts';
import { ModelCache } from './model-cache.ts';
import { createValidationExecutor, type ValidationExecutorOptions } from './stage.ts';
import { publishSyntheticModel, type SyntheticModelOptions } from './synthetic-model.ts';

const succeed: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });
/** Trivial later stages: every duel is lost, so a validated submission ends in COMPLETE_LOSS. */
const LATER_STAGES: Partial<Record<Stage, InProcessExecutor>> = {
  PRE_EVAL: succeed,
  EVAL: async () => ({ outcome: { status: 'succeeded', result: { challengerWon: false } } }),
  SET_REIGN: succeed,
  WEIGHT_SET: succeed,
};

const TERMINAL = ['COMPLETE_LOSS', 'COMPLETE_CORONATED', 'TERMINAL_INVALID', 'TERMINAL_INFRA_FAILED'];

/** Routes by backend (Hippius refs from the local directory, HF refs over HTTP) and records every uri touched. */
class RecordingStore implements ModelStore {
  readonly touched: string[] = [];
  constructor(
    private readonly local: ModelStore,
    private readonly hub: ModelStore | null,
    private readonly delayMs = 0,
  ) {}
  private pick(ref: ModelRef): ModelStore {
    this.touched.push(ref.uri);
    return ref.backend === 'hf' && this.hub ? this.hub : this.local;
  }
  async listFiles(ref: ModelRef, signal: AbortSignal) {
    const store = this.pick(ref);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return store.listFiles(ref, signal);
  }
  readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal) {
    return this.pick(ref).readJson(ref, path, maxBytes, signal);
  }
  readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal) {
    return this.pick(ref).readRange(ref, path, start, end, signal);
  }
}

let seq = 0;

for (const server of testServers()) {
  describe(`validation stage on ${server.name} Postgres`, () => {
    let t: TestDatabase;
    let root: string;
    let hub: LocalHub;

    beforeAll(async () => {
      t = await freshDatabase(server);
      root = await mkdtemp(join(tmpdir(), 'albedo-stage-'));
      // A real genesis on disk: the divergence check compares every candidate with it (spec §9.2).
      const genesis = await publishSyntheticModel(root, 'teutonic/qwen3.6-35b-a3b-genesis', { seed: 'stage-genesis' });
      await bootstrapGenesis(t.db, { netuid: 97, hotkey: 'genesis-hotkey', uid: 0, modelUri: genesis.uri });
      hub = await startLocalHub({ root, redirectResolve: true });
    });
    afterAll(async () => {
      await hub?.close();
      await t?.drop();
      await rm(root, { recursive: true, force: true });
    });

    async function withPipeline<T>(store: ModelStore, fn: (p: InProcessPipeline) => Promise<T>, extra: Partial<ValidationExecutorOptions> = {}): Promise<T> {
      const HIPPIUS = createValidationExecutor({
        store,
        cache: new ModelCache({ root: join(root, '.cache') }),
        dedup: new PostgresDedupIndex(t.db),
        artifacts: new LocalDirArtifactStore(join(root, '.artifacts')),
        notFoundRecheckMs: 20,
        backends: ['hippius', 'hf'],
        fingerprintThreads: 1,
        ...extra,
      });
      const p = await startInProcessPipeline({ db: t.db, executors: { HIPPIUS, ...LATER_STAGES } });
      try {
        return await fn(p);
      } finally {
        await p.stop();
      }
    }

    function publish(options: SyntheticModelOptions & { backend?: 'hippius' | 'hf' } = {}, repo?: string) {
      seq += 1;
      return publishSyntheticModel(root, repo ?? `miner${seq}/albedo-qwen3.6-35b-v${seq}`, { seed: `stage-${seq}`, ...options });
    }

    async function submit(p: InProcessPipeline, uri: string, hotkey = `5hk${++seq}${Date.now()}`) {
      const at = uri.indexOf('@');
      const repo = uri.slice(0, at);
      const digest = uri.slice(at + 1);
      const { id } = await p.host.ingest(randomReveal({ hotkey, repo, digest, raw: `v7|${repo}|${digest}` }));
      return { id, hotkey };
    }

    async function settled(id: string) {
      return waitFor(
        async () => {
          const { rows } = await t.db.query('SELECT state, fault_class, fault_code, fault_message, model_hash FROM model_submissions WHERE id = $1', [id]);
          return rows[0] && TERMINAL.includes(rows[0].state) ? rows[0] : null;
        },
        { what: `submission ${id} terminal` },
      );
    }

    async function attempts(id: string) {
      const { rows } = await t.db.query("SELECT state, fault_class, fault_code, result_summary FROM stage_attempts WHERE submission_id = $1 AND stage = 'HIPPIUS' ORDER BY attempt_number", [id]);
      return rows;
    }

    it('a good model reaches HIPPIUS_VALIDATED and beyond, with model_hash and a MODEL_MANIFEST artifact', async () => {
      const m = await publish();
      await withPipeline(new RecordingStore(new LocalDirStore(root), null), async (p) => {
        const { id } = await submit(p, m.uri);
        const row = await settled(id);
        expect(row).toMatchObject({ state: 'COMPLETE_LOSS', model_hash: m.ref.digest, fault_class: null });
        const passed = await t.db.query(
          "SELECT 1 FROM actor_transitions WHERE submission_id = $1 AND from_state = 'HIPPIUS_RUNNING' AND to_state = 'HIPPIUS_VALIDATED'",
          [id],
        );
        expect(passed.rowCount).toBe(1);
        const art = await t.db.query("SELECT storage_backend, uri, stage_attempt_id FROM artifacts WHERE submission_id = $1 AND artifact_type = 'MODEL_MANIFEST'", [id]);
        expect(art.rows).toEqual([{ storage_backend: 'hippius', uri: `registry.hippius.com/${m.uri}`, stage_attempt_id: expect.any(String) }]);
        const [attempt] = await attempts(id);
        expect(attempt.state).toBe('SUCCEEDED');
        expect(attempt.result_summary.modelHash).toBe(m.ref.digest);
        const checks = attempt.result_summary.checks as Array<{ name: string; status: string }>;
        expect(checks.map((c) => c.name)).toEqual([
          'hotkey_banned', 'hotkey_already_validated', 'duplicate_digest',
          'model_ref', 'repo_name', 'list_files', 'file_manifest', 'safetensors_preflight', 'architecture', 'safetensors_index',
          'download', 'disk_headers', 'fingerprint', 'digest_reservation', 'dedup',
        ]);
        expect(checks.every((c) => c.status === 'passed')).toBe(true);
        const progress = await t.db.query("SELECT count(*)::int AS n FROM stage_events e JOIN stage_attempts a ON a.attempt_key = e.attempt_key WHERE a.submission_id = $1 AND e.event_type = 'validation_check'", [id]);
        expect(progress.rows[0].n).toBeGreaterThanOrEqual(8);
        // spec §1 success result_summary, the fingerprint indexed (and the genesis with it), its artifact recorded
        expect(attempt.result_summary).toMatchObject({
          similarity: expect.any(Number),
          threshold: 0.95,
          min_divergence: 0.001,
          n_tensors: 8,
          weights_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
          model_manifest_uri: `registry.hippius.com/${m.uri}`,
          fingerprint_uri: expect.stringMatching(/^file:\/\/.*\/fingerprint\.json$/),
        });
        expect(attempt.result_summary.divergence).toBeGreaterThan(0.001);
        const indexed = await t.db.query('SELECT model_uri, weights_hash, dim FROM model_fingerprints ORDER BY model_uri');
        expect(indexed.rows).toContainEqual({ model_uri: m.uri, weights_hash: attempt.result_summary.weights_hash, dim: 8 });
        expect(indexed.rows.some((r) => r.model_uri.startsWith('teutonic/'))).toBe(true);
        const fpArt = await t.db.query("SELECT uri FROM artifacts WHERE submission_id = $1 AND artifact_type = 'FINGERPRINT'", [id]);
        expect(fpArt.rows).toEqual([{ uri: attempt.result_summary.fingerprint_uri }]);
      });
    });

    it('issue #5 item 5: a noise-perturbed copy of the genesis that passes the upstream similarity rule is too_similar; a genuine fine-tune passes', async () => {
      await withPipeline(new RecordingStore(new LocalDirStore(root), null), async (p) => {
        // 1 of 8 tensors with 1 % relative noise: upstream similarity 7/8 = 0.875 < 0.95, so upstream passes it.
        const copy = await publish({ seed: 'stage-genesis', perturb: { tensors: 1, relative: 0.01, noiseSeed: 'copy' } });
        const { id, hotkey } = await submit(p, copy.uri);
        const row = await settled(id);
        expect(row).toMatchObject({ state: 'TERMINAL_INVALID', fault_class: 'MINER_FAULT', fault_code: 'too_similar', model_hash: null });
        const [attempt] = await attempts(id);
        const dedup = attempt.result_summary.dedup;
        expect(dedup).toMatchObject({ reason: 'divergence', duplicate_of: expect.stringMatching(/^teutonic\/qwen3\.6-35b-a3b-genesis@/), exact_weights_match: false });
        expect(dedup.similarity).toBeLessThan(0.95);
        expect(dedup.divergence).toBeLessThan(0.001);
        // fault.json at the spec key, with the §9 detail, recorded as VALIDATION_FAULT
        const fault = await t.db.query("SELECT uri FROM artifacts WHERE submission_id = $1 AND artifact_type = 'VALIDATION_FAULT'", [id]);
        expect(fault.rows).toHaveLength(1);
        expect(fault.rows[0].uri).toContain(`/hippius_validation/${hotkey}/${copy.ref.digest.replace(':', '_')}/fault.json`);
        expect(attempt.result_summary.fault_uri).toBe(fault.rows[0].uri);
        const body = JSON.parse(await readFile(new URL(fault.rows[0].uri), 'utf8'));
        expect(body).toMatchObject({ model_uri: copy.uri, hotkey, fault_class: 'MINER_FAULT', fault_code: 'too_similar', reason: 'divergence', same_coldkey: false });

        // Every tensor moved by ~5 %: what a fine-tune looks like to the sampled weights.
        const tuned = await publish({ seed: 'stage-genesis', perturb: { tensors: 'all', relative: 0.05, noiseSeed: 'tune' } });
        const ok = await settled((await submit(p, tuned.uri)).id);
        expect(ok).toMatchObject({ state: 'COMPLETE_LOSS', fault_class: null });
      });
    });

    it('the same weights under another digest and hotkey are an exact duplicate (weights_hash gate)', async () => {
      await withPipeline(new RecordingStore(new LocalDirStore(root), null), async (p) => {
        const original = await publish({ seed: 'exact-weights' });
        expect(await settled((await submit(p, original.uri)).id)).toMatchObject({ state: 'COMPLETE_LOSS' });
        const repack = await publish({ seed: 'exact-weights', extraFiles: { 'README.md': '# same weights, new card\n' } });
        expect(repack.ref.digest).not.toBe(original.ref.digest);
        const row = await settled((await submit(p, repack.uri)).id);
        expect(row).toMatchObject({ state: 'TERMINAL_INVALID', fault_code: 'duplicate' });
        expect(row.fault_message).toMatch(new RegExp(`^duplicate of ${original.uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: exact weights match \\(weights_hash\\)`));
      });
    });

    it('an index write that fails is INFRA dedup_index_failed: retried (indexing is idempotent by model_uri)', async () => {
      const index = new PostgresDedupIndex(t.db);
      let failures = 1;
      const flaky = Object.assign(Object.create(index) as PostgresDedupIndex, {
        index: async (doc: Parameters<PostgresDedupIndex['index']>[0]) => {
          if (failures-- > 0) throw new Error('index unavailable');
          return index.index(doc);
        },
      });
      await withPipeline(
        new RecordingStore(new LocalDirStore(root), null),
        async (p) => {
          const m = await publish();
          const { id } = await submit(p, m.uri);
          expect(await settled(id)).toMatchObject({ state: 'COMPLETE_LOSS', fault_class: null });
          expect((await attempts(id)).map((a) => a.fault_code)).toEqual(['dedup_index_failed', null]);
          const rows = await t.db.query('SELECT count(*)::int AS n FROM model_fingerprints WHERE model_uri = $1', [m.uri]);
          expect(rows.rows[0].n).toBe(1);
        },
        { dedup: flaky },
      );
    });

    it('a dedup backend that fails is INFRA dedup_backend_failed: retried, never a strike', async () => {
      const index = new PostgresDedupIndex(t.db);
      let failures = 2;
      const flaky = Object.assign(Object.create(index) as PostgresDedupIndex, {
        knn: async (dim: number, vector: readonly number[], k: number) => {
          if (failures-- > 0) throw new Error('connection reset by the index');
          return index.knn(dim, vector, k);
        },
      });
      await withPipeline(
        new RecordingStore(new LocalDirStore(root), null),
        async (p) => {
          const { id } = await submit(p, (await publish()).uri);
          expect(await settled(id)).toMatchObject({ state: 'COMPLETE_LOSS', fault_class: null });
          const codes = (await attempts(id)).map((a) => a.fault_code);
          expect(codes).toEqual(['dedup_backend_failed', 'dedup_backend_failed', null]);
        },
        { dedup: flaky },
      );
    });

    it('F32 weights are TERMINAL_INVALID weight_dtype with the strike suffix; three strikes ban; a banned hotkey is rejected before any I/O', async () => {
      const store = new RecordingStore(new LocalDirStore(root), null);
      await withPipeline(store, async (p) => {
        const hotkey = `5striker${Date.now()}`;
        const f32 = await submit(p, (await publish({ dtype: 'F32' })).uri, hotkey);
        const r1 = await settled(f32.id);
        expect(r1).toMatchObject({ state: 'TERMINAL_INVALID', fault_class: 'MINER_FAULT', fault_code: 'weight_dtype', model_hash: null });
        expect(r1.fault_message).toBe("model weights must be 16-bit (F16/BF16); shard model-00001-of-00002.safetensors has dtype(s): ['F32'] — hotkey has 2 attempt(s) left before ban");
        const [a1] = await attempts(f32.id);
        expect(a1).toMatchObject({ state: 'FAILED_TERMINAL', fault_code: 'weight_dtype' });
        expect(a1.result_summary.checks.find((c: { name: string }) => c.name === 'safetensors_preflight')).toMatchObject({ status: 'failed', faultCode: 'weight_dtype' });

        const r2 = await settled((await submit(p, (await publish({ dropFile: 'tokenizer.json' })).uri, hotkey)).id);
        expect(r2).toMatchObject({ fault_code: 'file_manifest' });
        expect(r2.fault_message).toMatch(/ — hotkey has 1 attempt\(s\) left before ban$/);

        const r3 = await settled((await submit(p, (await publish({ textConfig: { num_experts: 64 } })).uri, hotkey)).id);
        expect(r3).toMatchObject({ fault_code: 'architecture' });
        expect(r3.fault_message).toMatch(/ — hotkey is now banned from further submissions$/);
        const bans = await t.db.query('SELECT kind, netuid FROM hotkey_bans WHERE hotkey = $1', [hotkey]);
        expect(bans.rows).toEqual([{ kind: 'strikes', netuid: 97 }]);
        const ev = await t.db.query("SELECT severity FROM events WHERE event_type = 'hotkey_banned' AND data->>'hotkey' = $1", [hotkey]);
        expect(ev.rows).toEqual([{ severity: 'WARN' }]);

        const good = await publish();
        const r4 = await settled((await submit(p, good.uri, hotkey)).id);
        expect(r4).toMatchObject({ state: 'TERMINAL_INVALID', fault_code: 'hotkey_banned' });
        expect(r4.fault_message).toMatch(/ — hotkey is now banned from further submissions$/);
        expect(store.touched).not.toContain(good.uri);
      });
    });

    it('the same digest from another hotkey is duplicate and bans that hotkey', async () => {
      const first = await publish({ seed: 'shared-weights' });
      const copy = await publish({ seed: 'shared-weights' }); // same content under another repo ⇒ same digest
      expect(copy.ref.digest).toBe(first.ref.digest);
      const store = new RecordingStore(new LocalDirStore(root), null);
      await withPipeline(store, async (p) => {
        const a = await submit(p, first.uri);
        expect(await settled(a.id)).toMatchObject({ state: 'COMPLETE_LOSS', model_hash: first.ref.digest });
        const b = await submit(p, copy.uri);
        const rb = await settled(b.id);
        expect(rb).toMatchObject({ state: 'TERMINAL_INVALID', fault_class: 'MINER_FAULT', fault_code: 'duplicate', model_hash: null });
        expect(rb.fault_message).toBe(`duplicate of ${first.uri}: digest ${first.ref.digest} was already submitted and validated — hotkey is now banned from further submissions`);
        expect(store.touched).not.toContain(copy.uri); // a T4 pre-check: no store I/O
        const bans = await t.db.query('SELECT kind, submission_id FROM hotkey_bans WHERE hotkey = $1', [b.hotkey]);
        expect(bans.rows).toEqual([{ kind: 'duplicate', submission_id: b.id }]);
      });
    });

    it('two hotkeys racing on one digest: exactly one is validated, the other is duplicate', async () => {
      const x = await publish({ seed: 'race-weights' });
      const y = await publish({ seed: 'race-weights' });
      await withPipeline(new RecordingStore(new LocalDirStore(root), null, 150), async (p) => {
        const [a, b] = await Promise.all([submit(p, x.uri), submit(p, y.uri)]);
        const rows = [await settled(a.id), await settled(b.id)];
        expect(rows.map((r) => r.state).sort()).toEqual(['COMPLETE_LOSS', 'TERMINAL_INVALID']);
        const loser = rows.find((r) => r.state === 'TERMINAL_INVALID');
        expect(loser).toMatchObject({ fault_code: 'duplicate', model_hash: null });
        const holders = await t.db.query('SELECT count(*)::int AS n FROM model_submissions WHERE model_hash = $1', [x.ref.digest]);
        expect(holders.rows[0].n).toBe(1);
      });
    });

    it('a digest held by a concurrent uncommitted transaction: the unique index decides at reservation as MINER duplicate', async () => {
      const m = await publish();
      const holder = await t.db.query<{ id: string }>("SELECT id FROM model_submissions WHERE model_hash IS NULL AND state = 'TERMINAL_INVALID' LIMIT 1");
      const holderId = holder.rows[0]?.id;
      expect(holderId).toBeDefined();
      const client = await t.db.connect();
      try {
        await client.query('BEGIN');
        await client.query('UPDATE model_submissions SET model_hash = $2 WHERE id = $1', [holderId, m.ref.digest]);
        await withPipeline(new RecordingStore(new LocalDirStore(root), null), async (p) => {
          const { id } = await submit(p, m.uri);
          await waitFor(
            async () =>
              (await t.db.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE model_submissions SET model_hash%'")).rowCount,
            { what: 'the reservation waiting on the unique index' },
          );
          await client.query('COMMIT');
          const row = await settled(id);
          expect(row).toMatchObject({ state: 'TERMINAL_INVALID', fault_code: 'duplicate', model_hash: null });
          expect(row.fault_message).toMatch(/validated concurrently by another submission — hotkey is now banned/);
          const checks = (await attempts(id))[0].result_summary.checks as Array<{ name: string; status: string }>;
          expect(checks.at(-2)).toMatchObject({ name: 'digest_reservation', status: 'failed' });
          expect(checks.at(-1)).toMatchObject({ name: 'dedup', status: 'skipped' });
        });
      } finally {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
      }
    });

    it('a model served by the HTTP hub through HfHubStore is validated with an hf:// manifest', async () => {
      const m = await publish({ backend: 'hf' });
      expect(m.ref.backend).toBe('hf');
      await withPipeline(new RecordingStore(new LocalDirStore(root), new HfHubStore({ endpoint: hub.url, timeoutMs: 5_000 })), async (p) => {
        const { id } = await submit(p, m.uri);
        expect(await settled(id)).toMatchObject({ state: 'COMPLETE_LOSS', model_hash: m.ref.digest });
        const art = await t.db.query("SELECT storage_backend, uri FROM artifacts WHERE submission_id = $1 AND artifact_type = 'MODEL_MANIFEST'", [id]);
        expect(art.rows).toEqual([{ storage_backend: 'hf', uri: `hf://${m.uri}` }]);
        expect(hub.requests.some((r) => r.repo === m.ref.repo && r.kind === 'resolve' && r.status === 206)).toBe(true);
      });
    });

    it('a hub answering 503 is INFRA: retried, never TERMINAL_INVALID, never a strike', async () => {
      const flaky = await publish({ backend: 'hf' });
      const down = await publish({ backend: 'hf' });
      let flakyFailures = 0;
      hub.setInterceptor((r) => {
        if (r.repo === flaky.ref.repo && r.kind === 'tree' && flakyFailures < 2) {
          flakyFailures += 1;
          return 503;
        }
        if (r.repo === down.ref.repo && r.kind === 'resolve') return 503;
        return undefined;
      });
      try {
        await withPipeline(new RecordingStore(new LocalDirStore(root), new HfHubStore({ endpoint: hub.url, timeoutMs: 5_000 })), async (p) => {
          const f = await submit(p, flaky.uri);
          const d = await submit(p, down.uri);
          expect(await settled(f.id)).toMatchObject({ state: 'COMPLETE_LOSS', model_hash: flaky.ref.digest });
          expect((await attempts(f.id)).map((a) => [a.state, a.fault_code])).toEqual([
            ['FAILED_RETRYABLE', 'list_files_failed'],
            ['FAILED_RETRYABLE', 'list_files_failed'],
            ['SUCCEEDED', null],
          ]);
          const rd = await settled(d.id);
          expect(rd).toMatchObject({ state: 'TERMINAL_INFRA_FAILED', fault_class: 'INFRA_FAULT', fault_code: 'preflight_failed' });
          const da = await attempts(d.id);
          expect(da).toHaveLength(5); // the VALIDATION budget
          expect(da.every((a) => a.state === 'FAILED_RETRYABLE' && a.fault_class === 'INFRA_FAULT')).toBe(true);
          const bans = await t.db.query('SELECT 1 FROM hotkey_bans WHERE hotkey = ANY($1)', [[f.hotkey, d.hotkey]]);
          expect(bans.rowCount).toBe(0);
        });
      } finally {
        hub.setInterceptor(undefined);
      }
    });

    it('a repo the hub does not know is repo_not_found only after the 404 is confirmed', async () => {
      const ghost = `ghost${Date.now()}/albedo-qwen3.6-35b-g@${'ab'.repeat(20)}`;
      await withPipeline(new RecordingStore(new LocalDirStore(root), new HfHubStore({ endpoint: hub.url, timeoutMs: 5_000 })), async (p) => {
        const { id } = await submit(p, ghost);
        const row = await settled(id);
        expect(row).toMatchObject({ state: 'TERMINAL_INVALID', fault_code: 'repo_not_found' });
        expect(row.fault_message).toMatch(/ — hotkey has 2 attempt\(s\) left before ban$/);
        const trees = hub.requests.filter((r) => r.kind === 'tree' && ghost.startsWith(`${r.repo}@`));
        expect(trees.map((r) => r.status)).toEqual([404, 404]);
      });
    });
  });
}

// Keeps the validated-state list in sync with the schema's state list.
describe('hotkey rules', () => {
  it('VALIDATED_OR_LATER lists every state from HIPPIUS_VALIDATED on, including COMPLETE_LOSS', () => {
    expect(VALIDATED_OR_LATER).toContain('COMPLETE_LOSS');
    expect(VALIDATED_OR_LATER).not.toContain('TERMINAL_INVALID');
    expect(VALIDATED_OR_LATER).toHaveLength(16);
  });
});
