import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { signatureVerify } from '@polkadot/util-crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  btPasswordEnvName,
  DEFAULT_WALLET_PATH,
  decodeBtPasswordEnv,
  encodeBtPasswordEnv,
  loadColdkey,
  loadColdkeyPub,
  loadHotkey,
  MAX_KEY_FILE_BYTES,
  promptPassword,
  resolveWalletRoot,
  WalletError,
  type WalletErrorCode,
  walletPaths,
} from './wallet.ts';
import { decryptAnsibleVault, deriveAnsibleVaultKeys } from './wallet-vault.ts';

const FIXTURES = fileURLToPath(new URL('../tests/fixtures/chain/wallets/', import.meta.url));
const NACL_ROOT = path.join(FIXTURES, 'nacl');
const PLAIN_ROOT = path.join(FIXTURES, 'plaintext');
const NACL_PASSWORD = 'pass_me_the_keys';

/** tests/fixtures/chain/wallets/README.md */
const WALLETS: Record<string, { root: string; wallet: string; coldkey: string; hotkeys: Record<string, string> }> = {
  'nacl/miners': {
    root: NACL_ROOT,
    wallet: 'miners',
    coldkey: '5ChoH4oJEKVqFcFd16yhzxmQTYQA3zxEUrggxxmYAor7tTni',
    hotkeys: {
      miner_1: '5EkgwYdoVGHHTFrjbcXRa43u3ce1wk1aCpnDvffcbBcDxc8G',
      miner_2: '5CLfhAQDsTUZ64pBd3fFv4LNVEbGa4KmErTBuRgUtFLFg8Qz',
      miner_3: '5EqbDLWicQiUiaUPKSJo3Zp2i8wae8cifrpKKWY4w9UqeLr5',
      miner_4: '5HdMZEedXf4tNubBDd3VeYbmWE4yqfBcYRkcrSdskTWeX3xR',
      miner_5: '5EhpCbpDC1dFtQTgZbLi45jfVkHGZyx8s8qSk7SrqDNfnyUQ',
      miner_6: '5G116umNHFqiVBmuWw1mLSAHyMi642qNLdrJojDn37Tg1Kuj',
      miner_7: '5DtSKv7YVwfa9goJ7Gv5HK95fm2CcCF46Uh6HU5H9TQEyVJ3',
      miner_8: '5D2CL5Ln7wjQfPMDV1EsmmhNz5qJv4ykVo4xEPZoQmW9Va6S',
      miner_9: '5FpkTbw14Cmug4Js378Z3HSZPjrA3hrjnMr5eQnCMNeZWWcV',
    },
  },
  'nacl/validators': {
    root: NACL_ROOT,
    wallet: 'validators',
    coldkey: '5GZ5Tho7AWcDXDZ73vrbV3ZmMfS6HB6Vp8ei236taGJhK2XB',
    hotkeys: {
      validator_1: '5DcKxVonKtmYMTNr1u6GSKHUbXuR2ue7qC8excHL7WBd4BHz',
      validator_2: '5FNpUaTGsVqauVzFagH54pjFMmgtZmvE8xUP8tVqFjX98PGK',
    },
  },
  'plaintext/miners': {
    root: PLAIN_ROOT,
    wallet: 'miners',
    coldkey: '5GeiR6w3ad5JxpwdUS3ADPLexL5SDrbav3k8J5D7WfHTh1Q5',
    hotkeys: {
      miner_1: '5FEc1TfRxmvKbMwQ8UpbszLa2AdXzTbcjK1ACXQBrhgGA9EF',
      miner_2: '5DCrsirhNuoNnW5urMbpV2arpvfuVhByrHYY22dQVgpQhKoD',
      miner_3: '5HRMfR5ka1TfAMTHEA3r9yvkKLVth3344h3UmZv9UoX4QDmh',
      miner_4: '5CZtRuBN6wRgWM86b3kA4oE5P26RcubhzkGR6bmjV82h5GPm',
    },
  },
  'plaintext/validators': {
    root: PLAIN_ROOT,
    wallet: 'validators',
    coldkey: '5EARsvpC837QN1tih5UhjpUU2UfKynVqHNKvinjb1t5LZgcB',
    hotkeys: { validator_1: '5D4uV13sJLEnTSy5pcGixpbwuspYAyTHBSaQbhNA7YHnPqWT' },
  },
};
const HOTKEY_CASES = Object.values(WALLETS).flatMap((w) => Object.entries(w.hotkeys).map(([hotkey, ss58]) => ({ label: `${w.root === NACL_ROOT ? 'nacl' : 'plaintext'}/${w.wallet}/${hotkey}`, root: w.root, wallet: w.wallet, hotkey, ss58 })));

interface KeyJson {
  accountId: string | null;
  publicKey: string | null;
  privateKey: string | null;
  secretPhrase: string | null;
  secretSeed: string | null;
  ss58Address: string;
}
const fixtureJson = async (rel: string): Promise<KeyJson> => JSON.parse(await readFile(path.join(FIXTURES, rel), 'utf8')) as KeyJson;

let tmpBase = '';
let tmpCount = 0;
/** A fresh wallet root in a temp dir holding `<wallet>/<rel>` files; fixtures are never modified. */
async function tempWallet(files: Record<string, string | Uint8Array>, wallet = 'w'): Promise<{ root: string; wallet: string; dir: string }> {
  const root = path.join(tmpBase, `root${tmpCount++}`);
  const dir = path.join(root, wallet);
  await mkdir(path.join(dir, 'hotkeys'), { recursive: true });
  for (const [rel, content] of Object.entries(files)) await writeFile(path.join(dir, rel), content);
  return { root, wallet, dir };
}

async function expectWalletError(p: Promise<unknown>, code: WalletErrorCode, messageIncludes?: string): Promise<WalletError> {
  const err = await p.then(
    () => {
      throw new Error(`expected WalletError ${code}, got success`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalletError);
  const we = err as WalletError;
  expect(we.code, we.message).toBe(code);
  if (messageIncludes) expect(we.message).toContain(messageIncludes);
  return we;
}

/** Encrypt side of ansible `VaultAES256` (+ envelope), for round trips; decryption is the code under test. */
function ansibleEncrypt(plaintext: Uint8Array, password: string, header = '$ANSIBLE_VAULT;1.1;AES256', salt: Buffer = randomBytes(32)): Buffer {
  const { aesKey, hmacKey, iv } = deriveAnsibleVaultKeys(password, salt);
  const pad = 16 - (plaintext.length % 16);
  const cipher = createCipheriv('aes-256-ctr', aesKey, iv);
  const ct = Buffer.concat([cipher.update(Buffer.concat([Buffer.from(plaintext), Buffer.alloc(pad, pad)])), cipher.final()]);
  const mac = createHmac('sha256', hmacKey).update(ct).digest('hex');
  const body = Buffer.from([salt.toString('hex'), mac, ct.toString('hex')].join('\n'), 'latin1').toString('hex');
  const lines = [header];
  for (let i = 0; i < body.length; i += 80) lines.push(body.slice(i, i + 80));
  return Buffer.from(`${lines.join('\n')}\n`, 'latin1');
}

beforeAll(async () => {
  tmpBase = await mkdtemp(path.join(tmpdir(), 'albedo-wallet-test-'));
});
afterAll(async () => {
  if (tmpBase) await rm(tmpBase, { recursive: true, force: true });
});

describe('paths and defaults', () => {
  it('uses btcli layout with ~ expanded and ALBEDO_WALLET_PATH override', () => {
    expect(DEFAULT_WALLET_PATH).toBe('~/.bittensor/wallets');
    expect(resolveWalletRoot({})).toBe(DEFAULT_WALLET_PATH);
    expect(resolveWalletRoot({ ALBEDO_WALLET_PATH: '/srv/w' })).toBe('/srv/w');
    const p = walletPaths(DEFAULT_WALLET_PATH, 'default', 'hk');
    const base = path.join(homedir(), '.bittensor', 'wallets', 'default');
    expect(p).toEqual({
      root: path.join(homedir(), '.bittensor', 'wallets'),
      walletDir: base,
      coldkey: path.join(base, 'coldkey'),
      coldkeypub: path.join(base, 'coldkeypub.txt'),
      hotkeysDir: path.join(base, 'hotkeys'),
      hotkey: path.join(base, 'hotkeys', 'hk'),
      hotkeypub: path.join(base, 'hotkeys', 'hkpub.txt'),
    });
    expect(walletPaths('/r', 'w').hotkey).toBeUndefined();
  });

  it('rejects wallet/hotkey names that would escape the wallet root', () => {
    for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b']) {
      expect(() => walletPaths('/r', bad)).toThrow(WalletError);
      expect(() => walletPaths('/r', 'w', bad)).toThrow(WalletError);
    }
  });
});

describe('BT_PW_ environment password', () => {
  it('derives the env var name from the absolute key path', () => {
    expect(btPasswordEnvName('/home/alice/.bittensor/wallets/default/coldkey')).toBe('BT_PW__HOME_ALICE__BITTENSOR_WALLETS_DEFAULT_COLDKEY');
  });

  it('matches the btwallet encoding (vector computed with the Python base64(password XOR name) rule)', () => {
    const { name, value } = encodeBtPasswordEnv('/home/alice/.bittensor/wallets/default/coldkey', NACL_PASSWORD);
    expect(name).toBe('BT_PW__HOME_ALICE__BITTENSOR_WALLETS_DEFAULT_COLDKEY');
    expect(value).toBe('MjUsIwgyOhc7JSAAKikwMA==');
    expect(decodeBtPasswordEnv(name, value)).toBe(NACL_PASSWORD);
  });

  it('round-trips empty, long and non-ASCII passwords', () => {
    for (const pw of ['', 'x'.repeat(300), 'pässwörd ✓ 密码']) {
      const { name, value } = encodeBtPasswordEnv('/tmp/w/coldkey', pw);
      expect(decodeBtPasswordEnv(name, value)).toBe(pw);
    }
  });

  it('a malformed value is password_required naming the variable, not the value', () => {
    let err: unknown;
    try {
      decodeBtPasswordEnv('BT_PW_X', 'not base64!');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WalletError);
    expect((err as WalletError).code).toBe('password_required');
    expect((err as WalletError).message).toContain('BT_PW_X');
    expect((err as WalletError).message).not.toContain('not base64!');
  });
});

describe('hotkeys and plaintext coldkeys (fixture table)', () => {
  it.each(HOTKEY_CASES)('hotkey $label → $ss58', async ({ root, wallet, hotkey, ss58 }) => {
    const key = await loadHotkey({ root, wallet, hotkey });
    expect(key.ss58).toBe(ss58);
    expect(key.pair.address).toBe(ss58);
    expect(key.pair.type).toBe('sr25519');
  });

  it.each(['plaintext/miners', 'plaintext/validators'])('plaintext coldkey %s', async (id) => {
    const w = WALLETS[id]!;
    const key = await loadColdkey({ root: w.root, wallet: w.wallet, interactive: false, env: {} });
    expect(key.ss58).toBe(w.coldkey);
  });

  it.each(Object.keys(WALLETS))('coldkeypub.txt %s', async (id) => {
    const w = WALLETS[id]!;
    const pub = await loadColdkeyPub({ root: w.root, wallet: w.wallet });
    expect(pub.ss58).toBe(w.coldkey);
    expect(pub.publicKey).toHaveLength(32);
  });

  it('uses ALBEDO_WALLET_PATH from the given env when no root is passed', async () => {
    const key = await loadHotkey({ wallet: 'miners', hotkey: 'miner_1', env: { ALBEDO_WALLET_PATH: PLAIN_ROOT } });
    expect(key.ss58).toBe(WALLETS['plaintext/miners']!.hotkeys.miner_1);
  });

  it('the loaded pair signs messages that signatureVerify accepts', async () => {
    const key = await loadHotkey({ root: NACL_ROOT, wallet: 'miners', hotkey: 'miner_2' });
    const msg = new TextEncoder().encode('albedo: sign me');
    const sig = key.pair.sign(msg);
    expect(signatureVerify(msg, sig, key.ss58).isValid).toBe(true);
    expect(signatureVerify(new TextEncoder().encode('albedo: other'), sig, key.ss58).isValid).toBe(false);
  });
});

describe('secret key material never leaks through serialisation', () => {
  it.each([
    ['nacl/miners/hotkeys/miner_1', { root: NACL_ROOT, wallet: 'miners', hotkey: 'miner_1' }],
    ['plaintext/validators/coldkey', { root: PLAIN_ROOT, wallet: 'validators' }],
  ] as const)('%s', async (rel, where) => {
    const j = await fixtureJson(rel);
    const key = 'hotkey' in where ? await loadHotkey(where) : await loadColdkey({ ...where, interactive: false, env: {} });
    const secrets = [j.secretPhrase!, j.secretSeed!.slice(2), j.privateKey!.slice(2), j.secretPhrase!.split(' ')[0]!];
    const renderings = [
      JSON.stringify(key),
      JSON.stringify({ nested: key }),
      JSON.stringify(key.pair),
      String(inspect(key)),
      inspect(key, { showHidden: true, depth: null, getters: true }),
      inspect(key, { customInspect: false, showHidden: true, depth: null, getters: true }),
      inspect(key.pair, { showHidden: true, depth: null, getters: true }),
      `${key}`,
    ];
    for (const text of renderings) {
      for (const s of secrets) expect(text.toLowerCase()).not.toContain(s.toLowerCase());
    }
    expect(JSON.parse(JSON.stringify(key))).toEqual({ ss58: j.ss58Address, publicKey: j.publicKey });
    expect(inspect(key)).toContain(j.ss58Address);
  });
});

describe('$NACL coldkeys (argon2i: ~4 s and 512 MiB per decrypt; 3 decrypts in this file)', () => {
  it('nacl/miners: callback password; concurrent loads share one decrypt; later loads hit the cache', { timeout: 120_000 }, async () => {
    let asked = 0;
    const password = async () => {
      asked++;
      return NACL_PASSWORD;
    };
    const [a, b] = await Promise.all([
      loadColdkey({ root: NACL_ROOT, wallet: 'miners', password, interactive: false, env: {} }),
      loadColdkey({ root: NACL_ROOT, wallet: 'miners', password, interactive: false, env: {} }),
    ]);
    expect(a.ss58).toBe(WALLETS['nacl/miners']!.coldkey);
    expect(b).toBe(a);
    expect(asked).toBe(1);
    const t0 = performance.now();
    const c = await loadColdkey({
      root: NACL_ROOT,
      wallet: 'miners',
      password: () => {
        throw new Error('must not be asked again');
      },
      interactive: false,
      env: {},
    });
    expect(c).toBe(a);
    expect(performance.now() - t0).toBeLessThan(1000);
    const pub = await loadColdkeyPub({ root: NACL_ROOT, wallet: 'miners' });
    expect(pub.publicKey).toEqual(a.publicKey);
  });

  it('nacl/validators: password from the BT_PW_ env var; the coldkey signs', { timeout: 120_000 }, async () => {
    const coldkeyPath = walletPaths(NACL_ROOT, 'validators').coldkey;
    const { name, value } = encodeBtPasswordEnv(coldkeyPath, NACL_PASSWORD);
    const key = await loadColdkey({ root: NACL_ROOT, wallet: 'validators', interactive: false, env: { [name]: value } });
    expect(key.ss58).toBe(WALLETS['nacl/validators']!.coldkey);
    const msg = new TextEncoder().encode('coldkey signature');
    expect(signatureVerify(msg, key.pair.sign(msg), key.ss58).isValid).toBe(true);
    const text = `${JSON.stringify(key)}${inspect(key, { customInspect: false, showHidden: true, depth: null })}`;
    expect(text).not.toContain('secret');
    expect(text).not.toContain(NACL_PASSWORD);
  });

  it('wrong password → wrong_password naming the file, never the password', { timeout: 120_000 }, async () => {
    const w = await tempWallet({});
    await copyFile(path.join(NACL_ROOT, 'validators', 'coldkey'), path.join(w.dir, 'coldkey'));
    const err = await expectWalletError(loadColdkey({ root: w.root, wallet: w.wallet, password: 'definitely-wrong', interactive: false, env: {} }), 'wrong_password', path.join(w.dir, 'coldkey'));
    expect(err.message).not.toContain('definitely-wrong');
  });

  it('no password, no env, not interactive → password_required naming the BT_PW_ variable', async () => {
    const w = await tempWallet({});
    await copyFile(path.join(NACL_ROOT, 'miners', 'coldkey'), path.join(w.dir, 'coldkey'));
    await expectWalletError(loadColdkey({ root: w.root, wallet: w.wallet, interactive: false, env: {} }), 'password_required', btPasswordEnvName(path.join(w.dir, 'coldkey')));
  });

  it('truncated $NACL file → key_file_invalid (before any argon2 work)', async () => {
    const w = await tempWallet({ coldkey: Buffer.concat([Buffer.from('$NACL'), randomBytes(30)]) });
    await expectWalletError(loadColdkey({ root: w.root, wallet: w.wallet, password: 'x' }), 'key_file_invalid', 'truncated');
  });
});

describe('ansible-vault coldkeys', () => {
  // Generated with python3 `cryptography` 48 following ansible's VaultAES256.encrypt + format_vaulttext_envelope
  // (ansible itself was not installed): password "ansible-vault-test-pw", salt bytes 00..1f.
  const KNOWN_VAULT = [
    '$ANSIBLE_VAULT;1.1;AES256',
    '30303031303230333034303530363037303830393061306230633064306530663130313131323133',
    '3134313531363137313831393161316231633164316531660a303032363231613735613133613834',
    '34636233313830306431633232373331616434346162306331363537333564396331663434326361',
    '3136323536333265380a653835623631306365613832353561663130666665636235656232663630',
    '38323535656636393735326439616236303463623265613235386466303039396230373463306536',
    '61306539663236373335633735336634356330313165343638373362393233323565353963303931',
    '63353665663161326133613034363234656134383534353763363139366566663765623537336230',
    '65356363643263666137326362383938653035376331326466633030626363666161313330313066',
    '33313039303631336566383530313039343031383239616462363963326532623433',
    '',
  ].join('\n');
  const KNOWN_PLAINTEXT = '{"ss58Address": "5EARsvpC837QN1tih5UhjpUU2UfKynVqHNKvinjb1t5LZgcB", "note": "ansible known vector"}';

  it('decrypts an independently produced vector', () => {
    const res = decryptAnsibleVault(Buffer.from(KNOWN_VAULT), 'ansible-vault-test-pw');
    expect(res.ok).toBe(true);
    if (res.ok) expect(Buffer.from(res.plaintext).toString('utf8')).toBe(KNOWN_PLAINTEXT);
    const wrong = decryptAnsibleVault(Buffer.from(KNOWN_VAULT), 'ansible-vault-test-pX');
    expect(wrong).toMatchObject({ ok: false, reason: 'wrong_password' });
  });

  it('the test encryptor reproduces the known vector byte for byte', () => {
    const out = ansibleEncrypt(Buffer.from(KNOWN_PLAINTEXT), 'ansible-vault-test-pw', undefined, Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
    expect(out.toString('latin1')).toBe(KNOWN_VAULT);
  });

  it('loads a vaulted coldkey (1.1 and 1.2 headers, raw JSON and YAML !!binary payloads)', async () => {
    const json = await readFile(path.join(PLAIN_ROOT, 'validators', 'coldkey'));
    const yaml = Buffer.from(`!!binary |\n  ${json.toString('base64').replace(/(.{76})/g, '$1\n  ')}\n`);
    for (const [header, payload] of [
      ['$ANSIBLE_VAULT;1.1;AES256', json],
      ['$ANSIBLE_VAULT;1.2;AES256;prod', json],
      ['$ANSIBLE_VAULT;1.1;AES256', yaml],
    ] as const) {
      const w = await tempWallet({ coldkey: ansibleEncrypt(payload, 'vault pw ✓', header) });
      const key = await loadColdkey({ root: w.root, wallet: w.wallet, password: 'vault pw ✓', interactive: false, env: {} });
      expect(key.ss58).toBe(WALLETS['plaintext/validators']!.coldkey);
    }
  });

  it('wrong password / tampered body → wrong_password; unknown cipher → unsupported_format; bad hex → key_file_invalid', async () => {
    const json = await readFile(path.join(PLAIN_ROOT, 'validators', 'coldkey'));
    const good = ansibleEncrypt(json, 'pw');
    const w1 = await tempWallet({ coldkey: good });
    await expectWalletError(loadColdkey({ root: w1.root, wallet: w1.wallet, password: 'nope' }), 'wrong_password', w1.dir);

    const lines = good.toString('latin1').split('\n');
    const last = lines[lines.length - 2]!;
    lines[lines.length - 2] = `${last.slice(0, -2)}${last.endsWith('30') ? '31' : '30'}`;
    const w2 = await tempWallet({ coldkey: lines.join('\n') });
    await expectWalletError(loadColdkey({ root: w2.root, wallet: w2.wallet, password: 'pw' }), 'wrong_password');

    const w3 = await tempWallet({ coldkey: ansibleEncrypt(json, 'pw', '$ANSIBLE_VAULT;1.1;DES') });
    await expectWalletError(loadColdkey({ root: w3.root, wallet: w3.wallet, password: 'pw' }), 'unsupported_format', 'AES256');

    const w4 = await tempWallet({ coldkey: '$ANSIBLE_VAULT;1.1;AES256\nzz-not-hex\n' });
    await expectWalletError(loadColdkey({ root: w4.root, wallet: w4.wallet, password: 'pw' }), 'key_file_invalid');
  });
});

describe('error handling', () => {
  it('missing wallet directory → wallet_not_found naming the path', async () => {
    const missing = path.join(tmpBase, 'no-such-root');
    await expectWalletError(loadHotkey({ root: missing, wallet: 'ghost', hotkey: 'h' }), 'wallet_not_found', path.join(missing, 'ghost'));
    await expectWalletError(loadColdkey({ root: missing, wallet: 'ghost' }), 'wallet_not_found', path.join(missing, 'ghost'));
    await expectWalletError(loadColdkeyPub({ root: missing, wallet: 'ghost' }), 'wallet_not_found');
  });

  it('missing hotkey / coldkey file → key_file_missing naming the path', async () => {
    await expectWalletError(loadHotkey({ root: NACL_ROOT, wallet: 'miners', hotkey: 'miner_99' }), 'key_file_missing', path.join(NACL_ROOT, 'miners', 'hotkeys', 'miner_99'));
    const w = await tempWallet({});
    await expectWalletError(loadColdkey({ root: w.root, wallet: w.wallet }), 'key_file_missing', path.join(w.dir, 'coldkey'));
    await expectWalletError(loadColdkeyPub({ root: w.root, wallet: w.wallet }), 'key_file_missing', path.join(w.dir, 'coldkeypub.txt'));
  });

  it('corrupt JSON → key_file_invalid without quoting file contents', async () => {
    const w = await tempWallet({ 'hotkeys/h': '{"secretPhrase": "tape fitness gossip' });
    const err = await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'key_file_invalid', path.join(w.dir, 'hotkeys', 'h'));
    expect(err.message).not.toContain('tape');
  });

  it.each(['[]', 'null', '"5EkgwYdoVGHHTFrjbcXRa43u3ce1wk1aCpnDvffcbBcDxc8G"', '42', '', '\u00ff\u00fe'])('non-object JSON %j → key_file_invalid', async (content) => {
    const w = await tempWallet({ 'hotkeys/h': content });
    await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'key_file_invalid');
  });

  it('bad field types and secret-less files → key_file_invalid', async () => {
    const j = await fixtureJson('nacl/miners/hotkeys/miner_1');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...j, secretSeed: '0x1234' }, 'secretSeed'],
      [{ ...j, secretSeed: 42 }, 'secretSeed'],
      [{ ...j, ss58Address: 'not-an-address' }, 'ss58Address'],
      [{ ...j, ss58Address: undefined }, 'ss58Address'],
      [{ ...j, secretPhrase: 'not a real mnemonic at all', secretSeed: null }, 'mnemonic'],
      [{ ...j, secretPhrase: '//Alice', secretSeed: null }, 'mnemonic'],
      [{ ...j, secretPhrase: `${j.secretPhrase}//hard`, secretSeed: null }, 'mnemonic'],
      [{ ...j, secretPhrase: j.secretPhrase!.split(' ').reverse().join(' '), secretSeed: null }, 'mnemonic'],
      [{ ...j, secretPhrase: null, secretSeed: null, privateKey: null }, 'no secret'],
    ];
    for (const [obj, hint] of cases) {
      const w = await tempWallet({ 'hotkeys/h': JSON.stringify(obj) });
      await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'key_file_invalid', hint);
    }
  });

  it('oversize file → oversize', async () => {
    const w = await tempWallet({ 'hotkeys/h': `{"pad": "${'x'.repeat(MAX_KEY_FILE_BYTES)}"}` });
    await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'oversize', path.join(w.dir, 'hotkeys', 'h'));
  });

  it('a directory where a key file should be → key_file_invalid', async () => {
    const w = await tempWallet({});
    await mkdir(path.join(w.dir, 'hotkeys', 'h'));
    await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'key_file_invalid');
  });

  it('legacy Fernet (gAAAAA…) → unsupported_format telling the user to regenerate', async () => {
    const w = await tempWallet({ coldkey: `gAAAAAB${'k'.repeat(120)}` });
    const err = await expectWalletError(loadColdkey({ root: w.root, wallet: w.wallet, password: 'x' }), 'unsupported_format', path.join(w.dir, 'coldkey'));
    expect(err.message).toMatch(/regenerate/);
    expect(err.message).toMatch(/btcli/);
  });

  it('edited ss58Address / publicKey → address_mismatch', async () => {
    const j = await fixtureJson('nacl/miners/hotkeys/miner_1');
    const other = await fixtureJson('nacl/miners/hotkeys/miner_2');
    const variants = [
      { ...j, ss58Address: other.ss58Address }, // address disagrees with publicKey in the same file
      { ...j, ss58Address: other.ss58Address, publicKey: other.publicKey, accountId: other.accountId }, // secret disagrees
      { ...j, secretSeed: other.secretSeed }, // phrase and seed disagree
      { ...j, publicKey: other.publicKey },
    ];
    for (const v of variants) {
      const w = await tempWallet({ 'hotkeys/h': JSON.stringify(v) });
      await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'address_mismatch', path.join(w.dir, 'hotkeys', 'h'));
    }
    const w = await tempWallet({ 'coldkeypub.txt': JSON.stringify({ ...(await fixtureJson('plaintext/miners/coldkeypub.txt')), publicKey: other.publicKey }) });
    await expectWalletError(loadColdkeyPub({ root: w.root, wallet: w.wallet }), 'address_mismatch');
  });
});

describe('key derivation paths', () => {
  it('secretSeed only', async () => {
    const j = await fixtureJson('plaintext/miners/hotkeys/miner_3');
    const w = await tempWallet({ 'hotkeys/h': JSON.stringify({ ...j, secretPhrase: null, privateKey: null }) });
    expect((await loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' })).ss58).toBe(j.ss58Address);
  });

  it.each(['nacl/miners/hotkeys/miner_4', 'nacl/validators/hotkeys/validator_2', 'plaintext/validators/hotkeys/validator_1'])(
    'privateKey only (schnorrkel scalar × 8): %s',
    async (rel) => {
      const j = await fixtureJson(rel);
      const w = await tempWallet({ 'hotkeys/h': JSON.stringify({ ...j, secretPhrase: null, secretSeed: null }) });
      const key = await loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' });
      expect(key.ss58).toBe(j.ss58Address);
      const msg = new TextEncoder().encode('privateKey path');
      expect(signatureVerify(msg, key.pair.sign(msg), j.ss58Address).isValid).toBe(true);
    },
  );

  it("privateKey that does not belong to the file's address → address_mismatch", async () => {
    const j = await fixtureJson('nacl/miners/hotkeys/miner_5');
    const other = await fixtureJson('nacl/miners/hotkeys/miner_6');
    const w = await tempWallet({ 'hotkeys/h': JSON.stringify({ ...j, secretPhrase: null, secretSeed: null, privateKey: other.privateKey }) });
    await expectWalletError(loadHotkey({ root: w.root, wallet: w.wallet, hotkey: 'h' }), 'address_mismatch');
  });
});

describe('promptPassword', () => {
  it('non-TTY input → password_required naming the env var', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: false });
    await expectWalletError(promptPassword('pw: ', { envVar: 'BT_PW_SOMETHING', input, output: new PassThrough() }), 'password_required', 'BT_PW_SOMETHING');
  });

  it('reads a line from a TTY without echoing it', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = new PassThrough();
    let shown = '';
    output.on('data', (c: Buffer) => {
      shown += c.toString();
    });
    const p = promptPassword('Password: ', { input, output });
    input.write('hunter2\r');
    await expect(p).resolves.toBe('hunter2');
    expect(shown).toContain('Password: ');
    expect(shown).not.toContain('hunter2');
  });

  it('EOF before a line → password_required', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const p = promptPassword('Password: ', { input, output: new PassThrough() });
    input.end();
    await expectWalletError(p, 'password_required');
  });
});
