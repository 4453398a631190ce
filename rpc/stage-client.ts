import { isTRPCClientError, type TRPCClient } from '@trpc/client';
import { AlbedoError, type AlbedoErrorCode } from '../core/faults.ts';
import type { AttemptKey } from '../core/ids.ts';
import type { StageOutcome } from '../core/stage.ts';
import type { StageClient } from '../actors/host.ts';
import type { AppRouter } from './router.ts';

/** Normalises a tRPC client error into our boundary error, keeping the server's closed code. */
export function fromTrpcError(error: unknown): AlbedoError {
  if (isTRPCClientError(error)) {
    const data = error.data as { albedoCode?: AlbedoErrorCode | null; code?: string } | undefined;
    const code: AlbedoErrorCode = data?.albedoCode ?? (data?.code === 'UNAUTHORIZED' || data?.code === 'FORBIDDEN' ? 'UNAUTHORIZED' : data?.code === 'BAD_REQUEST' ? 'BAD_INPUT' : 'INTERNAL');
    return new AlbedoError(code, error.message, { cause: error });
  }
  return error instanceof AlbedoError ? error : new AlbedoError('INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
}

/**
 * The stage-service client of an actor host over its tRPC WebSocket link. `start` is an idempotent
 * mutation (the WS link neither retries nor cancels it on a dropped socket, so the host's runner
 * retries it itself); `watch` is a tracked subscription the link resumes from the last event id.
 */
export function trpcStageClient(api: TRPCClient<AppRouter>): StageClient {
  return {
    start: async (req) => {
      try {
        return await api.stage.start.mutate(req);
      } catch (error) {
        throw fromTrpcError(error);
      }
    },
    cancel: async (req) => {
      try {
        return await api.stage.cancel.mutate(req);
      } catch (error) {
        throw fromTrpcError(error);
      }
    },
    waitForOutcome: (attemptKey: AttemptKey, signal: AbortSignal) =>
      new Promise<StageOutcome>((resolve, reject) => {
        const sub = api.stage.watch.subscribe(
          { attemptKey },
          {
            onData: (envelope) => {
              const e = envelope.data;
              if (e.terminal) {
                sub.unsubscribe();
                resolve(e.data.outcome as StageOutcome);
              }
            },
            onError: (error) => {
              sub.unsubscribe();
              reject(fromTrpcError(error));
            },
            // The link can report completion before it hands over the last data message of a
            // subscription that ended right after yielding (measured under load: most instant
            // attempts). The outcome is durable, so read it instead of failing the attempt.
            onComplete: () => {
              api.stage.result
                .query({ attemptKey })
                .then((v) => (v.outcome ? resolve(v.outcome as StageOutcome) : reject(new AlbedoError('INTERNAL', `watch of ${attemptKey} ended before its outcome`))))
                .catch((e) => reject(fromTrpcError(e)));
            },
          },
        );
        signal.addEventListener('abort', () => {
          sub.unsubscribe();
          reject(new AlbedoError('CONFLICT', 'stage runner stopped'));
        }, { once: true });
      }),
  };
}
