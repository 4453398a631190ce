/**
 * Transaction validation of the LOCAL STAND-IN dev chain, in substrate's order and with its JSON-RPC
 * errors: decode (1001 bad format) → signed only → `CheckMortality` birth block known (1010 "Transaction
 * has an ancient birth block") → sr25519/ed25519/ecdsa signature over the signing payload built from OUR
 * spec version, transaction version, genesis hash and birth hash (1010 "Transaction has a bad signature";
 * this also rejects a wrong spec/tx version, genesis or `CheckMetadataHash` mode 1, and an expired
 * mortal era, exactly as on a real node, because those fields are only in the signed payload) → nonce
 * (1010 "Transaction is outdated" when below the account nonce; above ⇒ "future").
 */
import type { Extrinsic, MultiAddress } from '@polkadot/types/interfaces';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, signatureVerify } from '@polkadot/util-crypto';
import type { RuntimeCodec } from './runtime-codec.ts';

/** JSON-RPC error codes of substrate's author API (`sc_rpc_api::author::error`). */
export type PoolErrorCode = 1001 | 1010 | 1011 | 1012 | 1013 | 1014 | 1016;

/** A refused submission, serialised as a JSON-RPC error `{code, message, data}`. */
export class PoolError extends Error {
  override readonly name = 'PoolError';
  readonly code: PoolErrorCode;
  /** The JSON-RPC `message` (substrate's fixed text, e.g. "Invalid Transaction"). */
  readonly rpcMessage: string;
  readonly data: string | undefined;

  constructor(code: PoolErrorCode, message: string, data?: string) {
    super(data === undefined ? message : `${message}: ${data}`);
    this.code = code;
    this.rpcMessage = message;
    this.data = data;
  }
}

/** substrate's texts for `InvalidTransaction` variants (the `data` of error 1010). */
export const INVALID_TX = {
  badProof: 'Transaction has a bad signature',
  stale: 'Transaction is outdated',
  ancientBirthBlock: 'Transaction has an ancient birth block',
  call: 'Transaction call is not expected',
  badSigner: 'Transaction has a bad signer',
  future: 'Transaction will be valid in the future',
} as const;

/** The decoded call of an extrinsic. */
export type ExtrinsicCall = Extrinsic['method'];

export function invalidTransaction(data: string): PoolError {
  return new PoolError(1010, 'Invalid Transaction', data);
}

/** Blocks back a mortal era's birth hash stays resolvable (`System.BlockHashCount` of spec 381). */
export const BLOCK_HASH_COUNT = 2400;

/** Signed payloads longer than this are signed as their blake2-256 hash (substrate rule). */
const PAYLOAD_HASH_THRESHOLD = 256;

export interface ValidationContext {
  readonly specVersion: number;
  readonly transactionVersion: number;
  readonly genesisHash: string;
  /** Number of the block the transaction would go into (best + 1). */
  readonly currentNumber: number;
  /** Hash of a block by number, `null` if unknown. */
  blockHash(number: number): string | null;
}

export interface VerifiedExtrinsic {
  readonly hex: string;
  /** blake2-256 of the extrinsic bytes (what `author_submitExtrinsic` returns). */
  readonly hash: string;
  readonly signer: Uint8Array;
  readonly signerHex: string;
  readonly nonce: number;
  readonly call: ExtrinsicCall;
  /** Block number after which the era no longer admits the transaction (`Infinity` if immortal). */
  readonly deathNumber: number;
}

/** Decodes submitted bytes; 1001 "Extrinsic has invalid format" when they are not an extrinsic. */
export function decodeExtrinsic(codec: RuntimeCodec, hex: string): Extrinsic {
  let ext: Extrinsic;
  try {
    const bytes = hexToU8a(hex);
    ext = codec.registry.createType('Extrinsic', bytes);
    if (ext.encodedLength !== bytes.length) throw new Error(`${bytes.length - ext.encodedLength} trailing bytes`);
  } catch (e) {
    throw new PoolError(1001, 'Extrinsic has invalid format', `Could not decode: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300));
  }
  return ext;
}

/**
 * Signature and era checks of a decoded extrinsic (nonce is checked by the pool against state).
 * Throws {@link PoolError}.
 */
export function verifyExtrinsic(codec: RuntimeCodec, ext: Extrinsic, ctx: ValidationContext): VerifiedExtrinsic {
  if (!ext.isSigned) throw invalidTransaction(INVALID_TX.call);
  const signerAddress = ext.signer as unknown as MultiAddress;
  if (signerAddress.type !== 'Id') throw new PoolError(1011, 'Unknown Transaction Validity', 'Could not lookup information required to validate the transaction');
  const signer = signerAddress.value.toU8a();
  if (signer.every((b: number) => b === 0)) throw invalidTransaction(INVALID_TX.badSigner);

  let birthHash: string | null;
  let deathNumber = Number.POSITIVE_INFINITY;
  if (ext.era.isMortalEra) {
    const era = ext.era.asMortalEra;
    const birth = era.birth(ctx.currentNumber);
    deathNumber = era.death(ctx.currentNumber);
    birthHash = ctx.currentNumber - birth > BLOCK_HASH_COUNT ? null : ctx.blockHash(birth);
  } else {
    birthHash = ctx.genesisHash;
  }
  if (birthHash === null) throw invalidTransaction(INVALID_TX.ancientBirthBlock);

  const inner = ext as unknown as { mode?: unknown; assetId?: unknown };
  const payload = codec.registry.createType(
    'ExtrinsicPayload',
    {
      method: ext.method.toHex(),
      era: ext.era,
      nonce: ext.nonce,
      tip: ext.tip,
      mode: inner.mode,
      assetId: inner.assetId,
      specVersion: ctx.specVersion,
      transactionVersion: ctx.transactionVersion,
      genesisHash: ctx.genesisHash,
      blockHash: birthHash,
    },
    { version: ext.version & 0x7f },
  );
  let message = payload.toU8a({ method: true });
  if (message.length > PAYLOAD_HASH_THRESHOLD) message = blake2AsU8a(message, 256);
  const signature = (ext as unknown as { inner: { signature: { multiSignature: { toU8a(): Uint8Array } } } }).inner.signature.multiSignature.toU8a();
  let valid = false;
  try {
    valid = signatureVerify(message, signature, signer).isValid;
  } catch {
    valid = false;
  }
  if (!valid) throw invalidTransaction(INVALID_TX.badProof);

  const hex = ext.toHex();
  return {
    hex,
    hash: u8aToHex(blake2AsU8a(ext.toU8a(), 256)),
    signer,
    signerHex: u8aToHex(signer),
    nonce: ext.nonce.toNumber(),
    call: ext.method,
    deathNumber,
  };
}
