import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { type Db, openDb } from '../../persistence/db.ts';
import { migrate } from '../../persistence/migrate.ts';

export interface TestDatabase {
  readonly name: 'embedded' | 'external';
  readonly url: string;
  readonly db: Db;
  drop(): Promise<void>;
}

/** The Postgres servers this run tests against: always embedded, plus the machine's PG 15 when reachable. */
export function testServers(): Array<{ name: 'embedded' | 'external'; url: string }> {
  const servers: Array<{ name: 'embedded' | 'external'; url: string }> = [{ name: 'embedded', url: inject('embeddedPgUrl') }];
  const external = inject('externalPgUrl');
  if (external) servers.push({ name: 'external', url: external });
  return servers;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates a fresh, migrated database on `serverUrl` for one test file. */
export async function freshDatabase(server: { name: 'embedded' | 'external'; url: string }, opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const dbName = `albedo_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = withDatabase(server.url, dbName);
  const db = await openDb({ connectionString: url, max: 10 });
  if (opts.migrate !== false) await migrate(db);
  return {
    name: server.name,
    url,
    db,
    drop: async () => {
      await db.end().catch(() => {});
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
      await c.end();
    },
  };
}
