/**
 * Request/response JSON-RPC methods of the LOCAL STAND-IN dev chain node: the substrate methods
 * `ApiPromise` calls (spec/chain.md §10 tier 2 plus what polkadot.js asks for during `signAndSend`,
 * `api.at`, `entries`, `paymentInfo`) and the `dev_*` admin methods. Subscriptions live in rpc-node.ts.
 * Results use substrate's JSON shapes (hex numbers in headers, `null` for unknown blocks).
 */
import { compactToU8a, hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsHex, decodeAddress } from '@polkadot/util-crypto';
import { z } from 'zod';
import { DEVNET_CHAIN_NAME, DEVNET_LABEL, DEVNET_NODE_NAME, DEVNET_NODE_VERSION } from './genesis.ts';
import { codecNumber } from './runtime-codec.ts';
import { type BlockRecord, type DevnetRuntime, RuntimeError, headerJson } from './runtime.ts';

/** A JSON-RPC error response. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

export const RPC_ERROR = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** Runtime API not provided by the stand-in. */
  unsupported: -32000,
  /** substrate's state error base + 3: unknown or pruned block. */
  stateUnavailable: 4003,
} as const;

/** Most keys `state_getKeysPaged` returns per call (substrate's cap). */
export const MAX_KEYS_PAGE = 1000;
/** Most keys one `state_queryStorageAt` may ask for. */
export const MAX_QUERY_KEYS = 4096;

const hexString = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, 'expected 0x-prefixed hex bytes');
const hash = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 32-byte 0x-hex block hash');
const optionalHash = hash.nullish();
const blockNumber = z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^0x[0-9a-fA-F]{1,13}$/)]);

export interface MethodDef {
  /** Positional parameter schemas; missing trailing parameters are passed as `undefined`. */
  readonly params: readonly z.ZodType[];
  run(args: readonly unknown[]): unknown;
}

function toNumber(value: z.infer<typeof blockNumber>): number {
  return typeof value === 'number' ? value : Number.parseInt(value.slice(2), 16);
}

function stateQuery<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RuntimeError) throw new RpcError(e.code === 'bad_argument' ? RPC_ERROR.invalidParams : RPC_ERROR.stateUnavailable, e.message);
    throw e;
  }
}

function blockJson(block: BlockRecord): unknown {
  return { block: { header: headerJson(block), extrinsics: block.extrinsics }, justifications: null };
}

/** `Option<OpaqueMetadata>` / `OpaqueMetadata` SCALE of the raw metadata bytes. */
function opaqueMetadata(raw: Uint8Array): Uint8Array {
  return u8aConcat(compactToU8a(raw.length), raw);
}

/** Runtime API output type (lookup name) from the metadata, e.g. `TransactionPaymentApi.query_info`. */
function runtimeApiOutput(runtime: DevnetRuntime, api: string, method: string): string {
  const def = runtime.runtime.metadata.asLatest.apis.find((a) => a.name.toString() === api)?.methods.find((m) => m.name.toString() === method);
  if (def === undefined) throw new RpcError(RPC_ERROR.unsupported, `runtime API ${api}_${method} is not in the metadata`);
  return runtime.registry.createLookupType(def.output);
}

/** `state_call` implementations; anything else is refused and logged by the caller. */
function stateCall(runtime: DevnetRuntime, method: string, data: string, at: string | null | undefined): string {
  const block = stateQuery(() => runtime.stateBlock(at));
  const input = hexToU8a(data);
  switch (method) {
    case 'Metadata_metadata_versions':
      // Only the V16 bytes were recorded, so only V16 is offered.
      return u8aToHex(runtime.registry.createType('Vec<u32>', [16]).toU8a());
    case 'Metadata_metadata_at_version': {
      const version = runtime.registry.createType('u32', input).toNumber();
      return version === 16 ? u8aToHex(u8aConcat([1], opaqueMetadata(runtime.metadataBytes))) : '0x00';
    }
    case 'Metadata_metadata':
      return u8aToHex(opaqueMetadata(runtime.metadataBytes));
    case 'Core_version':
      return u8aToHex((runtime.runtime.decorated.consts.system?.version as { toU8a(): Uint8Array } | undefined)?.toU8a() ?? new Uint8Array());
    case 'AccountNonceApi_account_nonce': {
      if (input.length !== 32) throw new RpcError(RPC_ERROR.invalidParams, 'AccountNonceApi_account_nonce expects a 32-byte account id');
      const account = runtime.read('System', 'Account', [input], runtime.blockByNumber(block)?.hash);
      const nonce = account === null ? 0 : codecNumber((account as unknown as { nonce: unknown }).nonce, 'nonce');
      return u8aToHex(runtime.registry.createType('u32', nonce).toU8a());
    }
    case 'TransactionPaymentApi_query_info':
      // Fees are not charged by the stand-in: zero weight, zero fee.
      return u8aToHex(runtime.registry.createType(runtimeApiOutput(runtime, 'TransactionPaymentApi', 'query_info'), { weight: { refTime: 0, proofSize: 0 }, class: 'Normal', partialFee: 0 }).toU8a());
    case 'TransactionPaymentApi_query_fee_details':
      return u8aToHex(runtime.registry.createType(runtimeApiOutput(runtime, 'TransactionPaymentApi', 'query_fee_details'), { inclusionFee: null, tip: 0 }).toU8a());
    default:
      throw new RpcError(RPC_ERROR.unsupported, `runtime API ${method} is not implemented by the albedo-devnet local stand-in`);
  }
}

export interface AdminHooks {
  /** `dev_newBlock`: produce blocks now (after advancing chain time). */
  newBlocks(count: number, advanceSeconds: number | undefined): BlockRecord[];
  /** `dev_setStorage`: raw writes applied in a new block. */
  setStorage(changes: ReadonlyArray<readonly [string, string | null]>): BlockRecord;
}

const newBlockParams = z
  .object({ count: z.number().int().min(1).max(10_000).optional(), advanceSeconds: z.number().nonnegative().max(10 * 365 * 86_400).optional() })
  .strict()
  .optional();
const setStorageParams = z.array(z.tuple([hexString, hexString.nullable()])).max(4096);

/** The request/response method table. */
export function createMethods(runtime: DevnetRuntime, admin: AdminHooks): Record<string, MethodDef> {
  const at = (h: unknown): string | null | undefined => h as string | null | undefined;
  const headerAt = (h: unknown): BlockRecord | undefined => (h === undefined || h === null ? runtime.best() : runtime.blockByHash(h as string));
  const methods: Record<string, MethodDef> = {
    system_chain: { params: [], run: () => DEVNET_CHAIN_NAME },
    system_name: { params: [], run: () => DEVNET_NODE_NAME },
    system_version: { params: [], run: () => DEVNET_NODE_VERSION },
    system_chainType: { params: [], run: () => 'Development' },
    system_properties: { params: [], run: () => ({ ss58Format: 42, tokenDecimals: 9, tokenSymbol: 'TAO' }) },
    system_health: { params: [], run: () => ({ peers: 0, isSyncing: false, shouldHavePeers: false }) },
    system_peers: { params: [], run: () => [] },
    system_nodeRoles: { params: [], run: () => ['Authority'] },
    system_syncState: { params: [], run: () => ({ startingBlock: 0, currentBlock: runtime.best().number, highestBlock: runtime.best().number }) },
    system_accountNextIndex: {
      params: [z.string().min(1).max(128)],
      run: ([address]) => {
        let account: Uint8Array;
        try {
          account = decodeAddress(address as string);
        } catch {
          throw new RpcError(RPC_ERROR.invalidParams, 'invalid params: not an SS58 address or 32-byte hex key');
        }
        return runtime.nextIndex(account);
      },
    },
    chain_getBlockHash: {
      params: [z.union([blockNumber, z.array(blockNumber).max(1024)]).nullish()],
      run: ([n]) => {
        if (n === undefined || n === null) return runtime.best().hash;
        const one = (v: z.infer<typeof blockNumber>): string | null => runtime.blockByNumber(toNumber(v))?.hash ?? null;
        return Array.isArray(n) ? n.map(one) : one(n as z.infer<typeof blockNumber>);
      },
    },
    chain_getHead: { params: [], run: () => runtime.best().hash },
    chain_getHeader: {
      params: [optionalHash],
      run: ([h]) => {
        const block = headerAt(h);
        return block === undefined ? null : headerJson(block);
      },
    },
    chain_getBlock: {
      params: [optionalHash],
      run: ([h]) => {
        const block = headerAt(h);
        return block === undefined ? null : blockJson(block);
      },
    },
    chain_getFinalizedHead: { params: [], run: () => runtime.finalized().hash },
    state_getRuntimeVersion: {
      params: [optionalHash],
      run: ([h]) => {
        stateQuery(() => runtime.stateBlock(at(h)));
        return runtime.runtimeVersionJson();
      },
    },
    state_getMetadata: {
      params: [optionalHash],
      run: ([h]) => {
        stateQuery(() => runtime.stateBlock(at(h)));
        return u8aToHex(runtime.metadataBytes);
      },
    },
    state_getStorage: { params: [hexString, optionalHash], run: ([key, h]) => stateQuery(() => runtime.getStorage(key as string, at(h))) },
    state_getStorageHash: {
      params: [hexString, optionalHash],
      run: ([key, h]) => {
        const value = stateQuery(() => runtime.getStorage(key as string, at(h)));
        return value === null ? null : blake2AsHex(hexToU8a(value), 256);
      },
    },
    state_getStorageSize: {
      params: [hexString, optionalHash],
      run: ([key, h]) => {
        const value = stateQuery(() => runtime.getStorage(key as string, at(h)));
        return value === null ? null : hexToU8a(value).length;
      },
    },
    state_getKeysPaged: {
      params: [hexString, z.number().int().min(0).max(MAX_KEYS_PAGE), hexString.nullish(), optionalHash],
      run: ([prefix, count, startKey, h]) => stateQuery(() => runtime.keysPaged(prefix as string, count as number, startKey as string | null | undefined, at(h))),
    },
    state_getKeys: {
      params: [hexString, optionalHash],
      run: ([prefix, h]) => stateQuery(() => runtime.keysPaged(prefix as string, MAX_KEYS_PAGE, null, at(h))),
    },
    state_queryStorageAt: {
      params: [z.array(hexString).max(MAX_QUERY_KEYS), optionalHash],
      run: ([keys, h]) =>
        stateQuery(() => {
          const number = runtime.stateBlock(at(h));
          const block = runtime.blockByNumber(number) as BlockRecord;
          return [{ block: block.hash, changes: (keys as string[]).map((k) => [k, runtime.getStorage(k, block.hash)]) }];
        }),
    },
    state_call: {
      params: [z.string().min(1).max(256), hexString, optionalHash],
      run: ([method, data, h]) => stateCall(runtime, method as string, data as string, at(h)),
    },
    author_submitExtrinsic: { params: [hexString], run: ([hex]) => runtime.submit(hex as string).hash },
    author_pendingExtrinsics: { params: [], run: () => runtime.pendingExtrinsics() },
    dev_newBlock: {
      params: [newBlockParams],
      run: ([p]) => {
        const opts: { count?: number | undefined; advanceSeconds?: number | undefined } = (p as z.infer<typeof newBlockParams>) ?? {};
        const blocks = stateQuery(() => admin.newBlocks(opts.count ?? 1, opts.advanceSeconds));
        const last = blocks[blocks.length - 1] as BlockRecord;
        return { hash: last.hash, number: last.number, blocks: blocks.map((b) => b.hash), finalized: runtime.finalized().hash, chainTimeMs: runtime.chainTimeMs() };
      },
    },
    dev_setStorage: {
      params: [setStorageParams],
      run: ([changes]) => {
        const block = admin.setStorage((changes as Array<[string, string | null]>).map(([k, v]) => [k.toLowerCase(), v === null ? null : v.toLowerCase()]));
        return { hash: block.hash, number: block.number };
      },
    },
    dev_info: {
      params: [],
      run: () => {
        const best = runtime.best();
        const finalized = runtime.finalized();
        const lastRound = runtime.read('Drand', 'LastStoredRound');
        return {
          standIn: true,
          label: DEVNET_LABEL,
          name: DEVNET_NODE_NAME,
          chain: DEVNET_CHAIN_NAME,
          specVersion: runtime.specVersion,
          genesisHash: runtime.genesisHash,
          best: { number: best.number, hash: best.hash },
          finalized: { number: finalized.number, hash: finalized.hash },
          chainTimeMs: runtime.chainTimeMs(),
          oldestStateBlock: runtime.oldestStateBlock(),
          pendingExtrinsics: runtime.pendingExtrinsics().length,
          beacon: {
            kind: runtime.beacon.kind,
            label: runtime.beacon.label,
            publicKey: u8aToHex(runtime.beacon.publicKey),
            genesisTime: runtime.beacon.genesisTime,
            period: runtime.beacon.period,
            lastStoredRound: lastRound === null ? 0 : codecNumber(lastRound),
          },
        };
      },
    },
  };
  // Aliases substrate also answers.
  methods.chain_getFinalisedHead = methods.chain_getFinalizedHead as MethodDef;
  methods.chain_getRuntimeVersion = methods.state_getRuntimeVersion as MethodDef;
  methods.state_getStorageAt = methods.state_getStorage as MethodDef;
  methods.state_getKeysPagedAt = methods.state_getKeysPaged as MethodDef;
  return methods;
}
