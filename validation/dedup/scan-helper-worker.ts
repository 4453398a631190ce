/**
 * The helper thread of scan-helper.ts: waits for a job, joins it unless the caller already closed it,
 * claims chunks alongside the caller, and reports done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CTRL, runChunks, scoreKernel } from './int8-kernel.ts';

interface HelperInit {
  readonly module: WebAssembly.Module;
  readonly memories: readonly WebAssembly.Memory[];
  readonly ctrl: SharedArrayBuffer;
}

const init = workerData as HelperInit;
const ctrl = new Int32Array(init.ctrl);
const kernels = init.memories.map((memory) => scoreKernel(init.module, memory));
parentPort?.postMessage('ready');
let seen = Atomics.load(ctrl, CTRL.SEQ);
for (;;) {
  Atomics.wait(ctrl, CTRL.SEQ, seen);
  if (Atomics.load(ctrl, CTRL.STOP)) break;
  seen = Atomics.load(ctrl, CTRL.SEQ);
  // Join only a job that is still open: a job the caller finished alone is closed.
  if (Atomics.compareExchange(ctrl, CTRL.STATE, 3 * seen, 3 * seen + 1) !== 3 * seen) continue;
  Atomics.add(ctrl, CTRL.HELPER_CHUNKS, runChunks(ctrl, kernels));
  Atomics.store(ctrl, CTRL.STATE, 3 * seen + 2);
  Atomics.notify(ctrl, CTRL.STATE);
}
