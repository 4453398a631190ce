import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { startBackend } from '../actors/backend.ts';
import type { InProcessExecutor } from '../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from '../tests/support/pipeline-kit.ts';
import type { Stage } from '../core/ids.ts';
import { type Db, openDb } from '../persistence/db.ts';
import { bootstrapGenesis } from '../persistence/genesis.ts';
import { migrate } from '../persistence/migrate.ts';
import { benchServers, freshBenchDb, percentile } from './support/pg-servers.ts';

/** Connections of the backend pool, and so of the raw-commit reference. */
const POOL = 8;
const SUBMISSIONS = Number(process.env.BENCH_SUBMISSIONS ?? 400);
const RESTORE_ACTORS = Number(process.env.BENCH_ACTORS ?? 1000);

const succeed: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });
const lose: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: { challengerWon: false } } });

/** Reference: single-row autocommit INSERTs from POOL clients for `ms`: the server's commit ceiling. */
async function rawCommitRate(db: Db, ms: number): Promise<number> {
  await db.query('CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, x int)');
  let commits = 0;
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: POOL }, async () => {
      while (performance.now() < until) {
        await db.query('INSERT INTO bench_commits (x) VALUES ($1)', [commits]);
        commits++;
      }
    }),
  );
  return commits / (ms / 1000);
}

interface Throughput {
  readonly submissionsPerS: number;
  readonly transitionsPerS: number;
  readonly p50: number;
  readonly p99: number;
}

async function throughput(db: Db, label: string, concurrency: Partial<Record<Stage, number>>, evalHooksOff: boolean): Promise<Throughput> {
  const backend = await startBackend({
    db,
    nodeId: `bench-${label}`,
    tokens: { operator: 'operator-token-0123456789' },
    executors: { HIPPIUS: succeed, PRE_EVAL: succeed, EVAL: lose, SET_REIGN: succeed, WEIGHT_SET: succeed },
    hooks: evalHooksOff ? { EVAL: {}, PRE_EVAL: {} } : undefined,
    judge: null,
    limits: FAST_LIMITS,
    concurrency,
  });
  const latencies: number[] = [];
  let transitions = 0;
  let terminal = 0;
  const done = new Promise<void>((resolve) => {
    backend.host.transitions.on('transition', (t: { at: Date; to: string }) => {
      latencies.push(Date.now() - t.at.getTime());
      transitions++;
      if (t.to === 'COMPLETE_LOSS' && ++terminal === SUBMISSIONS) resolve();
    });
  });
  const reveals = Array.from({ length: SUBMISSIONS }, () => randomReveal());
  const start = performance.now();
  await Promise.all(reveals.map((r) => backend.host.ingest(r)));
  await done;
  const seconds = (performance.now() - start) / 1000;
  await backend.close();
  latencies.sort((a, b) => a - b);
  return { submissionsPerS: SUBMISSIONS / seconds, transitionsPerS: transitions / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

function runChild(url: string, phase: 'fill' | 'restore'): Promise<{ line: string; wallMs: number; kill: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/support/restore-child.ts'], {
      env: { ...process.env, DATABASE_URL: url, PHASE: phase, BENCH_ACTORS: String(RESTORE_ACTORS) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('FILLED') || l.startsWith('RESTORED'));
      if (line) resolve({ line, wallMs: performance.now() - t0, kill: () => new Promise((r) => { p.once('exit', () => r()); p.kill('SIGKILL'); }) });
    });
    p.on('exit', (code) => {
      if (!out.includes('FILLED') && !out.includes('RESTORED')) reject(new Error(`restore child (${phase}) exited ${code}`));
    });
  });
}

export async function main(): Promise<void> {
  const servers = await benchServers();
  process.stdout.write(`pipeline benchmark: ${SUBMISSIONS} submissions through every state, instant in-process stages, pool ${POOL}\n\n`);
  for (const server of servers) {
    const fresh = await freshBenchDb(server.url);
    const db = await openDb({ connectionString: fresh.url, max: POOL });
    await migrate(db);
    await bootstrapGenesis(db, { netuid: 97, hotkey: 'genesis', uid: 0, modelUri: 'g/albedo-qwen3.6-35b-genesis@sha256:' + '0'.repeat(64) });
    const raw = await rawCommitRate(db, 3000);
    const spec = await throughput(db, 'spec', {}, false);
    const open = await throughput(db, 'open', { HIPPIUS: 1000, PRE_EVAL: 1000, EVAL: 1000, SET_REIGN: 1000, WEIGHT_SET: 1000 }, true);
    await db.end();
    // Restore after SIGKILL, measured in a child process on a fresh database.
    const restoreDb = await freshBenchDb(server.url);
    const seed = await openDb({ connectionString: restoreDb.url, max: 2 });
    await migrate(seed);
    await seed.end();
    const filled = await runChild(restoreDb.url, 'fill');
    await filled.kill();
    const restored = await runChild(restoreDb.url, 'restore');
    const [, count, ms] = restored.line.split(' ');
    const f = (x: number) => x.toFixed(0).padStart(6);
    process.stdout.write(
      [
        `[${server.name} Postgres]`,
        `  raw commit rate (reference, ${POOL} clients, 1-row autocommit INSERT): ${f(raw)} commits/s`,
        `  spec concurrency (one eval at a time, eval_runs written):  ${spec.submissionsPerS.toFixed(1).padStart(7)} submissions/s  ${f(spec.transitionsPerS)} transitions/s  ratio ${(spec.transitionsPerS / raw).toFixed(2)}  p50 ${spec.p50} ms  p99 ${spec.p99} ms`,
        `  open concurrency (every stage unbounded, machinery ceiling): ${open.submissionsPerS.toFixed(1).padStart(7)} submissions/s  ${f(open.transitionsPerS)} transitions/s  ratio ${(open.transitionsPerS / raw).toFixed(2)}  p50 ${open.p50} ms  p99 ${open.p99} ms   (goal ≥ 0.50)`,
        `  restore after SIGKILL: ${count} in-flight actors in ${ms} ms inside the backend, ${restored.wallMs.toFixed(0)} ms from spawn to ready (goal < 3000 ms)`,
        '',
      ].join('\n'),
    );
    await fresh.drop();
    await restoreDb.drop();
  }
  for (const s of servers) await s.close();
}
