/**
 * LOCAL STAND-IN for the SWE-ZERO dataset: a few deterministic coding-agent trajectories written as real
 * parquet shards (`data/train-NNNNN-of-MMMMM.parquet`, a `messages` column of JSON-encoded turns) with a
 * hash-pinned manifest. `npm start` and the duel tests sample from it through the production path
 * (manifest pin, v1 sampler, shard sha256 checks, prompt construction); only the content is made up.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Tasks the synthetic trajectories are about (one per row, cycling). */
const TASKS: readonly string[] = [
  'Fix the failing test `test_merge_intervals` in utils/intervals.py.',
  'The Flask endpoint /report returns 500 with `TypeError: Object of type datetime is not JSON serializable`.',
  'Implement an LRU cache with O(1) get/put in src/cache.ts and make the tests pass.',
  'CI fails with `ModuleNotFoundError: No module named yaml`; find the minimal fix.',
  'Add cursor pagination to the GET /items endpoint without breaking existing clients.',
  'A goroutine race appends to a shared slice; make tests pass under -race.',
  'The date parser breaks around DST changes; the regression test is in tests/test_dates.py.',
  'Refactor deploy.sh into functions with error handling; keep its CLI unchanged.',
];

const STEPS: readonly string[] = [
  'Let me look at the repository layout first.\n<tool>ls -R | head -50</tool>',
  'I will open the failing file to see the current implementation.\n<tool>sed -n 1,80p {file}</tool>',
  'The bug is in the boundary check; I will run the test to confirm.\n<tool>pytest -x -q</tool>',
  'Applying a minimal patch to fix the comparison.\n<tool>apply_patch {file}</tool>',
  'Re-running the tests after the patch.\n<tool>pytest -q</tool>',
];

function trajectory(row: number): Array<{ role: string; content: string }> {
  const task = TASKS[row % TASKS.length] as string;
  const file = `src/module_${row}.py`;
  const turns: Array<{ role: string; content: string }> = [
    { role: 'system', content: 'You are a coding agent. Use exactly one tool call per turn.' },
    { role: 'user', content: task },
  ];
  for (const [i, step] of STEPS.entries()) {
    turns.push({ role: 'assistant', content: step.replaceAll('{file}', file) });
    turns.push({ role: 'user', content: `tool output ${row}.${i}: ${i === 2 ? '1 failed, 12 passed' : 'ok'}` });
  }
  return turns;
}

export interface SyntheticDataset {
  readonly root: string;
  readonly manifestPath: string;
  /** sha256 of the manifest file's bytes (the pin). */
  readonly manifestSha256: string;
  readonly totalRows: number;
}

/**
 * Writes the dataset under `root` (idempotent: the same options write the same bytes) and returns
 * its manifest pin. Uses hyparquet-writer, so it is real parquet that the production reader parses.
 */
export async function writeSyntheticDataset(root: string, options: { shards?: number; rowsPerShard?: number } = {}): Promise<SyntheticDataset> {
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const shards = options.shards ?? 2;
  const rowsPerShard = options.rowsPerShard ?? 8;
  const entries: Array<{ name: string; rows: number; sha256: string }> = [];
  for (let s = 0; s < shards; s++) {
    const name = `data/train-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.parquet`;
    const rows = Array.from({ length: rowsPerShard }, (_, r) => s * rowsPerShard + r);
    const bytes = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'messages', data: rows.map((r) => JSON.stringify(trajectory(r))), type: 'STRING' },
          { name: 'instance_id', data: rows.map((r) => `synthetic-${r}`), type: 'STRING' },
        ],
        rowGroupSize: 4,
      }),
    );
    const path = join(root, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    entries.push({ name, rows: rowsPerShard, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  const manifestBytes = Buffer.from(`${JSON.stringify({ shards: entries, total_rows: shards * rowsPerShard }, null, 2)}\n`);
  const manifestPath = join(root, 'manifest.json');
  writeFileSync(manifestPath, manifestBytes);
  return { root, manifestPath, manifestSha256: createHash('sha256').update(manifestBytes).digest('hex'), totalRows: shards * rowsPerShard };
}
