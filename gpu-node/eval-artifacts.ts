/**
 * Writes the run artifacts of duel.md §11 to a local spool directory of one eval run: sorted-key JSON
 * (request.json indented by 2), JSONL with one compact sorted object per line, verdict.json last
 * because it carries every other file's `file://` URI, sha256 and size (`artifact_metadata`).
 * The spool is then uploaded to the artifact store under `<artifact_prefix>/<file>` when one is
 * configured (gpu-node/artifact-upload.ts); the formats are shared with the replay in judge/replay.ts.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ARTIFACT_CONTENT_TYPES,
  ARTIFACT_FILES,
  ARTIFACT_TYPES,
  type ArtifactName,
  judgeResultRows,
  jsonl,
  scoringRecordRow,
  sha256Hex,
  sortedJson,
} from '../judge/replay.ts';
import type { JudgeSampleRecord } from '../judge/types.ts';

export interface ArtifactMetadata {
  readonly uri: string;
  /** null for the local spool (no bucket yet). */
  readonly bucket: string | null;
  readonly object_key: string | null;
  /** `sha256:<hex>` of the file's bytes. */
  readonly sha256: string;
  readonly size_bytes: number;
  readonly content_type: string;
  readonly artifact_type: string;
}

/** One generated sample of the run (both sides), for generated-samples.jsonl and duel-transcript.jsonl. */
export interface GeneratedSampleRow {
  readonly sampleId: string;
  /** The rendered prompt both models answered (what the judges saw). */
  readonly prompt: string;
  readonly kingOutput: string | null;
  readonly challengerOutput: string | null;
  readonly kingError: string | null;
  readonly chalError: string | null;
  /** The dataset's own next assistant turn, when known. @default null */
  readonly target?: string | null;
}

export interface EvalArtifactsInput {
  readonly dir: string;
  readonly evalRunId: string;
  /** The EvalRequest / stage input as received. */
  readonly request: unknown;
  /** Every host event so far, in order (written with `sequence`, 1-based). */
  readonly events: readonly { readonly type: string; readonly data: Readonly<Record<string, unknown>> }[];
  readonly samples: readonly GeneratedSampleRow[];
  readonly records: readonly JudgeSampleRecord[];
  /** `remote-logs.txt` key=value lines, in order. */
  readonly logs: readonly (readonly [string, string | number])[];
  /** The verdict document without `artifacts` / `artifact_metadata` (added here). */
  readonly verdict: Readonly<Record<string, unknown>>;
}

export interface WrittenArtifacts {
  readonly artifacts: Record<string, string>;
  readonly artifactMetadata: Record<string, ArtifactMetadata>;
  /** The verdict.json document as written. */
  readonly verdict: Record<string, unknown>;
}

async function writeAtomic(path: string, text: string): Promise<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path);
  return bytes;
}

function metadata(name: ArtifactName, path: string, bytes: Uint8Array): ArtifactMetadata {
  return {
    uri: pathToFileURL(path).href,
    bucket: null,
    object_key: null,
    sha256: `sha256:${sha256Hex(bytes)}`,
    size_bytes: bytes.byteLength,
    content_type: ARTIFACT_CONTENT_TYPES[name],
    artifact_type: ARTIFACT_TYPES[name],
  };
}

function sampleRow(evalRunId: string, s: GeneratedSampleRow): Record<string, unknown> {
  return {
    eval_run_id: evalRunId,
    sample_id: s.sampleId,
    prompt: s.prompt,
    previous_king_output: s.kingOutput,
    challenger_output: s.challengerOutput,
    king_error: s.kingOutput === null && s.kingError === null ? 'missing_generation' : s.kingError,
    chal_error: s.challengerOutput === null && s.chalError === null ? 'missing_generation' : s.chalError,
  };
}

/** Writes all eight files (verdict.json last) and returns their URIs and metadata. */
export async function writeEvalArtifacts(input: EvalArtifactsInput): Promise<WrittenArtifacts> {
  const dir = resolve(input.dir);
  await mkdir(dir, { recursive: true });
  const contents: Record<Exclude<ArtifactName, 'verdict'>, string> = {
    request: `${sortedJson(input.request, 2)}\n`,
    progress: jsonl(input.events.map((e, i) => ({ ...e.data, type: e.type, eval_run_id: input.evalRunId, sequence: i + 1 }))),
    generated_samples: jsonl(input.samples.map((s) => sampleRow(input.evalRunId, s))),
    transcript: jsonl(input.samples.map((s) => ({ ...sampleRow(input.evalRunId, s), target: s.target ?? null }))),
    scoring_results: jsonl(input.records.map((r) => scoringRecordRow(input.evalRunId, r))),
    judge_results: jsonl(judgeResultRows(input.evalRunId, input.records)),
    remote_logs: input.logs.map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}\n`).join(''),
  };
  const artifacts: Record<string, string> = {};
  const artifactMetadata: Record<string, ArtifactMetadata> = {};
  for (const name of Object.keys(contents) as (keyof typeof contents)[]) {
    const path = join(dir, ARTIFACT_FILES[name]);
    const meta = metadata(name, path, await writeAtomic(path, contents[name]));
    artifacts[name] = meta.uri;
    artifactMetadata[name] = meta;
  }
  // verdict.json cannot hash itself: its own entry carries the URI only.
  const verdictPath = join(dir, ARTIFACT_FILES.verdict);
  artifacts.verdict = pathToFileURL(verdictPath).href;
  const verdict = { ...input.verdict, artifacts, artifact_metadata: artifactMetadata };
  const bytes = await writeAtomic(verdictPath, `${sortedJson(verdict, 2)}\n`);
  return { artifacts, artifactMetadata: { ...artifactMetadata, verdict: metadata('verdict', verdictPath, bytes) }, verdict };
}
