import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../persistence/embedded.ts';

export interface BenchServer {
  readonly name: string;
  readonly url: string;
  close(): Promise<void>;
}

/** Embedded Postgres (always) and the machine's PostgreSQL at ALBEDO_BENCH_EXTERNAL_PG / 127.0.0.1:5432 when reachable. */
export async function benchServers(): Promise<BenchServer[]> {
  const dir = mkdtempSync(join(tmpdir(), 'albedo-bench-pg-'));
  const embedded = await startEmbeddedPostgres({ dataDir: dir, persistent: false });
  const out: BenchServer[] = [{ name: 'embedded', url: embedded.connectionString, close: async () => {
    await embedded.stop();
    rmSync(dir, { recursive: true, force: true });
  } }];
  const ext = process.env.ALBEDO_BENCH_EXTERNAL_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const c = new pg.Client({ connectionString: ext, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    out.push({ name: 'external', url: ext, close: async () => {} });
  } catch {
    process.stdout.write(`(external Postgres at ${ext} unreachable: embedded only)\n`);
  } finally {
    await c.end().catch(() => {});
  }
  return out;
}

/** A fresh database on a server; returns its URL and a drop function. */
export async function freshBenchDb(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `albedo_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const a = new pg.Client({ connectionString: serverUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
