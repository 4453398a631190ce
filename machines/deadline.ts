import { fromCallback } from 'xstate';

/** setTimeout's ceiling (2^31−1 ms ≈ 24.8 days); longer deadlines re-arm in chunks. */
export const MAX_TIMER_MS = 2_147_483_647;

export interface DeadlineInput {
  /** Absolute time (epoch ms). Stored in context, so a restored actor re-arms for the remaining time. */
  readonly at: number;
}

/**
 * Sends `{ type: 'DEADLINE' }` to its parent at an absolute time. Replaces `after` delays, which
 * xstate does not restore from a persisted snapshot (xstate#5331).
 * @example invoke: { src: 'deadline', input: ({ context }) => ({ at: context.waitDeadlineAt }) }
 */
export const deadlineLogic = fromCallback<{ type: 'noop' }, DeadlineInput>(({ input, sendBack }) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const remaining = input.at - Date.now();
    if (remaining <= 0) {
      sendBack({ type: 'DEADLINE' });
      return;
    }
    timer = setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(timer);
});
