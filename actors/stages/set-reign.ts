/**
 * SET_REIGN stage (spec/coronation.md §1, pipeline.md T24–T25): crowns the submission whose duel was
 * won, as an in-process executor of the stage service.
 *
 * Atomicity. A reign must never exist unless the SET_REIGN attempt that created it is finalised
 * SUCCEEDED, in the same transaction. The stage service writes the attempt's outcome (state and
 * `result_summary`) with a compare-and-set and then runs the executor's `apply(tx)` in that same
 * transaction — but it fixes the outcome *before* `apply` runs, so `apply` cannot turn a success
 * into a fault. Hence two runs of the same promotion:
 *
 * 1. **Decide** (here, before returning): `crown()` in a private transaction that is always rolled
 *    back. It yields either the fault (returned as the outcome; nothing is written) or the exact
 *    summary the promotion will produce. The ids of the new king version and reign are generated
 *    once, up front, and reused, so the summary is reproducible.
 * 2. **Commit** (`apply`, inside the finaliser's transaction): `crown()` again with the same ids. If
 *    the database moved in between (another promotion, a new king) the summary differs or a fault
 *    comes back; `apply` then throws, the finaliser's transaction rolls back — no reign, and the
 *    attempt stays RUNNING until its 60 s lease expires, when the sweeper abandons it
 *    (`set_reign_lease_expired` ⇒ SET_REIGN_RETRYABLE) and the next attempt decides afresh (e.g.
 *    `stale_winning_eval` ⇒ a new duel). If the attempt was already finalised by someone else
 *    (lease lost), the stage service skips `apply`, so no reign is written either.
 *
 * The race in step 2 needs two promotions at once, which the pipeline already prevents (one active
 * eval, and no eval is claimed while a coronation is pending), so the slow path is a safety net.
 */
import { randomUUID } from 'node:crypto';
import { AlbedoError } from '../../core/faults.ts';
import { crown, type CrownOptions, type CrownResult } from '../../persistence/coronation.ts';
import type { Db } from '../../persistence/db.ts';
import type { ExecutorResult, InProcessExecutor } from '../stage-service.ts';

export interface SetReignExecutorOptions {
  /** `king_versions.activated_by` (config `ALBEDO_SET_REIGN_WORKER_ID`, default `set-reign-worker`). */
  readonly workerId: string;
  readonly netuid: number;
}

/** Runs `crown` in a transaction that is always rolled back: the decision without the writes. */
async function dryRunCrown(db: Db, opts: CrownOptions): Promise<CrownResult> {
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    return await crown(client, opts);
  } finally {
    await client.query('ROLLBACK').catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e)); // never hand a connection in an unknown state back to the pool
    });
    client.release(broken);
  }
}

/** The SET_REIGN in-process executor (see the module comment for the two-run design). */
export function createSetReignExecutor(options: SetReignExecutorOptions): InProcessExecutor {
  return async (ctx): Promise<ExecutorResult> => {
    const opts: CrownOptions = {
      submissionId: ctx.submissionId,
      workerId: options.workerId,
      netuid: options.netuid,
      kingVersionId: randomUUID(),
      reignId: randomUUID(),
    };
    const decided = await dryRunCrown(ctx.db, opts);
    if (!decided.ok) return { outcome: { status: 'failed', fault: decided.fault } };
    const expected = JSON.stringify(decided.summary);
    return {
      outcome: { status: 'succeeded', result: decided.summary },
      apply: async (tx) => {
        const committed = await crown(tx, opts);
        if (!committed.ok) {
          throw new AlbedoError('CONFLICT', `coronation of ${ctx.submissionId} no longer applies (${committed.fault.code}: ${committed.fault.message}); rolled back`);
        }
        if (JSON.stringify(committed.summary) !== expected) {
          throw new AlbedoError('CONFLICT', `reign state changed while crowning ${ctx.submissionId}; rolled back`);
        }
      },
    };
  };
}
