import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../persistence/embedded.ts';

/** The machine's PostgreSQL 15 (CI machines have it at 127.0.0.1:5432, trust auth, database `test`). */
export const DEFAULT_EXTERNAL_TEST_DSN = 'postgres://postgres@127.0.0.1:5432/test';

declare module 'vitest' {
  export interface ProvidedContext {
    embeddedPgUrl: string;
    externalPgUrl: string | null;
  }
}

/**
 * Boots one embedded Postgres for the whole run and probes the external one. Each test file then
 * creates its own fresh database on each server (tests/support/pg.ts), so files run in parallel
 * without seeing each other's rows.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'albedo-test-pg-'));
  const embedded = await startEmbeddedPostgres({ dataDir: dir, persistent: false });
  project.provide('embeddedPgUrl', embedded.connectionString);

  const externalDsn = process.env.ALBEDO_TEST_EXTERNAL_PG ?? DEFAULT_EXTERNAL_TEST_DSN;
  let external: string | null = null;
  if (process.env.ALBEDO_TEST_EXTERNAL_PG !== 'off') {
    const client = new pg.Client({ connectionString: externalDsn, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      external = externalDsn;
    } catch (error) {
      const required = process.env.CI === 'true' || process.env.ALBEDO_TEST_REQUIRE_EXTERNAL_PG === '1';
      const msg = `external Postgres at ${externalDsn} unreachable (${error instanceof Error ? error.message : error})`;
      if (required) throw new Error(`${msg}; CI requires it (set ALBEDO_TEST_EXTERNAL_PG=off to run embedded-only)`);
      console.warn(`\n[albedo tests] ${msg}: running the database suites on embedded Postgres only\n`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  project.provide('externalPgUrl', external);

  return async () => {
    await embedded.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
