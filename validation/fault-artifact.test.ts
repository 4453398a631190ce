/**
 * The validation fault.json (spec/validation.md §10): key layout, body shape, byte-exact Python
 * `json.dumps(sort_keys=True, indent=2)` serialisation (expected strings produced by CPython 3), and the
 * upload + VALIDATION_FAULT row against real s3rver / temp-dir stores and a real Postgres.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageFault } from '../core/faults.ts';
import type { SubmissionId } from '../core/ids.ts';
import { PyFloat } from '../core/py-compat.ts';
import { ArtifactStoreError, LocalDirArtifactStore, S3ArtifactStore, sha256Tagged } from '../persistence/artifact-store.ts';
import { listArtifacts } from '../persistence/artifacts.ts';
import { inTx } from '../persistence/db.ts';
import { insertSubmission } from '../persistence/submissions.ts';
import { freshDatabase, type TestDatabase, testServers } from '../tests/support/pg.ts';
import { startS3Standin, type S3Standin } from '../persistence/s3-standin.ts';
import { faultDigestComponent, pyJsonDumpsIndent2, uploadValidationFault, validationFaultBody, validationFaultKey } from './fault-artifact.ts';

// Generated with CPython 3: json.dumps(body, sort_keys=True, indent=2) of the same documents.
const PY_DUPLICATE = "{\n  \"block_number\": 4242,\n  \"candidates_checked\": 20,\n  \"divergence\": 1e-05,\n  \"duplicate_of\": \"bob/albedo-qwen3.6-35b-y@sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\n  \"duplicate_of_coldkey\": null,\n  \"duplicate_of_hotkey\": \"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\",\n  \"exact_weights_match\": false,\n  \"fault_class\": \"MINER_FAULT\",\n  \"fault_code\": \"duplicate\",\n  \"fault_message\": \"duplicate of bob/albedo-qwen3.6-35b-y@sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd: similarity 0.987654 >= 0.95 threshold\",\n  \"hotkey\": \"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\",\n  \"model_uri\": \"alice/albedo-qwen3.6-35b-x@sha256:abababababababababababababababababababababababababababababababab\",\n  \"reason\": \"near_duplicate\",\n  \"same_coldkey\": false,\n  \"similarity\": 0.9876543,\n  \"threshold\": 0.95\n}";
const PY_EXACT = "{\n  \"block_number\": 1,\n  \"divergence\": 0.0,\n  \"fault_class\": \"MINER_FAULT\",\n  \"fault_code\": \"duplicate\",\n  \"fault_message\": \"m\",\n  \"hotkey\": \"h\",\n  \"model_uri\": \"x\",\n  \"reason\": \"exact\",\n  \"similarity\": 1.0,\n  \"threshold\": 0.95\n}";
const PY_NON_DUPLICATE = "{\n  \"block_number\": null,\n  \"details\": {\n    \"checks\": [\n      {\n        \"name\": \"weight_dtype\",\n        \"status\": \"failed\"\n      },\n      {\n        \"name\": \"repo_name\",\n        \"status\": \"passed\"\n      }\n    ],\n    \"count\": 3,\n    \"empty\": {},\n    \"nested\": {\n      \"a\": null,\n      \"z\": true\n    },\n    \"none\": [],\n    \"ratio\": 0.5\n  },\n  \"fault_class\": \"MINER_FAULT\",\n  \"fault_code\": \"weight_dtype\",\n  \"fault_message\": \"tensor 'lm_head.weight' has dtype F32, expected BF16 \\u2014 \\u00fcn\\u00efcode \\u2603 \\ud83d\\ude00\",\n  \"hotkey\": \"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\",\n  \"model_uri\": \"alice/albedo-qwen3.6-35b-x@sha256:abababababababababababababababababababababababababababababababab\"\n}";

const HOTKEY = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const MODEL_URI = `alice/albedo-qwen3.6-35b-x@${DIGEST}`;
const DUP_OF = `bob/albedo-qwen3.6-35b-y@sha256:${'cd'.repeat(32)}`;

const dedupDetail = {
  reason: 'near_duplicate',
  similarity: 0.9876543,
  threshold: 0.95,
  duplicate_of: DUP_OF,
  duplicate_of_hotkey: '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty',
  duplicate_of_coldkey: null,
  same_coldkey: false,
  candidates_checked: 20,
  exact_weights_match: false,
  divergence: 1e-5,
};
const duplicateInput = {
  modelUri: MODEL_URI,
  hotkey: HOTKEY,
  digest: DIGEST,
  blockNumber: 4242,
  fault: stageFault('MINER_FAULT', 'duplicate', `duplicate of ${DUP_OF}: similarity 0.987654 >= 0.95 threshold`),
  dedupDetail,
  resultSummary: { ignored: 'for duplicates' },
};
const dtypeInput = {
  modelUri: MODEL_URI,
  hotkey: HOTKEY,
  digest: DIGEST,
  blockNumber: null,
  fault: stageFault('MINER_FAULT', 'weight_dtype', "tensor 'lm_head.weight' has dtype F32, expected BF16 — ünïcode ☃ 😀"),
  dedupDetail: null,
  resultSummary: {
    checks: [
      { name: 'weight_dtype', status: 'failed' },
      { name: 'repo_name', status: 'passed' },
    ],
    empty: {},
    none: [],
    ratio: 0.5,
    count: 3,
    nested: { z: true, a: null },
  },
};

describe('fault.json document', () => {
  it('lays the key out as hippius_validation/<hotkey>/<digest with : → _>/fault.json', () => {
    expect(validationFaultKey(HOTKEY, DIGEST)).toBe(`hippius_validation/${HOTKEY}/sha256_${'ab'.repeat(32)}/fault.json`);
    expect(validationFaultKey(HOTKEY, 'f'.repeat(40))).toBe(`hippius_validation/${HOTKEY}/${'f'.repeat(40)}/fault.json`);
  });

  it('refuses unsafe hotkeys and maps an unparseable digest to a stable hashed component', () => {
    for (const hotkey of ['', '../etc', 'a/b', 'x'.repeat(65), '.hidden', 'hk\n']) expect(() => validationFaultKey(hotkey, DIGEST), JSON.stringify(hotkey)).toThrow(ArtifactStoreError);
    const evil = faultDigestComponent('../../x');
    expect(evil).toMatch(/^unparsed_[0-9a-f]{16}$/);
    expect(faultDigestComponent('../../x')).toBe(evil);
    expect(faultDigestComponent('')).toMatch(/^unparsed_/);
    expect(validationFaultKey(HOTKEY, 'a/b')).toMatch(new RegExp(`^hippius_validation/${HOTKEY}/unparsed_[0-9a-f]{16}/fault.json$`));
  });

  it('spreads the dedup detail for duplicates, and writes {details: result_summary} otherwise', () => {
    const dup = validationFaultBody(duplicateInput);
    expect(dup).toMatchObject({ model_uri: MODEL_URI, hotkey: HOTKEY, block_number: 4242, fault_class: 'MINER_FAULT', fault_code: 'duplicate', reason: 'near_duplicate', duplicate_of: DUP_OF, candidates_checked: 20 });
    expect(dup).not.toHaveProperty('details');
    const other = validationFaultBody(dtypeInput);
    expect(Object.keys(other).sort()).toEqual(['block_number', 'details', 'fault_class', 'fault_code', 'fault_message', 'hotkey', 'model_uri']);
    expect(other.details).toEqual(dtypeInput.resultSummary);
    // A detail can never overwrite the identity fields.
    const forged = validationFaultBody({ ...duplicateInput, dedupDetail: { ...dedupDetail, hotkey: 'someone-else', fault_code: 'none' } });
    expect([forged.hotkey, forged.fault_code]).toEqual([HOTKEY, 'duplicate']);
  });

  it('serialises byte-exactly like Python json.dumps(sort_keys=True, indent=2)', () => {
    expect(pyJsonDumpsIndent2(validationFaultBody(duplicateInput))).toBe(PY_DUPLICATE);
    expect(pyJsonDumpsIndent2(validationFaultBody(dtypeInput))).toBe(PY_NON_DUPLICATE);
    // Integral similarity / divergence are Python floats (1.0, 0.0), not ints.
    const exact = validationFaultBody({ modelUri: 'x', hotkey: 'h', digest: 'd', blockNumber: 1, fault: { faultClass: 'MINER_FAULT', code: 'duplicate', message: 'm' }, dedupDetail: { reason: 'exact', similarity: 1, threshold: 0.95, divergence: 0 } });
    expect(pyJsonDumpsIndent2(exact)).toBe(PY_EXACT);
    expect(pyJsonDumpsIndent2({ a: [], b: {}, c: new PyFloat(2) })).toBe('{\n  "a": [],\n  "b": {},\n  "c": 2.0\n}');
  });

  it('caps nesting depth', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(() => pyJsonDumpsIndent2(deep)).toThrow(/deeper/);
  });
});

for (const server of testServers()) {
  describe(`uploadValidationFault on ${server.name} Postgres`, () => {
    let t: TestDatabase;
    let s3: S3Standin;
    let s3Store: S3ArtifactStore;
    let root: string;
    let n = 0;

    beforeAll(async () => {
      t = await freshDatabase(server);
      s3 = await startS3Standin();
      s3Store = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, backoffBaseMs: 0 });
      root = await mkdtemp(join(tmpdir(), 'albedo-fault-artifact-'));
    });
    afterAll(async () => {
      s3Store?.close();
      await s3?.close();
      await t?.drop();
      await rm(root, { recursive: true, force: true });
    });

    async function submission(hotkey: string): Promise<SubmissionId> {
      n += 1;
      return inTx(t.db, async (tx) => (await insertSubmission(tx, { netuid: 97, hotkey, uid: n, blockNumber: 4242, blockHash: `0x${'ab'.repeat(32)}`, repo: 'alice/albedo-qwen3.6-35b-x', digest: DIGEST, raw: `r${n}` })).id);
    }

    it('uploads public-read to S3, records a VALIDATION_FAULT row and returns the fault uri', async () => {
      const hotkey = `${HOTKEY.slice(0, 40)}S3`;
      const submissionId = await submission(hotkey);
      const from = s3.requests.length;
      const out = await inTx(t.db, (tx) => uploadValidationFault(s3Store, tx, { ...duplicateInput, hotkey, submissionId }));
      const key = `hippius_validation/${hotkey}/sha256_${'ab'.repeat(32)}/fault.json`;
      expect(out.faultUri).toBe(`s3://${s3.bucket}/${key}`);
      const bytes = await s3Store.get(out.faultUri);
      expect(Buffer.from(bytes).toString('utf8')).toBe(PY_DUPLICATE.replace(HOTKEY, hotkey));
      expect(s3.requests.slice(from).find((r) => r.method === 'PUT')?.acl).toBe('public-read');
      const rows = await listArtifacts(t.db, submissionId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ artifact_type: 'VALIDATION_FAULT', storage_backend: 's3', uri: out.faultUri, bucket: s3.bucket, object_key: key, sha256: sha256Tagged(bytes), size_bytes: bytes.byteLength, content_type: 'application/json' });
    });

    it('is idempotent, and a re-run with another message replaces the object and updates the row', async () => {
      const hotkey = `${HOTKEY.slice(0, 40)}LOCAL`;
      const submissionId = await submission(hotkey);
      const store = new LocalDirArtifactStore(join(root, 'store'));
      const first = await uploadValidationFault(store, t.db, { ...dtypeInput, hotkey, submissionId });
      const again = await uploadValidationFault(store, t.db, { ...dtypeInput, hotkey, submissionId });
      expect(again.faultUri).toBe(first.faultUri);
      expect(again.row.id).toBe(first.row.id);
      expect(first.faultUri.startsWith('file://')).toBe(true);
      const reworded = await uploadValidationFault(store, t.db, { ...dtypeInput, hotkey, submissionId, fault: stageFault('MINER_FAULT', 'weight_dtype', 'reworded (2 strikes left)') });
      expect(reworded.row.id).toBe(first.row.id);
      expect(reworded.row.sha256).not.toBe(first.row.sha256);
      const rows = await listArtifacts(t.db, submissionId);
      expect(rows.map((r) => [r.storage_backend, r.sha256])).toEqual([['local-cache', reworded.record.sha256]]);
      expect(Buffer.from(await store.get(reworded.faultUri)).toString()).toContain('reworded (2 strikes left)');
    });
  });
}
