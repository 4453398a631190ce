import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { WebSocket } from 'ws';
import { createAlbedoClient } from '../../rpc/client.ts';
import { openDb } from '../../persistence/db.ts';
import { startEmbeddedPostgres } from '../../persistence/embedded.ts';

const BIN = 'bin/albedo-validator.mjs';

/** A child process that does not block the event loop (the backend under test runs in this process's children). */
function runAsync(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, DATABASE_URL: env.DATABASE_URL ?? '' }, encoding: 'utf8', timeout: 60_000 });
}

describe('albedo-validator CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'albedo-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--help documents the modes and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--local-devnet');
    expect(r.stdout).toContain('--check-db');
  });

  it('an unreachable DATABASE_URL prints one actionable line, not a stack trace', () => {
    const r = run(['--check-db'], { DATABASE_URL: 'postgres://albedo:secret-password@127.0.0.1:1/albedo', ALBEDO_INSECURE_DEV: '1' });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot reach Postgres at postgres:\/\/albedo:\*\*\*@127\.0\.0\.1:1\/albedo .*check DATABASE_URL/);
    expect(r.stderr).not.toContain('secret-password');
  });

  it('an invalid setting stops the start with the variable name', () => {
    const r = run(['--check-db'], { ALBEDO_API_PORT: 'eighty', ALBEDO_INSECURE_DEV: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('albedo-validator: invalid configuration: ALBEDO_API_PORT: Invalid input: expected number, received NaN');
  });

  it('production mode refuses to start without an operator token', () => {
    const r = run(['--check-db'], { ALBEDO_INSECURE_DEV: '0', ALBEDO_OPERATOR_TOKEN: '' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ALBEDO_OPERATOR_TOKEN is required');
  });

  it('--check-db migrates a reachable database', () => {
    const r = run(['--check-db'], { DATABASE_URL: inject('embeddedPgUrl'), ALBEDO_INSECURE_DEV: '1' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  // `npm start` end to end: every outcome of the demo, through real child processes (GPU nodes,
  // stub vLLM engines), the dev chain, the judge provider stand-in and embedded Postgres.
  it('the local devnet pushes every demo submission to its expected verdict and stops cleanly', async () => {
    const child = spawn(process.execPath, [BIN, '--local-devnet', '--port', '0', '--data-dir', join(dir, 'devnet')], {
      env: { ...process.env, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const expected = [
      /alice\/albedo-qwen3\.6-35b-strong\s+WEIGHT_SET_RUNNING\s+→ COMPLETE_CORONATED/,
      /bob\/albedo-qwen3\.6-35b-plain\s+EVAL_RUNNING\s+→ COMPLETE_LOSS/,
      /carol\/albedo-qwen3\.6-35b-broken\s+PRE_EVAL_RUNNING\s+→ TERMINAL_INVALID\s+\(failed:/,
      /dave\/albedo-qwen3\.6-35b-fp32\s+HIPPIUS_RUNNING\s+→ TERMINAL_INVALID\s+\(weight_dtype:/,
      /erin\/my-cool-model\s+HIPPIUS_RUNNING\s+→ TERMINAL_INVALID\s+\(repo_name:/,
      // issue #5: a noisy copy of the genesis that upstream's similarity rule lets through
      /frank\/albedo-qwen3\.6-35b-copy\s+HIPPIUS_RUNNING\s+→ TERMINAL_INVALID\s+\(too_similar:/,
    ];
    const deadline = Date.now() + 120_000;
    while (!expected.every((re) => re.test(out)) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    for (const re of expected) expect(out).toMatch(re);
    expect(out).toMatch(/LOCAL DEVNET/);
    expect(statSync(join(dir, 'devnet', 'tokens.json')).mode & 0o777).toBe(0o600);
    // Issue #6: every duel left its run artifacts (duel.md §11), and `albedo verify` recomputes each
    // verdict from them and finds it unchanged.
    const artifactsRoot = join(dir, 'devnet', 'gpu-eval-1', 'artifacts');
    const runs = readdirSync(artifactsRoot).map((d) => join(artifactsRoot, d)).filter((d) => existsSync(join(d, 'verdict.json')));
    expect(runs.length).toBeGreaterThanOrEqual(2); // alice's and bob's duels
    for (const runDir of runs) {
      const verify = spawnSync(process.execPath, ['bin/albedo.mjs', 'verify', runDir], { encoding: 'utf8', timeout: 60_000 });
      expect(verify.stdout.trim(), verify.stderr).toBe('match');
      expect(verify.status).toBe(0);
    }
    // …and by eval run id, looked up on the running backend with the reader token.
    const backendUrl = /backend RPC at (ws:\/\/\S+)/.exec(out)?.[1];
    const { reader } = JSON.parse(readFileSync(join(dir, 'devnet', 'tokens.json'), 'utf8')) as { reader: string };
    const client = createAlbedoClient({ url: backendUrl ?? '', token: reader, WebSocket });
    const evalRuns = (await client.api.evalRuns.query({ limit: 10 })) as Array<{ id: string; state: string }>;
    const succeeded = evalRuns.filter((r) => r.state === 'SUCCEEDED');
    expect(succeeded.length).toBeGreaterThanOrEqual(2);
    // The eval node uploaded each run to the stand-in bucket: the verdict URI is s3://, read back
    // through the bucket's public URL (verdict artifacts are public-read).
    for (const r of succeeded) {
      const found = await client.api.evalRunArtifacts.query({ evalRunId: r.id });
      expect(found.artifacts.verdict).toMatch(/^s3:\/\/albedo-artifacts\/submissions\/[0-9a-f-]{36}\/eval\/.+\/verdict\.json$/);
    }
    await client.close();
    // duel.md §4.3: the node rendered prompts with the pinned genesis template and generated from them.
    expect(out).toMatch(/\[gpu-eval-1\] \[gpu-node\] chat template: pinned genesis template sha256 [0-9a-f]{64}/);
    expect(out).toMatch(/\[gpu-eval-1\] \[gpu-node\] eval artifacts: uploaded to s3:\/\/albedo-artifacts/);
    const s3Endpoint = /artifact bucket \(s3rver[^)]*\) at (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
    expect(s3Endpoint).toBeDefined();
    for (const r of succeeded) {
      const verify = await runAsync(['bin/albedo.mjs', 'verify', r.id, '--api', backendUrl ?? ''], { ALBEDO_READER_TOKEN: reader, ALBEDO_DASHBOARD_ARTIFACT_BASE_URL: s3Endpoint ?? '' });
      expect(verify.stdout.trim(), verify.stderr).toBe('match');
      expect(verify.stderr).not.toContain(reader);
    }
    for (const runDir of runs) {
      const request = JSON.parse(readFileSync(join(runDir, 'request.json'), 'utf8')) as { generationPath?: string; chatTemplateSha256?: string | null };
      expect(request.generationPath).toBe('completions');
      expect(request.chatTemplateSha256).toMatch(/^[0-9a-f]{64}$/);
    }
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    // The backend recorded every uploaded verdict as an `artifacts` row (read from the stack's own
    // embedded Postgres once it has stopped).
    const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'devnet', 'pg') });
    const db = await openDb({ connectionString: pg.connectionString, max: 1 });
    try {
      const { rows } = await db.query<{ uri: string; eval_run_id: string; sha256: string | null }>(
        `SELECT a.uri, er.id AS eval_run_id, a.sha256 FROM artifacts a JOIN eval_runs er ON er.stage_attempt_id = a.stage_attempt_id
          WHERE a.artifact_type = 'EVAL_VERDICT' AND er.state = 'SUCCEEDED'`,
      );
      for (const r of succeeded) {
        const row = rows.find((x) => x.eval_run_id === r.id);
        expect(row?.uri).toMatch(/^s3:\/\/albedo-artifacts\/.+\/verdict\.json$/);
        expect(row?.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
      }
      const types = await db.query<{ artifact_type: string }>(`SELECT DISTINCT artifact_type FROM artifacts WHERE uri LIKE 's3://albedo-artifacts/submissions/%/eval/%'`);
      expect(types.rows.map((t) => t.artifact_type).sort()).toEqual(['EVAL_REQUEST', 'EVAL_TRANSCRIPT', 'EVAL_VERDICT', 'GENERATED_SAMPLES', 'JUDGE_RESULTS', 'REMOTE_LOGS', 'REMOTE_PROGRESS', 'SCORING_RESULTS']);
    } finally {
      await db.end();
      await pg.stop();
    }
  }, 240_000);
});
