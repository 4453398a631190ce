import { z } from 'zod';
import { FAULT_CLASSES, FAULT_CODES } from '../core/faults.ts';
import { STAGES } from '../core/ids.ts';
import { SUBMISSION_STATES } from '../core/states.ts';

/** Zod schemas of every RPC input: outside input, so every string and array is capped. */

const uuid = z.string().uuid();
export const attemptKeySchema = z.string().regex(/^[0-9a-f-]{36}:(HIPPIUS|PRE_EVAL|EVAL|SET_REIGN|WEIGHT_SET):[1-9][0-9]{0,5}$/, 'expected <submission uuid>:<STAGE>:<n>');
export const hotkeySchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, 'hotkey must be an SS58 address or a dev key name');
const nodeIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);
const epochSchema = z.string().uuid();
const jsonRecord = z.record(z.string().max(128), z.unknown());

export const listSubmissionsInput = z.object({
  state: z.enum(SUBMISSION_STATES).optional(),
  hotkey: hotkeySchema.optional(),
  limit: z.number().int().min(1).max(500).default(50),
  before: z.coerce.date().optional(),
});
export const byIdInput = z.object({ id: uuid });
export const limitInput = z.object({ limit: z.number().int().min(1).max(500).default(50) });
export const evalRunIdInput = z.object({ evalRunId: uuid });
export const transitionsInput = z.object({
  submissionId: uuid.optional(),
  /** Resume cursor; set automatically by the wsLink from the last tracked() id after a reconnect. */
  lastEventId: z.string().regex(/^\d{1,18}$/).nullish(),
});

export const operatorRetryInput = z.object({ id: uuid, reason: z.string().min(1).max(500).default('operator retry') });
export const operatorCancelInput = z.object({ id: uuid, reason: z.string().min(1).max(500) });
export const banInput = z.object({ hotkey: hotkeySchema, reason: z.string().min(1).max(500) });
export const unbanInput = z.object({ hotkey: hotkeySchema });

export const stageStartInput = z.object({ attemptKey: attemptKeySchema, epoch: epochSchema });
export const stageWatchInput = z.object({ attemptKey: attemptKeySchema, lastEventId: z.string().regex(/^\d{1,18}$/).nullish() });
export const stageKeyInput = z.object({ attemptKey: attemptKeySchema });

const faultSchema = z.object({
  faultClass: z.enum(FAULT_CLASSES),
  code: z.enum(FAULT_CODES),
  message: z.string().max(4000),
  retryable: z.boolean(),
  countsAgainstBudget: z.boolean(),
});
export const outcomeSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('succeeded'), result: jsonRecord }),
  z.object({ status: z.literal('failed'), fault: faultSchema }),
]);

export const nodeHelloInput = z.object({
  role: z.enum(['PRE_EVAL', 'EVAL']),
  gpuCount: z.number().int().min(0).max(1024),
  maxConcurrent: z.number().int().min(1).max(64).default(1),
  acceleratorType: z.string().max(64).optional(),
  capabilities: jsonRecord.default({}),
});
export const nodeHeartbeatInput = z.object({ running: z.array(attemptKeySchema).max(256) });
export const nodeAcceptInput = z.object({ attemptKey: attemptKeySchema, epoch: epochSchema, runId: z.string().min(1).max(128) });
export const nodeReportInput = z.object({
  attemptKey: attemptKeySchema,
  epoch: epochSchema,
  /** Reporter sequence: a re-sent report with the same seq is acknowledged without effect. */
  seq: z.number().int().min(1).max(2_147_483_646),
  progress: z.object({ type: z.string().min(1).max(64), data: jsonRecord }).optional(),
  outcome: outcomeSchema.optional(),
});
export const nodeJudgeInput = z.object({
  attemptKey: attemptKeySchema,
  epoch: epochSchema,
  samples: z
    .array(
      z.object({
        sampleId: z.string().min(1).max(256),
        prompt: z.string().max(400_000),
        kingAnswer: z.string().max(400_000),
        challengerAnswer: z.string().max(400_000),
        sampleIndex: z.number().int().min(0).optional(),
      }),
    )
    .min(1)
    .max(512),
  totalSampleCount: z.number().int().min(1).max(4096).optional(),
});

export { nodeIdSchema, STAGES };
