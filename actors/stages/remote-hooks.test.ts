import { describe, expect, it } from 'vitest';
import type { SubmissionId } from '../../core/ids.ts';
import { MAX_VERDICT_ARTIFACTS, verdictArtifactRows } from './remote-hooks.ts';

const ids = { submissionId: '6f1c0a52-93a4-4c5e-9a7e-3b2d1f0e9c11' as SubmissionId, stageAttemptId: 'a0000000-0000-4000-8000-000000000001' };
const key = 'submissions/6f1c0a52-93a4-4c5e-9a7e-3b2d1f0e9c11/eval/run-1/verdict.json';
const good = { uri: `s3://albedo-artifacts/${key}`, bucket: 'albedo-artifacts', object_key: key, sha256: `sha256:${'ab'.repeat(32)}`, size_bytes: 1234, content_type: 'application/json', artifact_type: 'EVAL_VERDICT' };

describe('verdictArtifactRows (artifact metadata from a GPU node)', () => {
  it('maps a stored object to an artifacts row with the submission and attempt ids', () => {
    expect(verdictArtifactRows({ verdict: good }, ids)).toEqual({
      rows: [{ ...ids, artifactType: 'EVAL_VERDICT', uri: good.uri, bucket: good.bucket, objectKey: key, sha256: good.sha256, sizeBytes: 1234, contentType: 'application/json' }],
      rejected: 0,
    });
  });

  it('skips local spool entries and rejects malformed ones', () => {
    const local = { ...good, uri: 'file:///tmp/spool/verdict.json', bucket: null, object_key: null };
    const bad = [
      { ...good, artifact_type: 'MODEL_WEIGHTS' },
      { ...good, uri: `https://example.com/${key}` },
      { ...good, uri: `s3://albedo-artifacts/${'k'.repeat(2100)}` },
      { ...good, sha256: 'ab'.repeat(32) },
      { ...good, size_bytes: -1 },
      { ...good, size_bytes: '12' },
      { ...good, bucket: 'other-bucket' },
      { ...good, object_key: 'submissions/other/verdict.json' },
      { ...good, content_type: 'x'.repeat(201) },
      null,
      'verdict.json',
    ];
    const result = verdictArtifactRows({ local, ...Object.fromEntries(bad.map((b, i) => [`bad${i}`, b])) }, ids);
    expect(result).toEqual({ rows: [], rejected: bad.length });
    expect(verdictArtifactRows(null, ids)).toEqual({ rows: [], rejected: 0 });
    expect(verdictArtifactRows([good], ids)).toEqual({ rows: [], rejected: 0 });
  });

  it('caps the number of entries read', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_VERDICT_ARTIFACTS + 5 }, (_, i) => [`a${i}`, { ...good, uri: `s3://albedo-artifacts/x/${i}.json`, object_key: `x/${i}.json` }]));
    const result = verdictArtifactRows(many, ids);
    expect(result.rows).toHaveLength(MAX_VERDICT_ARTIFACTS);
    expect(result.rejected).toBe(5);
  });
});
