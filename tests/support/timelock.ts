import { expect } from 'vitest';
import { TimelockError, type TimelockErrorCode } from '../../chain/timelock.ts';

/** Runs `f` and returns the TimelockError code it throws (fails the test on success or any other error). */
export function codeOf(f: () => unknown): TimelockErrorCode {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TimelockError);
    return (e as TimelockError).code;
  }
  throw new Error('expected a TimelockError, got a result');
}
