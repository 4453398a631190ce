/**
 * Child of `npm run bench -- pipeline`. PHASE=fill: ingests N submissions and lets them reach
 * PRE_EVAL_RUNNING on a GPU node that never answers (in-flight remote attempts), then prints
 * FILLED and waits to be SIGKILLed. PHASE=restore: boots the backend on the same database and
 * prints how long the restore of every live actor took.
 */
import { performance } from 'node:perf_hooks';
import { startBackend } from '../../actors/backend.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from '../../tests/support/pipeline-kit.ts';
import { openDb } from '../../persistence/db.ts';

const url = process.env.DATABASE_URL!;
const n = Number(process.env.BENCH_ACTORS ?? 1000);
const phase = process.env.PHASE;
const ok: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });
const t0 = performance.now();
const db = await openDb({ connectionString: url, max: 8 });
const backend = await startBackend({
  db,
  nodeId: 'bench-restore',
  tokens: { operator: 'operator-token-0123456789' },
  executors: { HIPPIUS: ok },
  judge: null,
  limits: FAST_LIMITS,
  concurrency: { HIPPIUS: 256, PRE_EVAL: n },
});
const restoreMs = performance.now() - t0;
if (phase === 'fill') {
  await db.query(
    `INSERT INTO remote_gpu_hosts (id, role, state, gpu_count, free_gpu_count, max_concurrent, last_heartbeat_at)
     VALUES ('silent-node', 'PRE_EVAL', 'READY', 8, 8, $1, now() + interval '1 hour')`,
    [n],
  );
  await Promise.all(Array.from({ length: n }, () => backend.host.ingest(randomReveal())));
  for (;;) {
    const { rows } = await db.query("SELECT count(*)::int AS c FROM model_submissions WHERE state = 'PRE_EVAL_RUNNING'");
    if (rows[0].c >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write('FILLED\n');
} else {
  process.stdout.write(`RESTORED ${backend.restored} ${restoreMs.toFixed(0)}\n`);
  await backend.close();
  await db.end();
  process.exit(0);
}
