import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlbedoError } from '../core/faults.ts';
import { type Db, inTx } from './db.ts';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8');
      return { version: Number(name.slice(0, 3)), name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Applies pending migrations in order, each in its own transaction. A session-level advisory lock
 * serialises concurrent starters (two backends booting at once); an applied migration whose file
 * changed is refused rather than silently diverging.
 */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<{ applied: string[] }> {
  const lockClient = await db.connect();
  try {
    await lockClient.query("SELECT pg_advisory_lock(hashtext('albedo_migrations'))");
    await lockClient.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await lockClient.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations');
    const done = new Map(rows.map((r) => [r.version, r]));
    const applied: string[] = [];
    for (const m of loadMigrations(dir)) {
      const prior = done.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new AlbedoError('CONFIG', `migration ${m.name} was changed after it was applied (checksum mismatch); add a new migration instead`);
        }
        continue;
      }
      await inTx(db, async (tx) => {
        await tx.query(m.sql);
        await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      });
      applied.push(m.name);
    }
    return { applied };
  } finally {
    await lockClient.query("SELECT pg_advisory_unlock(hashtext('albedo_migrations'))").catch(() => {});
    lockClient.release();
  }
}
