/**
 * `albedo commit` (spec/miner-cli.md §3, spec/chain.md §4): publishes `v7|<repo>|<digest>` as a
 * timelocked commitment signed by the hotkey, then waits for the chain to reveal it.
 *
 * Order matters: formats are checked before any wallet or network access; the coldkey is never
 * decrypted (only the hotkey signs; the coldkey name is displayed); the registration check runs before
 * the preview so an unregistered hotkey never reaches the prompt. Chain and wallet modules load only
 * after the format checks (they take seconds to import).
 */

/** miner-ops.ts `REVEAL_WAIT_MS` (asserted equal in miner/cli.test.ts; copied to keep help fast). */
export const REVEAL_WAIT_MS = 120_000;
/** miner-ops.ts `MAX_RAW_COMMITMENT_BYTES` (asserted equal in miner/cli.test.ts). */
export const MAX_RAW_BYTES = 128;
import { formatReveal } from '../../chain/reveal.ts';
import type { CommandSpec } from '../cli.ts';
import { CHAIN_ENV_HELP, COMMON_FLAGS, requireSetting, resolveChainTarget, SettingError, WALLET_ENV_HELP } from '../env.ts';
import { assertCanPrompt } from '../prompt.ts';

export const commitCommand: CommandSpec = {
  name: 'commit',
  summary: 'commit a model (v7|repo|digest) on chain, timelocked, and wait for its reveal',
  synopsis: '--repo <ns/name> --digest <digest> [flags]',
  description: [
    'Checks the repo and digest formats, checks that the hotkey is registered, shows the payload and asks',
    '"Proceed? [y/N]" (unless --yes). Then sends a timelocked set_commitment signed by the hotkey, prints',
    '"committed in block N (reveal round R)" and waits until the chain reveals it: "revealed at block M".',
    `The wait is at most ${REVEAL_WAIT_MS / 1000} s; if it runs out the commitment stays on chain and the`,
    'command exits 1 (check later with albedo check-commit). The coldkey is not unlocked; only its name is shown.',
  ].join('\n'),
  flags: {
    repo: { type: 'string', placeholder: '<ns/name>', description: 'model repository, lowercase (e.g. me/albedo-qwen3.6-35b-x)', required: true },
    digest: { type: 'string', placeholder: '<digest>', description: 'immutable pin: sha256:<64 hex>, 40 hex or 64 hex', required: true },
    coldkey: COMMON_FLAGS.coldkey,
    hotkey: COMMON_FLAGS.hotkey,
    netuid: COMMON_FLAGS.netuid,
    network: COMMON_FLAGS.network,
    yes: COMMON_FLAGS.yes,
    raw: { type: 'boolean', description: 'plain Raw<n> commitment instead of timelock (test chains only; never revealed)' },
    'no-wait': { type: 'boolean', description: 'do not wait for the reveal' },
  },
  env: [...WALLET_ENV_HELP.slice(0, 1), ...CHAIN_ENV_HELP],

  async run(ctx, flags) {
    const repo = flags.required('repo');
    const digest = flags.required('digest');
    const raw = flags.boolean('raw');
    // 1. Formats, locally (spec §3 step 1).
    let payload: string;
    try {
      payload = formatReveal(repo, digest);
    } catch (error) {
      throw new SettingError((error as Error).message);
    }
    const payloadBytes = Buffer.byteLength(payload, 'utf8');
    if (raw && payloadBytes > MAX_RAW_BYTES) throw new SettingError(`raw commitments hold at most ${MAX_RAW_BYTES} bytes; this payload is ${payloadBytes}`);
    const wallet = requireSetting('coldkey', COMMON_FLAGS.coldkey, flags.string('coldkey'), ctx.env).value;
    const hotkeyName = requireSetting('hotkey', COMMON_FLAGS.hotkey, flags.string('hotkey'), ctx.env).value;
    const target = await resolveChainTarget({ netuid: flags.string('netuid'), network: flags.string('network') }, ctx.env);
    const yes = flags.boolean('yes');
    if (!yes) assertCanPrompt(ctx.stdin); // a prompt is certain: fail before any work

    const [{ commitReveal, MinerOpError, waitForReveal }, { loadHotkey }] = await Promise.all([import('../../chain/miner-ops.ts'), import('../../chain/wallet.ts')]);
    const hotkey = await loadHotkey({ wallet, hotkey: hotkeyName, env: ctx.env });
    const chain = await ctx.connect(target);
    // 2. Registration (spec §3 step 2).
    const uid = await chain.uidOf(target.netuid, hotkey.ss58);
    if (uid === null) throw new MinerOpError('not_registered', `hotkey ${hotkey.ss58} is not registered on netuid ${target.netuid} (run albedo register)`);
    // 3. Preview and prompt.
    ctx.out(`payload: ${payload}`);
    ctx.out(`coldkey: ${wallet}`);
    ctx.out(`hotkey: ${hotkeyName} (${hotkey.ss58})`);
    ctx.out(`netuid: ${target.netuid}`);
    ctx.out(`network: ${target.label}`);
    if (!yes && !(await ctx.confirm())) throw new MinerOpError('aborted', 'aborted by the user; nothing was sent');
    // 4. Commit, then wait for the reveal.
    ctx.status(raw ? 'sending raw commitment…' : 'sending timelocked commitment…');
    const result = await commitReveal(chain, { netuid: target.netuid, hotkey: hotkey.pair, repo, digest, raw, onStatus: (s) => ctx.status(`  ${s}`) });
    ctx.out(`committed in block ${result.blockNumber} (${result.revealRound === null ? 'raw' : `reveal round ${result.revealRound}`})`);
    if (result.revealRound === null || flags.boolean('no-wait')) return 0; // raw commitments are never revealed
    ctx.status(`waiting for the reveal (up to ${REVEAL_WAIT_MS / 1000} s)…`);
    const revealedAt = await waitForReveal(chain, { netuid: target.netuid, hotkey: hotkey.ss58, payload: result.payload, sinceBlock: result.blockNumber, timeoutMs: REVEAL_WAIT_MS, signal: ctx.signal });
    ctx.out(`revealed at block ${revealedAt}`);
    return 0;
  },
};
