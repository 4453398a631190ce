/**
 * The chain reader's ingest without actors: T1 (insert the commit and submission) and T2 (a ledger
 * hotkey's submission is recorded as TERMINAL_INVALID), in one transaction — for reader tests that
 * are about the chain side, not the pipeline.
 */
import { inTx } from '../../persistence/db.ts';
import { ingestRejection, insertSubmission, type NewReveal } from '../../persistence/submissions.ts';
import type { TestDatabase } from './pg.ts';

export function ingestInto(t: TestDatabase): (r: NewReveal) => Promise<{ created: boolean }> {
  return (r) =>
    inTx(t.db, async (tx) => {
      const rejected = await ingestRejection(tx, r.hotkey);
      const sub = await insertSubmission(tx, r);
      if (sub.created && rejected) {
        await tx.query(`UPDATE model_submissions SET state = 'TERMINAL_INVALID', fault_class = 'MINER_FAULT', fault_code = $2 WHERE id = $1`, [sub.id, rejected.code]);
      }
      return { created: sub.created };
    });
}
