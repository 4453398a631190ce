import type { StageFault } from '../core/faults.ts';
import { isTerminalState } from '../core/states.ts';

export type Severity = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface DomainEvent {
  readonly type: string;
  readonly severity: Severity;
  readonly message: string;
  /** Event payload beyond the transition itself (e.g. the coronation summary of `reign_set`). */
  readonly data?: Readonly<Record<string, unknown>>;
}

const RUNNING_EVENT_PREFIX: Record<string, string> = {
  HIPPIUS_RUNNING: 'hippius',
  PRE_EVAL_RUNNING: 'pre_eval',
  EVAL_RUNNING: 'eval',
  SET_REIGN_RUNNING: 'set_reign',
  WEIGHT_SET_RUNNING: 'weight_set',
};

/**
 * Maps one state change to its `events.event_type` of spec/pipeline.md §7, so operators and
 * dashboards that read upstream's catalogue keep working.
 */
export function domainEventFor(from: string | null, to: string, cause: string, fault: StageFault | null, result: Readonly<Record<string, unknown>> | null = null): DomainEvent {
  const why = fault ? `${fault.code}: ${fault.message}` : '';
  if (from === null) return { type: 'chain_commit_discovered', severity: 'INFO', message: 'Submission created from a chain reveal' };
  if (cause === 'OPERATOR_CANCEL') return { type: 'operator_action', severity: 'WARN', message: `Cancelled by operator (${why})` };
  if (cause === 'OPERATOR_RETRY') return { type: 'budget_reset', severity: 'WARN', message: `Operator retry: stage budget reset, now ${to}` };
  if (from === 'SUBMITTED' && to === 'TERMINAL_INVALID') {
    const swap = fault?.code === 'hotkey_swap';
    return { type: swap ? 'hotkey_rejected_swap' : 'hotkey_rejected_reused', severity: swap ? 'ERROR' : 'WARN', message: why };
  }
  if (from === 'EVAL_QUEUED' && to === 'TERMINAL_INVALID') return { type: 'eval_skipped_hotkey_already_validated', severity: 'WARN', message: why };
  const claimed = RUNNING_EVENT_PREFIX[to];
  if (claimed) return { type: `${claimed}_claimed`, severity: 'INFO', message: `Claimed ${to}` };
  if (to === 'PRE_EVAL_QUEUED' && from === 'HIPPIUS_VALIDATED') return { type: 'pre_eval_queued', severity: 'INFO', message: 'Queued for pre-eval' };
  if (to === 'EVAL_QUEUED' && from === 'PRE_EVAL_PASSED') return { type: 'eval_queued_from_pre_eval', severity: 'INFO', message: 'Queued for eval' };
  const stage = from ? RUNNING_EVENT_PREFIX[from] : undefined;
  const abandoned = fault?.code.endsWith('_lease_expired') ?? false;
  if (stage === 'hippius') {
    if (to === 'HIPPIUS_VALIDATED') return { type: 'hippius_succeeded', severity: 'INFO', message: 'Model validated' };
    if (to === 'TERMINAL_INVALID') return { type: 'hippius_failed_terminal', severity: 'WARN', message: why };
    if (abandoned) return { type: 'hippius_attempt_abandoned', severity: 'WARN', message: why };
    return { type: 'hippius_retryable_failed', severity: to === 'TERMINAL_INFRA_FAILED' ? 'ERROR' : 'WARN', message: why };
  }
  if (stage === 'pre_eval') {
    if (to === 'PRE_EVAL_PASSED') return { type: 'pre_eval_passed', severity: 'INFO', message: 'Pre-eval passed' };
    if (to === 'TERMINAL_INVALID') return { type: 'pre_eval_failed', severity: 'ERROR', message: why };
    if (to === 'PRE_EVAL_QUEUED') return { type: 'pre_eval_released_busy', severity: 'INFO', message: why };
    if (abandoned) return { type: 'pre_eval_abandoned', severity: 'WARN', message: why };
    return { type: 'pre_eval_retryable_failed', severity: to === 'TERMINAL_INFRA_FAILED' ? 'ERROR' : 'WARN', message: why };
  }
  if (stage === 'eval') {
    if (to === 'EVAL_WIN' || to === 'COMPLETE_LOSS' || to === 'EVAL_QUEUED') return { type: 'eval_succeeded', severity: 'INFO', message: `Eval completed with state ${to}`, data: result ?? {} };
    if (to === 'TERMINAL_INFRA_FAILED') return { type: 'eval_retry_limit_exceeded', severity: 'ERROR', message: why };
    if (abandoned) return { type: 'eval_attempt_abandoned', severity: 'WARN', message: why };
    return { type: 'eval_failed', severity: 'ERROR', message: why };
  }
  if (stage === 'set_reign') {
    // spec §7 / coronation.md §1 step 8: message `Created active reign version N`, data = the summary.
    if (to === 'REIGN_SET') return { type: 'reign_set', severity: 'INFO', message: `Created active reign version ${String(result?.reign_version ?? '?')}`, data: result ?? {} };
    if (to === 'EVAL_QUEUED') return { type: 'set_reign_requeued_stale', severity: 'WARN', message: why };
    return { type: 'set_reign_failed_retryable', severity: 'ERROR', message: why };
  }
  if (stage === 'weight_set') {
    if (to === 'COMPLETE_CORONATED') return { type: 'weight_set_succeeded', severity: 'INFO', message: 'Weights set; crowned' };
    return { type: 'weight_set_failed_retryable', severity: 'ERROR', message: why };
  }
  if (to === 'TERMINAL_INFRA_FAILED') return { type: 'queue_deadline_exceeded', severity: 'ERROR', message: why };
  return { type: 'state_changed', severity: isTerminalState(to) ? 'WARN' : 'INFO', message: `${from} → ${to}${why ? ` (${why})` : ''}` };
}
