/**
 * `albedo register` (spec/miner-cli.md §3, spec/chain.md §5): burned registration of a hotkey, paid by
 * the coldkey. Already registered ⇒ `already registered: uid N` without touching the coldkey. Otherwise
 * the cost and balance are read with the coldkey's public address (coldkeypub.txt) first, so an
 * insufficient balance or a declined prompt never costs the coldkey decryption (argon2, seconds).
 *
 * Chain and wallet modules are imported when the command runs (they load @polkadot/api: seconds), so
 * help and argument errors stay fast.
 */
import type { CommandSpec } from '../cli.ts';
import { CHAIN_ENV_HELP, COMMON_FLAGS, requireSetting, resolveChainTarget, WALLET_ENV_HELP } from '../env.ts';

export const registerCommand: CommandSpec = {
  name: 'register',
  summary: 'register a hotkey on the subnet (burned registration, paid by the coldkey)',
  synopsis: '[--coldkey <name>] [--hotkey <name>] [flags]',
  description: [
    'Registers the hotkey with burned_register. If it already has a uid, prints "already registered: uid N".',
    'Otherwise prints the cost and the coldkey balance, asks "Proceed? [y/N]" (unless --yes), unlocks the',
    'coldkey, sends the extrinsic and waits for finalization, then prints "registered: uid N".',
  ].join('\n'),
  flags: {
    coldkey: COMMON_FLAGS.coldkey,
    hotkey: COMMON_FLAGS.hotkey,
    netuid: COMMON_FLAGS.netuid,
    network: COMMON_FLAGS.network,
    yes: COMMON_FLAGS.yes,
  },
  env: [...WALLET_ENV_HELP, ...CHAIN_ENV_HELP],

  async run(ctx, flags) {
    const [{ burnedRegister, formatTao, MinerOpError }, { loadColdkey, loadColdkeyPub, loadHotkey, WalletError }] = await Promise.all([
      import('../../chain/miner-ops.ts'),
      import('../../chain/wallet.ts'),
    ]);
    const wallet = requireSetting('coldkey', COMMON_FLAGS.coldkey, flags.string('coldkey'), ctx.env).value;
    const hotkeyName = requireSetting('hotkey', COMMON_FLAGS.hotkey, flags.string('hotkey'), ctx.env).value;
    const target = await resolveChainTarget({ netuid: flags.string('netuid'), network: flags.string('network') }, ctx.env);
    const yes = flags.boolean('yes');

    const hotkey = await loadHotkey({ wallet, hotkey: hotkeyName, env: ctx.env });
    const chain = await ctx.connect(target);
    const existing = await chain.uidOf(target.netuid, hotkey.ss58);
    if (existing !== null) {
      ctx.out(`already registered: uid ${existing}`);
      return 0;
    }

    // Quote with the public address; decrypt only once the user said yes.
    const pub = await loadColdkeyPub({ wallet, env: ctx.env }).catch((error: unknown) => {
      if (error instanceof WalletError && error.code === 'key_file_missing') return null; // no coldkeypub.txt: unlock first
      throw error;
    });
    let coldkey = pub === null ? await loadColdkey({ wallet, env: ctx.env }) : null;
    const coldkeySs58 = coldkey?.ss58 ?? pub!.ss58;
    const [costRao, balanceRao] = await Promise.all([chain.burnCost(target.netuid), chain.freeBalance(coldkeySs58)]);
    ctx.out(`registration cost: ${formatTao(costRao)} (balance: ${formatTao(balanceRao)})`);
    if (balanceRao < costRao) throw new MinerOpError('insufficient_balance', `insufficient balance: have ${formatTao(balanceRao)}, need ${formatTao(costRao)}`);
    if (!yes && !(await ctx.confirm())) throw new MinerOpError('aborted', 'aborted by the user; nothing was sent');

    if (coldkey === null) {
      ctx.status(`unlocking coldkey ${wallet}…`);
      coldkey = await loadColdkey({ wallet, env: ctx.env });
    }
    ctx.status(`registering ${hotkey.ss58} on netuid ${target.netuid}…`);
    const result = await burnedRegister(chain, { netuid: target.netuid, coldkey: coldkey.pair, hotkey: hotkey.ss58, onStatus: (s) => ctx.status(`  ${s}`) });
    ctx.out(result.alreadyRegistered ? `already registered: uid ${result.uid}` : `registered: uid ${result.uid}`);
    return 0;
  },
};
