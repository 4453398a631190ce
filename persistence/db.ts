import pg from 'pg';
import { AlbedoError } from '../core/faults.ts';

/** Default pool size: one connection per core for the actor writer plus headroom for RPC reads. */
export const DEFAULT_POOL_SIZE = 8;
/** @default 5000 — a misconfigured DATABASE_URL fails fast instead of hanging the start. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export type Db = pg.Pool;
export type Tx = pg.PoolClient;

export interface OpenDbOptions {
  readonly connectionString: string;
  /** @default DEFAULT_POOL_SIZE */
  readonly max?: number;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  readonly applicationName?: string;
}

/** Redacts the password of a DSN so it can be printed. */
export function redactDsn(dsn: string): string {
  try {
    const u = new URL(dsn);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

/**
 * Opens a pool and proves it works with one round trip, turning connection failures into one
 * actionable AlbedoError('DATABASE_UNREACHABLE') — never a driver stack trace.
 */
export async function openDb(options: OpenDbOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    application_name: options.applicationName ?? 'albedo',
  });
  // A client that errors (server restart, admin shutdown) must not crash the process: idle
  // clients report through the pool, checked-out ones through their own 'error' event, which
  // otherwise has no listener. The failing query still rejects; the next one reconnects.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  try {
    await pool.query('SELECT 1');
  } catch (cause) {
    await pool.end().catch(() => {});
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new AlbedoError(
      'DATABASE_UNREACHABLE',
      `cannot reach Postgres at ${redactDsn(options.connectionString)} (${reason}); check DATABASE_URL or unset it to use the embedded Postgres`,
      { cause },
    );
  }
  return pool;
}

/** Runs `fn` in a transaction; rolls back on any error. */
export async function inTx<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
