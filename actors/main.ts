import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.ts';
import { AlbedoError, toAlbedoError } from '../core/faults.ts';
import { openDb } from '../persistence/db.ts';
import { startEmbeddedPostgres } from '../persistence/embedded.ts';
import { migrate } from '../persistence/migrate.ts';
import { progressPrinter, startLocalDevnet } from './local-devnet.ts';

const HELP = `albedo-validator — the Albedo validator backend (subnet 97)

Usage:
  albedo-validator --local-devnet [--data-dir DIR] [--port N] [--inspect [WS_URL]] [--no-demo]
  albedo-validator --check-db

Modes:
  --local-devnet   the full stack on this machine with clearly labelled local stand-ins for the
                   chain, GPU nodes (deterministic vLLM stub) and the judge provider; pushes demo
                   submissions through every stage and keeps serving until Ctrl-C (what npm start runs)
  --check-db       connect to the database, apply migrations, and exit

Options:
  --data-dir DIR   state of the local stack (embedded Postgres, dev chain, models, tokens)
                   (default ~/.albedo/devnet)
  --port N         RPC port on 127.0.0.1 (default ALBEDO_API_PORT or 8080; 0 = any free port)
  --inspect [URL]  also stream actor transitions to a Stately inspector WebSocket server
                   (default ws://127.0.0.1:8095 when no URL is given)
  --no-demo        do not push the demo submissions
  -h, --help       this text

Environment: DATABASE_URL (unset: embedded Postgres in the data dir), ALBEDO_API_PORT,
ALBEDO_OPERATOR_TOKEN / ALBEDO_READER_TOKEN (production), ALBEDO_LOG_LEVEL; see docs/configuration.md.`;

function log(line: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stdout.write(`${t}  ${line}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'local-devnet': { type: 'boolean' },
      'check-db': { type: 'boolean' },
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      inspect: { type: 'string' },
      'no-demo': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    // `--inspect` alone (no URL) is allowed: normalise it before parsing.
    args: process.argv.slice(2).map((a, i, all) => (a === '--inspect' && (all[i + 1] === undefined || all[i + 1]!.startsWith('--')) ? '--inspect=ws://127.0.0.1:8095' : a)),
  });
  if (values.help || (!values['local-devnet'] && !values['check-db'])) {
    process.stdout.write(`${HELP}\n`);
    if (!values.help) process.exitCode = 2;
    return;
  }
  const config = loadConfig({ ...process.env, ...(values['local-devnet'] ? { ALBEDO_INSECURE_DEV: '1' } : {}) });
  const dataDir = values['data-dir'] ?? (process.env.ALBEDO_DATA_DIR ? join(config.ALBEDO_DATA_DIR, 'devnet') : join(homedir(), '.albedo', 'devnet'));
  let databaseUrl = config.databaseUrl;
  let stopPg: (() => Promise<void>) | null = null;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg') });
    log(`embedded Postgres running from ${pg.dataDir} (set DATABASE_URL to use your own server)`);
    databaseUrl = pg.connectionString;
    stopPg = pg.stop;
  }
  const db = await openDb({ connectionString: databaseUrl, max: config.ALBEDO_DB_POOL_SIZE });
  const { applied } = await migrate(db);
  if (applied.length) log(`migrations applied: ${applied.join(', ')}`);
  if (values['check-db']) {
    log('database reachable and migrated');
    await db.end();
    await stopPg?.();
    return;
  }

  const port = values.port !== undefined ? Number(values.port) : config.ALBEDO_API_PORT;
  const onError = (e: AlbedoError, context: string) => {
    if (config.ALBEDO_LOG_LEVEL === 'debug' || e.code !== 'INTERNAL') log(`error (${context}): ${e.message}`);
  };
  log('LOCAL DEVNET — the chain, GPU nodes ("vLLM") and judge provider are local stand-ins; the validator is the real code');
  const start = (p: number) => startLocalDevnet({ db, config, dataDir, port: p, inspectUrl: values.inspect, log, onError, demo: !values['no-demo'] });
  let stack: Awaited<ReturnType<typeof start>>;
  try {
    stack = await start(port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    log(`port ${port} is in use; using a free port instead (pass --port to choose)`);
    stack = await start(0);
  }
  progressPrinter(db, stack.backend, log);
  const known = await db.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM model_submissions WHERE idempotency_key LIKE 'chain:%' GROUP BY state ORDER BY state");
  if (known.rows.length > 0) log(`resumed with ${known.rows.map((r) => `${r.n} ${r.state}`).join(', ')} (restored actors: ${stack.backend.restored})`);
  log(`backend RPC at ${stack.backend.url} — operator and reader tokens in ${stack.tokensFile} (mode 600)`);
  log('watching submissions; press Ctrl-C to stop');
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    await stack.stop().catch(() => {});
    await db.end().catch(() => {});
    await stopPg?.().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((error) => {
  // One actionable line, never a stack trace (set ALBEDO_LOG_LEVEL=debug for the cause).
  const e = error instanceof AlbedoError ? error : toAlbedoError(error);
  process.stderr.write(`albedo-validator: ${e.message}\n`);
  if (process.env.ALBEDO_LOG_LEVEL === 'debug') console.error(error);
  process.exit(1);
});
