/**
 * `SubtensorModule` logic of the LOCAL STAND-IN dev chain: burned registration (with replacement, i.e.
 * deregistration, on a full subnet), hotkey swap, weights and commit-reveal v4 weights. Check order and
 * error/event names follow subtensor's pallet (spec 381 metadata); what is simplified is said at each
 * function. Storage written here is what spec/chain.md §1 and §3 read.
 */
import { u8aToHex } from '@polkadot/util';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { TimelockError, timelockDecrypt } from '../timelock.ts';
import { codecArray, codecBigInt, codecBytes, codecField, codecNumber, type TypedState } from './runtime-codec.ts';
import { DispatchFailure, type PalletCtx, fail, readAccount, sameAccount, writeAccount } from './runtime-context.ts';

const S = 'SubtensorModule';

/** `NetUidStorageIndex` = mecid·4096 + netuid (subtensor's `GLOBAL_MAX_SUBNET_COUNT` stride). */
export const MECHANISM_STRIDE = 4096;

/** Most unrevealed CRv4 commits per hotkey and epoch (subtensor rejects the 11th). */
export const MAX_UNREVEALED_WEIGHT_COMMITS = 10;

/**
 * SCALE layout of a CRv4 plaintext (`WeightsTlockPayload`), as chain/weights-commit.ts encodes it. Decoded
 * here rather than imported so the node does not load `@polkadot/api` (≈2 s of startup) through it.
 */
const WEIGHTS_PAYLOAD_TYPE = '{"hotkey":"Vec<u8>","uids":"Vec<u16>","values":"Vec<u16>","version_key":"u64"}';

interface WeightsPayload {
  readonly hotkey: Uint8Array;
  readonly uids: number[];
  readonly weights: number[];
  readonly versionKey: bigint;
}

function decodeWeightsPayload(state: TypedState, bytes: Uint8Array): WeightsPayload {
  const decoded = state.codec.registry.createType(WEIGHTS_PAYLOAD_TYPE, bytes);
  if (decoded.encodedLength !== bytes.length) throw new Error(`${bytes.length - decoded.encodedLength} trailing bytes`);
  return {
    hotkey: codecBytes(codecField(decoded, 'hotkey')),
    uids: codecArray(codecField(decoded, 'uids')).map((v) => codecNumber(v)),
    weights: codecArray(codecField(decoded, 'values')).map((v) => codecNumber(v)),
    versionKey: codecBigInt(codecField(decoded, 'version_key')),
  };
}

export function storageIndex(netuid: number, mecid: number): number {
  return mecid * MECHANISM_STRIDE + netuid;
}

export function subnetExists(state: TypedState, netuid: number): boolean {
  const added = state.get(S, 'NetworksAdded', [netuid]);
  return added !== null && added.toJSON() === true;
}

/** Netuids with `NetworksAdded = true`. */
export function subnetIds(state: TypedState): number[] {
  return state
    .keys(S, 'NetworksAdded')
    .map((key) => codecNumber(state.keyArgs(S, 'NetworksAdded', key)[0], 'netuid'))
    .filter((netuid) => subnetExists(state, netuid));
}

function num(state: TypedState, item: string, args: readonly unknown[]): number {
  return codecNumber(state.getOrDefault(S, item, args), item);
}

function big(state: TypedState, item: string, args: readonly unknown[]): bigint {
  return codecBigInt(state.getOrDefault(S, item, args), item);
}

export function uidOf(state: TypedState, netuid: number, hotkey: Uint8Array): number | null {
  const uid = state.get(S, 'Uids', [netuid, hotkey]);
  return uid === null ? null : codecNumber(uid, 'uid');
}

function mechanismCount(state: TypedState, netuid: number): number {
  return Math.max(1, num(state, 'MechanismCountCurrent', [netuid]));
}

/** subtensor's `get_epoch_index`: `(block + netuid + 1) / (tempo + 1)`. */
export function epochIndex(state: TypedState, netuid: number, block: number): number {
  const tempo = num(state, 'Tempo', [netuid]);
  return Math.floor((block + netuid + 1) / (tempo + 1));
}

function lastUpdate(state: TypedState, index: number): bigint[] {
  return codecArray(state.getOrDefault(S, 'LastUpdate', [index]), 'LastUpdate').map((v) => codecBigInt(v));
}

function setLastUpdate(state: TypedState, index: number, uid: number, block: number): void {
  const values = lastUpdate(state, index);
  while (values.length <= uid) values.push(0n);
  values[uid] = BigInt(block);
  state.set(S, 'LastUpdate', [index], values);
}

/** Records ownership the first time a hotkey is seen (`create_account_if_non_existent`). */
function ensureOwner(state: TypedState, coldkey: Uint8Array, hotkey: Uint8Array): void {
  if (state.has(S, 'Owner', [hotkey])) return;
  state.set(S, 'Owner', [hotkey], coldkey);
  const owned = codecArray(state.getOrDefault(S, 'OwnedHotkeys', [coldkey])).map((a) => codecBytes(a));
  if (!owned.some((h) => sameAccount(h, hotkey))) state.set(S, 'OwnedHotkeys', [coldkey], [...owned, hotkey]);
}

/**
 * `append_neuron`: uid = `SubnetworkN`, then N+1; `LastUpdate[uid] = block` on every mechanism (so a
 * fresh neuron is rate limited from its registration block, like subtensor). Used by genesis too.
 */
export function appendNeuron(state: TypedState, netuid: number, hotkey: Uint8Array, coldkey: Uint8Array, block: number): number {
  const uid = num(state, 'SubnetworkN', [netuid]);
  state.set(S, 'SubnetworkN', [netuid], uid + 1);
  state.set(S, 'Keys', [netuid, uid], hotkey);
  state.set(S, 'Uids', [netuid, hotkey], uid);
  state.set(S, 'BlockAtRegistration', [netuid, uid], block);
  state.set(S, 'IsNetworkMember', [hotkey, netuid], true);
  for (let mecid = 0; mecid < mechanismCount(state, netuid); mecid++) setLastUpdate(state, storageIndex(netuid, mecid), uid, block);
  ensureOwner(state, coldkey, hotkey);
  return uid;
}

/**
 * Neuron to replace on a full subnet: the non-immune uid (`block − BlockAtRegistration ≥ ImmunityPeriod`)
 * with the oldest registration, lowest uid on ties. The real pallet ranks by pruning score first; the dev
 * chain has no emissions, so every score is equal and registration age decides. `null` = all immune.
 */
function neuronToPrune(state: TypedState, netuid: number, block: number): number | null {
  const n = num(state, 'SubnetworkN', [netuid]);
  const immunity = num(state, 'ImmunityPeriod', [netuid]);
  let best: number | null = null;
  let bestRegistered = Number.POSITIVE_INFINITY;
  for (let uid = 0; uid < n; uid++) {
    const registered = Number(big(state, 'BlockAtRegistration', [netuid, uid]));
    if (block - registered < immunity) continue;
    if (registered < bestRegistered) {
      best = uid;
      bestRegistered = registered;
    }
  }
  return best;
}

/** `replace_neuron`: the old hotkey loses its uid (a deregistration); weights of the uid are cleared. */
function replaceNeuron(state: TypedState, netuid: number, uid: number, hotkey: Uint8Array, coldkey: Uint8Array, block: number): void {
  const old = codecBytes(state.getOrDefault(S, 'Keys', [netuid, uid]));
  state.remove(S, 'Uids', [netuid, old]);
  state.remove(S, 'IsNetworkMember', [old, netuid]);
  state.set(S, 'Keys', [netuid, uid], hotkey);
  state.set(S, 'Uids', [netuid, hotkey], uid);
  state.set(S, 'BlockAtRegistration', [netuid, uid], block);
  state.set(S, 'IsNetworkMember', [hotkey, netuid], true);
  for (let mecid = 0; mecid < mechanismCount(state, netuid); mecid++) {
    const index = storageIndex(netuid, mecid);
    state.remove(S, 'Weights', [index, uid]);
    setLastUpdate(state, index, uid, block);
  }
  ensureOwner(state, coldkey, hotkey);
}

/**
 * `burned_register(netuid, hotkey)` signed by the coldkey. Burns `Burn(netuid)` from the coldkey's free
 * balance (no swap/alpha accounting, no burn price adjustment, no registration-interval limits).
 */
export function burnedRegister(ctx: PalletCtx, coldkey: Uint8Array, netuid: number, hotkey: Uint8Array): void {
  const { state } = ctx;
  if (netuid === 0) fail(S, 'RegistrationNotPermittedOnRootSubnet');
  if (!subnetExists(state, netuid)) fail(S, 'SubnetNotExists');
  if (state.getOrDefault(S, 'NetworkRegistrationAllowed', [netuid]).toJSON() !== true) fail(S, 'SubNetRegistrationDisabled');
  if (num(state, 'RegistrationsThisBlock', [netuid]) >= num(state, 'MaxRegistrationsPerBlock', [netuid])) fail(S, 'TooManyRegistrationsThisBlock');
  if (uidOf(state, netuid, hotkey) !== null) fail(S, 'HotKeyAlreadyRegisteredInSubNet');
  const cost = big(state, 'Burn', [netuid]);
  const account = readAccount(state, coldkey);
  if (account.free < cost) fail(S, 'NotEnoughBalanceToStake');
  const owner = state.get(S, 'Owner', [hotkey]);
  if (owner !== null && !sameAccount(codecBytes(owner), coldkey)) fail(S, 'NonAssociatedColdKey');
  const maxUids = num(state, 'MaxAllowedUids', [netuid]);
  if (maxUids === 0) fail(S, 'NoNeuronIdAvailable');
  const n = num(state, 'SubnetworkN', [netuid]);
  const replace = n >= maxUids ? neuronToPrune(state, netuid, ctx.block) : null;
  if (n >= maxUids && replace === null) fail(S, 'NoNeuronIdAvailable');

  writeAccount(state, coldkey, { ...account, free: account.free - cost });
  let uid: number;
  if (replace === null) {
    uid = appendNeuron(state, netuid, hotkey, coldkey, ctx.block);
  } else {
    uid = replace;
    replaceNeuron(state, netuid, uid, hotkey, coldkey, ctx.block);
  }
  state.set(S, 'RegistrationsThisBlock', [netuid], num(state, 'RegistrationsThisBlock', [netuid]) + 1);
  ctx.emit(S, 'NeuronRegistered', [netuid, uid, hotkey]);
}

/** Moves a hotkey's registration on one subnet to a new hotkey; `BlockAtRegistration` (by uid) stays. */
function moveRegistration(state: TypedState, netuid: number, oldHotkey: Uint8Array, newHotkey: Uint8Array): boolean {
  const uid = uidOf(state, netuid, oldHotkey);
  if (uid === null) return false;
  state.remove(S, 'Uids', [netuid, oldHotkey]);
  state.remove(S, 'IsNetworkMember', [oldHotkey, netuid]);
  state.set(S, 'Uids', [netuid, newHotkey], uid);
  state.set(S, 'IsNetworkMember', [newHotkey, netuid], true);
  state.set(S, 'Keys', [netuid, uid], newHotkey);
  return true;
}

/**
 * `swap_hotkey(hotkey, new_hotkey, netuid: Option<u16>)` signed by the owning coldkey. Without a netuid
 * the registration moves on every subnet, `Owner(old)` is removed (reads as the zero account) and
 * `Owner(new) = coldkey`; the cost `KeySwapCost` is burned. With a netuid only that subnet moves and the
 * old hotkey keeps its owner. Not modelled: the swap rate limits and stake/child-key moves.
 */
export function swapHotkey(ctx: PalletCtx, coldkey: Uint8Array, oldHotkey: Uint8Array, newHotkey: Uint8Array, netuid: number | null): void {
  const { state } = ctx;
  const owner = state.get(S, 'Owner', [oldHotkey]);
  if (owner === null || !sameAccount(codecBytes(owner), coldkey)) fail(S, 'NonAssociatedColdKey');
  if (sameAccount(oldHotkey, newHotkey)) fail(S, 'NewHotKeyIsSameWithOld');
  const newOwner = state.get(S, 'Owner', [newHotkey]);
  if (newOwner !== null && !sameAccount(codecBytes(newOwner), coldkey)) fail(S, 'NonAssociatedColdKey');
  const subnets = netuid === null ? subnetIds(state) : [netuid];
  if (netuid !== null && !subnetExists(state, netuid)) fail(S, 'SubnetNotExists');
  if (subnets.some((id) => uidOf(state, id, newHotkey) !== null)) fail(S, 'HotKeyAlreadyRegisteredInSubNet');
  const cost = netuid === null ? ctx.config.hotkeySwapCostRao : 0n;
  const account = readAccount(state, coldkey);
  if (account.free < cost) fail(S, 'NotEnoughBalanceToPaySwapHotKey');
  if (cost > 0n) writeAccount(state, coldkey, { ...account, free: account.free - cost });

  for (const id of subnets) moveRegistration(state, id, oldHotkey, newHotkey);
  if (!state.has(S, 'Owner', [newHotkey])) state.set(S, 'Owner', [newHotkey], coldkey);
  const owned = codecArray(state.getOrDefault(S, 'OwnedHotkeys', [coldkey])).map((a) => codecBytes(a));
  if (netuid === null) {
    state.remove(S, 'Owner', [oldHotkey]);
    const next = owned.filter((h) => !sameAccount(h, oldHotkey));
    if (!next.some((h) => sameAccount(h, newHotkey))) next.push(newHotkey);
    state.set(S, 'OwnedHotkeys', [coldkey], next);
    ctx.emit(S, 'HotkeySwapped', [coldkey, oldHotkey, newHotkey]);
  } else {
    if (!owned.some((h) => sameAccount(h, newHotkey))) state.set(S, 'OwnedHotkeys', [coldkey], [...owned, newHotkey]);
    ctx.emit(S, 'HotkeySwappedOnSubnet', [coldkey, oldHotkey, newHotkey, netuid]);
  }
}

/** subtensor's `vec_u16_max_upscale_to_u16`: scale so the largest weight is 65535 (round half up). */
function maxUpscale(values: readonly number[]): number[] {
  const max = values.reduce((m, v) => Math.max(m, v), 0);
  if (max === 0 || max === 0xffff) return [...values];
  return values.map((v) => Math.floor((v * 0xffff) / max + 0.5));
}

export interface WeightsInput {
  readonly netuid: number;
  readonly mecid: number;
  readonly dests: readonly number[];
  readonly weights: readonly number[];
  readonly versionKey: bigint;
}

/**
 * `do_set_mechanism_weights` (also `set_weights` with mecid 0). Rate limit: allowed iff
 * `LastUpdate[uid] == 0` (never set) or `block − LastUpdate[uid] > WeightsSetRateLimit` — spec/chain.md
 * §6.2's rule; subtensor itself accepts `≥`, so this stand-in is one block stricter, never laxer.
 * Skipped checks (no stake model): `NotEnoughStakeToSetWeights`, `NeuronNoValidatorPermit`,
 * `MaxWeightExceeded`. `revealed` = applied by a CRv4 reveal: commit-reveal and rate-limit checks off,
 * `LastUpdate` untouched (as subtensor does when commit-reveal is on).
 */
export function setWeights(ctx: PalletCtx, hotkey: Uint8Array, input: WeightsInput, revealed = false): void {
  const { state } = ctx;
  const { netuid, mecid, dests, weights, versionKey } = input;
  const crEnabled = state.getOrDefault(S, 'CommitRevealWeightsEnabled', [netuid]).toJSON() === true;
  if (!revealed && crEnabled) fail(S, 'CommitRevealEnabled');
  if (dests.length !== weights.length) fail(S, 'WeightVecNotEqualSize');
  if (!subnetExists(state, netuid)) fail(S, 'SubnetNotExists');
  if (mecid >= mechanismCount(state, netuid)) fail(S, 'MechanismDoesNotExist');
  const n = num(state, 'SubnetworkN', [netuid]);
  if (dests.length > n) fail(S, 'UidsLengthExceedUidsInSubNet');
  const uid = uidOf(state, netuid, hotkey);
  if (uid === null) fail(S, 'HotKeyNotRegisteredInSubNet');
  const networkKey = big(state, 'WeightsVersionKey', [netuid]);
  if (networkKey !== 0n && versionKey < networkKey) fail(S, 'IncorrectWeightVersionKey');
  const index = storageIndex(netuid, mecid);
  if (!revealed && !crEnabled) {
    const last = lastUpdate(state, index)[uid] ?? 0n;
    const limit = big(state, 'WeightsSetRateLimit', [netuid]);
    if (last !== 0n && !(BigInt(ctx.block) - last > limit)) fail(S, 'SettingWeightsTooFast');
  }
  if (new Set(dests).size !== dests.length) fail(S, 'DuplicateUids');
  if (dests.some((d) => d >= n)) fail(S, 'UidVecContainInvalidOne');
  const isSelfWeight = dests.length === 1 && dests[0] === uid;
  const minAllowed = Math.min(num(state, 'MinAllowedWeights', [netuid]), n);
  if (!isSelfWeight && weights.length < minAllowed) fail(S, 'WeightVecLengthIsLow');

  const upscaled = maxUpscale(weights);
  state.set(
    S,
    'Weights',
    [index, uid],
    dests.map((d, i) => [d, upscaled[i]]),
  );
  if (!revealed && !crEnabled) setLastUpdate(state, index, uid, ctx.block);
  ctx.emit(S, 'WeightsSet', [index, uid]);
}

export interface TimelockedCommitInput {
  readonly netuid: number;
  readonly mecid: number;
  readonly commit: Uint8Array;
  readonly revealRound: bigint;
  readonly commitRevealVersion: number;
}

/** `commit_timelocked_mechanism_weights`: queues the ciphertext in `TimelockedWeightCommits(index, epoch)`. */
export function commitTimelockedWeights(ctx: PalletCtx, hotkey: Uint8Array, input: TimelockedCommitInput): void {
  const { state } = ctx;
  const { netuid, mecid, commit, revealRound, commitRevealVersion } = input;
  if (state.getOrDefault(S, 'CommitRevealWeightsEnabled', [netuid]).toJSON() !== true) fail(S, 'CommitRevealDisabled');
  if (commitRevealVersion !== num(state, 'CommitRevealWeightsVersion', [])) fail(S, 'IncorrectCommitRevealVersion');
  if (!subnetExists(state, netuid)) fail(S, 'SubnetNotExists');
  if (mecid >= mechanismCount(state, netuid)) fail(S, 'MechanismDoesNotExist');
  const uid = uidOf(state, netuid, hotkey);
  if (uid === null) fail(S, 'HotKeyNotRegisteredInSubNet');
  const index = storageIndex(netuid, mecid);
  const last = lastUpdate(state, index)[uid] ?? 0n;
  const limit = big(state, 'WeightsSetRateLimit', [netuid]);
  if (last !== 0n && !(BigInt(ctx.block) - last > limit)) fail(S, 'CommittingWeightsTooFast');
  const epoch = epochIndex(state, netuid, ctx.block);
  const queue = codecArray(state.getOrDefault(S, 'TimelockedWeightCommits', [index, epoch]));
  const mine = queue.filter((entry) => sameAccount(codecBytes(codecArray(entry)[0]), hotkey)).length;
  if (mine >= MAX_UNREVEALED_WEIGHT_COMMITS) fail(S, 'TooManyUnrevealedCommits');
  state.set(S, 'TimelockedWeightCommits', [index, epoch], [...queue, [hotkey, ctx.block, u8aToHex(commit), revealRound]]);
  setLastUpdate(state, index, uid, ctx.block);
  ctx.emit(S, 'TimelockedWeightsCommitted', [hotkey, index, blake2AsU8a(commit, 256), revealRound]);
}

/**
 * Reveals queued CRv4 commits at block start: a commit of epoch e is revealed at the first block whose
 * epoch is ≥ e + `RevealPeriodEpochs` and whose state holds `Drand.Pulses[reveal_round]`. (subtensor
 * reveals once per epoch boundary; the stand-in keeps trying every block until the pulse exists.)
 * The plaintext `{hotkey, uids, values, version_key}` is applied as weights of the committer; anything
 * that does not decrypt, decode, name the committer or pass the weight checks is dropped.
 */
export function revealTimelockedWeights(ctx: PalletCtx): void {
  const { state } = ctx;
  for (const key of state.keys(S, 'TimelockedWeightCommits')) {
    const [indexCodec, epochCodec] = state.keyArgs(S, 'TimelockedWeightCommits', key);
    const index = codecNumber(indexCodec, 'netuid index');
    const epoch = codecNumber(epochCodec, 'epoch');
    const netuid = index % MECHANISM_STRIDE;
    const mecid = Math.floor(index / MECHANISM_STRIDE);
    const revealPeriod = Number(big(state, 'RevealPeriodEpochs', [netuid]));
    if (epochIndex(state, netuid, ctx.block) < epoch + revealPeriod) continue;
    const queue = codecArray(state.getOrDefault(S, 'TimelockedWeightCommits', [index, epoch]));
    const remaining: unknown[] = [];
    for (const entry of queue) {
      const [who, , commit, round] = codecArray(entry);
      const pulse = state.get('Drand', 'Pulses', [round]);
      if (pulse === null) {
        remaining.push(entry);
        continue;
      }
      const hotkey = codecBytes(who);
      const dropped = (why: string): void => ctx.debug(`CRv4 commit of 0x${Buffer.from(hotkey).toString('hex')} on index ${index} dropped: ${why}`);
      let plaintext: Uint8Array;
      try {
        plaintext = timelockDecrypt(codecBytes(commit), codecBytes(codecField(pulse, 'signature')));
      } catch (e) {
        if (!(e instanceof TimelockError)) throw e;
        dropped(e.message);
        continue;
      }
      let payload: WeightsPayload;
      try {
        payload = decodeWeightsPayload(state, plaintext);
      } catch (e) {
        dropped(`payload does not decode: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      if (!sameAccount(payload.hotkey, hotkey)) {
        dropped('payload hotkey is not the committer');
        continue;
      }
      try {
        // All weight checks run before the first write, so a failure leaves no partial state.
        setWeights(ctx, hotkey, { netuid, mecid, dests: payload.uids, weights: payload.weights, versionKey: payload.versionKey }, true);
        ctx.emit(S, 'TimelockedWeightsRevealed', [index, hotkey]);
      } catch (e) {
        if (!(e instanceof DispatchFailure)) throw e;
        dropped(e.message);
      }
    }
    if (remaining.length === 0) state.remove(S, 'TimelockedWeightCommits', [index, epoch]);
    else if (remaining.length !== queue.length) state.set(S, 'TimelockedWeightCommits', [index, epoch], remaining);
  }
}

/** Per-block reset of registration counters (subtensor's `on_initialize`). */
export function onInitialize(ctx: PalletCtx): void {
  for (const key of ctx.state.keys(S, 'RegistrationsThisBlock')) ctx.state.raw.set(key, null);
}
