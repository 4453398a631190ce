/**
 * runEval with an artifact store (duel.md §11): the spool is uploaded under the run's artifact prefix,
 * the verdict lists the stored `s3://` URIs, `cleanupLocalArtifacts` removes the spool, and an upload
 * failure is an INFRA fault (retried), never the miner's.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageProgress } from '../core/stage.ts';
import { fixedJudge } from '../tests/support/judge.ts';
import { S3ArtifactStore } from '../persistence/artifact-store.ts';
import { type S3Standin, startS3Standin } from '../persistence/s3-standin.ts';
import { type EvalPrompt, runEval } from './executors.ts';
import { createOpenAiChat } from './openai-chat.ts';
import { startStubVllm, type StubVllm } from './stub-vllm.ts';

let stub: StubVllm;
let s3: S3Standin;
let store: S3ArtifactStore;
const root = mkdtempSync(join(tmpdir(), 'albedo-eval-upload-'));

beforeAll(async () => {
  stub = await startStubVllm({ servedModels: ['org/plain-1', 'org/strong-1'] });
  s3 = await startS3Standin({ bucket: 'albedo-artifacts' });
  store = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, forcePathStyle: true });
});
afterAll(async () => {
  store?.close();
  await s3?.close();
  await stub?.close();
  rmSync(root, { recursive: true, force: true });
});

const judge = fixedJudge(0.7);
const input = { challengerModelUri: 'org/strong-1', kingModelUri: 'org/plain-1', blockHash: '0x99', sampleCount: 2, winMargin: 0.06 };
const prompts: EvalPrompt[] = ['Fix parse_config.', 'Retry fetch_manifest.'].map((content, i) => ({ sampleId: `data/train-00000-of-00001.parquet:0:${i}`, messages: [{ role: 'user', content }] }));
const live = () => new AbortController().signal;

describe('runEval artifact upload', () => {
  it('uploads the spool under the submission prefix and the verdict lists the stored URIs', async () => {
    const submissionId = randomUUID();
    const attemptKey = `${submissionId}:EVAL:1`;
    const dir = join(root, 'kept');
    const events: StageProgress[] = [];
    const chat = createOpenAiChat({ baseUrl: stub.url, requestTimeoutMs: 10_000 });
    const outcome = await runEval(input, { chat, judge, emit: async (p) => void events.push(p), signal: live(), prompts, attemptKey, artifactDir: dir, artifactStore: store });
    expect(outcome.status).toBe('succeeded');
    if (outcome.status !== 'succeeded') return;
    const prefix = `s3://albedo-artifacts/submissions/${submissionId}/eval/${submissionId}_EVAL_1`;
    const artifacts = outcome.result.artifacts as Record<string, string>;
    expect(artifacts.verdict).toBe(`${prefix}/verdict.json`);
    expect(Object.values(artifacts).every((uri) => uri.startsWith(`${prefix}/`))).toBe(true);
    const metadata = outcome.result.artifactMetadata as Record<string, { uri: string; artifact_type: string; sha256: string }>;
    expect(metadata.verdict).toMatchObject({ uri: artifacts.verdict, artifact_type: 'EVAL_VERDICT', sha256: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    expect(Object.keys(metadata)).toHaveLength(8);
    // The verdict event carries the stored URIs too, and the stored verdict lists them.
    const verdictEvent = events.at(-1);
    expect(verdictEvent?.type).toBe('verdict');
    expect((verdictEvent?.data as { artifacts?: Record<string, string> } | undefined)?.artifacts?.verdict).toBe(artifacts.verdict);
    const stored = JSON.parse(Buffer.from(await store.get(artifacts.verdict ?? '')).toString('utf8')) as { artifacts: Record<string, string> };
    expect(stored.artifacts).toEqual(artifacts);
    // Without cleanup the local spool stays (file:// URIs on disk).
    expect(JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8')).artifacts.verdict).toMatch(/^file:\/\//);
  });

  it('an explicit artifact prefix is used as given, and cleanup removes the spool after the upload', async () => {
    const dir = join(root, 'cleaned');
    const chat = createOpenAiChat({ baseUrl: stub.url, requestTimeoutMs: 10_000 });
    const outcome = await runEval(input, { chat, judge, emit: async () => {}, signal: live(), prompts, evalRunId: randomUUID(), artifactDir: dir, artifactStore: store, artifactPrefix: 's3://albedo-artifacts/custom/run-1', cleanupLocalArtifacts: true });
    expect(outcome.status === 'succeeded' && (outcome.result.artifacts as Record<string, string>).verdict).toBe('s3://albedo-artifacts/custom/run-1/verdict.json');
    expect(existsSync(dir)).toBe(false);
  });

  it('an upload failure is an INFRA fault and keeps the spool', async () => {
    const chat = createOpenAiChat({ baseUrl: stub.url, requestTimeoutMs: 10_000 });
    const down = new S3ArtifactStore({ endpoint: 'http://127.0.0.1:1', bucket: 'albedo-artifacts', accessKeyId: 'k', secretAccessKey: 's', region: 'us-east-1', forcePathStyle: true, maxAttempts: 1 });
    const dir = join(root, 'down');
    try {
      const outcome = await runEval(input, { chat, judge, emit: async () => {}, signal: live(), prompts, evalRunId: randomUUID(), artifactDir: dir, artifactStore: down, cleanupLocalArtifacts: true });
      expect(outcome.status === 'failed' && outcome.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error', retryable: true, message: expect.stringContaining('eval artifact upload failed') });
      expect(existsSync(join(dir, 'verdict.json'))).toBe(true);
    } finally {
      down.close();
    }
    // A prefix naming another bucket than the store's is a configuration error: INFRA as well.
    const wrongBucket = await runEval(input, { chat, judge, emit: async () => {}, signal: live(), prompts, evalRunId: randomUUID(), artifactDir: join(root, 'wrong'), artifactStore: store, artifactPrefix: 's3://other-bucket/x' });
    expect(wrongBucket.status === 'failed' && wrongBucket.fault).toMatchObject({ faultClass: 'INFRA_FAULT', code: 'worker_error' });
  });
});
