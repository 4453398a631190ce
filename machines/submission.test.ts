import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { stageFault, type StageFault } from '../core/faults.ts';
import type { Stage, SubmissionId } from '../core/ids.ts';
import type { StageOutcome } from '../core/stage.ts';
import { DEFAULT_LIMITS, type StageRunnerInput, submissionMachine } from './submission.ts';

const ID = '00000000-0000-4000-8000-000000000001' as SubmissionId;
const HOUR = 3600_000;

/** A machine whose stage runner answers from a per-stage script of outcomes. */
function scripted(script: Partial<Record<Stage, StageOutcome[]>>, calls: StageRunnerInput[] = []) {
  return submissionMachine.provide({
    actors: {
      stageRunner: fromPromise<StageOutcome, StageRunnerInput>(async ({ input }) => {
        calls.push(input);
        const next = script[input.attempt.stage]?.shift();
        if (!next) return new Promise<StageOutcome>(() => {}); // never settles: stays RUNNING
        return next;
      }),
    },
  });
}

const ok = (result: Record<string, unknown> = {}): StageOutcome => ({ status: 'succeeded', result });
const fail = (fault: StageFault): StageOutcome => ({ status: 'failed', fault });
const infra = stageFault('INFRA_FAULT', 'download_failed', 'hub 503');

function start(machine: ReturnType<typeof scripted>, limits = DEFAULT_LIMITS) {
  const actor = createActor(machine, { input: { submissionId: ID, hotkey: 'hk', modelUri: 'a/b@sha256:x', createdAt: Date.now(), limits } });
  actor.start();
  return actor;
}

let attemptCounter = 0;
function claim(actor: ReturnType<typeof start>, stage: Stage, deadlineMs = 6 * HOUR) {
  attemptCounter += 1;
  actor.send({ type: 'CLAIMED', stage, attemptNumber: attemptCounter, leaseToken: `lease-${attemptCounter}`, deadlineAt: Date.now() + deadlineMs, at: Date.now() });
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('submission statechart', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    attemptCounter = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('walks every stage to COMPLETE_CORONATED', async () => {
    const actor = start(scripted({ HIPPIUS: [ok()], PRE_EVAL: [ok()], EVAL: [ok({ challengerWon: true })], SET_REIGN: [ok({ reignVersion: 2 })], WEIGHT_SET: [ok()] }));
    const seen: string[] = [];
    actor.subscribe((s) => seen.push(String(s.value)));
    claim(actor, 'HIPPIUS');
    await flush();
    actor.send({ type: 'REQUEUE', at: Date.now() });
    claim(actor, 'PRE_EVAL');
    await flush();
    actor.send({ type: 'REQUEUE', at: Date.now() });
    claim(actor, 'EVAL');
    await flush();
    claim(actor, 'SET_REIGN');
    await flush();
    claim(actor, 'WEIGHT_SET');
    await flush();
    expect(actor.getSnapshot().value).toBe('COMPLETE_CORONATED');
    expect(actor.getSnapshot().status).toBe('done');
    expect([...new Set(seen)]).toEqual([
      'HIPPIUS_RUNNING', 'HIPPIUS_VALIDATED', 'PRE_EVAL_QUEUED', 'PRE_EVAL_RUNNING', 'PRE_EVAL_PASSED', 'EVAL_QUEUED', 'EVAL_RUNNING',
      'EVAL_WIN', 'SET_REIGN_RUNNING', 'REIGN_SET', 'WEIGHT_SET_RUNNING', 'COMPLETE_CORONATED',
    ]);
  });

  it('a lost duel is COMPLETE_LOSS', async () => {
    const actor = start(scripted({ EVAL: [ok({ challengerWon: false })] }));
    actor.send({ type: 'REQUEUE', at: 0 }); // ignored in SUBMITTED
    expect(actor.getSnapshot().value).toBe('SUBMITTED');
    const m = scripted({ HIPPIUS: [ok()], PRE_EVAL: [ok()], EVAL: [ok({ challengerWon: false })] });
    const a = start(m);
    claim(a, 'HIPPIUS');
    await flush();
    a.send({ type: 'REQUEUE', at: 0 });
    claim(a, 'PRE_EVAL');
    await flush();
    a.send({ type: 'REQUEUE', at: 0 });
    claim(a, 'EVAL');
    await flush();
    expect(a.getSnapshot().value).toBe('COMPLETE_LOSS');
  });

  it('a MINER fault is terminal at once and never retried', async () => {
    const actor = start(scripted({ HIPPIUS: [fail(stageFault('MINER_FAULT', 'weight_dtype', 'F32 tensor'))] }));
    claim(actor, 'HIPPIUS');
    await flush();
    expect(actor.getSnapshot().value).toBe('TERMINAL_INVALID');
    expect(actor.getSnapshot().context.fault?.code).toBe('weight_dtype');
  });

  it('per-stage budgets: 5 validation infra failures exhaust only the validation budget', async () => {
    const actor = start(scripted({ HIPPIUS: [fail(infra), fail(infra), fail(infra), fail(infra), fail(infra)] }));
    for (let i = 1; i <= 4; i++) {
      claim(actor, 'HIPPIUS');
      await flush();
      expect(actor.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
      // backoff min(2^(n-1), 30) minutes, spec/pipeline.md §3
      expect(actor.getSnapshot().context.nextAttemptAt! - Date.now()).toBe(Math.min(2 ** (i - 1), 30) * 60_000);
    }
    claim(actor, 'HIPPIUS');
    await flush();
    expect(actor.getSnapshot().value).toBe('TERMINAL_INFRA_FAILED');
    expect(actor.getSnapshot().context.failures).toMatchObject({ HIPPIUS: 5, PRE_EVAL: 0, EVAL: 0 });
  });

  it('worker_busy returns to the queue without consuming budget', async () => {
    const actor = start(scripted({ HIPPIUS: [ok()], PRE_EVAL: [fail(stageFault('INFRA_FAULT', 'worker_busy', '409'))] }));
    claim(actor, 'HIPPIUS');
    await flush();
    actor.send({ type: 'REQUEUE', at: 0 });
    claim(actor, 'PRE_EVAL');
    await flush();
    expect(actor.getSnapshot().value).toBe('PRE_EVAL_QUEUED');
    expect(actor.getSnapshot().context.failures.PRE_EVAL).toBe(0);
  });

  it('a stale win re-queues a fresh duel with a fresh EVAL budget', async () => {
    const actor = start(scripted({ HIPPIUS: [ok()], PRE_EVAL: [ok()], EVAL: [fail(infra), ok({ challengerWon: true })], SET_REIGN: [fail(stageFault('INFRA_FAULT', 'stale_winning_eval', 'king changed'))] }));
    claim(actor, 'HIPPIUS');
    await flush();
    actor.send({ type: 'REQUEUE', at: 0 });
    claim(actor, 'PRE_EVAL');
    await flush();
    actor.send({ type: 'REQUEUE', at: 0 });
    claim(actor, 'EVAL');
    await flush();
    expect(actor.getSnapshot().context.failures.EVAL).toBe(1);
    claim(actor, 'EVAL');
    await flush();
    claim(actor, 'SET_REIGN');
    await flush();
    expect(actor.getSnapshot().value).toBe('EVAL_QUEUED');
    expect(actor.getSnapshot().context.failures.EVAL).toBe(0);
  });

  it('ATTEMPT_ABANDONED for another attempt key is ignored (fencing)', async () => {
    const actor = start(scripted({}));
    claim(actor, 'HIPPIUS');
    actor.send({ type: 'ATTEMPT_ABANDONED', attemptKey: `${ID}:HIPPIUS:99`, fault: infra, at: 0 });
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RUNNING');
    actor.send({ type: 'ATTEMPT_ABANDONED', attemptKey: `${ID}:HIPPIUS:1`, fault: stageFault('INFRA_FAULT', 'validation_lease_expired', 'lease'), at: 0 });
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
  });

  it('a running attempt past its absolute deadline goes to retry', async () => {
    const actor = start(scripted({}));
    claim(actor, 'HIPPIUS', HOUR);
    await vi.advanceTimersByTimeAsync(HOUR - 1);
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RUNNING');
    await vi.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
    expect(actor.getSnapshot().context.fault?.code).toBe('stage_deadline_exceeded');
  });

  // Regression for xstate#5331 (`after` timers are not restored): the deadline lives in context as
  // an absolute time, so a snapshot restored later fires at the original time, not a fresh delay.
  it('a restored snapshot keeps its absolute deadline (xstate#5331)', async () => {
    const machine = scripted({});
    const actor = start(machine);
    claim(actor, 'HIPPIUS', HOUR);
    await vi.advanceTimersByTimeAsync(HOUR / 2);
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const restored = createActor(machine, { snapshot: persisted, input: persisted.context });
    restored.start();
    expect(restored.getSnapshot().value).toBe('HIPPIUS_RUNNING');
    await vi.advanceTimersByTimeAsync(HOUR / 2);
    expect(restored.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
  });

  it('restoring a running snapshot re-runs the stage with the same attempt key', async () => {
    const calls: StageRunnerInput[] = [];
    const machine = scripted({}, calls);
    const actor = start(machine);
    claim(actor, 'PRE_EVAL'); // ignored: SUBMITTED waits for HIPPIUS
    expect(actor.getSnapshot().value).toBe('SUBMITTED');
    claim(actor, 'HIPPIUS');
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    createActor(machine, { snapshot: persisted, input: persisted.context }).start();
    await flush();
    expect(calls.map((c) => c.attempt.attemptKey)).toEqual([`${ID}:HIPPIUS:2`, `${ID}:HIPPIUS:2`]);
  });

  it('queued states have a deadline: no state waits forever', async () => {
    const actor = start(scripted({}), { ...DEFAULT_LIMITS, queueWaitMs: HOUR });
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(actor.getSnapshot().value).toBe('TERMINAL_INFRA_FAILED');
    expect(actor.getSnapshot().context.fault?.code).toBe('queue_deadline_exceeded');
    actor.send({ type: 'OPERATOR_RETRY', at: Date.now() });
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
  });

  it('handoff states advance by themselves when the requeuer is late', async () => {
    const actor = start(scripted({ HIPPIUS: [ok()] }));
    claim(actor, 'HIPPIUS');
    await flush();
    expect(actor.getSnapshot().value).toBe('HIPPIUS_VALIDATED');
    await vi.advanceTimersByTimeAsync(DEFAULT_LIMITS.handoffWaitMs);
    expect(actor.getSnapshot().value).toBe('PRE_EVAL_QUEUED');
  });

  it('a MINER claim rejection (T18) is terminal; an INFRA one (T19) retries without budget', async () => {
    const actor = start(scripted({}));
    actor.send({ type: 'CLAIM_REJECTED', stage: 'HIPPIUS', fault: stageFault('INFRA_FAULT', 'no_worker_available', 'none'), at: 0 });
    expect(actor.getSnapshot().value).toBe('HIPPIUS_RETRYABLE');
    expect(actor.getSnapshot().context.failures.HIPPIUS).toBe(0);
    actor.send({ type: 'CLAIM_REJECTED', stage: 'HIPPIUS', fault: stageFault('MINER_FAULT', 'hotkey_already_validated', 'x'), at: 0 });
    expect(actor.getSnapshot().value).toBe('TERMINAL_INVALID');
  });
});
