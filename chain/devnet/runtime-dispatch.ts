/**
 * Call dispatch of the LOCAL STAND-IN dev chain: which calls it executes and how their metadata
 * arguments map onto the pallet functions. A call not listed here is refused at submission (1010
 * "Transaction call is not expected") instead of being included and silently doing nothing.
 */
import { blake2AsU8a } from '@polkadot/util-crypto';
import { CHAIN_WEIGHTS_COMMIT_LIMIT } from '../timelock.ts';
import { codecArray, codecBigInt, codecBytes, codecNumber } from './runtime-codec.ts';
import { commitmentInfoBoundsViolation, setCommitment } from './runtime-commitments.ts';
import { type PalletCtx, fail, readAccount, writeAccount } from './runtime-context.ts';
import { type ExtrinsicCall, INVALID_TX, PoolError, invalidTransaction } from './runtime-extrinsics.ts';
import { burnedRegister, commitTimelockedWeights, setWeights, swapHotkey } from './runtime-subtensor.ts';

type Handler = (ctx: PalletCtx, signer: Uint8Array, args: readonly unknown[]) => void;

function optionNumber(value: unknown): number | null {
  if (typeof value === 'object' && value !== null && 'isSome' in value && 'unwrap' in value && typeof value.unwrap === 'function') {
    return value.isSome === true ? codecNumber(value.unwrap(), 'Option<u16>') : null;
  }
  throw new Error('not an Option codec');
}

function numbers(value: unknown): number[] {
  return codecArray(value).map((v) => codecNumber(v));
}

/** `MultiAddress` argument → 32-byte account id (only the `Id` variant is supported). */
function multiAddressId(value: unknown): Uint8Array {
  if (typeof value === 'object' && value !== null && 'isId' in value && value.isId === true && 'asId' in value) return codecBytes(value.asId);
  throw new Error('only MultiAddress::Id destinations are supported by the dev chain');
}

/** `Balances.transfer_*`: plain free-balance move; `keepAlive` refuses to go below the existential deposit. */
function transfer(ctx: PalletCtx, from: Uint8Array, to: Uint8Array, amount: bigint, keepAlive: boolean): void {
  const { state } = ctx;
  const sender = readAccount(state, from);
  if (sender.free < amount) fail('Balances', 'InsufficientBalance');
  const consts = ctx.codec.runtime.decorated.consts as Record<string, Record<string, unknown> | undefined>;
  const existential = codecBigInt(consts.balances?.existentialDeposit, 'ExistentialDeposit');
  if (keepAlive && sender.free - amount < existential) fail('Balances', 'Expendability');
  writeAccount(state, from, { ...sender, free: sender.free - amount });
  const receiver = readAccount(state, to);
  writeAccount(state, to, { ...receiver, free: receiver.free + amount });
  ctx.emit('Balances', 'Transfer', [from, to, amount]);
}

const HANDLERS: Readonly<Record<string, Handler>> = {
  'subtensorModule.burnedRegister': (ctx, signer, [netuid, hotkey]) => burnedRegister(ctx, signer, codecNumber(netuid), codecBytes(hotkey)),
  'subtensorModule.swapHotkey': (ctx, signer, [hotkey, newHotkey, netuid]) => swapHotkey(ctx, signer, codecBytes(hotkey), codecBytes(newHotkey), optionNumber(netuid)),
  'subtensorModule.setWeights': (ctx, signer, [netuid, dests, weights, versionKey]) =>
    setWeights(ctx, signer, { netuid: codecNumber(netuid), mecid: 0, dests: numbers(dests), weights: numbers(weights), versionKey: codecBigInt(versionKey) }),
  'subtensorModule.setMechanismWeights': (ctx, signer, [netuid, mecid, dests, weights, versionKey]) =>
    setWeights(ctx, signer, { netuid: codecNumber(netuid), mecid: codecNumber(mecid), dests: numbers(dests), weights: numbers(weights), versionKey: codecBigInt(versionKey) }),
  'subtensorModule.commitTimelockedMechanismWeights': (ctx, signer, [netuid, mecid, commit, revealRound, version]) =>
    commitTimelockedWeights(ctx, signer, {
      netuid: codecNumber(netuid),
      mecid: codecNumber(mecid),
      commit: codecBytes(commit),
      revealRound: codecBigInt(revealRound),
      commitRevealVersion: codecNumber(version),
    }),
  'commitments.setCommitment': (ctx, signer, [netuid, info]) => setCommitment(ctx, signer, codecNumber(netuid), info),
  'system.remark': () => undefined,
  'system.remarkWithEvent': (ctx, signer, [remark]) => ctx.emit('System', 'Remarked', [signer, blake2AsU8a(codecBytes(remark), 256)]),
  'balances.transferKeepAlive': (ctx, signer, [dest, value]) => transfer(ctx, signer, multiAddressId(dest), codecBigInt(value), true),
  'balances.transferAllowDeath': (ctx, signer, [dest, value]) => transfer(ctx, signer, multiAddressId(dest), codecBigInt(value), false),
};

/** `section.method` names the dev chain executes. */
export const SUPPORTED_CALLS: readonly string[] = Object.keys(HANDLERS);

function callId(call: ExtrinsicCall): string {
  return `${call.section}.${call.method}`;
}

/**
 * Why a call is refused at submission: not executed by the dev chain (1010 "Transaction call is not
 * expected", the unsupported call named in the log), or over a bound subtensor enforces while decoding
 * (1001, as the real node cannot decode it). `null` = acceptable.
 */
export function callRefusal(call: ExtrinsicCall, log: (line: string) => void): PoolError | null {
  const id = callId(call);
  if (!Object.hasOwn(HANDLERS, id)) {
    log(`[albedo-devnet] refused ${id}: not executed by the local stand-in (supported: ${SUPPORTED_CALLS.join(', ')})`);
    return invalidTransaction(INVALID_TX.call);
  }
  let bound: string | null = null;
  if (id === 'commitments.setCommitment') bound = commitmentInfoBoundsViolation(call.args[1]);
  if (id === 'subtensorModule.commitTimelockedMechanismWeights' && codecBytes(call.args[2]).length > CHAIN_WEIGHTS_COMMIT_LIMIT) {
    bound = `commit exceeds ${CHAIN_WEIGHTS_COMMIT_LIMIT} bytes`;
  }
  if (id.startsWith('balances.')) {
    try {
      multiAddressId(call.args[0]);
    } catch (e) {
      bound = (e as Error).message;
    }
  }
  return bound === null ? null : new PoolError(1001, 'Extrinsic has invalid format', `Could not decode: ${bound}`);
}

/** Executes a supported call; throws `DispatchFailure` for pallet errors. */
export function dispatchCall(ctx: PalletCtx, signer: Uint8Array, call: ExtrinsicCall): void {
  const handler = HANDLERS[callId(call)];
  if (handler === undefined) throw new Error(`unsupported call ${callId(call)}`);
  handler(ctx, signer, [...call.args]);
}
