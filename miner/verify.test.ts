/**
 * `albedo verify` as the real binary (node bin/albedo.mjs) on the artifacts of an eval that ran
 * through runEval with the real judge actor over the provider stand-in.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatFn } from '../gpu-node/engine.ts';
import { runEval } from '../gpu-node/executors.ts';
import { createJudge } from '../judge/judge-actor.ts';
import { OpenRouterClient } from '../judge/openrouter-client.ts';
import { type JudgeProviderStandin, startJudgeProviderStandin } from '../judge/provider-standin.ts';
import { ARTIFACT_FILES } from '../judge/replay.ts';
import { PACKAGE_ROOT } from './env.ts';
import { uploadEvalArtifacts } from '../gpu-node/artifact-upload.ts';
import { S3ArtifactStore } from '../persistence/artifact-store.ts';
import { startS3Standin } from '../persistence/s3-standin.ts';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'albedo.mjs');
const CHALLENGER = 'org/strong@sha256:' + '1'.repeat(64);
const KING = 'org/plain@sha256:' + '2'.repeat(64);

/** The challenger writes grounded, structured replies; the king terse ones. */
const chat: ChatFn = async (model, messages) => {
  const task = messages.at(-1)?.content ?? '';
  if (model === CHALLENGER) {
    return `I will inspect the code first.\n\n\`\`\`bash\ngrep -rn "parse_config" src/ tests/\n\`\`\`\n\nThen fix ${task.slice(0, 60)} with a focused change and run pytest -q tests/ to confirm.`;
  }
  return 'ok';
};

let provider: JudgeProviderStandin;
const root = mkdtempSync(path.join(tmpdir(), 'albedo-verify-'));
const runDir = path.join(root, 'run');

function albedo(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: PACKAGE_ROOT, timeout: 60_000, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A copy of the run directory to tamper with. */
function copyRun(name: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  for (const f of readdirSync(runDir)) copyFileSync(path.join(runDir, f), path.join(dir, f));
  return dir;
}

beforeAll(async () => {
  provider = await startJudgeProviderStandin({ apiKey: 'provider-verify-key' });
  const judge = createJudge({ client: new OpenRouterClient({ apiKey: 'provider-verify-key', baseUrl: provider.baseUrl, backoffBaseMs: 0 }) });
  const prompts = ['Fix the KeyError in parse_config when the name key is missing.', 'Add a retry with backoff to fetch_manifest.', 'Make --dry-run skip uploads in sync_bucket.', 'Test slugify on unicode input.'].map(
    (content, i) => ({ sampleId: `data/train-00000-of-00001.parquet:1:${i}`, messages: [{ role: 'user' as const, content }] }),
  );
  const outcome = await runEval(
    { challengerModelUri: CHALLENGER, kingModelUri: KING, blockHash: '0x' + '5'.repeat(64), sampleCount: prompts.length, winMargin: 0.06 },
    { chat, judge, emit: async () => {}, signal: new AbortController().signal, prompts, evalRunId: '0d9c7c57-3f6e-4f0e-8d55-2a7a4b1c9e10', artifactDir: runDir, verdictConfig: { bootstrapReplicates: 1000 } },
  );
  if (outcome.status !== 'succeeded') throw new Error(`eval failed: ${JSON.stringify(outcome)}`);
}, 60_000);

afterAll(async () => {
  await provider?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('albedo verify (the real binary)', () => {
  it('prints match for an untouched artifact directory, its verdict.json and its file:// URL; --json too', async () => {
    expect(await albedo(['verify', runDir])).toEqual({ code: 0, stdout: 'match\n', stderr: '' });
    expect((await albedo(['verify', path.join(runDir, ARTIFACT_FILES.verdict)])).stdout).toBe('match\n');
    expect((await albedo(['verify', pathToFileURL(path.join(runDir, ARTIFACT_FILES.verdict)).href])).stdout).toBe('match\n');
    const json = await albedo(['verify', runDir, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ match: true });
  }, 60_000);

  it('a tampered judge score prints mismatch with the first differing field and exits 1', async () => {
    const dir = copyRun('tampered-scoring');
    const file = path.join(dir, ARTIFACT_FILES.scoring_results);
    const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const j = rows[1].judge_results[0];
    j.metric_scores.grounding = j.metric_scores.grounding === 0 ? 1 : 0;
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = await albedo(['verify', dir]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^mismatch: (score_challenger|score_breakdown\.by_judge\.\S+): recorded \S+, recomputed \S+\n$/);

    const dir2 = copyRun('tampered-judge');
    const file2 = path.join(dir2, ARTIFACT_FILES.judge_results);
    const lines = readFileSync(file2, 'utf8').trim().split('\n');
    const row = JSON.parse(lines[2] as string);
    row.judge_mean = row.judge_mean === 1 ? 0 : 1;
    lines[2] = JSON.stringify(row);
    writeFileSync(file2, lines.join('\n') + '\n');
    const out2 = await albedo(['verify', dir2, '--json']);
    expect(out2.code).toBe(1);
    expect(JSON.parse(out2.stdout)).toMatchObject({ match: false, firstDifference: { field: 'judge_results[2].judge_mean' } });
  }, 60_000);

  it('a corrupt verdict.json, a missing directory and an eval run id are clean errors (exit 1, no stack)', async () => {
    const dir = copyRun('corrupt');
    writeFileSync(path.join(dir, ARTIFACT_FILES.verdict), '{"type": "verdict", "state": "succ');
    const corrupt = await albedo(['verify', dir]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stdout).toBe('');
    expect(corrupt.stderr).toMatch(/^error: verdict\.json: not valid JSON \(.*\)\n$/);
    const corruptJson = await albedo(['verify', dir, '--json']);
    expect(corruptJson.code).toBe(1);
    expect(JSON.parse(corruptJson.stdout).error).toMatch(/^verdict\.json: not valid JSON/);

    writeFileSync(path.join(dir, ARTIFACT_FILES.verdict), JSON.stringify({ state: 'succeeded', verdict_record: { policy: 'coin-flip' } }));
    expect((await albedo(['verify', dir])).stderr).toBe('error: verdict.json.verdict_record.policy: unknown policy "coin-flip"\n');

    expect(await albedo(['verify', path.join(root, 'nope')])).toMatchObject({ code: 1, stderr: `error: no such artifact directory: ${path.join(root, 'nope')}\n` });
    const byId = await albedo(['verify', '0d9c7c57-3f6e-4f0e-8d55-2a7a4b1c9e10']);
    expect(byId.code).toBe(1);
    expect(byId.stderr).toMatch(/^error: looking up an eval run by id needs the backend: pass --api/);
    const usage = await albedo(['verify']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: albedo verify <artifact-dir | verdict-url | eval-run-id>');
  }, 60_000);

  it('an http verdict URL downloads the artifacts by the URIs inside it and refuses local file URIs', async () => {
    const files = new Map(readdirSync(runDir).map((f) => [`/${f}`, readFileSync(path.join(runDir, f))]));
    const server: Server = createServer((req, res) => {
      const body = files.get(req.url ?? '');
      res.writeHead(body ? 200 : 404).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const verdict = JSON.parse(readFileSync(path.join(runDir, ARTIFACT_FILES.verdict), 'utf8'));
      // As uploaded: every URI points at the server; one file is left pointing at the local disk.
      const remote = { ...verdict, artifacts: Object.fromEntries(Object.entries(ARTIFACT_FILES).map(([name, f]) => [name, `${base}/${f}`])) };
      files.set('/remote-verdict.json', Buffer.from(JSON.stringify(remote)));
      expect(await albedo(['verify', `${base}/remote-verdict.json`])).toEqual({ code: 0, stdout: 'match\n', stderr: '' });
      files.set('/local-uri-verdict.json', Buffer.from(JSON.stringify({ ...remote, artifacts: { ...remote.artifacts, judge_results: verdict.artifacts.judge_results } })));
      const refused = await albedo(['verify', `${base}/local-uri-verdict.json`]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/points judge-results\.jsonl at a local file; refusing/);
      const missing = await albedo(['verify', `${base}/gone.json`]);
      expect(missing).toMatchObject({ code: 1, stderr: `error: cannot download verdict.json from ${base}/gone.json: HTTP 404\n` });
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 60_000);

  it('an s3:// verdict URI is read through its public URL, or with ALBEDO_S3_* credentials', async () => {
    const s3 = await startS3Standin({ bucket: 'albedo-verify' });
    const store = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, forcePathStyle: true });
    try {
      const up = await uploadEvalArtifacts(store, { spoolDir: runDir, artifactPrefix: 's3://albedo-verify/eval_runs/0d9c7c57', evalRunId: '0d9c7c57-3f6e-4f0e-8d55-2a7a4b1c9e10' });
      const verdictUri = up.artifacts.verdict!;
      expect(verdictUri).toBe('s3://albedo-verify/eval_runs/0d9c7c57/verdict.json');
      // The files the replay reads are uploaded public-read (s3rver itself ignores ACLs: an anonymous
      // GET would succeed anyway, so the ACL is asserted on the wire).
      const acls = new Map(s3.requests.filter((r) => r.method === 'PUT').map((r) => [r.url.split('?')[0]!.split('/').pop(), r.acl]));
      for (const f of [ARTIFACT_FILES.verdict, ARTIFACT_FILES.scoring_results, ARTIFACT_FILES.judge_results, ARTIFACT_FILES.generated_samples]) expect(acls.get(f)).toBe('public-read');
      const anonymous = { ALBEDO_DASHBOARD_ARTIFACT_BASE_URL: s3.endpoint, ALBEDO_S3_BUCKET: '', ALBEDO_S3_ACCESS_KEY: '', ALBEDO_S3_SECRET_KEY: '' };
      expect(await albedo(['verify', verdictUri], anonymous)).toEqual({ code: 0, stdout: 'match\n', stderr: '' });
      const gets = s3.requests.length;
      const credentialed = { ALBEDO_DASHBOARD_ARTIFACT_BASE_URL: 'http://127.0.0.1:1', ALBEDO_S3_ENDPOINT: s3.endpoint, ALBEDO_S3_BUCKET: s3.bucket, ALBEDO_S3_ACCESS_KEY: s3.accessKeyId, ALBEDO_S3_SECRET_KEY: s3.secretAccessKey, ALBEDO_S3_REGION: s3.region };
      expect(await albedo(['verify', verdictUri], credentialed)).toEqual({ code: 0, stdout: 'match\n', stderr: '' });
      expect(s3.requests.length).toBeGreaterThan(gets);
      const missing = await albedo(['verify', 's3://albedo-verify/eval_runs/none/verdict.json'], anonymous);
      expect(missing).toMatchObject({ code: 1, stderr: `error: cannot download verdict.json from ${s3.endpoint}/albedo-verify/eval_runs/none/verdict.json: HTTP 404\n` });
    } finally {
      store.close();
      await s3.close();
    }
  }, 60_000);
});
