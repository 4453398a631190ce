/**
 * drand beacons for the LOCAL STAND-IN dev chain.
 *
 * `local` — a LOCAL STAND-IN beacon, not drand: a deterministic BLS12-381 key derived from a seed string,
 * signing rounds exactly like drand quicknet's `bls-unchained-g1-rfc9380` scheme (public key in G2,
 * signature in G1 over `sha256(u64_be(round))`, hash-to-G1 DST `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`).
 * It keeps quicknet's genesis time and 3 s period on purpose: the reveal-round formulas of
 * spec/chain.md §4/§6.2 hard-code that clock, so rounds computed by the miner/validator code line up with
 * the dev chain's time. Only ciphertexts encrypted to ITS public key (read from `Drand.BeaconConfig`)
 * can be revealed by it.
 *
 * `recorded-quicknet` — the real quicknet public key plus the two real pulses (rounds 1000 and 2000)
 * from tests/fixtures/chain/drand-quicknet.json, injected at genesis. It cannot sign new rounds; it exists
 * so tests prove interop with real drand signatures.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { hexToU8a } from '@polkadot/util';
import { z } from 'zod';
import { DRAND_G1_DST, DRAND_QUICKNET, drandIdentity } from '../timelock.ts';

/** Label used in logs and `dev_info` whenever the local beacon is active. */
export const LOCAL_BEACON_LABEL = 'LOCAL STAND-IN drand beacon (not drand quicknet; reveals only what was encrypted to its own key)';

/** Seed of the local beacon key unless configured otherwise. Deterministic so restarts keep the key. */
export const DEFAULT_LOCAL_BEACON_SEED = 'albedo-devnet local beacon v1';

/**
 * Public key of the default-seed local beacon, precomputed: deriving a G2 public key costs ~0.4 s of node
 * startup (noble's G2 tables). beacon.test.ts checks it equals the derivation.
 */
export const DEFAULT_LOCAL_BEACON_PUBLIC_KEY =
  '0xb0e576ff4a7e77fa15910b89abb3ab1a823e0833b976fcb51a63b077d4130c2c0579b142de4fc5195c5ec60f45eb10f510f6e37309463e7ab5780f75e3e54ef1840864ccb34b69416e14d4b436cc22a4e9c3c6a347fde9268ab3453633aa34ee';

/** drand scheme both beacon kinds implement. */
export const DRAND_SCHEME_ID = 'bls-unchained-g1-rfc9380';

/** Fixture with the real quicknet key and pulses (rounds 1000, 2000). */
export const QUICKNET_FIXTURE_FILE = new URL('../../tests/fixtures/chain/drand-quicknet.json', import.meta.url);

export type BeaconOptions = { readonly kind: 'local'; readonly seed?: string } | { readonly kind: 'recorded-quicknet' };

export interface BeaconPulse {
  readonly round: number;
  /** 48-byte compressed G1 signature. */
  readonly signature: Uint8Array;
  /** `sha256(signature)`, as drand defines randomness. */
  readonly randomness: Uint8Array;
}

export interface DevnetBeacon {
  readonly kind: BeaconOptions['kind'];
  readonly label: string;
  /** 96-byte compressed G2 public key. */
  readonly publicKey: Uint8Array;
  /** Unix seconds of round 1. */
  readonly genesisTime: number;
  /** Seconds per round. */
  readonly period: number;
  readonly chainHash: Uint8Array;
  readonly groupHash: Uint8Array;
  readonly schemeId: string;
  readonly beaconId: string;
  /** Pulses written into the genesis state. */
  genesisPulses(): BeaconPulse[];
  /** The pulse of `round`, or `null` when this beacon cannot sign (recorded mode). */
  pulse(round: number): BeaconPulse | null;
  /** Latest round emitted at or before Unix time `unixSeconds` (0 before genesis). */
  roundAt(unixSeconds: number): number;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function roundAt(genesisTime: number, period: number, unixSeconds: number): number {
  if (unixSeconds < genesisTime) return 0;
  return Math.floor((unixSeconds - genesisTime) / period) + 1;
}

/** Deterministic secret scalar in [1, r−1] from a seed string (sha512 reduced mod r−1, plus one). */
function secretKeyFromSeed(seed: string): Uint8Array {
  const order = bls12_381.fields.Fr.ORDER;
  const digest = createHash('sha512').update(`albedo-devnet-beacon-sk:${seed}`, 'utf8').digest('hex');
  const scalar = (BigInt(`0x${digest}`) % (order - 1n)) + 1n;
  return hexToU8a(`0x${scalar.toString(16).padStart(64, '0')}`);
}

function derivePublicKey(secretKey: Uint8Array): Uint8Array {
  return bls12_381.shortSignatures.getPublicKey(secretKey).toBytes(true);
}

/** The G2 public key a seed derives (tests compare it with {@link DEFAULT_LOCAL_BEACON_PUBLIC_KEY}). */
export function deriveLocalBeaconPublicKey(seed: string): Uint8Array {
  return derivePublicKey(secretKeyFromSeed(seed));
}

const localBeacons = new Map<string, DevnetBeacon>();

/** The LOCAL STAND-IN beacon (see module doc); memoised per seed (deriving the G2 key costs ~0.4 s). */
export function createLocalBeacon(seed: string = DEFAULT_LOCAL_BEACON_SEED): DevnetBeacon {
  if (seed.length === 0) throw new RangeError('local beacon seed must not be empty');
  let beacon = localBeacons.get(seed);
  if (beacon === undefined) {
    beacon = buildLocalBeacon(seed);
    localBeacons.set(seed, beacon);
  }
  return beacon;
}

function buildLocalBeacon(seed: string): DevnetBeacon {
  const secretKey = secretKeyFromSeed(seed);
  const publicKey = seed === DEFAULT_LOCAL_BEACON_SEED ? hexToU8a(DEFAULT_LOCAL_BEACON_PUBLIC_KEY) : derivePublicKey(secretKey);
  const label = new TextEncoder().encode('albedo-devnet local stand-in beacon');
  return {
    kind: 'local',
    label: LOCAL_BEACON_LABEL,
    publicKey,
    genesisTime: DRAND_QUICKNET.genesisTime,
    period: DRAND_QUICKNET.periodSeconds,
    chainHash: sha256(label, publicKey),
    groupHash: sha256(publicKey),
    schemeId: DRAND_SCHEME_ID,
    beaconId: 'albedo-local-stand-in',
    genesisPulses: () => [],
    pulse(round: number): BeaconPulse {
      if (!Number.isSafeInteger(round) || round < 1) throw new RangeError(`drand round must be a positive integer: ${round}`);
      const point = bls12_381.shortSignatures.hash(drandIdentity(round), DRAND_G1_DST);
      const signature = bls12_381.shortSignatures.sign(point, secretKey).toBytes(true);
      return { round, signature, randomness: sha256(signature) };
    },
    roundAt: (unixSeconds) => roundAt(DRAND_QUICKNET.genesisTime, DRAND_QUICKNET.periodSeconds, unixSeconds),
  };
}

const hex = z.string().regex(/^[0-9a-f]+$/);
const fixtureSchema = z.object({
  info: z.object({ public_key: hex, period: z.number().int().positive(), genesis_time: z.number().int().positive(), hash: hex, groupHash: hex, schemeID: z.string() }),
  pulses: z.array(z.object({ round: z.number().int().positive(), signature: hex, randomness: hex })).min(1),
});

/** Real quicknet key and recorded pulses (see module doc). */
export function createRecordedQuicknetBeacon(file: URL = QUICKNET_FIXTURE_FILE): DevnetBeacon {
  let parsed: z.infer<typeof fixtureSchema>;
  try {
    parsed = fixtureSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    throw new Error(`recorded drand fixture ${file.pathname} is unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { info } = parsed;
  const pulses = parsed.pulses.map((p) => ({ round: p.round, signature: hexToU8a(`0x${p.signature}`), randomness: hexToU8a(`0x${p.randomness}`) }));
  return {
    kind: 'recorded-quicknet',
    label: 'recorded drand quicknet (real public key; only the fixture pulses for rounds 1000 and 2000)',
    publicKey: hexToU8a(`0x${info.public_key}`),
    genesisTime: info.genesis_time,
    period: info.period,
    chainHash: hexToU8a(`0x${info.hash}`),
    groupHash: hexToU8a(`0x${info.groupHash}`),
    schemeId: info.schemeID,
    beaconId: 'quicknet',
    genesisPulses: () => pulses,
    pulse: () => null,
    roundAt: (unixSeconds) => roundAt(info.genesis_time, info.period, unixSeconds),
  };
}

export function createBeacon(options: BeaconOptions = { kind: 'local' }): DevnetBeacon {
  return options.kind === 'local' ? createLocalBeacon(options.seed) : createRecordedQuicknetBeacon();
}
