/**
 * The local subtensor dev chain (chain/devnet/) in-process with the production `Subtensor` client
 * connected to it, plus the few chain actions integration tests need — all through real signed
 * extrinsics: register a fresh hotkey, hand a uid to another hotkey (`swap_hotkey`), read a validator's
 * weights back from storage.
 */
import { randomBytes } from 'node:crypto';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { type DevnetNode, startDevnetNode } from '../../chain/devnet/rpc-node.ts';
import { sendAndWait, signOnce } from '../../chain/extrinsics.ts';
import { burnedRegister } from '../../chain/miner-ops.ts';
import { call, storageItem } from '../../chain/pallets.ts';
import { connectSubtensor, type Subtensor } from '../../chain/subtensor.ts';

export interface ChainWeights {
  readonly uids: number[];
  readonly weights: number[];
  /** `LastUpdate` of the validator's uid: the block of its last weight set. */
  readonly block: number;
}

export class TestChain {
  private readonly keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });

  private constructor(
    readonly node: DevnetNode,
    readonly client: Subtensor,
    readonly netuid: number,
    readonly coldkey: KeyringPair,
    readonly validator: KeyringPair,
  ) {}

  /** A dev chain with `netuid`, an endowed coldkey, and a registered validator hotkey (uid 0) that may sign weights. */
  static async start(o: { netuid: number; weightsSetRateLimit?: number; blockTimeMs?: number }): Promise<TestChain> {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    const tag = randomBytes(4).toString('hex');
    const coldkey = keyring.addFromUri(`//TestChain//${tag}//coldkey`);
    const validator = keyring.addFromUri(`//TestChain//${tag}//validator`);
    const node = await startDevnetNode({
      blockTimeMs: o.blockTimeMs ?? 20,
      finalityLag: 0,
      genesis: {
        subnets: [{ netuid: o.netuid, weightsSetRateLimit: o.weightsSetRateLimit ?? 0, immunityPeriod: 0 }],
        endowments: { [coldkey.address]: 1_000_000_000_000_000n },
        registrations: [{ hotkey: validator.address, coldkey: coldkey.address, netuid: o.netuid }],
      },
      log: () => {},
    });
    const client = await connectSubtensor({ network: node.url, signers: [validator], inclusionTimeoutMs: 20_000 });
    return new TestChain(node, client, o.netuid, coldkey, validator);
  }

  /** Registers a fresh hotkey (burned_register signed by the coldkey). */
  async register(): Promise<{ hotkey: string; uid: number }> {
    const hotkey = this.keyring.addFromUri(`//${randomBytes(16).toString('hex')}`).address;
    const { uid } = await burnedRegister(this.client, { netuid: this.netuid, coldkey: this.coldkey, hotkey });
    return { hotkey, uid };
  }

  /** Moves `uid` to a fresh hotkey with `swap_hotkey` (the old hotkey no longer holds it). */
  async giveUidToNewHotkey(uid: number): Promise<string> {
    const current = await this.client.hotkeyOf(this.netuid, uid);
    if (!current) throw new Error(`uid ${uid} is empty`);
    const newcomer = this.keyring.addFromUri(`//${randomBytes(16).toString('hex')}`).address;
    const tx = await signOnce(call(this.client.api, 'subtensorModule', 'swapHotkey')(current, newcomer, null), this.coldkey);
    await sendAndWait(this.client.api, tx, { waitFor: 'inBlock' });
    return newcomer;
  }

  /** The weights `hotkey` last set on the subnet, read from `Weights` and `LastUpdate`. */
  async weightsOf(hotkey: string): Promise<ChainWeights | undefined> {
    const uid = await this.client.uidOf(this.netuid, hotkey);
    if (uid === null) return undefined;
    const row = (await storageItem(this.client.api, 'subtensorModule', 'weights')(this.netuid, uid)) as unknown as Array<[{ toNumber(): number }, { toNumber(): number }]>;
    const block = await this.client.lastWeightsSetBlock(this.netuid, hotkey);
    if (row.length === 0 || block === null) return undefined;
    return { uids: row.map(([u]) => u.toNumber()), weights: row.map(([, w]) => w.toNumber()), block };
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.node.close();
  }
}
