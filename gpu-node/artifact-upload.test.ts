/**
 * An eval spool written by the real writer (eval-artifacts.ts) uploaded to a real s3rver and to a
 * local store: keys under the run's artifact_prefix, types, visibility, metadata, verdict rewritten
 * to the stored URIs, idempotent re-runs.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_FILES } from '../judge/replay.ts';
import { ArtifactStoreError, LocalDirArtifactStore, S3ArtifactStore, sha256Tagged } from '../persistence/artifact-store.ts';
import { startS3Standin, type S3Standin } from '../persistence/s3-standin.ts';
import { evalArtifactPrefix, evalRunKeySegment, keyPrefixInStore, uploadEvalArtifacts } from './artifact-upload.ts';
import { writeEvalArtifacts } from './eval-artifacts.ts';

const SUBMISSION_ID = '0f6d1c2e-8a4b-4c3d-9e5f-112233445566';
const EVAL_RUN_ID = '3b0f8f5e-7d1c-4c59-9a57-1f2e3d4c5b6a';

let s3: S3Standin;
let store: S3ArtifactStore;
let root: string;

beforeAll(async () => {
  s3 = await startS3Standin();
  store = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, backoffBaseMs: 0 });
  root = await mkdtemp(join(tmpdir(), 'albedo-artifact-upload-'));
});
afterAll(async () => {
  store?.close();
  await s3?.close();
  await rm(root, { recursive: true, force: true });
});

async function spool(name: string): Promise<string> {
  const dir = join(root, name);
  await writeEvalArtifacts({
    dir,
    evalRunId: EVAL_RUN_ID,
    request: { challengerModelUri: 'org/c@sha256:' + 'c'.repeat(64), sampleCount: 1, judge: { system_prompt: 'never public' } },
    events: [{ type: 'generation_started', data: { sampleCount: 1 } }],
    samples: [{ sampleId: 's:0:0', prompt: 'p', kingOutput: 'k', challengerOutput: 'c', kingError: null, chalError: null, target: 't' }],
    records: [],
    logs: [['eval_run_id', EVAL_RUN_ID], ['state', 'succeeded']],
    verdict: { type: 'verdict', eval_run_id: EVAL_RUN_ID, state: 'succeeded', challenger_won: false, score_challenger: 0.25, score_king: 0.75 },
  });
  return dir;
}

describe('eval artifact prefixes', () => {
  it('follows duel.md §2: <root>/submissions/<submission>/eval/<run>, the submission taken from the attempt key if needed', () => {
    expect(evalArtifactPrefix({ submissionId: SUBMISSION_ID, evalRunId: EVAL_RUN_ID })).toBe(`s3://albedo-artifacts/submissions/${SUBMISSION_ID}/eval/${EVAL_RUN_ID}`);
    expect(evalArtifactPrefix({ rootPrefix: 's3://b-x/', attemptKey: `${SUBMISSION_ID}:EVAL:2`, evalRunId: EVAL_RUN_ID })).toBe(`s3://b-x/submissions/${SUBMISSION_ID}/eval/${EVAL_RUN_ID}`);
    expect(evalArtifactPrefix({ rootPrefix: 's3://b-x', evalRunId: `${SUBMISSION_ID}:EVAL:2` })).toBe(`s3://b-x/eval_runs/${SUBMISSION_ID}_EVAL_2`);
    expect(evalRunKeySegment('../x')).toBe('_._x'); // no '..' segment can survive
    expect(() => evalRunKeySegment('')).toThrow(ArtifactStoreError);
  });

  it('maps an s3 prefix into the store: same bucket only for S3, bucket as a directory for the local store', () => {
    expect(keyPrefixInStore(store, `s3://${s3.bucket}/a/b`)).toBe('a/b');
    expect(() => keyPrefixInStore(store, 's3://another-bucket/a')).toThrow(/differs/);
    expect(() => keyPrefixInStore(store, 'https://x/a')).toThrow(ArtifactStoreError);
    expect(() => keyPrefixInStore(store, `s3://${s3.bucket}/a/../b`)).toThrow(ArtifactStoreError);
    expect(keyPrefixInStore(new LocalDirArtifactStore(root), 's3://albedo-artifacts/a')).toBe('albedo-artifacts/a');
    expect(keyPrefixInStore(store, 'plain/prefix/')).toBe('plain/prefix');
  });
});

describe('uploadEvalArtifacts', () => {
  it('uploads the eight run files under the prefix, verdict last and rewritten to the stored URIs', async () => {
    const dir = await spool('run-s3');
    const prefixUri = evalArtifactPrefix({ rootPrefix: `s3://${s3.bucket}`, submissionId: SUBMISSION_ID, evalRunId: EVAL_RUN_ID });
    const keyPrefix = `submissions/${SUBMISSION_ID}/eval/${EVAL_RUN_ID}`;
    const from = s3.requests.length;
    const up = await uploadEvalArtifacts(store, { spoolDir: dir, artifactPrefix: prefixUri, evalRunId: EVAL_RUN_ID });

    expect(up.records.map((r) => r.objectKey.slice(keyPrefix.length + 1))).toEqual([
      'duel-transcript.jsonl', 'generated-samples.jsonl', 'judge-results.jsonl', 'progress.jsonl', 'remote-logs.txt', 'request.json', 'scoring-results.jsonl', 'verdict.json',
    ]);
    expect(Object.fromEntries(up.records.map((r) => [r.objectKey.split('/').at(-1), [r.artifactType, r.public]]))).toEqual({
      'duel-transcript.jsonl': ['EVAL_TRANSCRIPT', true],
      'generated-samples.jsonl': ['GENERATED_SAMPLES', true],
      'judge-results.jsonl': ['JUDGE_RESULTS', true],
      'progress.jsonl': ['REMOTE_PROGRESS', true],
      'remote-logs.txt': ['REMOTE_LOGS', true],
      'request.json': ['EVAL_REQUEST', false],
      'scoring-results.jsonl': ['SCORING_RESULTS', true],
      'verdict.json': ['EVAL_VERDICT', true],
    });
    const requestPut = s3.requests.slice(from).find((r) => r.method === 'PUT' && r.url.includes('request.json'));
    expect(requestPut?.acl).toBeUndefined();

    // Every run file is stored byte for byte.
    for (const r of up.records.slice(0, -1)) {
      const local = await readFile(join(dir, r.objectKey.split('/').at(-1)!));
      expect(Buffer.from(await store.get(r.uri)).equals(local)).toBe(true);
      expect(r.sha256).toBe(sha256Tagged(local));
    }
    // The stored verdict lists the stored URIs; everything else is as on disk.
    const onDisk = JSON.parse(await readFile(join(dir, ARTIFACT_FILES.verdict), 'utf8'));
    const stored = JSON.parse(Buffer.from(await store.get(up.artifacts.verdict!)).toString('utf8'));
    expect(stored.artifacts.request).toBe(`s3://${s3.bucket}/${keyPrefix}/request.json`);
    expect(stored.artifacts.verdict).toBe(`s3://${s3.bucket}/${keyPrefix}/verdict.json`);
    expect(stored.artifact_metadata.progress).toMatchObject({ bucket: s3.bucket, object_key: `${keyPrefix}/progress.jsonl`, sha256: onDisk.artifact_metadata.progress.sha256, size_bytes: onDisk.artifact_metadata.progress.size_bytes });
    expect({ ...stored, artifacts: null, artifact_metadata: null }).toEqual({ ...onDisk, artifacts: null, artifact_metadata: null });
    expect(up.artifactMetadata.verdict?.uri).toBe(up.artifacts.verdict);

    // A re-run (e.g. after a crash mid-upload) sends nothing again.
    const again = await uploadEvalArtifacts(store, { spoolDir: dir, artifactPrefix: prefixUri, evalRunId: EVAL_RUN_ID });
    expect(again.records.every((r) => !r.uploaded)).toBe(true);
    expect(again.artifacts).toEqual(up.artifacts);
  });

  it('works with the local store and refuses a spool without verdict.json', async () => {
    const local = new LocalDirArtifactStore(join(root, 'local-store'));
    const dir = await spool('run-local');
    const up = await uploadEvalArtifacts(local, { spoolDir: dir, artifactPrefix: 's3://albedo-artifacts/eval_runs/r1', evalRunId: 'r1' });
    expect(up.records).toHaveLength(8);
    expect(up.artifacts.verdict).toBe(local.uriOf('albedo-artifacts/eval_runs/r1/verdict.json'));
    const empty = await mkdtemp(join(root, 'empty-'));
    const err = await uploadEvalArtifacts(local, { spoolDir: empty, artifactPrefix: 'x/y', evalRunId: 'r2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactStoreError);
    expect((err as ArtifactStoreError).code).toBe('not_found');
  });
});
