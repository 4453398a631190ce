/**
 * `albedo fingerprint <dir>`: the validator's `layer_norms_v2_with_samples` fingerprint and weights
 * hash of a local model, from the same engine (validation/fingerprint.ts), so a miner can see what
 * the dedup index will store for the upload.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CommandSpec } from '../cli.ts';
import { SettingError } from '../env.ts';

export const fingerprintCommand: CommandSpec = {
  name: 'fingerprint',
  summary: "compute the validator's fingerprint and weights hash of a local model directory",
  synopsis: '<dir> [--json]',
  description: [
    'Reads every *.safetensors file of <dir> (sorted by name) and computes the validator fingerprint',
    '"layer_norms_v2_with_samples" (per tensor: the L2 norm and 16 sampled values) and the weights hash',
    '(sha256 over the sorted per-file sha256 digests). Prints a summary; --json prints the exact',
    'fingerprint JSON the validator stores (Python json.dumps formatting) on stdout.',
  ].join('\n'),
  positionals: [1, 1],
  flags: {
    json: { type: 'boolean', description: 'print the exact fingerprint JSON on stdout' },
  },

  async run(ctx, flags) {
    const dir = resolve(flags.positionals[0] as string);
    const st = await stat(dir).catch(() => null);
    if (!st?.isDirectory()) throw new SettingError(`${flags.positionals[0]} is not a directory`);
    const { fingerprintModel, fingerprintJson } = await import('../../validation/fingerprint.ts');
    const started = performance.now();
    let lastShown = 0;
    const fp = await fingerprintModel(dir, {
      signal: ctx.signal,
      onProgress: (done, total) => {
        const now = performance.now();
        if (flags.boolean('json') || now - lastShown < 1000) return;
        lastShown = now;
        ctx.status(`fingerprint: ${(done / 2 ** 30).toFixed(2)} / ${(total / 2 ** 30).toFixed(2)} GiB`);
      },
    });
    if (flags.boolean('json')) {
      ctx.out(fingerprintJson(fp.fingerprint));
      return 0;
    }
    const seconds = (performance.now() - started) / 1000;
    ctx.out(`method        ${fp.fingerprint.method}`);
    ctx.out(`tensors       ${fp.nTensors}`);
    ctx.out(`weights_hash  ${fp.weightsHash}`);
    ctx.out(`read          ${(fp.bytes / 2 ** 30).toFixed(2)} GiB in ${seconds.toFixed(1)} s`);
    for (const [i, key] of fp.fingerprint.layer_keys.slice(0, 5).entries()) ctx.out(`  ${key}  norm=${fp.fingerprint.norm_vector[i]}`);
    if (fp.nTensors > 5) ctx.out(`  … ${fp.nTensors - 5} more (--json for all)`);
    return 0;
  },
};
