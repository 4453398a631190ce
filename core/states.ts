import type { Stage } from './ids.ts';

/** `model_submissions.state` values (spec/pipeline.md §2.1), identical to upstream. */
export const SUBMISSION_STATES = [
  'SUBMITTED', 'HIPPIUS_RUNNING', 'HIPPIUS_RETRYABLE', 'HIPPIUS_VALIDATED',
  'PRE_EVAL_QUEUED', 'PRE_EVAL_RUNNING', 'PRE_EVAL_RETRYABLE', 'PRE_EVAL_PASSED',
  'EVAL_QUEUED', 'EVAL_RUNNING', 'EVAL_RETRYABLE', 'EVAL_WIN',
  'SET_REIGN_RUNNING', 'SET_REIGN_RETRYABLE', 'REIGN_SET',
  'WEIGHT_SET_RUNNING', 'WEIGHT_SET_RETRYABLE',
  'COMPLETE_CORONATED', 'COMPLETE_LOSS', 'TERMINAL_INVALID', 'TERMINAL_INFRA_FAILED',
] as const;
export type SubmissionState = (typeof SUBMISSION_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<SubmissionState> = new Set(['COMPLETE_CORONATED', 'COMPLETE_LOSS', 'TERMINAL_INVALID', 'TERMINAL_INFRA_FAILED']);

export function isTerminalState(state: string): boolean {
  return TERMINAL_STATES.has(state as SubmissionState);
}

/** Per stage: the states from which a dispatcher may claim it, and where it runs and retries. */
export const STAGE_STATES: Readonly<Record<Stage, { readonly claimFrom: readonly SubmissionState[]; readonly running: SubmissionState; readonly retryable: SubmissionState }>> = {
  HIPPIUS: { claimFrom: ['SUBMITTED', 'HIPPIUS_RETRYABLE'], running: 'HIPPIUS_RUNNING', retryable: 'HIPPIUS_RETRYABLE' },
  PRE_EVAL: { claimFrom: ['PRE_EVAL_QUEUED', 'PRE_EVAL_RETRYABLE'], running: 'PRE_EVAL_RUNNING', retryable: 'PRE_EVAL_RETRYABLE' },
  EVAL: { claimFrom: ['EVAL_QUEUED', 'EVAL_RETRYABLE'], running: 'EVAL_RUNNING', retryable: 'EVAL_RETRYABLE' },
  SET_REIGN: { claimFrom: ['EVAL_WIN', 'SET_REIGN_RETRYABLE'], running: 'SET_REIGN_RUNNING', retryable: 'SET_REIGN_RETRYABLE' },
  WEIGHT_SET: { claimFrom: ['REIGN_SET', 'WEIGHT_SET_RETRYABLE'], running: 'WEIGHT_SET_RUNNING', retryable: 'WEIGHT_SET_RETRYABLE' },
};

/** Handoff states the requeuer moves forward (spec §4.5). */
export const HANDOFF_STATES: ReadonlySet<SubmissionState> = new Set(['HIPPIUS_VALIDATED', 'PRE_EVAL_PASSED']);

/** The stage a state belongs to (running, waiting for a claim, or retrying); HIPPIUS for the rest. */
export function stageOfState(state: string): Stage {
  for (const [stage, s] of Object.entries(STAGE_STATES)) {
    if (s.running === state || s.claimFrom.includes(state as SubmissionState)) return stage as Stage;
  }
  if (state === 'PRE_EVAL_PASSED') return 'EVAL';
  if (state === 'HIPPIUS_VALIDATED') return 'PRE_EVAL';
  return 'HIPPIUS';
}

export function stageOfRunningState(state: string): Stage | null {
  for (const [stage, s] of Object.entries(STAGE_STATES)) if (s.running === state) return stage as Stage;
  return null;
}
