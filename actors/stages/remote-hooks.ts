import { AlbedoError, stageFault } from '../../core/faults.ts';
import type { SubmissionId } from '../../core/ids.ts';
import type { EvalInput, PreEvalInput } from '../../core/stage.ts';
import { isArtifactType, isValidBucketName, parseS3Uri } from '../../persistence/artifact-store.ts';
import { MAX_ARTIFACT_URI_LENGTH, type NewArtifactRow, recordArtifact } from '../../persistence/artifacts.ts';
import type { Tx } from '../../persistence/db.ts';
import type { StageHooks } from '../stage-service.ts';

/** Most artifacts one verdict may list (a run has eight files). @default 32 */
export const MAX_VERDICT_ARTIFACTS = 32;
/** Longest `content_type` accepted from a node. @default 200 */
export const MAX_ARTIFACT_CONTENT_TYPE_LENGTH = 200;

const SHA256_TAGGED = /^sha256:[0-9a-f]{64}$/;

/**
 * The `artifacts` rows a verdict's `artifactMetadata` (duel.md §10 `artifact_metadata`) describes.
 * The map comes from a GPU node, so every entry is checked: a known artifact type, an `s3://` URI of
 * bounded length that names the entry's own bucket and key, a `sha256:<hex>` digest, a safe size.
 * Entries failing a check are left out (the verdict itself stands: a bad listing is not a bad duel);
 * `file://` entries are the node's local spool, not stored objects, and are not recorded.
 */
export function verdictArtifactRows(metadata: unknown, ids: { readonly submissionId: SubmissionId; readonly stageAttemptId: string }): { rows: NewArtifactRow[]; rejected: number } {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return { rows: [], rejected: 0 };
  const entries = Object.values(metadata as Record<string, unknown>);
  const rows: NewArtifactRow[] = [];
  let rejected = Math.max(0, entries.length - MAX_VERDICT_ARTIFACTS);
  for (const entry of entries.slice(0, MAX_VERDICT_ARTIFACTS)) {
    const m = (entry ?? {}) as Record<string, unknown>;
    const { uri, bucket, object_key: objectKey, sha256, size_bytes: sizeBytes, content_type: contentType, artifact_type: artifactType } = m;
    if (typeof uri === 'string' && uri.startsWith('file://')) continue;
    const valid =
      typeof uri === 'string' &&
      uri.length <= MAX_ARTIFACT_URI_LENGTH &&
      uri.startsWith('s3://') &&
      isArtifactType(artifactType) &&
      typeof bucket === 'string' &&
      isValidBucketName(bucket) &&
      typeof objectKey === 'string' &&
      typeof sha256 === 'string' &&
      SHA256_TAGGED.test(sha256) &&
      typeof sizeBytes === 'number' &&
      Number.isSafeInteger(sizeBytes) &&
      sizeBytes >= 0 &&
      (contentType === null || contentType === undefined || (typeof contentType === 'string' && contentType.length <= MAX_ARTIFACT_CONTENT_TYPE_LENGTH)) &&
      namesObject(uri, bucket, objectKey);
    if (!valid) {
      rejected += 1;
      continue;
    }
    rows.push({
      submissionId: ids.submissionId,
      stageAttemptId: ids.stageAttemptId,
      artifactType,
      uri,
      bucket,
      objectKey,
      sha256,
      sizeBytes,
      contentType: typeof contentType === 'string' ? contentType : null,
    });
  }
  return { rows, rejected };
}

/** `uri` is exactly `s3://<bucket>/<objectKey>` with a valid key. */
function namesObject(uri: string, bucket: string, objectKey: string): boolean {
  try {
    const parsed = parseS3Uri(uri);
    return parsed.bucket === bucket && parsed.key === objectKey;
  } catch {
    return false;
  }
}

/** Records the verdict's stored artifacts in the finaliser's transaction (idempotent per object). */
async function recordVerdictArtifacts(tx: Tx, metadata: unknown, ids: { readonly submissionId: SubmissionId; readonly stageAttemptId: string }): Promise<void> {
  for (const row of verdictArtifactRows(metadata, ids).rows) {
    try {
      await recordArtifact(tx, row);
    } catch (error) {
      // Same URI already recorded with other bytes: the first record stands (artifacts are immutable),
      // and the check runs before any failed statement, so the transaction is still usable.
      if (!(error instanceof AlbedoError && error.code === 'CONFLICT')) throw error;
    }
  }
}

/** v1 defaults (spec/duel.md): 128 samples, 6 % margin. */
export const DEFAULT_EVAL_SAMPLE_COUNT = 128;
export const DEFAULT_WIN_MARGIN = 0.06;

/** PRE_EVAL: the input a GPU node needs, and the cached verdict row (spec §8 `sanity_results`). */
export const preEvalHooks: StageHooks = {
  async buildInput(tx, attempt) {
    const { rows } = await tx.query<{ model_uri: string; block_hash: string | null; commit_hash: string }>(
      `SELECT ms.model_uri, cc.block_hash, ms.commit_hash FROM model_submissions ms JOIN chain_commits cc ON cc.id = ms.chain_commit_id WHERE ms.id = $1`,
      [attempt.submission_id],
    );
    const r = rows[0];
    if (!r?.block_hash) return stageFault('INFRA_FAULT', 'worker_error', 'submission has no reveal block hash to seed pre-eval');
    return { modelUri: r.model_uri, blockHash: r.block_hash } satisfies PreEvalInput as unknown as Record<string, unknown>;
  },
  async onFinalized(tx, attempt, outcome) {
    const input = (attempt.input_snapshot ?? {}) as Partial<PreEvalInput>;
    const digest = (input.modelUri ?? '').split('@').pop() ?? '';
    const passed = outcome.status === 'succeeded';
    const minerFault = outcome.status === 'failed' && outcome.fault.faultClass === 'MINER_FAULT';
    // Only verdicts about the model are cached; infra failures say nothing about it (spec §9.7).
    if (!passed && !minerFault) return;
    await tx.query(
      `INSERT INTO sanity_results (model_uri, digest, submission_id, attempt_id, passed, fault_code, reason, responses)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest, attempt_id) DO NOTHING`,
      [
        input.modelUri ?? '',
        digest,
        attempt.submission_id,
        attempt.id,
        passed,
        outcome.status === 'failed' ? outcome.fault.code : null,
        outcome.status === 'failed' ? outcome.fault.message : 'passed',
        outcome.status === 'succeeded' ? outcome.result : null,
      ],
    );
  },
};

export interface EvalHookOptions {
  /** @default DEFAULT_EVAL_SAMPLE_COUNT */
  readonly sampleCount?: number;
  /** @default DEFAULT_WIN_MARGIN */
  readonly winMargin?: number;
  readonly protocolVersion?: 'v1' | 'v2';
}

/**
 * EVAL: the king is read when the attempt first starts (slot 1 of the ACTIVE reign, spec §4.4
 * step 6) and recorded with the challenger in `eval_runs`; the verdict lands in the same row in the
 * transaction that finalises the attempt.
 */
export function evalHooks(options: EvalHookOptions = {}): StageHooks {
  return {
    async buildInput(tx, attempt) {
      const sub = await tx.query<{ model_uri: string; model_hash: string | null; commit_hash: string; block_hash: string | null }>(
        `SELECT ms.model_uri, ms.model_hash, ms.commit_hash, cc.block_hash FROM model_submissions ms JOIN chain_commits cc ON cc.id = ms.chain_commit_id WHERE ms.id = $1`,
        [attempt.submission_id],
      );
      const king = await tx.query<{ submission_id: string; model_hash: string; uri: string | null }>(
        `SELECT m.submission_id, m.model_hash,
                (SELECT a.uri FROM king_versions kv JOIN artifacts a ON a.id = kv.artifact_id WHERE kv.id = m.king_version_id) AS uri
         FROM reigns r JOIN reign_members m ON m.reign_id = r.id AND m.slot = 1 WHERE r.state = 'ACTIVE'`,
      );
      const s = sub.rows[0];
      const k = king.rows[0];
      if (!s?.block_hash) return stageFault('INFRA_FAULT', 'unexpected', 'submission has no reveal block hash to seed sampling');
      if (!k?.uri) return stageFault('INFRA_FAULT', 'missing_active_lead_king', 'no ACTIVE reign with a slot-1 king and model manifest');
      const input: EvalInput = {
        challengerModelUri: s.model_uri,
        kingModelUri: k.uri,
        blockHash: s.block_hash,
        sampleCount: options.sampleCount ?? DEFAULT_EVAL_SAMPLE_COUNT,
        winMargin: options.winMargin ?? DEFAULT_WIN_MARGIN,
      };
      await tx.query(
        `INSERT INTO eval_runs (submission_id, stage_attempt_id, king_submission_id, king_model_hash, challenger_model_hash, remote_host_id,
           state, dataset_sample_seed, sample_count, win_policy, protocol_version)
         VALUES ($1, $2, $3, $4, $5, $6, 'DISPATCHED', $7, $8, 'margin', $9)`,
        [attempt.submission_id, attempt.id, k.submission_id, k.model_hash, s.model_hash ?? s.commit_hash, attempt.worker_id, s.block_hash, input.sampleCount, options.protocolVersion ?? 'v1'],
      );
      return input as unknown as Record<string, unknown>;
    },
    async onFinalized(tx, attempt, outcome) {
      if (outcome.status === 'succeeded') {
        const v = outcome.result as Record<string, number | boolean | string | null>;
        // spec duel.md §10: the verdict's statistics and counts land in the row; win_lcb / win_policy come
        // from the verdict rules (judge/verdict.ts), `margin` when a node predates them.
        await tx.query(
          `UPDATE eval_runs SET state = 'SUCCEEDED', score_challenger = $2, score_king = $3, win_margin = $4, challenger_won = $5,
             scored_sample_count = $6, judge_count = $7, generated_sample_count = $8, win_lcb = $9, win_policy = coalesce($10, win_policy),
             valid_turns = $11, total_turns = $12, king_vllm_errors = $13, chal_vllm_errors = $14, judge_errors = $15, finished_at = now()
           WHERE stage_attempt_id = $1`,
          [
            attempt.id,
            v.scoreChallenger ?? null,
            v.scoreKing ?? null,
            v.winMargin ?? null,
            v.challengerWon === true,
            v.scoredSampleCount ?? null,
            v.judgeCount ?? null,
            v.sampleCount ?? null,
            typeof v.winLcb === 'number' ? v.winLcb : null,
            typeof v.winPolicy === 'string' ? v.winPolicy : null,
            typeof v.validTurns === 'number' ? v.validTurns : null,
            typeof v.totalTurns === 'number' ? v.totalTurns : null,
            typeof v.kingVllmErrors === 'number' ? v.kingVllmErrors : null,
            typeof v.chalVllmErrors === 'number' ? v.chalVllmErrors : null,
            typeof v.judgeErrors === 'number' ? v.judgeErrors : null,
          ],
        );
        // duel.md §10-§11: the uploaded run artifacts become `artifacts` rows with the verdict.
        await recordVerdictArtifacts(tx, (outcome.result as Record<string, unknown>).artifactMetadata, {
          submissionId: attempt.submission_id as SubmissionId,
          stageAttemptId: attempt.id,
        });
      } else {
        await tx.query(
          `UPDATE eval_runs SET state = $2, fault_class = $3, fault_code = $4, fault_message = $5, finished_at = now() WHERE stage_attempt_id = $1`,
          [attempt.id, outcome.fault.retryable ? 'FAILED_RETRYABLE' : 'FAILED_TERMINAL', outcome.fault.faultClass, outcome.fault.code, outcome.fault.message],
        );
      }
    },
  };
}
