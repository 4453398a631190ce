/**
 * Subtensor's custom signed (transaction) extensions — spec/chain.md §8, "the one real pitfall".
 * polkadot.js treats unknown extensions as zero-size; all of subtensor's are zero-size except
 * `ChargeTransactionPaymentWrapper`, which carries a `Compact<Balance>` tip. Getting this wrong makes
 * every signature invalid on the real chain, so the map is passed to every `ApiPromise` and registry.
 */
import { findUnknownExtensions } from '@polkadot/types/extrinsic/signedExtensions';
import type { ExtDef } from '@polkadot/types/extrinsic/signedExtensions/types';

const ZERO_SIZED = { extrinsic: {}, payload: {} } as const;

export const SUBTENSOR_SIGNED_EXTENSIONS: ExtDef = {
  SudoTransactionExtension: ZERO_SIZED,
  CheckShieldedTxValidity: ZERO_SIZED,
  SubtensorTransactionExtension: ZERO_SIZED,
  DrandPriority: ZERO_SIZED,
  SubtensorSignedExtension: ZERO_SIZED,
  CommitmentsSignedExtension: ZERO_SIZED,
  ChargeTransactionPaymentWrapper: { extrinsic: { tip: 'Compact<Balance>' }, payload: {} },
};

/**
 * Extensions of a runtime that neither polkadot.js nor our map knows. Non-empty ⇒ the client refuses to
 * start (spec §8: "fail loudly"), because signing with a guessed layout produces invalid transactions.
 */
export function unknownSignedExtensions(identifiers: readonly string[]): string[] {
  return findUnknownExtensions([...identifiers], SUBTENSOR_SIGNED_EXTENSIONS);
}
