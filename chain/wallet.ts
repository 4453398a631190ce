/**
 * Bittensor btcli wallet loading (chain.md §9): hotkeys, coldkeys and coldkeypub.txt, all sr25519 /
 * SS58 prefix 42.
 *
 * Security rules this module keeps:
 * - Secret material lives only inside the returned `KeyringPair`; `WalletKey` serialises (JSON,
 *   `util.inspect`) to its address and public key only.
 * - Error messages name files and fields, never values (no secrets, no passwords, no JSON snippets).
 * - Every key is checked against the file's own `ss58Address`/`publicKey` before it is returned.
 * - Encrypted keys are decrypted once per process (argon2 costs seconds and 512 MiB).
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { hexToU8a, u8aEq, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, decodeAddress, encodeAddress, mnemonicValidate, signatureVerify, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { ANSIBLE_VAULT_PREFIX, decryptAnsibleVault } from './wallet-vault.ts';

type Sodium = typeof import('libsodium-wrappers-sumo');

/** btcli's wallet root; `~` is expanded at use. Overridden by `ALBEDO_WALLET_PATH` (miner-cli.md §1). */
export const DEFAULT_WALLET_PATH = '~/.bittensor/wallets';
/** Environment variable that overrides the wallet root. */
export const WALLET_PATH_ENV = 'ALBEDO_WALLET_PATH';
/** Bittensor addresses use the generic Substrate prefix. */
export const SS58_FORMAT = 42;
/** Key files are < 1 KiB; anything past this cap is not a key file and is not read further. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Prefix of btcli's password env var (`BT_PW_<PATH>`). */
export const BT_PW_ENV_PREFIX = 'BT_PW_';
/** btwallet's fixed NaCl parameters (argon2i13 "sensitive" limits, fixed salt). */
export const NACL_PREFIX = '$NACL';
export const NACL_SALT: Readonly<Uint8Array> = Uint8Array.from([
  0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1,
]);
export const NACL_OPSLIMIT = 8;
export const NACL_MEMLIMIT = 536_870_912;
/** Legacy Fernet-encrypted coldkeys start with this (base64 of the Fernet version byte). */
export const FERNET_PREFIX = 'gAAAAA';

const NACL_NONCE_BYTES = 24;
const NACL_MAC_BYTES = 16;
const NACL_KEY_BYTES = 32;

export type WalletErrorCode =
  | 'wallet_not_found'
  | 'key_file_missing'
  | 'key_file_invalid'
  | 'wrong_password'
  | 'password_required'
  | 'unsupported_format'
  | 'address_mismatch'
  | 'oversize';

/** The one error type of this module; `code` is a closed set so callers can map it to exit codes/hints. */
export class WalletError extends Error {
  override readonly name = 'WalletError';
  constructor(
    readonly code: WalletErrorCode,
    message: string,
    /** The wallet directory or key file concerned, when there is one. */
    readonly path?: string,
  ) {
    super(message);
  }
}

/** A loaded key pair. The secret is reachable only through `pair` (sign), never through serialisation. */
export interface WalletKey {
  readonly ss58: string;
  readonly publicKey: Uint8Array;
  readonly pair: KeyringPair;
}

/** Public half only (coldkeypub.txt): enough to identify the owner without any password. */
export interface WalletPublicKey {
  readonly ss58: string;
  readonly publicKey: Uint8Array;
}

/** Absolute paths of one wallet's files, in btcli's layout. */
export interface WalletPaths {
  readonly root: string;
  readonly walletDir: string;
  readonly coldkey: string;
  readonly coldkeypub: string;
  readonly hotkeysDir: string;
  readonly hotkey?: string;
  readonly hotkeypub?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Where the coldkey password comes from when the key file is encrypted. */
export interface PasswordOptions {
  /** Explicit password, or a callback asked only if a decrypt is actually needed. Wins over env. */
  password?: string | (() => Promise<string> | string);
  /** Environment for `BT_PW_…` and `ALBEDO_WALLET_PATH`; defaults to `process.env`. */
  env?: Env;
  /** `false` (daemons): never prompt, fail with `password_required` instead. Default `true`. */
  interactive?: boolean;
}

export interface LoadColdkeyOptions extends PasswordOptions {
  /** Wallet root; defaults to `$ALBEDO_WALLET_PATH` or {@link DEFAULT_WALLET_PATH}. */
  root?: string;
  wallet: string;
}

export interface LoadHotkeyOptions extends LoadColdkeyOptions {
  hotkey: string;
}

function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/') || p.startsWith(`~${path.sep}`)) return path.join(homedir(), p.slice(2));
  return p;
}

function checkName(name: string, what: 'wallet' | 'hotkey'): void {
  const bad = name.length === 0 || name === '.' || name === '..' || /[/\\\0]/.test(name);
  if (bad) {
    throw new WalletError(what === 'wallet' ? 'wallet_not_found' : 'key_file_missing', `invalid ${what} name ${JSON.stringify(name)}: must be a plain file name`);
  }
}

/** The wallet root to use: `$ALBEDO_WALLET_PATH` if set, else btcli's default. */
export function resolveWalletRoot(env: Env = process.env): string {
  const fromEnv = env[WALLET_PATH_ENV]?.trim();
  return fromEnv ? fromEnv : DEFAULT_WALLET_PATH;
}

/**
 * btcli's file layout for a wallet (and optionally one hotkey), as absolute paths with `~` expanded.
 * Absolute paths matter: the `BT_PW_` env var name is derived from the coldkey's full path.
 */
export function walletPaths(root: string, walletName: string, hotkeyName?: string): WalletPaths {
  checkName(walletName, 'wallet');
  const absRoot = path.resolve(expandHome(root));
  const walletDir = path.join(absRoot, walletName);
  const hotkeysDir = path.join(walletDir, 'hotkeys');
  const base = { root: absRoot, walletDir, coldkey: path.join(walletDir, 'coldkey'), coldkeypub: path.join(walletDir, 'coldkeypub.txt'), hotkeysDir };
  if (hotkeyName === undefined) return base;
  checkName(hotkeyName, 'hotkey');
  return { ...base, hotkey: path.join(hotkeysDir, hotkeyName), hotkeypub: path.join(hotkeysDir, `${hotkeyName}pub.txt`) };
}

// ---------------------------------------------------------------------------------------------
// BT_PW_ environment passwords (btwallet compatible)

/** btwallet's env var name for a key file: `BT_PW_` + absolute path with `/` and `.` → `_`, upper-cased. */
export function btPasswordEnvName(keyfilePath: string): string {
  const abs = path.resolve(expandHome(keyfilePath));
  return `${BT_PW_ENV_PREFIX}${abs.split(path.sep).join('_').replaceAll('/', '_').replaceAll('.', '_')}`.toUpperCase();
}

function xorWithName(data: Uint8Array, name: string): Buffer {
  const key = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i] ?? 0) ^ (key[i % key.length] ?? 0);
  return out;
}

/**
 * Builds the `BT_PW_…` variable btcli would read for `keyfilePath`: base64 of the UTF-8 password
 * XOR the variable name's bytes (cycled). This is obfuscation, not encryption — it only keeps the
 * plain password out of casual `env` listings. Identical to btwallet for ASCII passwords.
 */
export function encodeBtPasswordEnv(keyfilePath: string, password: string): { name: string; value: string } {
  const name = btPasswordEnvName(keyfilePath);
  const pw = Buffer.from(password, 'utf8');
  const mixed = xorWithName(pw, name);
  const value = mixed.toString('base64');
  pw.fill(0);
  mixed.fill(0);
  return { name, value };
}

/** Inverse of {@link encodeBtPasswordEnv}; a malformed value is `password_required` (naming the variable only). */
export function decodeBtPasswordEnv(name: string, value: string): string {
  const b64 = value.trim();
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
    throw new WalletError('password_required', `environment variable ${name} is not valid base64 (set it with the btcli encoding, see encodeBtPasswordEnv)`);
  }
  const plain = xorWithName(Buffer.from(b64, 'base64'), name);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new WalletError('password_required', `environment variable ${name} does not decode to a UTF-8 password`);
  } finally {
    plain.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Interactive prompt

export interface PromptOptions {
  /** Named in the error when stdin is not a terminal, so the user knows what to set instead. */
  envVar?: string;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  output?: NodeJS.WritableStream;
}

/**
 * Reads a password from the terminal without echo (prompt on stderr so stdout stays machine
 * readable). Non-TTY stdin ⇒ `password_required` naming the env var to set. Ctrl-C re-raises SIGINT
 * so the CLI's normal abort path (exit 130) runs.
 */
export function promptPassword(prompt: string, opts: PromptOptions = {}): Promise<string> {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stderr;
  if (!input.isTTY) {
    const hint = opts.envVar ? `set ${opts.envVar} (see encodeBtPasswordEnv)` : `set the ${BT_PW_ENV_PREFIX}… environment variable`;
    return Promise.reject(new WalletError('password_required', `a password is required but stdin is not a terminal; ${hint}`));
  }
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const rl = createInterface({ input, output: muted, terminal: true, historySize: 0 });
  output.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    rl.on('SIGINT', () => {
      settled = true;
      rl.close();
      output.write('\n');
      reject(new WalletError('password_required', 'password entry aborted'));
      process.kill(process.pid, 'SIGINT');
    });
    rl.on('close', () => {
      if (settled) return;
      settled = true;
      output.write('\n');
      reject(new WalletError('password_required', 'no password entered'));
    });
    rl.question('', (answer) => {
      settled = true;
      rl.close();
      output.write('\n');
      resolve(answer);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Lazy crypto back-ends

let sodiumPromise: Promise<Sodium> | undefined;
/** libsodium's ESM entry is broken under Node 20; the CJS build works. Loaded only for `$NACL`. */
function loadSodium(): Promise<Sodium> {
  sodiumPromise ??= (async () => {
    const sodium = createRequire(import.meta.url)('libsodium-wrappers-sumo') as Sodium;
    await sodium.ready;
    return sodium;
  })();
  return sodiumPromise;
}

let keyringPromise: Promise<Keyring> | undefined;
function getKeyring(): Promise<Keyring> {
  keyringPromise ??= cryptoWaitReady().then(() => new Keyring({ type: 'sr25519', ss58Format: SS58_FORMAT }));
  return keyringPromise;
}

// ---------------------------------------------------------------------------------------------
// Reading and parsing key files

async function readKeyFile(file: string, what: string): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new WalletError('key_file_missing', `${what} not found: ${file}`, file);
    throw new WalletError('key_file_invalid', `cannot open ${what} ${file} (${code ?? 'error'})`, file);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new WalletError('key_file_invalid', `${what} ${file} is not a regular file`, file);
    if (st.size > MAX_KEY_FILE_BYTES) throw new WalletError('oversize', `${what} ${file} is ${st.size} bytes, over the ${MAX_KEY_FILE_BYTES}-byte cap for key files`, file);
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_KEY_FILE_BYTES) throw new WalletError('oversize', `${what} ${file} is over the ${MAX_KEY_FILE_BYTES}-byte cap for key files`, file);
    }
    const data = Buffer.from(buf.subarray(0, n));
    buf.fill(0);
    return data;
  } finally {
    await fh.close();
  }
}

async function ensureWalletDir(paths: WalletPaths, wallet: string): Promise<void> {
  try {
    const st = await stat(paths.walletDir);
    if (st.isDirectory()) return;
  } catch {
    // reported below
  }
  throw new WalletError('wallet_not_found', `wallet "${wallet}" not found: ${paths.walletDir} is not a directory (wallet root ${paths.root}; set ${WALLET_PATH_ENV} to change it)`, paths.walletDir);
}

type Format = 'nacl' | 'ansible' | 'fernet' | 'plain';

function startsWithAscii(data: Uint8Array, prefix: string): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function detectFormat(data: Uint8Array): Format {
  if (startsWithAscii(data, NACL_PREFIX)) return 'nacl';
  if (startsWithAscii(data, ANSIBLE_VAULT_PREFIX)) return 'ansible';
  if (startsWithAscii(data, FERNET_PREFIX)) return 'fernet';
  return 'plain';
}

interface KeyFields {
  ss58Address: string;
  addressKey: Uint8Array;
  publicKey?: Uint8Array;
  secretPhrase?: string;
  secretSeed?: Uint8Array;
  privateKey?: Uint8Array;
}

function hexField(obj: Record<string, unknown>, field: string, bytes: number, file: string): Uint8Array | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length !== 2 + 2 * bytes || !/^0x[0-9a-fA-F]*$/.test(v)) {
    throw new WalletError('key_file_invalid', `${file}: field "${field}" must be 0x-prefixed hex of ${bytes} bytes`, file);
  }
  return hexToU8a(v);
}

/** Parses btcli key JSON. `source` says whether the bytes came straight from disk or from a decrypt. */
function parseKeyJson(data: Uint8Array, file: string, source: 'file' | 'decrypted'): KeyFields {
  const where = source === 'file' ? file : `decrypted contents of ${file}`;
  let obj: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(data).replace(/^\uFEFF/, '');
    obj = JSON.parse(text);
  } catch {
    // The parser's message would quote file contents (possibly secrets): report only the location.
    throw new WalletError('key_file_invalid', `${where} is not valid key JSON (and not a known encrypted format)`, file);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new WalletError('key_file_invalid', `${where} must be a JSON object`, file);
  }
  const rec = obj as Record<string, unknown>;
  const ss58Address = rec.ss58Address;
  if (typeof ss58Address !== 'string' || ss58Address.length === 0 || ss58Address.length > 64) {
    throw new WalletError('key_file_invalid', `${where}: field "ss58Address" is missing or not a string`, file);
  }
  let addressKey: Uint8Array;
  try {
    addressKey = decodeAddress(ss58Address);
  } catch {
    throw new WalletError('key_file_invalid', `${where}: field "ss58Address" is not a valid SS58 address`, file);
  }
  const publicKey = hexField(rec, 'publicKey', 32, file);
  const accountId = hexField(rec, 'accountId', 32, file);
  for (const [field, key] of [['publicKey', publicKey], ['accountId', accountId]] as const) {
    if (key && !u8aEq(key, addressKey)) throw new WalletError('address_mismatch', `${where}: "${field}" does not match "ss58Address"`, file);
  }
  const phrase = rec.secretPhrase;
  if (phrase !== undefined && phrase !== null && (typeof phrase !== 'string' || phrase.length > 1024)) {
    throw new WalletError('key_file_invalid', `${where}: field "secretPhrase" must be a string`, file);
  }
  const fields: KeyFields = { ss58Address, addressKey };
  if (publicKey) fields.publicKey = publicKey;
  if (typeof phrase === 'string' && phrase.trim().length > 0) fields.secretPhrase = phrase;
  const seed = hexField(rec, 'secretSeed', 32, file);
  if (seed) fields.secretSeed = seed;
  const priv = hexField(rec, 'privateKey', 64, file);
  if (priv) fields.privateKey = priv;
  return fields;
}

/**
 * Schnorrkel `SecretKey::to_bytes()` (canonical scalar ‖ nonce, what py-sr25519 writes as
 * `privateKey`) → the `to_ed25519_bytes()` form polkadot.js expects: scalar × 8, little-endian.
 */
function schnorrkelToPolkadotSecret(priv: Uint8Array, file: string): Uint8Array {
  if ((priv[31] ?? 0) & 0xe0) throw new WalletError('key_file_invalid', `${file}: field "privateKey" is not a canonical sr25519 secret`, file);
  const out = new Uint8Array(64);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const b = priv[i] ?? 0;
    out[i] = ((b << 3) | carry) & 0xff;
    carry = b >> 5;
  }
  out.set(priv.subarray(32, 64), 32);
  return out;
}

const PROOF_MESSAGE = new TextEncoder().encode('albedo wallet self-check');

function makeWalletKey(pair: KeyringPair): WalletKey {
  const ss58 = pair.address;
  const publicKey = new Uint8Array(pair.publicKey);
  const key: WalletKey = { ss58, publicKey, pair };
  const describe = () => ({ ss58, publicKey: u8aToHex(publicKey) });
  Object.defineProperties(key, {
    toJSON: { value: describe },
    [inspect.custom]: { value: () => `WalletKey { ss58: '${ss58}' }` },
  });
  return Object.freeze(key);
}

/** Builds the pair (phrase > seed > privateKey) and proves it matches the file's address. */
async function buildWalletKey(fields: KeyFields, file: string): Promise<WalletKey> {
  const keyring = await getKeyring();
  let pair: KeyringPair;
  try {
    if (fields.secretPhrase !== undefined) {
      // createFromUri would also accept raw strings as padded seeds and `//derivation` paths: only
      // a checksummed BIP39 mnemonic is a btcli secretPhrase.
      if (!mnemonicValidate(fields.secretPhrase)) {
        throw new WalletError('key_file_invalid', `${file}: field "secretPhrase" is not a valid BIP39 mnemonic`, file);
      }
      pair = keyring.createFromUri(fields.secretPhrase);
      if (fields.secretSeed && !u8aEq(sr25519PairFromSeed(fields.secretSeed).publicKey, pair.publicKey)) {
        throw new WalletError('address_mismatch', `${file}: "secretSeed" and "secretPhrase" give different keys`, file);
      }
    } else if (fields.secretSeed !== undefined) {
      pair = keyring.createFromPair(sr25519PairFromSeed(fields.secretSeed));
    } else if (fields.privateKey !== undefined) {
      const publicKey = fields.publicKey ?? fields.addressKey;
      pair = keyring.createFromPair({ publicKey, secretKey: schnorrkelToPolkadotSecret(fields.privateKey, file) });
      // addFromPair trusts the public key it is given: prove the secret actually belongs to it.
      if (!signatureVerify(PROOF_MESSAGE, pair.sign(PROOF_MESSAGE), publicKey).isValid) {
        throw new WalletError('address_mismatch', `${file}: "privateKey" does not belong to "publicKey"/"ss58Address"`, file);
      }
    } else {
      throw new WalletError('key_file_invalid', `${file} holds no secret (secretPhrase, secretSeed or privateKey); is it a *pub.txt file?`, file);
    }
  } finally {
    fields.secretSeed?.fill(0);
    fields.privateKey?.fill(0);
  }
  if (pair.address !== fields.ss58Address || !u8aEq(pair.publicKey, fields.addressKey)) {
    pair.lock();
    throw new WalletError('address_mismatch', `${file}: the key derived from the file's secret does not match its "ss58Address"`, file);
  }
  return makeWalletKey(pair);
}

// ---------------------------------------------------------------------------------------------
// Decryption

async function resolvePassword(file: string, opts: PasswordOptions): Promise<string> {
  const given = typeof opts.password === 'function' ? await opts.password() : opts.password;
  if (given !== undefined) {
    if (typeof given !== 'string') throw new WalletError('password_required', `password callback for ${file} did not return a string`, file);
    return given;
  }
  const name = btPasswordEnvName(file);
  const fromEnv = (opts.env ?? process.env)[name];
  if (fromEnv !== undefined) return decodeBtPasswordEnv(name, fromEnv);
  if (opts.interactive === false) {
    throw new WalletError('password_required', `${file} is encrypted and no password was given; set ${name} (see encodeBtPasswordEnv)`, file);
  }
  return promptPassword(`Enter password to unlock ${file}: `, { envVar: name });
}

/** Strips the YAML `!!binary` wrapper some python ansible-vault writers put around raw bytes. */
function unwrapYamlBinary(data: Uint8Array): Uint8Array {
  const text = Buffer.from(data).toString('latin1');
  const m = /^\s*!!binary\s*\|?\s*\n([A-Za-z0-9+/=\s]+)$/.exec(text);
  return m?.[1] ? new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')) : data;
}

async function decryptKeyData(data: Buffer, format: 'nacl' | 'ansible', file: string, password: string): Promise<Uint8Array> {
  if (format === 'ansible') {
    const res = decryptAnsibleVault(data, password);
    if (res.ok) {
      const inner = unwrapYamlBinary(res.plaintext);
      if (inner !== res.plaintext) res.plaintext.fill(0);
      return inner;
    }
    if (res.reason === 'wrong_password') throw new WalletError('wrong_password', `wrong password for ${file} (ansible-vault HMAC check failed)`, file);
    if (res.reason === 'unsupported') throw new WalletError('unsupported_format', `${file}: ${res.detail}`, file);
    throw new WalletError('key_file_invalid', `${file}: corrupt ansible-vault file (${res.detail})`, file);
  }
  const body = data.subarray(NACL_PREFIX.length);
  if (body.length < NACL_NONCE_BYTES + NACL_MAC_BYTES) throw new WalletError('key_file_invalid', `${file}: $NACL key file is truncated`, file);
  const sodium = await loadSodium();
  const pw = Buffer.from(password, 'utf8');
  let key: Uint8Array;
  try {
    key = sodium.crypto_pwhash(NACL_KEY_BYTES, pw, Uint8Array.from(NACL_SALT), NACL_OPSLIMIT, NACL_MEMLIMIT, sodium.crypto_pwhash_ALG_ARGON2I13);
  } finally {
    pw.fill(0);
  }
  try {
    return sodium.crypto_secretbox_open_easy(body.subarray(NACL_NONCE_BYTES), body.subarray(0, NACL_NONCE_BYTES), key);
  } catch {
    throw new WalletError('wrong_password', `wrong password for ${file} (decryption failed)`, file);
  } finally {
    key.fill(0);
  }
}

interface CacheEntry {
  digest: string;
  key: Promise<WalletKey>;
}
/** Decrypted (encrypted-on-disk) keys by absolute path; the digest invalidates a replaced file. */
const decryptedKeys = new Map<string, CacheEntry>();

/** Forgets every decrypted key, so the next load asks for the password again (tests, long-lived processes). */
export function clearWalletCache(): void {
  decryptedKeys.clear();
}

async function loadKeyFile(file: string, what: string, opts: PasswordOptions): Promise<WalletKey> {
  const data = await readKeyFile(file, what);
  const format = detectFormat(data);
  if (format === 'fernet') {
    throw new WalletError('unsupported_format', `${what} ${file} uses the legacy Fernet encryption, which is not supported; regenerate the wallet from its mnemonic with a current btcli (btcli wallet regen-coldkey)`, file);
  }
  if (format === 'plain') return buildWalletKey(parseKeyJson(data, file, 'file'), file);

  const digest = createHash('sha256').update(data).digest('hex');
  const cached = decryptedKeys.get(file);
  if (cached && cached.digest === digest) {
    try {
      return await cached.key;
    } catch {
      // That attempt failed (e.g. its password was wrong); make our own below.
    }
  }
  const attempt = (async () => {
    const password = await resolvePassword(file, opts);
    const plaintext = await decryptKeyData(data, format, file, password);
    try {
      return await buildWalletKey(parseKeyJson(plaintext, file, 'decrypted'), file);
    } finally {
      plaintext.fill(0);
    }
  })();
  const entry: CacheEntry = { digest, key: attempt };
  decryptedKeys.set(file, entry);
  attempt.catch(() => {
    if (decryptedKeys.get(file) === entry) decryptedKeys.delete(file);
  });
  return attempt;
}

// ---------------------------------------------------------------------------------------------
// Public loaders

/** Loads `<wallet>/hotkeys/<hotkey>` (plaintext JSON in btcli; encrypted hotkeys are handled like coldkeys). */
export async function loadHotkey(opts: LoadHotkeyOptions): Promise<WalletKey> {
  const paths = walletPaths(opts.root ?? resolveWalletRoot(opts.env), opts.wallet, opts.hotkey);
  await ensureWalletDir(paths, opts.wallet);
  return loadKeyFile(paths.hotkey!, `hotkey "${opts.hotkey}"`, opts);
}

/**
 * Loads and (if needed) decrypts `<wallet>/coldkey`. Password order: `opts.password`, then
 * `BT_PW_<path>`, then an interactive prompt (unless `interactive: false`). The decrypted pair is
 * cached per absolute path, so later calls in this process neither prompt nor pay argon2 again.
 */
export async function loadColdkey(opts: LoadColdkeyOptions): Promise<WalletKey> {
  const paths = walletPaths(opts.root ?? resolveWalletRoot(opts.env), opts.wallet);
  await ensureWalletDir(paths, opts.wallet);
  return loadKeyFile(paths.coldkey, 'coldkey', opts);
}

/** Reads `<wallet>/coldkeypub.txt`: the owner's address without touching the encrypted coldkey. */
export async function loadColdkeyPub(opts: { root?: string; wallet: string; env?: Env }): Promise<WalletPublicKey> {
  const paths = walletPaths(opts.root ?? resolveWalletRoot(opts.env), opts.wallet);
  await ensureWalletDir(paths, opts.wallet);
  const file = paths.coldkeypub;
  const data = await readKeyFile(file, 'coldkeypub.txt');
  const fields = parseKeyJson(data, file, 'file');
  fields.secretSeed?.fill(0);
  fields.privateKey?.fill(0);
  if (encodeAddress(fields.addressKey, SS58_FORMAT) !== fields.ss58Address) {
    throw new WalletError('address_mismatch', `${file}: "ss58Address" is not a prefix-${SS58_FORMAT} address`, file);
  }
  return Object.freeze({ ss58: fields.ss58Address, publicKey: fields.addressKey });
}
