/**
 * Wire protocol of the LOCAL STAND-IN chain (`albedoDev_*` JSON-RPC 2.0 over WebSocket).
 *
 * ⚠ This is NOT subtensor and NOT a substrate RPC. It is a small dev/test chain for the pipeline
 * spine; the metadata-accurate subtensor client (`@polkadot/api`, spec/chain.md) replaces it later.
 * Shared by the server and the client so both validate the same shapes.
 */
import { z } from 'zod';

export const STANDIN_LABEL = 'LOCAL STAND-IN CHAIN (albedo devnet) — NOT SUBTENSOR, NOT A SUBSTRATE NODE';

export const METHODS = {
  info: 'albedoDev_info',
  bestBlock: 'albedoDev_bestBlock',
  blockHash: 'albedoDev_blockHash',
  register: 'albedoDev_register',
  uidOf: 'albedoDev_uidOf',
  hotkeyOf: 'albedoDev_hotkeyOf',
  commit: 'albedoDev_commit',
  revealedCommitments: 'albedoDev_revealedCommitments',
  setWeights: 'albedoDev_setWeights',
  extrinsicStatus: 'albedoDev_extrinsicStatus',
  weights: 'albedoDev_weights',
  lastWeightsSetBlock: 'albedoDev_lastWeightsSetBlock',
  produceBlock: 'albedoDev_produceBlock',
  subscribeNewHeads: 'albedoDev_subscribeNewHeads',
  unsubscribeNewHeads: 'albedoDev_unsubscribeNewHeads',
} as const;
export type MethodName = (typeof METHODS)[keyof typeof METHODS];

/** Notification method carrying `{subscription, result: header}` for new-head subscribers. */
export const NEW_HEAD_NOTIFICATION = 'albedoDev_newHead';

/** JSON-RPC error codes. -32000…-32099 are this server's own. */
export const RPC_ERROR = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** A call was refused by the stand-in runtime; `data.error` is a subtensor-like error name. */
  rejected: -32010,
  unknownBlock: -32011,
  tooManySubscriptions: -32012,
} as const;

/** Largest commitment the stand-in stores (bytes), like the chain's 1024-byte timelock ciphertext cap. */
export const MAX_COMMIT_BYTES = 1024;
/** Max entries kept per (netuid, hotkey) in `RevealedCommitments` at any block (the chain keeps 10). */
export const REVEALS_PER_HOTKEY = 10;
export const MAX_WEIGHT_ENTRIES = 4096;

const U16 = z.number().int().min(0).max(65535);
const U32 = z.number().int().min(0).max(4_294_967_295);
export const netuidSchema = U16;
/** Stand-in accepts SS58-like identifiers and readable test names (`alice`, `miner-1`). */
export const hotkeySchema = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'hotkey must be 1-128 chars of [A-Za-z0-9._-]');
export const hash32Schema = z.string().regex(/^0x[0-9a-f]{64}$/, 'expected 0x-prefixed 32-byte lowercase hex');
export const hexBytesSchema = z
  .string()
  .regex(/^0x(?:[0-9a-f]{2})*$/, 'expected 0x-prefixed lowercase hex bytes')
  .max(2 + 2 * MAX_COMMIT_BYTES, `at most ${MAX_COMMIT_BYTES} bytes`);

export const PARAMS = {
  [METHODS.info]: z.strictObject({}),
  [METHODS.bestBlock]: z.strictObject({}),
  [METHODS.blockHash]: z.strictObject({ number: U32 }),
  [METHODS.register]: z.strictObject({ netuid: netuidSchema, hotkey: hotkeySchema, replaceUid: U16.optional() }),
  [METHODS.uidOf]: z.strictObject({ netuid: netuidSchema, hotkey: hotkeySchema }),
  [METHODS.hotkeyOf]: z.strictObject({ netuid: netuidSchema, uid: U16 }),
  [METHODS.commit]: z
    .strictObject({
      netuid: netuidSchema,
      hotkey: hotkeySchema,
      /** A reveal string; stored as a SCALE string like a decrypted timelock commitment (chain.md §2.1). */
      reveal: z.string().max(MAX_COMMIT_BYTES).optional(),
      /** Exact bytes to store instead (tests of malformed reveals). */
      dataHex: hexBytesSchema.optional(),
      /** Block at which the commitment becomes revealed (default/earlier: its inclusion block). */
      revealAtBlock: U32.optional(),
    })
    .refine((p) => (p.reveal === undefined) !== (p.dataHex === undefined), 'exactly one of reveal, dataHex is required'),
  [METHODS.revealedCommitments]: z.strictObject({ netuid: netuidSchema, atBlock: U32.optional() }),
  [METHODS.setWeights]: z.strictObject({
    netuid: netuidSchema,
    hotkey: hotkeySchema,
    uids: z.array(U16).max(MAX_WEIGHT_ENTRIES),
    weights: z.array(U16).max(MAX_WEIGHT_ENTRIES),
    versionKey: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  [METHODS.extrinsicStatus]: z.strictObject({ hash: hash32Schema }),
  [METHODS.weights]: z.strictObject({ netuid: netuidSchema }),
  [METHODS.lastWeightsSetBlock]: z.strictObject({ netuid: netuidSchema, hotkey: hotkeySchema }),
  [METHODS.produceBlock]: z.strictObject({ count: z.number().int().min(1).max(1000).optional() }),
  [METHODS.subscribeNewHeads]: z.strictObject({}),
  [METHODS.unsubscribeNewHeads]: z.strictObject({ subscription: z.string().max(64) }),
} satisfies Record<MethodName, z.ZodType>;

export type Params<M extends MethodName> = z.infer<(typeof PARAMS)[M]>;

// ---- results -------------------------------------------------------------------------------------

export const blockRefSchema = z.strictObject({ number: U32, hash: hash32Schema });
export type DevBlockRef = z.infer<typeof blockRefSchema>;

export const blockHeaderSchema = z.strictObject({
  number: U32,
  hash: hash32Schema,
  parentHash: hash32Schema,
  /** Hashes of the extrinsics included in this block, in order. */
  extrinsics: z.array(hash32Schema),
});
export type DevBlockHeader = z.infer<typeof blockHeaderSchema>;

export const revealEntrySchema = z.strictObject({ hotkey: hotkeySchema, block: U32, blockHash: hash32Schema, dataHex: z.string().regex(/^0x(?:[0-9a-f]{2})*$/) });
export type DevRevealEntry = z.infer<typeof revealEntrySchema>;

export const extrinsicStatusSchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('pending'), queuedForBlock: U32 }),
  z.strictObject({
    status: z.literal('included'),
    block: U32,
    blockHash: hash32Schema,
    success: z.boolean(),
    /** Dispatch error name when `success` is false (e.g. `SettingWeightsTooFast`). */
    error: z.string().nullable(),
  }),
  /** Never seen, dropped from the pool (e.g. a server restart), or pruned from history. */
  z.strictObject({ status: z.literal('unknown') }),
]);
export type DevExtrinsicStatus = z.infer<typeof extrinsicStatusSchema>;

export const weightsEntrySchema = z.strictObject({
  hotkey: hotkeySchema,
  uid: U16,
  uids: z.array(U16),
  weights: z.array(U16),
  versionKey: z.number().int().min(0),
  block: U32,
});
export type DevWeightsEntry = z.infer<typeof weightsEntrySchema>;

export const RESULTS = {
  [METHODS.info]: z.strictObject({
    standIn: z.literal(true),
    label: z.string(),
    best: blockRefSchema,
    genesisHash: hash32Schema,
    weightsSetRateLimit: z.number().int().min(0),
    weightsVersionKey: z.number().int().min(0),
    netuids: z.array(U16),
  }),
  [METHODS.bestBlock]: blockRefSchema,
  [METHODS.blockHash]: hash32Schema.nullable(),
  [METHODS.register]: z.strictObject({ uid: U16, registrationBlock: U32, alreadyRegistered: z.boolean() }),
  [METHODS.uidOf]: U16.nullable(),
  [METHODS.hotkeyOf]: hotkeySchema.nullable(),
  [METHODS.commit]: z.strictObject({ extrinsicHash: hash32Schema, queuedForBlock: U32 }),
  [METHODS.revealedCommitments]: z.array(revealEntrySchema),
  [METHODS.setWeights]: z.strictObject({ extrinsicHash: hash32Schema, queuedForBlock: U32 }),
  [METHODS.extrinsicStatus]: extrinsicStatusSchema,
  [METHODS.weights]: z.array(weightsEntrySchema),
  [METHODS.lastWeightsSetBlock]: U32.nullable(),
  [METHODS.produceBlock]: blockHeaderSchema,
  [METHODS.subscribeNewHeads]: z.string(),
  [METHODS.unsubscribeNewHeads]: z.boolean(),
} satisfies Record<MethodName, z.ZodType>;

export type Result<M extends MethodName> = z.infer<(typeof RESULTS)[M]>;

export const newHeadNotificationSchema = z.object({
  jsonrpc: z.literal('2.0'),
  method: z.literal(NEW_HEAD_NOTIFICATION),
  params: z.object({ subscription: z.string(), result: blockHeaderSchema }),
});

export function bytesToHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

export function hexToBytes(hex: string): Uint8Array {
  if (!/^0x(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new TypeError(`not 0x-prefixed hex bytes: ${hex.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(hex.slice(2), 'hex'));
}
