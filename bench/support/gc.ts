import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/**
 * A full, blocking garbage collection. The benches run without `--expose-gc`, so the flag is set at
 * first use and `gc` is taken from a fresh context (the current one was created before the flag);
 * later calls reuse it, so heap samples do not include a new context each time.
 */
export function fullGc(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
