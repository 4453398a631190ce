/**
 * Signing, submitting and waiting for one extrinsic (spec/chain.md §4 step 5, §5 step 3, §6.2 step 6).
 *
 * One signed extrinsic object per logical write: a retry re-sends the *same bytes* (same nonce, same
 * era), so a submission whose answer was lost can never be doubled — the node either reports it as
 * already known / outdated, or includes it once. Callers still check chain state before a retry in a new
 * process (the signed bytes do not survive a crash).
 */
import type { ApiPromise, SubmittableResult } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { DispatchError, Header } from '@polkadot/types/interfaces';

/** Mortal era of every transaction we sign (spec §4 step 5, §6.2 step 6). @default 128 */
export const DEFAULT_ERA_PERIOD = 128;
/** Blocks to wait for inclusion before `not_included` (spec §6.2 step 6). @default 10 */
export const DEFAULT_INCLUSION_TIMEOUT_BLOCKS = 10;
/**
 * Wall-clock bound of the wait, for a chain that stops producing blocks altogether (no heads ⇒ the
 * block budget never runs out). @default 10 blocks × 12 s + 60 s = 180000
 */
export const DEFAULT_INCLUSION_TIMEOUT_MS = DEFAULT_INCLUSION_TIMEOUT_BLOCKS * 12_000 + 60_000;

export type ExtrinsicErrorCode =
  /** Included, but the dispatch failed: `moduleError` names the pallet error when there is one. */
  | 'dispatch_failed'
  /** The pool refused it (bad signature, stale nonce, banned, …): never included. */
  | 'invalid'
  /** Dropped or usurped from the pool. */
  | 'dropped'
  /** Not included within the block budget (it may still land: check chain state before retrying). */
  | 'not_included'
  /** Wall-clock timeout or lost connection while waiting (it may still land). */
  | 'timeout'
  /** Transport failure before the node accepted it. */
  | 'rpc_failed';

export interface ModuleErrorName {
  readonly section: string;
  readonly name: string;
  readonly docs: string;
}

/** The one error type of this boundary; `code` is closed, `moduleError` is set for pallet errors. */
export class ExtrinsicError extends Error {
  override readonly name = 'ExtrinsicError';
  constructor(
    readonly code: ExtrinsicErrorCode,
    message: string,
    readonly extrinsicHash: string | null,
    readonly moduleError: ModuleErrorName | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface IncludedExtrinsic {
  readonly extrinsicHash: string;
  readonly blockHash: string;
  readonly blockNumber: number;
  /** `section.method` of every event our extrinsic emitted (phase ApplyExtrinsic(our index)). */
  readonly events: ReadonlyArray<{ readonly section: string; readonly method: string; readonly data: unknown }>;
  readonly finalized: boolean;
}

export interface WaitOptions {
  /** `inBlock` for weights (spec §6.2), `finalized` for register and commit (§4, §5). */
  readonly waitFor: 'inBlock' | 'finalized';
  /** @default DEFAULT_INCLUSION_TIMEOUT_BLOCKS */
  readonly timeoutBlocks?: number;
  /** @default DEFAULT_INCLUSION_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Progress (`ready`, `inBlock 0x… #n`, `finalized …`) for CLIs; never receives secrets. */
  readonly onStatus?: (status: string) => void;
}

/** Signs once with a mortal era and the pool-aware next nonce (`system_accountNextIndex`). */
export async function signOnce(
  tx: SubmittableExtrinsic<'promise'>,
  signer: KeyringPair,
  options: { eraPeriod?: number } = {},
): Promise<SubmittableExtrinsic<'promise'>> {
  return tx.signAsync(signer, { era: options.eraPeriod ?? DEFAULT_ERA_PERIOD, nonce: -1 });
}

/** Human name of a dispatch error: `subtensorModule.SettingWeightsTooFast: <docs>` or the variant. */
export function describeDispatchError(api: ApiPromise, error: DispatchError): { message: string; moduleError: ModuleErrorName | null } {
  if (error.isModule) {
    try {
      const meta = api.registry.findMetaError(error.asModule);
      const moduleError = { section: meta.section, name: meta.name, docs: meta.docs.join(' ').trim() };
      return { message: `${meta.section}.${meta.name}${moduleError.docs ? `: ${moduleError.docs}` : ''}`, moduleError };
    } catch {
      return { message: `module error ${error.asModule.toString()}`, moduleError: null };
    }
  }
  return { message: error.type, moduleError: null };
}

/**
 * Sends an already signed extrinsic and resolves when it is in a block (or finalized). Rejects with
 * {@link ExtrinsicError}. Safe to call again with the same signed object after a `timeout`.
 */
export async function sendAndWait(api: ApiPromise, signed: SubmittableExtrinsic<'promise'>, options: WaitOptions): Promise<IncludedExtrinsic> {
  const extrinsicHash = signed.hash.toHex();
  const timeoutBlocks = options.timeoutBlocks ?? DEFAULT_INCLUSION_TIMEOUT_BLOCKS;
  const cleanups: Array<() => void> = [];
  try {
    return await new Promise<IncludedExtrinsic>((resolve, reject) => {
      let settled = false;
      let startBlock: number | null = null;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      const timer = setTimeout(
        () => settle(() => reject(new ExtrinsicError('timeout', `no ${options.waitFor} status for ${extrinsicHash} within ${options.timeoutMs ?? DEFAULT_INCLUSION_TIMEOUT_MS} ms`, extrinsicHash))),
        options.timeoutMs ?? DEFAULT_INCLUSION_TIMEOUT_MS,
      );
      cleanups.push(() => clearTimeout(timer));
      let included: { hash: string; number: number } | null = null;
      api.rpc.chain
        .subscribeNewHeads((header: Header) => {
          const n = header.number.toNumber();
          startBlock ??= n;
          if (included === null && n - startBlock > timeoutBlocks) {
            settle(() => reject(new ExtrinsicError('not_included', `extrinsic ${extrinsicHash} not included within ${timeoutBlocks} blocks`, extrinsicHash)));
          }
        })
        .then((unsub) => (settled ? unsub() : cleanups.push(unsub)))
        .catch(() => undefined);
      signed
        .send((result: SubmittableResult) => {
          const { status } = result;
          if (status.isReady) options.onStatus?.('ready');
          if (status.isInvalid || status.isDropped || status.isUsurped) {
            const code = status.isInvalid ? 'invalid' : 'dropped';
            settle(() => reject(new ExtrinsicError(code, `extrinsic ${extrinsicHash} ${status.type.toLowerCase()} by the transaction pool`, extrinsicHash)));
            return;
          }
          if (!(status.isInBlock || status.isFinalized)) return;
          const blockHash = (status.isInBlock ? status.asInBlock : status.asFinalized).toHex();
          const blockNumber = result.blockNumber?.toNumber() ?? -1;
          included = { hash: blockHash, number: blockNumber };
          options.onStatus?.(`${status.isInBlock ? 'inBlock' : 'finalized'} ${blockHash}${blockNumber >= 0 ? ` #${blockNumber}` : ''}`);
          if (result.dispatchError) {
            const { message, moduleError } = describeDispatchError(api, result.dispatchError);
            settle(() => reject(new ExtrinsicError('dispatch_failed', message, extrinsicHash, moduleError)));
            return;
          }
          if (options.waitFor === 'finalized' && !status.isFinalized) return;
          settle(() =>
            resolve({
              extrinsicHash,
              blockHash,
              blockNumber,
              events: result.events.map(({ event }) => ({ section: event.section, method: event.method, data: event.data.toJSON() })),
              finalized: status.isFinalized,
            }),
          );
        })
        .then((unsub) => (settled ? unsub() : cleanups.push(unsub)))
        .catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          // Pool rejections arrive as RPC errors: 1010 invalid, 1011 unknown, 1012 banned, 1013 already imported.
          const code: ExtrinsicErrorCode = /^\s*101[0-4]\b|Transaction|Priority is too low/i.test(message) ? 'invalid' : 'rpc_failed';
          settle(() => reject(new ExtrinsicError(code, `submission of ${extrinsicHash} failed: ${message}`, extrinsicHash, null, { cause: error })));
        });
    });
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}
