/**
 * §5 sample loading: id parsing, prompt construction against the Python reference
 * (tests/fixtures/pyrandom/gen_prompts.py), and reading rows from sha256-verified parquet shards written
 * on the fly with hyparquet-writer (snappy, gzip, several row groups, nested list<struct> columns).
 */
import { readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError } from './errors.ts';
import { parseMultiSourceManifest, parseSweZeroManifest, sha256Hex } from './manifest.ts';
import { createParquetShardReader, createShardVerifier } from './parquet.ts';
import { buildSample, createSampleLoader, MAX_SAMPLE_ID_LENGTH, parseSampleId, renderFallbackChatTemplate } from './samples.ts';
import { loadPromptFixtures, writeParquetFile } from './test-helpers.ts';
import { datasetRejection as rejection } from '../tests/support/errors.ts';

const fixtures = loadPromptFixtures();
const fixtureRow = (name: string) => fixtures.rows.find((r) => r.name === name)!;


describe('parseSampleId (§5)', () => {
  it('splits at the last two colons', () => {
    expect(parseSampleId('data/train-00001-of-00002.parquet:12:3')).toEqual({ shard: 'data/train-00001-of-00002.parquet', row: 12, turn: 3 });
    expect(parseSampleId('data/train-a:b.parquet:0:0')).toEqual({ shard: 'data/train-a:b.parquet', row: 0, turn: 0 });
    expect(parseSampleId('src/data/train-0.parquet:1:2', { layout: 'v2' })).toEqual({ shard: 'src/data/train-0.parquet', row: 1, turn: 2 });
  });

  it.each([
    ['no colons', 'data/train-0.parquet'],
    ['one colon', 'data/train-0.parquet:1'],
    ['negative row', 'data/train-0.parquet:-1:0'],
    ['signed turn', 'data/train-0.parquet:1:+2'],
    ['fractional row', 'data/train-0.parquet:1.0:2'],
    ['empty turn', 'data/train-0.parquet:1:'],
    ['row over the cap', 'data/train-0.parquet:100000001:0'],
    ['wrong prefix', 'data/test-0.parquet:1:0'],
    ['wrong suffix', 'data/train-0.json:1:0'],
    ['traversal', 'data/train-/../../etc/passwd.parquet:1:0'],
    ['backslash', 'data/train-\\..\\x.parquet:1:0'],
    ['v1 id with a source dir', 'src/data/train-0.parquet:1:0'],
    ['too long', `data/train-${'x'.repeat(MAX_SAMPLE_ID_LENGTH)}.parquet:1:0`],
  ])('rejects %s', (_name, id) => {
    expect(() => parseSampleId(id)).toThrow(expect.objectContaining({ code: 'invalid_sample_id' }));
  });

  it('v2 layout rejects a nested or dot-led directory', () => {
    expect(() => parseSampleId('a/b/data/train-0.parquet:1:0', { layout: 'v2' })).toThrow(DatasetError);
    expect(() => parseSampleId('../data/train-0.parquet:1:0', { layout: 'v2' })).toThrow(DatasetError);
  });
});

describe('buildSample and the fallback template match the Python reference', () => {
  for (const { name, row, cases } of fixtures.rows) {
    it(name, () => {
      for (const c of cases) {
        const sample = buildSample(`id:${c.turn}`, row, c.turn);
        expect({ messages: sample.messages, target: sample.target }).toEqual({ messages: c.messages, target: c.target });
        expect(renderFallbackChatTemplate(sample.messages)).toBe(c.rendered);
      }
    });
  }
});

// ── parquet shards ──────────────────────────────────────────────────────────────────────────────

const CHAT = (fixtureRow('chat list').row.messages as { role: string; content: string }[]).map((m) => ({ role: m.role, content: m.content }));
const MESSAGES_SCHEMA = [
  { name: 'root', num_children: 2 },
  { name: 'messages', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'role', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'content', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'id', type: 'INT64', repetition_type: 'OPTIONAL' },
] as const;

const SHARD0 = 'data/train-00000-of-00002.parquet';
const SHARD1 = 'data/train-00001-of-00002.parquet';

describe('sample loading from parquet shards', () => {
  let root: string;
  const sha: Record<string, string> = {};

  /** Rows of shard 0: row i holds CHAT[: 3 + i]; row 4 is the whole "chat list" fixture conversation. */
  const shard0Rows = [0, 1, 2, 3, 4].map((i) => ({ messages: CHAT.slice(0, 3 + i), id: BigInt(i) }));

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'albedo-dataset-'));
    sha[SHARD0] = await writeParquetFile(join(root, SHARD0), {
      columnData: [
        { name: 'messages', data: shard0Rows.map((r) => r.messages) },
        { name: 'id', data: shard0Rows.map((r) => r.id) },
      ],
      schema: MESSAGES_SCHEMA.map((e) => ({ ...e })),
      rowGroupSize: 2, // three row groups: rows are found across groups
    });
    // Shard 1: the typed row of the fixture, gzip-compressed.
    const typed = fixtureRow('parquet typed row').row;
    sha[SHARD1] = await writeParquetFile(join(root, SHARD1), {
      columnData: [
        { name: '__index_level_0__', data: [5n] },
        { name: 'score', data: [3] },
        { name: 'ratio', data: [0.25] },
        { name: 'count', data: [7] },
        { name: 'name', data: [typed.name as string] },
        { name: 'tags', data: [['a', 'b']] },
        { name: 'meta', data: [JSON.parse(typed.meta as string)] }, // the writer stores JSON.stringify(value)
        { name: 'flag', data: [true] },
        { name: 'big', data: [typed.big as bigint] },
        { name: 'missing', data: [null] },
      ],
      schema: [
        { name: 'root', num_children: 10 },
        { name: '__index_level_0__', type: 'INT64', repetition_type: 'OPTIONAL' },
        { name: 'score', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
        { name: 'ratio', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
        { name: 'count', type: 'INT32', repetition_type: 'OPTIONAL' },
        { name: 'name', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'tags', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'meta', type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type: 'OPTIONAL' },
        { name: 'flag', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
        { name: 'big', type: 'INT64', repetition_type: 'OPTIONAL' },
        { name: 'missing', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ],
      codec: 'GZIP',
      compressors: { GZIP: (input) => new Uint8Array(gzipSync(input)) },
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const manifestWith = (overrides: Record<string, unknown> = {}) =>
    parseSweZeroManifest({
      shards: [
        { name: SHARD0, rows: 5, sha256: sha[SHARD0], ...overrides },
        { name: SHARD1, rows: 1, sha256: `sha256:${sha[SHARD1]}` },
      ],
    });

  it('reads rows across row groups and builds the Python-reference prompts', async () => {
    const loader = createSampleLoader({ datasetRoot: root, manifest: manifestWith() });
    const ids = [`${SHARD0}:4:0`, `${SHARD0}:4:1`, `${SHARD0}:4:2`, `${SHARD0}:0:0`, `${SHARD0}:3:1`, `${SHARD1}:0:0`];
    const samples = await loader.loadAll(ids);
    expect(samples.map((s) => s.sampleId)).toEqual(ids);
    const chat = fixtureRow('chat list').cases;
    for (const t of [0, 1, 2]) expect(samples[t]).toEqual({ sampleId: ids[t], messages: chat[t]!.messages, target: chat[t]!.target });
    expect(samples[3]).toEqual(buildSample(ids[3]!, shard0Rows[0]!, 0));
    expect(samples[4]).toEqual(buildSample(ids[4]!, shard0Rows[3]!, 1));
    const typed = fixtureRow('parquet typed row').cases[0]!;
    expect(samples[5]!.messages).toEqual(typed.messages); // DOUBLE 3.0 prints as 3.0, JSON column stays a string
    expect(await loader.load(`${SHARD0}:2:0`)).toEqual(buildSample(`${SHARD0}:2:0`, shard0Rows[2]!, 0));
  });

  it('reads v2 shards under a source directory', async () => {
    const name = 'src0/data/train-00000-of-00001.parquet';
    const digest = await writeParquetFile(join(root, name), { columnData: [{ name: 'prompt', data: ['hello'], type: 'STRING' }] });
    const manifest = parseMultiSourceManifest({ sources: [{ name: 's', shards: [{ name, rows: 1, sha256: digest, rows_meta: [{ iid: 'a.1', asst: 2 }] }] }] });
    const loader = createSampleLoader({ datasetRoot: root, manifest });
    expect(await loader.load(`${name}:0:1`)).toEqual({ sampleId: `${name}:0:1`, messages: [{ role: 'user', content: 'hello' }], target: null });
  });

  it('refuses a shard whose sha256 differs from the manifest', async () => {
    const loader = createSampleLoader({ datasetRoot: root, manifest: manifestWith({ sha256: 'ab'.repeat(32) }) });
    const error = await rejection(loader.load(`${SHARD0}:0:0`));
    expect(error.code).toBe('shard_hash_mismatch');
    expect(error.message).toBe(`dataset shard ${join(root, SHARD0)} sha256 mismatch: manifest says ${'ab'.repeat(32)}, file has ${sha[SHARD0]}`);
  });

  it('verifies once per path + mtime + size', async () => {
    const file = join(root, 'data/train-cache.parquet');
    const stamp = 1_700_000_000;
    writeFileSync(file, 'aaaa');
    utimesSync(file, stamp, stamp);
    const good = sha256Hex(Buffer.from('aaaa'));
    const verifier = createShardVerifier();
    await verifier.verify(file, good);
    writeFileSync(file, 'bbbb'); // same size, and the mtime is put back: the cached result stands
    utimesSync(file, stamp, stamp);
    await expect(verifier.verify(file, good)).resolves.toBeUndefined();
    writeFileSync(file, 'bbbbb'); // size changed: verified again, and the mismatch is found
    expect((await rejection(verifier.verify(file, good))).code).toBe('shard_hash_mismatch');
    expect((await rejection(createShardVerifier().verify(join(root, 'nope.parquet'), good))).code).toBe('shard_unreadable');
  });

  it('turns truncated, corrupt and non-parquet files into DatasetErrors', async () => {
    const bytes = readFileSync(join(root, SHARD0));
    const reader = createParquetShardReader();
    const cases: [string, Uint8Array][] = [
      ['data/train-trunc-half.parquet', bytes.subarray(0, bytes.length >> 1)],
      ['data/train-trunc-footer.parquet', bytes.subarray(0, bytes.length - 3)],
      ['data/train-garbage.parquet', Buffer.from('this is not parquet at all, just text')],
      ['data/train-empty.parquet', new Uint8Array(0)],
    ];
    for (const [name, content] of cases) {
      writeFileSync(join(root, name), content);
      const manifest = parseSweZeroManifest({ shards: [{ name, rows: 5, sha256: sha256Hex(content) }] });
      const error = await rejection(createSampleLoader({ datasetRoot: root, manifest, reader }).load(`${name}:4:0`));
      expect(error.code, name).toBe('invalid_parquet');
      expect(error.message).toContain('is not a readable parquet file');
    }
    // Scrambled page bytes with an intact footer: either a DatasetError or a decoded row, never a crash.
    const scrambled = Buffer.from(bytes);
    for (let i = 8; i < scrambled.length >> 1; i += 7) scrambled[i] = (scrambled[i]! * 31 + 17) & 0xff;
    writeFileSync(join(root, 'data/train-scrambled.parquet'), scrambled);
    for (const row of [0, 2, 4]) {
      await reader.readRow(join(root, 'data/train-scrambled.parquet'), row).catch((error: unknown) => {
        expect(error).toBeInstanceOf(DatasetError);
      });
    }
  });

  it('reports rows past the end, unlisted shards, missing hashes, missing files and unsupported codecs', async () => {
    const loader = createSampleLoader({ datasetRoot: root, manifest: manifestWith() });
    expect((await rejection(loader.load(`${SHARD0}:5:0`))).code).toBe('row_out_of_range');
    expect((await rejection(loader.load('data/train-99999-of-99999.parquet:0:0'))).code).toBe('shard_not_in_manifest');
    expect((await rejection(loader.load('data/x.parquet:0:0'))).code).toBe('invalid_sample_id');

    const unpinned = parseSweZeroManifest({ shards: [{ name: SHARD0, rows: 5 }] });
    expect((await rejection(createSampleLoader({ datasetRoot: root, manifest: unpinned }).load(`${SHARD0}:0:0`))).code).toBe('shard_hash_missing');
    await expect(createSampleLoader({ datasetRoot: root, manifest: unpinned, requireShardHash: false }).load(`${SHARD0}:0:0`)).resolves.toMatchObject({
      target: CHAT[2]!.content,
    });

    const absent = parseSweZeroManifest({ shards: [{ name: 'data/train-absent.parquet', rows: 1, sha256: 'ab'.repeat(32) }] });
    expect((await rejection(createSampleLoader({ datasetRoot: root, manifest: absent }).load('data/train-absent.parquet:0:0'))).code).toBe('shard_unreadable');

    const lz4 = 'data/train-lz4.parquet';
    const digest = await writeParquetFile(join(root, lz4), {
      columnData: [{ name: 'prompt', data: ['x'.repeat(100)], type: 'STRING' }],
      codec: 'LZ4_RAW',
      compressors: { LZ4_RAW: (input) => input },
    });
    const manifest = parseSweZeroManifest({ shards: [{ name: lz4, rows: 1, sha256: digest }] });
    const error = await rejection(createSampleLoader({ datasetRoot: root, manifest }).load(`${lz4}:0:0`));
    expect(error.code).toBe('unsupported_codec');
    expect(error.message).toContain('LZ4_RAW');
  });

  it('numRows reads the footer only', async () => {
    expect(await createParquetShardReader().numRows(join(root, SHARD0))).toBe(5);
    truncateSync(join(root, 'data/train-cache.parquet'), 0);
  });
});
