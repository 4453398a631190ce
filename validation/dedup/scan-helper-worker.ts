/**
 * The helper thread of scan-helper.ts: waits for a job, joins it unless the caller already closed it,
 * claims chunks alongside the caller, and closes the job when it leaves.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { blockWord, CTRL, JOB_BANKS, readJob, runChunks, STATE, scoreKernel } from './int8-kernel.ts';

interface HelperInit {
  readonly module: WebAssembly.Module;
  readonly memories: readonly WebAssembly.Memory[];
  readonly ctrl: SharedArrayBuffer;
  readonly done: SharedArrayBuffer;
}

const init = workerData as HelperInit;
const ctrl = new Int32Array(init.ctrl);
const done = new Int32Array(init.done);
const kernels = init.memories.map((memory) => scoreKernel(init.module, memory));
parentPort?.postMessage('ready');
let seen = Atomics.load(ctrl, CTRL.SEQ);
for (;;) {
  Atomics.wait(ctrl, CTRL.SEQ, seen);
  if (Atomics.load(ctrl, CTRL.STOP)) break;
  seen = Atomics.load(ctrl, CTRL.SEQ);
  // Join the newest job if it is still open (one the caller finished alone is closed): its bank is
  // the one whose state says "job `seen` open".
  const bank = joinOpenJob(seen);
  if (bank < 0) continue;
  const stateAt = blockWord(bank, STATE);
  Atomics.add(ctrl, CTRL.HELPER_CHUNKS, runChunks(ctrl, done, seen, bank, readJob(ctrl, bank), kernels));
  Atomics.store(ctrl, stateAt, 3 * seen + 2);
  Atomics.notify(ctrl, stateAt);
}

function joinOpenJob(seq: number): number {
  for (let bank = 0; bank < JOB_BANKS; bank++) {
    if (Atomics.compareExchange(ctrl, blockWord(bank, STATE), 3 * seq, 3 * seq + 1) === 3 * seq) return bank;
  }
  return -1;
}
