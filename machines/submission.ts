import { createHash } from 'node:crypto';
import { and, assign, fromPromise, setup } from 'xstate';
import { type StageFault, stageFault } from '../core/faults.ts';
import { type AttemptKey, attemptKey, type Stage, STAGES, type SubmissionId } from '../core/ids.ts';
import type { StageOutcome } from '../core/stage.ts';
import { STAGE_STATES, type SubmissionState, stageOfState } from '../core/states.ts';
import { deadlineLogic } from './deadline.ts';

/** Max attempts per stage (spec/pipeline.md §3). WEIGHT_SET is unbounded: 0 means "no limit". */
export const DEFAULT_STAGE_BUDGETS: Readonly<Record<Stage, number>> = { HIPPIUS: 5, PRE_EVAL: 5, EVAL: 3, SET_REIGN: 10, WEIGHT_SET: 0 };
/** @default 7 days — a queued submission that no worker takes for a week fails as INFRA, never silently. */
export const DEFAULT_QUEUE_WAIT_MS = 7 * 24 * 3600_000;
/** @default 2 min — a handoff state advances by itself if the requeuer (every minute) missed it. */
export const DEFAULT_HANDOFF_WAIT_MS = 120_000;

export interface SubmissionLimits {
  /** @default DEFAULT_STAGE_BUDGETS */
  readonly budgets: Readonly<Record<Stage, number>>;
  /** Multiplies every backoff of spec §3; 1 in production, tiny in tests and the chaos suite. @default 1 */
  readonly backoffScale: number;
  /** @default DEFAULT_QUEUE_WAIT_MS */
  readonly queueWaitMs: number;
  /** @default DEFAULT_HANDOFF_WAIT_MS */
  readonly handoffWaitMs: number;
  /** Winning duels needed before coronation (v1: 1, v2: 2). @default 1 */
  readonly winsRequired: number;
}

export const DEFAULT_LIMITS: SubmissionLimits = {
  budgets: DEFAULT_STAGE_BUDGETS,
  backoffScale: 1,
  queueWaitMs: DEFAULT_QUEUE_WAIT_MS,
  handoffWaitMs: DEFAULT_HANDOFF_WAIT_MS,
  winsRequired: 1,
};

export interface CurrentAttempt {
  readonly stage: Stage;
  readonly attemptNumber: number;
  readonly attemptKey: AttemptKey;
  /** Fencing token of the attempt's lease; every write for the attempt checks it. */
  readonly leaseToken: string;
  /** Absolute hard deadline (epoch ms). */
  readonly deadlineAt: number;
}

export interface SubmissionInput {
  readonly submissionId: SubmissionId;
  readonly hotkey: string;
  readonly modelUri: string;
  readonly limits?: SubmissionLimits;
  /** Creation time (epoch ms); the first queue deadline counts from here. */
  readonly createdAt: number;
}

export interface SubmissionContext {
  readonly submissionId: SubmissionId;
  readonly hotkey: string;
  readonly modelUri: string;
  readonly limits: SubmissionLimits;
  /** Failed attempts per stage that count against the budget. */
  readonly failures: Readonly<Record<Stage, number>>;
  readonly attempt: CurrentAttempt | null;
  /** Earliest time a dispatcher may claim the next attempt (epoch ms). */
  readonly nextAttemptAt: number | null;
  /** Deadline of the current waiting state (queued / retryable / handoff), epoch ms. */
  readonly waitDeadlineAt: number;
  readonly fault: StageFault | null;
  readonly wins: number;
  readonly priority: number;
  /** Display-only total of failed attempts (spec §2 "retry_count"). */
  readonly retryCount: number;
  /** Small summary of the last successful stage (verdict scores, reign version…). */
  readonly lastResult: Readonly<Record<string, unknown>> | null;
  /** Stage an operator retry resumes after TERMINAL_INFRA_FAILED. */
  readonly resumeStage: Stage;
}

export type SubmissionEvent =
  | { type: 'CLAIMED'; stage: Stage; attemptNumber: number; leaseToken: string; deadlineAt: number; at: number }
  | { type: 'CLAIM_REJECTED'; stage: Stage; fault: StageFault; at: number }
  | { type: 'REQUEUE'; at: number }
  | { type: 'ATTEMPT_ABANDONED'; attemptKey: string; fault: StageFault; at: number }
  | { type: 'OPERATOR_CANCEL'; reason: string; at: number }
  | { type: 'OPERATOR_RETRY'; at: number }
  | { type: 'DEADLINE' };

/** Events that enter through the write-ahead inbox (everything except internal ones). */
export type ExternalSubmissionEvent = Exclude<SubmissionEvent, { type: 'DEADLINE' }>;

export interface StageRunnerInput {
  readonly submissionId: SubmissionId;
  readonly attempt: CurrentAttempt;
}

/** Backoff before the next attempt after `n` counted failures (spec/pipeline.md §3), in ms. */
export function backoffMs(stage: Stage, n: number, scale: number): number {
  const minute = 60_000;
  const k = Math.max(1, n);
  const base =
    stage === 'HIPPIUS' || stage === 'PRE_EVAL' ? Math.min(2 ** (k - 1), 30) * minute
    : stage === 'EVAL' ? Math.min(5 * k, 30) * minute
    : stage === 'SET_REIGN' ? Math.min(k, 60) * minute
    : 60_000;
  return Math.round(base * scale);
}

type DoneEvent = { type: `xstate.done.actor.${string}`; output: StageOutcome };
type ErrorEvent = { type: `xstate.error.actor.${string}`; error: unknown };
type AnyEvent = SubmissionEvent | DoneEvent | ErrorEvent;

/** The fault carried by whatever ended a running attempt, or null if it succeeded. */
export function faultOf(context: SubmissionContext, event: AnyEvent): StageFault | null {
  const stage = context.attempt?.stage ?? 'HIPPIUS';
  if (event.type === 'ATTEMPT_ABANDONED') return event.fault;
  if (event.type === 'DEADLINE') return stageFault('INFRA_FAULT', 'stage_deadline_exceeded', `${stage} attempt passed its hard deadline`);
  if (event.type.startsWith('xstate.error.actor')) {
    const error = (event as ErrorEvent).error;
    return stageFault('INFRA_FAULT', 'unexpected', `stage runner failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (event.type.startsWith('xstate.done.actor')) {
    const output = (event as DoneEvent).output;
    return output.status === 'failed' ? output.fault : null;
  }
  return null;
}

function counted(fault: StageFault): boolean {
  return fault.countsAgainstBudget;
}

const noFailures: Record<Stage, number> = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;

export const submissionMachine = setup({
  types: {
    context: {} as SubmissionContext,
    events: {} as SubmissionEvent,
    input: {} as SubmissionInput,
  },
  actors: {
    /** Provided by the actor host: start (idempotent by attempt key) + watch until terminal. */
    stageRunner: fromPromise<StageOutcome, StageRunnerInput>(async () => {
      throw new Error('stageRunner must be provided by the actor host (machine.provide)');
    }),
    deadline: deadlineLogic,
  },
  guards: {
    isClaimFor: ({ event }, params: { stage: Stage }) => event.type === 'CLAIMED' && event.stage === params.stage,
    isRejectionFor: ({ event }, params: { stage: Stage }) => event.type === 'CLAIM_REJECTED' && event.stage === params.stage,
    rejectedAsMiner: ({ event }) => event.type === 'CLAIM_REJECTED' && event.fault.faultClass === 'MINER_FAULT',
    resumesAt: ({ context }, params: { stage: Stage }) => context.resumeStage === params.stage,
    isCurrentAttempt: ({ context, event }) => event.type === 'ATTEMPT_ABANDONED' && event.attemptKey === context.attempt?.attemptKey,
    succeeded: ({ context, event }) => faultOf(context, event as AnyEvent) === null,
    challengerWonEnough: ({ context, event }) => {
      const out = (event as unknown as DoneEvent).output;
      return out?.status === 'succeeded' && out.result.challengerWon === true && context.wins + 1 >= context.limits.winsRequired;
    },
    challengerWonNotEnough: ({ event }) => {
      const out = (event as unknown as DoneEvent).output;
      return out?.status === 'succeeded' && out.result.challengerWon === true;
    },
    minerFault: ({ context, event }) => faultOf(context, event as AnyEvent)?.faultClass === 'MINER_FAULT',
    faultCode: ({ context, event }, params: { code: string }) => faultOf(context, event as AnyEvent)?.code === params.code,
    budgetExhausted: ({ context, event }) => {
      const fault = faultOf(context, event as AnyEvent);
      const stage = context.attempt?.stage;
      if (!fault || !stage) return false;
      const budget = context.limits.budgets[stage];
      if (budget <= 0) return false;
      return context.failures[stage] + (counted(fault) ? 1 : 0) >= budget;
    },
  },
  actions: {
    recordClaim: assign(({ context, event }) => {
      if (event.type !== 'CLAIMED') return {};
      return {
        attempt: {
          stage: event.stage,
          attemptNumber: event.attemptNumber,
          attemptKey: attemptKey(context.submissionId, event.stage, event.attemptNumber),
          leaseToken: event.leaseToken,
          deadlineAt: event.deadlineAt,
        },
        fault: null,
        nextAttemptAt: null,
      };
    }),
    recordSuccess: assign(({ event }) => {
      const out = (event as unknown as DoneEvent).output;
      return { attempt: null, fault: null, lastResult: out?.status === 'succeeded' ? out.result : null };
    }),
    recordWin: assign(({ context }) => ({ wins: context.wins + 1 })),
    requeueForConfirmation: assign(() => ({ priority: 0 })),
    /** Records the fault, counts it against the stage budget and schedules the retry. */
    recordFailure: assign(({ context, event }) => {
      const fault = faultOf(context, event as AnyEvent);
      const stage = context.attempt?.stage;
      if (!fault || !stage) return {};
      const n = context.failures[stage] + (counted(fault) ? 1 : 0);
      const now = Date.now();
      const nextAttemptAt = counted(fault) ? now + backoffMs(stage, n, context.limits.backoffScale) : now;
      return {
        fault,
        attempt: null,
        failures: { ...context.failures, [stage]: n },
        retryCount: context.retryCount + 1,
        nextAttemptAt,
        waitDeadlineAt: nextAttemptAt + context.limits.queueWaitMs,
      };
    }),
    recordExhaustion: assign(({ context, event }) => {
      const fault = faultOf(context, event as AnyEvent);
      const stage = context.attempt?.stage;
      if (!fault || !stage) return {};
      const final =
        stage === 'EVAL'
          ? stageFault('INFRA_FAULT', 'eval_retry_limit_exceeded', `EVAL budget used up; last fault ${fault.code}: ${fault.message}`)
          : fault;
      return { fault: final, attempt: null, failures: { ...context.failures, [stage]: context.failures[stage] + 1 }, retryCount: context.retryCount + 1 };
    }),
    rememberResumeStage: assign(({ self }) => ({ resumeStage: stageOfState(String(self.getSnapshot().value)) })),
    recordTerminalFault: assign(({ context, event }) => ({ fault: faultOf(context, event as AnyEvent), attempt: null })),
    recordRejection: assign(({ context, event }) => {
      if (event.type !== 'CLAIM_REJECTED') return {};
      const n = context.failures[event.stage] + (counted(event.fault) ? 1 : 0);
      const now = Date.now();
      const nextAttemptAt = counted(event.fault) ? now + backoffMs(event.stage, n, context.limits.backoffScale) : now + 5_000 * context.limits.backoffScale;
      return { fault: event.fault, failures: { ...context.failures, [event.stage]: n }, nextAttemptAt, waitDeadlineAt: nextAttemptAt + context.limits.queueWaitMs };
    }),
    recordMinerRejection: assign(({ event }) => (event.type === 'CLAIM_REJECTED' ? { fault: event.fault } : {})),
    /** A stale win (coronation found a different king) earns a fresh duel with a fresh EVAL budget. */
    resetEvalBudget: assign(({ context }) => ({ failures: { ...context.failures, EVAL: 0 }, wins: 0, attempt: null, fault: null })),
    recordCancel: assign(({ event }) => ({
      fault: stageFault('INFRA_FAULT', 'operator_cancelled', event.type === 'OPERATOR_CANCEL' ? `cancelled by operator: ${event.reason}` : 'cancelled by operator'),
      attempt: null,
    })),
    recordQueueTimeout: assign(() => ({ fault: stageFault('INFRA_FAULT', 'queue_deadline_exceeded', 'no worker took this submission before its queue deadline') })),
    armQueueDeadline: assign(({ context }) => ({ waitDeadlineAt: Date.now() + context.limits.queueWaitMs })),
    armHandoffDeadline: assign(({ context }) => ({ waitDeadlineAt: Date.now() + context.limits.handoffWaitMs })),
    resetForOperatorRetry: assign(({ context }) => ({
      failures: { ...noFailures, SET_REIGN: context.failures.SET_REIGN },
      fault: null,
      nextAttemptAt: Date.now(),
      waitDeadlineAt: Date.now() + context.limits.queueWaitMs,
    })),
    retryNow: assign(() => ({ nextAttemptAt: Date.now() })),
  },
// The config is generated per stage below; its shape is checked by the machine tests, not by
  // the (very deep) generic MachineConfig type, which TypeScript cannot infer through builders.
  // biome-ignore lint/suspicious/noExplicitAny: see above
}).createMachine(buildConfig() as any);

type Config = Record<string, unknown>;

/** Transitions out of a running stage when it ends with a fault (any trigger). */
function failureTransitions(stage: Stage) {
  const { retryable } = STAGE_STATES[stage];
  const specials =
    stage === 'PRE_EVAL'
      ? [{ guard: { type: 'faultCode', params: { code: 'worker_busy' } }, target: 'PRE_EVAL_QUEUED', actions: 'recordFailure' }]
      : stage === 'SET_REIGN'
        ? [{ guard: { type: 'faultCode', params: { code: 'stale_winning_eval' } }, target: 'EVAL_QUEUED', actions: 'resetEvalBudget' }]
        : [];
  return [
    { guard: 'minerFault', target: 'TERMINAL_INVALID', actions: 'recordTerminalFault' },
    ...specials,
    { guard: 'budgetExhausted', target: 'TERMINAL_INFRA_FAILED', actions: ['rememberResumeStage', 'recordExhaustion'] },
    { target: retryable, actions: 'recordFailure' },
  ];
}

function successTransitions(stage: Stage) {
  switch (stage) {
    case 'HIPPIUS':
      return [{ guard: 'succeeded', target: 'HIPPIUS_VALIDATED', actions: 'recordSuccess' }];
    case 'PRE_EVAL':
      return [{ guard: 'succeeded', target: 'PRE_EVAL_PASSED', actions: 'recordSuccess' }];
    case 'EVAL':
      return [
        { guard: 'challengerWonEnough', target: 'EVAL_WIN', actions: ['recordSuccess', 'recordWin'] },
        { guard: 'challengerWonNotEnough', target: 'EVAL_QUEUED', actions: ['recordSuccess', 'recordWin', 'requeueForConfirmation'] },
        { guard: 'succeeded', target: 'COMPLETE_LOSS', actions: 'recordSuccess' },
      ];
    case 'SET_REIGN':
      return [{ guard: 'succeeded', target: 'REIGN_SET', actions: 'recordSuccess' }];
    case 'WEIGHT_SET':
      return [{ guard: 'succeeded', target: 'COMPLETE_CORONATED', actions: 'recordSuccess' }];
  }
}

function runningState(stage: Stage) {
  const failures = failureTransitions(stage);
  return {
    invoke: [
      {
        id: 'stage',
        src: 'stageRunner',
        input: ({ context }: { context: SubmissionContext }) => ({ submissionId: context.submissionId, attempt: context.attempt }),
        onDone: [...successTransitions(stage), ...failures],
        onError: failures,
      },
      { id: 'attemptDeadline', src: 'deadline', input: ({ context }: { context: SubmissionContext }) => ({ at: context.attempt?.deadlineAt ?? 0 }) },
    ],
    on: {
      ATTEMPT_ABANDONED: failures.map((t) => ({ ...t, guard: t.guard ? and(['isCurrentAttempt', t.guard as never]) : 'isCurrentAttempt' })),
      DEADLINE: failures,
      OPERATOR_CANCEL: { target: 'TERMINAL_INFRA_FAILED', actions: ['rememberResumeStage', 'recordCancel'] },
    },
  };
}

/** A state that waits for a dispatcher's claim of `stage`. */
function waitingState(stage: Stage, onTimeout: { target: string; actions?: string | string[] }, armOnEntry: boolean) {
  const { running } = STAGE_STATES[stage];
  return {
    ...(armOnEntry ? { entry: 'armQueueDeadline' } : {}),
    invoke: { id: 'waitDeadline', src: 'deadline', input: ({ context }: { context: SubmissionContext }) => ({ at: context.waitDeadlineAt }) },
    on: {
      CLAIMED: { guard: { type: 'isClaimFor', params: { stage } }, target: running, actions: 'recordClaim' },
      CLAIM_REJECTED: [
        { guard: and([{ type: 'isRejectionFor', params: { stage } } as never, 'rejectedAsMiner']), target: 'TERMINAL_INVALID', actions: 'recordMinerRejection' },
        { guard: { type: 'isRejectionFor', params: { stage } }, target: STAGE_STATES[stage].retryable, actions: 'recordRejection', reenter: true },
      ],
      DEADLINE: onTimeout,
      OPERATOR_CANCEL: { target: 'TERMINAL_INFRA_FAILED', actions: ['rememberResumeStage', 'recordCancel'] },
      OPERATOR_RETRY: { actions: 'retryNow' },
    },
  };
}

function handoffState(next: string) {
  return {
    entry: 'armHandoffDeadline',
    invoke: { id: 'waitDeadline', src: 'deadline', input: ({ context }: { context: SubmissionContext }) => ({ at: context.waitDeadlineAt }) },
    on: { REQUEUE: next, DEADLINE: next, OPERATOR_CANCEL: { target: 'TERMINAL_INFRA_FAILED', actions: ['rememberResumeStage', 'recordCancel'] } },
  };
}

function buildConfig(): Config {
  const queueTimeout = { target: 'TERMINAL_INFRA_FAILED', actions: ['rememberResumeStage', 'recordQueueTimeout'] };
  return {
    id: 'submission',
    initial: 'SUBMITTED',
    context: ({ input }: { input: SubmissionInput }) => {
      const limits = input.limits ?? DEFAULT_LIMITS;
      return {
        submissionId: input.submissionId,
        hotkey: input.hotkey,
        modelUri: input.modelUri,
        limits,
        failures: noFailures,
        attempt: null,
        nextAttemptAt: input.createdAt,
        waitDeadlineAt: input.createdAt + limits.queueWaitMs,
        fault: null,
        wins: 0,
        priority: 100,
        retryCount: 0,
        lastResult: null,
        resumeStage: 'HIPPIUS',
      } satisfies SubmissionContext;
    },
    states: {
      SUBMITTED: waitingState('HIPPIUS', queueTimeout, false),
      HIPPIUS_RUNNING: runningState('HIPPIUS'),
      HIPPIUS_RETRYABLE: waitingState('HIPPIUS', queueTimeout, false),
      HIPPIUS_VALIDATED: handoffState('PRE_EVAL_QUEUED'),
      PRE_EVAL_QUEUED: waitingState('PRE_EVAL', queueTimeout, true),
      PRE_EVAL_RUNNING: runningState('PRE_EVAL'),
      PRE_EVAL_RETRYABLE: waitingState('PRE_EVAL', queueTimeout, false),
      PRE_EVAL_PASSED: handoffState('EVAL_QUEUED'),
      EVAL_QUEUED: waitingState('EVAL', queueTimeout, true),
      EVAL_RUNNING: runningState('EVAL'),
      EVAL_RETRYABLE: waitingState('EVAL', queueTimeout, false),
      // A won duel waits for coronation; if nothing claims it the deadline retries it, never drops it.
      EVAL_WIN: waitingState('SET_REIGN', { target: 'SET_REIGN_RETRYABLE', actions: 'armQueueDeadline' }, true),
      SET_REIGN_RUNNING: runningState('SET_REIGN'),
      SET_REIGN_RETRYABLE: waitingState('SET_REIGN', { target: 'SET_REIGN_RETRYABLE', actions: 'armQueueDeadline' }, false),
      // Weights are never terminal (spec §3): a missed deadline re-arms, it does not fail the king.
      REIGN_SET: waitingState('WEIGHT_SET', { target: 'WEIGHT_SET_RETRYABLE', actions: 'armQueueDeadline' }, true),
      WEIGHT_SET_RUNNING: runningState('WEIGHT_SET'),
      WEIGHT_SET_RETRYABLE: waitingState('WEIGHT_SET', { target: 'WEIGHT_SET_RETRYABLE', actions: 'armQueueDeadline' }, false),
      COMPLETE_CORONATED: { type: 'final' },
      COMPLETE_LOSS: { type: 'final' },
      TERMINAL_INVALID: { type: 'final' },
      // Terminal for the pipeline, but an operator may give it a fresh budget (event budget_reset).
      TERMINAL_INFRA_FAILED: {
        on: {
          OPERATOR_RETRY: STAGES.map((stage) => ({
            guard: { type: 'resumesAt', params: { stage } },
            target: STAGE_STATES[stage].retryable,
            actions: 'resetForOperatorRetry',
          })),
        },
      },
    },
  } as unknown as Config;
}

/** Hash of the machine definition, stored beside every snapshot; a snapshot of another version is refused. */
export const SUBMISSION_MACHINE_VERSION = createHash('sha256').update(JSON.stringify(submissionMachine.config)).digest('hex').slice(0, 16);

export type SubmissionMachine = typeof submissionMachine;
export type { SubmissionState };
