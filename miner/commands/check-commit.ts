/**
 * `albedo check-commit` (spec/miner-cli.md §3): the v7 reveals of the subnet as the validator will see
 * them — only hotkeys registered now, only well-formed `v7|repo|digest` payloads, sorted by reveal
 * block. With `--hotkey`, also the hotkey's timelocked commitment still waiting for its drand round.
 * Chain modules are imported when the command runs (seconds), so help stays fast.
 */
import { parseReveal } from '../../chain/reveal.ts';
import type { CommandSpec } from '../cli.ts';
import { CHAIN_ENV_HELP, COMMON_FLAGS, resolveChainTarget, SettingError } from '../env.ts';

/** One revealed v7 commit as listed. */
export interface ListedCommit {
  readonly block: number;
  readonly hotkey: string;
  readonly modelUri: string;
}

/** `block=<n>  hotkey=<first 10 chars>…  <model_uri>` (spec §3). */
export function formatCommitLine(c: ListedCommit): string {
  return `block=${c.block}  hotkey=${c.hotkey.slice(0, 10)}…  ${c.modelUri}`;
}

/** The whole listing (without pending lines), as printed on stdout. */
export function formatCommitList(commits: readonly ListedCommit[], hotkeyFilter: string | null): string[] {
  if (commits.length === 0) return [hotkeyFilter === null ? 'no v7 commits found' : `no v7 commits found for hotkey ${hotkeyFilter}`];
  return [...commits.map(formatCommitLine), '', `${commits.length} commit(s)`];
}

/** An SS58 address normalised to prefix 42 (the chain's own spelling), or a setting error. */
async function normaliseSs58(value: string): Promise<string> {
  const { decodeAddress, encodeAddress } = await import('@polkadot/util-crypto');
  try {
    return encodeAddress(decodeAddress(value), 42);
  } catch {
    throw new SettingError(`--hotkey takes an SS58 address here (not a hotkey name); ${JSON.stringify(value.slice(0, 64))} is not one`);
  }
}

export const checkCommitCommand: CommandSpec = {
  name: 'check-commit',
  summary: 'list the revealed v7 commits of registered hotkeys on the subnet',
  synopsis: '[--hotkey <ss58>] [flags]',
  description: [
    'Reads every RevealedCommitments entry of the subnet, keeps valid v7 payloads of hotkeys registered now,',
    'and prints one line per reveal, oldest first: "block=<n>  hotkey=<first 10 chars>…  <repo>@<digest>",',
    'then "<N> commit(s)". With --hotkey, only that hotkey, plus "pending: reveal round R" for a timelocked',
    'commitment the chain has not revealed yet.',
  ].join('\n'),
  flags: {
    hotkey: { type: 'string', placeholder: '<ss58>', description: 'only this hotkey (an SS58 address, not a hotkey name)' },
    netuid: COMMON_FLAGS.netuid,
    network: COMMON_FLAGS.network,
  },
  env: CHAIN_ENV_HELP,

  async run(ctx, flags) {
    const given = flags.string('hotkey');
    const filter = given === undefined ? null : await normaliseSs58(given);
    const target = await resolveChainTarget({ netuid: flags.string('netuid'), network: flags.string('network') }, ctx.env);
    const { storedCommitment } = await import('../../chain/miner-ops.ts');
    const chain = await ctx.connect(target);
    const [neurons, reveals] = await Promise.all([chain.neurons(target.netuid), chain.revealedCommitments(target.netuid)]);
    const registered = new Set(neurons.map((n) => n.hotkey));
    const commits: ListedCommit[] = [];
    for (const r of reveals) {
      if (!registered.has(r.hotkey) || (filter !== null && r.hotkey !== filter)) continue;
      const parsed = parseReveal(r.bytes);
      if (parsed.ok) commits.push({ block: r.block, hotkey: r.hotkey, modelUri: parsed.reveal.modelUri });
    }
    commits.sort((a, b) => a.block - b.block || (a.hotkey < b.hotkey ? -1 : a.hotkey > b.hotkey ? 1 : 0));
    for (const line of formatCommitList(commits, filter)) ctx.out(line);
    if (filter !== null) {
      if (!registered.has(filter)) ctx.status(`note: hotkey ${filter} is not registered on netuid ${target.netuid}`);
      const stored = await storedCommitment(chain, target.netuid, filter);
      for (const field of stored?.fields ?? []) if (field.revealRound !== null) ctx.out(`pending: reveal round ${field.revealRound}`);
    }
    return 0;
  },
};
