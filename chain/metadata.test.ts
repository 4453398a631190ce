import { readFileSync } from 'node:fs';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { describe, expect, it } from 'vitest';
import { recordedRuntime } from './metadata.ts';
import { unknownSignedExtensions } from './signed-extensions.ts';

const recorded = JSON.parse(readFileSync(new URL('../tests/fixtures/chain/finney-neurons-lite-netuid1.json', import.meta.url), 'utf8')) as {
  header: Record<string, unknown>;
  blockHash: string;
  result: string;
};

describe('recorded subtensor metadata', () => {
  it('decodes both recorded runtimes with subtensor signed extensions and nothing unknown', () => {
    for (const [name, spec] of [['devnetV16Spec381', 381], ['finneyV15Spec343', 343]] as const) {
      const runtime = recordedRuntime(name);
      expect(runtime.specVersion).toBe(spec);
      expect(runtime.specName).toBe('node-subtensor');
      expect(unknownSignedExtensions(runtime.registry.signedExtensions)).toEqual([]);
      expect(runtime.decorated.query.commitments?.revealedCommitments).toBeDefined();
      expect(runtime.decorated.tx.subtensorModule?.setMechanismWeights?.callIndex).toEqual(Uint8Array.from([7, 0x77]));
    }
  });

  it('flags an extension that neither polkadot.js nor the subtensor map can encode (the client then refuses to start)', () => {
    expect(unknownSignedExtensions(['CheckNonce', 'ChargeTransactionPaymentWrapper', 'SubtensorSignedExtension', 'SomeNewExtension'])).toEqual(['SomeNewExtension']);
  });

  it('hashes a recorded finney header to its recorded block hash (what the dev chain relies on)', () => {
    const { registry } = recordedRuntime('finneyV15Spec343');
    expect(registry.createType('Header', recorded.header).hash.toHex()).toBe(recorded.blockHash);
  });

  it('decodes a recorded finney runtime-API answer (1,024 neurons of netuid 1) with the metadata-declared type, byte for byte', () => {
    const { registry, metadata } = recordedRuntime('finneyV15Spec343');
    const api = metadata.asLatest.apis.find((a) => a.name.toString() === 'NeuronInfoRuntimeApi');
    const method = api?.methods.find((m) => m.name.toString() === 'get_neurons_lite');
    expect(method).toBeDefined();
    const bytes = hexToU8a(recorded.result);
    const neurons = registry.createType(registry.createLookupType(method!.output), bytes) as unknown as Array<{ uid: { toNumber(): number }; hotkey: { toString(): string }; netuid: { toNumber(): number } }>;
    expect(neurons.length).toBe(1024);
    expect(neurons.every((n) => n.netuid.toNumber() === 1)).toBe(true);
    expect(neurons.map((n) => n.uid.toNumber())).toEqual(Array.from({ length: 1024 }, (_, i) => i));
    expect(neurons[0]?.hotkey.toString()).toMatch(/^5[1-9A-HJ-NP-Za-km-z]{47}$/);
    expect(u8aToHex((neurons as unknown as { toU8a(): Uint8Array }).toU8a())).toBe(recorded.result);
  });
});
