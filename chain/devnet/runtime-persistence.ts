/**
 * Data file of the LOCAL STAND-IN dev chain, so a SIGKILLed node restarts with identical block hashes and
 * state. Format (JSON lines, versioned):
 *
 *   line 1  {"format":"albedo-devnet-chain","version":1, …identity}
 *   line 2  {"t":"snapshot", headers of blocks 0..base, full state at base, time offset}
 *   line 3+ {"t":"block", header, extrinsics, storage changes, time offset}   — one per later block
 *
 * Why append + compaction instead of rewriting a snapshot per block: headers accumulate (every block
 * hash must stay resolvable for the chain reader) and a per-second rewrite of a growing file would cost
 * more and more. Each block is appended synchronously before anyone is told about it; every
 * {@link COMPACT_EVERY_BLOCKS} blocks, and at every start, the file is rewritten atomically (temp file +
 * rename). A torn last line (kill during an append) is ignored on load — that block was never announced.
 * The transaction pool is not persisted, like a node's mempool.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

export const DATA_FILE_FORMAT = 'albedo-devnet-chain';
export const DATA_FILE_VERSION = 1;
/** Blocks appended between two compactions. */
export const COMPACT_EVERY_BLOCKS = 512;

export type DataFileErrorCode = 'io' | 'corrupt' | 'foreign' | 'version' | 'genesis_mismatch';

/** Any problem with the data file; the message always names the file. */
export class DataFileError extends Error {
  override readonly name = 'DataFileError';
  readonly code: DataFileErrorCode;
  readonly file: string;

  constructor(code: DataFileErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(`devnet data file ${file}: ${message}`, options);
    this.code = code;
    this.file = file;
  }
}

/** Identity of the chain a file belongs to (checked on load). */
export interface DataFileIdentity {
  readonly specVersion: number;
  readonly genesisHash: string;
  /** {@link genesisFingerprint} of the options that built the genesis. */
  readonly genesis: string;
  readonly beacon: string;
}

export interface PersistedBlock {
  readonly headerHex: string;
  readonly extrinsics: readonly string[];
}

export interface PersistedChain {
  readonly identity: DataFileIdentity;
  /** Blocks 0..best in order. */
  readonly blocks: readonly PersistedBlock[];
  /** Number of the block whose full state is {@link baseState}. */
  readonly baseNumber: number;
  readonly baseState: ReadonlyArray<readonly [string, string]>;
  /** Storage changes of blocks baseNumber+1..best, in order. */
  readonly diffs: ReadonlyArray<ReadonlyArray<readonly [string, string | null]>>;
  /** Chain time offset (ms) in force at the best block. */
  readonly timeOffsetMs: number;
}

const hex = z.string().regex(/^0x[0-9a-f]*$/);
const headerLine = z.object({
  format: z.literal(DATA_FILE_FORMAT),
  version: z.number().int(),
  specVersion: z.number().int(),
  genesisHash: hex,
  genesis: z.string(),
  beacon: z.string(),
});
const change = z.tuple([hex, hex.nullable()]);
const snapshotLine = z.object({
  t: z.literal('snapshot'),
  blocks: z.array(z.tuple([hex, z.array(hex)])),
  baseState: z.array(z.tuple([hex, hex])),
  timeOffsetMs: z.number().finite(),
});
const blockLine = z.object({ t: z.literal('block'), header: hex, extrinsics: z.array(hex), changes: z.array(change), timeOffsetMs: z.number().finite() });

/** Reads a data file; `null` when it does not exist. Throws {@link DataFileError}. */
export function readDataFile(file: string): PersistedChain | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DataFileError('io', file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n');
  // A complete file ends with "\n"; anything after the last newline is a torn append and is ignored.
  lines.pop();
  const parse = (line: string | undefined, i: number): unknown => {
    try {
      return JSON.parse(line ?? '');
    } catch (e) {
      throw new DataFileError('corrupt', file, `line ${i + 1} is not JSON`, { cause: e });
    }
  };
  if (lines.length === 0) throw new DataFileError('foreign', file, 'is empty or not an albedo-devnet data file (refusing to start over it)');
  const first = parse(lines[0], 0);
  const format = typeof first === 'object' && first !== null ? (first as Record<string, unknown>).format : undefined;
  if (format !== DATA_FILE_FORMAT) throw new DataFileError('foreign', file, 'is not an albedo-devnet data file (refusing to start over it)');
  const header = headerLine.safeParse(first);
  if (!header.success) throw new DataFileError('corrupt', file, `bad header line: ${z.prettifyError(header.error).slice(0, 300)}`);
  if (header.data.version !== DATA_FILE_VERSION) throw new DataFileError('version', file, `format version ${header.data.version}, this node reads version ${DATA_FILE_VERSION}`);
  const snapshot = snapshotLine.safeParse(parse(lines[1], 1));
  if (!snapshot.success) throw new DataFileError('corrupt', file, `bad snapshot line: ${z.prettifyError(snapshot.error).slice(0, 300)}`);
  const blocks: PersistedBlock[] = snapshot.data.blocks.map(([headerHex, extrinsics]) => ({ headerHex, extrinsics }));
  if (blocks.length === 0) throw new DataFileError('corrupt', file, 'snapshot has no blocks');
  const diffs: Array<Array<[string, string | null]>> = [];
  let timeOffsetMs = snapshot.data.timeOffsetMs;
  for (let i = 2; i < lines.length; i++) {
    const parsed = blockLine.safeParse(parse(lines[i], i));
    if (!parsed.success) throw new DataFileError('corrupt', file, `bad block line ${i + 1}: ${z.prettifyError(parsed.error).slice(0, 300)}`);
    blocks.push({ headerHex: parsed.data.header, extrinsics: parsed.data.extrinsics });
    diffs.push(parsed.data.changes);
    timeOffsetMs = parsed.data.timeOffsetMs;
  }
  const identity: DataFileIdentity = { specVersion: header.data.specVersion, genesisHash: header.data.genesisHash, genesis: header.data.genesis, beacon: header.data.beacon };
  return { identity, blocks, baseNumber: snapshot.data.blocks.length - 1, baseState: snapshot.data.baseState, diffs, timeOffsetMs };
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

/** Writes a complete data file atomically: temp file, fsync, rename. */
export function writeDataFile(file: string, chain: PersistedChain): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeAll(fd, `${JSON.stringify({ format: DATA_FILE_FORMAT, version: DATA_FILE_VERSION, ...chain.identity })}\n`);
      const base = chain.blocks.slice(0, chain.baseNumber + 1).map((b) => [b.headerHex, b.extrinsics]);
      writeAll(fd, `${JSON.stringify({ t: 'snapshot', blocks: base, baseState: chain.baseState, timeOffsetMs: chain.timeOffsetMs })}\n`);
      chain.diffs.forEach((changes, i) => {
        const block = chain.blocks[chain.baseNumber + 1 + i];
        if (block === undefined) throw new Error('diff without block');
        writeAll(fd, `${JSON.stringify({ t: 'block', header: block.headerHex, extrinsics: block.extrinsics, changes, timeOffsetMs: chain.timeOffsetMs })}\n`);
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    throw new DataFileError('io', file, `cannot write: ${(e as Error).message}`, { cause: e });
  }
}

/** Appends one block (synchronously, before the block is announced). */
export function appendBlock(file: string, block: PersistedBlock, changes: ReadonlyArray<readonly [string, string | null]>, timeOffsetMs: number): void {
  try {
    appendFileSync(file, `${JSON.stringify({ t: 'block', header: block.headerHex, extrinsics: block.extrinsics, changes, timeOffsetMs })}\n`, 'utf8');
  } catch (e) {
    throw new DataFileError('io', file, `cannot append: ${(e as Error).message}`, { cause: e });
  }
}
