import { parentPort, workerData } from 'node:worker_threads';
import { createKernel } from './fingerprint-kernel.ts';
import { kernelBytesFor, processShard, type ShardJob, type ShardResult } from './fingerprint-shard.ts';

/**
 * worker_threads entry of the fingerprint engine: one kernel instance (its own memory) per worker;
 * shards arrive one at a time ({@link WorkerRequest}) and results go back with the sample arrays
 * transferred. Stopping is `worker.terminate()` by the parent (prompt even mid-read).
 */

export interface WorkerInit {
  readonly readChunkBytes: number;
  /** The compiled kernel (a WebAssembly.Module is cloneable to workers; saves wabt in every worker). */
  readonly module: WebAssembly.Module;
}

export type WorkerRequest = { readonly type: 'job'; readonly job: ShardJob };

export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly bytes: number }
  | { readonly type: 'done'; readonly result: ShardResult }
  | { readonly type: 'failed'; readonly message: string };

const port = parentPort;
if (port) {
  const init = workerData as WorkerInit;
  const kernel = await createKernel(kernelBytesFor(init.readChunkBytes), init.module);
  const reply = (m: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  port.on('message', (m: WorkerRequest) => {
    processShard(kernel, m.job, { readChunkBytes: init.readChunkBytes, onBytes: (bytes) => reply({ type: 'progress', bytes }) }).then(
      (result) => reply({ type: 'done', result }, result.tensors.map((t) => t.samples.buffer as ArrayBuffer)),
      (err: unknown) => reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
    );
  });
  reply({ type: 'ready' });
}
