/**
 * ansible-vault 1.1 / AES256 decryption, for the oldest btcli encrypted coldkeys (chain.md §9).
 *
 * Format (ansible `VaultAES256`): a header line `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;<vault-id>`,
 * same crypto), then hex lines. The hex body decodes to three `\n`-separated hex fields:
 * salt (32 bytes), HMAC-SHA256 (32 bytes), ciphertext. PBKDF2-HMAC-SHA256(password, salt, 10 000,
 * 80 bytes) gives the AES-256 key ‖ HMAC key ‖ 16-byte CTR IV; the HMAC covers the ciphertext; the
 * plaintext is PKCS#7 padded to the AES block size.
 *
 * Kept apart from wallet.ts so the wallet loader stays focused on key files; this module knows
 * nothing about wallets and reports failures as values, never exceptions carrying secret material.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

/** Prefix that marks an ansible-vault file. */
export const ANSIBLE_VAULT_PREFIX = '$ANSIBLE_VAULT';
/** ansible's fixed KDF iteration count for VaultAES256. */
export const ANSIBLE_VAULT_PBKDF2_ITERATIONS = 10_000;

const KEY_BYTES = 32;
const IV_BYTES = 16;
const HMAC_BYTES = 32;
const BLOCK_BYTES = 16;

/** Why a vault could not be opened; `wrong_password` also covers a tampered body (HMAC cannot tell them apart). */
export type VaultFailure = 'wrong_password' | 'invalid' | 'unsupported';

export type VaultResult = { ok: true; plaintext: Uint8Array } | { ok: false; reason: VaultFailure; detail: string };

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function fail(reason: VaultFailure, detail: string): VaultResult {
  return { ok: false, reason, detail };
}

/**
 * Derives ansible's (AES key, HMAC key, CTR IV) triple. Exported so tests can build vectors with
 * the same derivation; the caller owns (and should zero) the returned buffers.
 */
export function deriveAnsibleVaultKeys(password: string, salt: Uint8Array): { aesKey: Buffer; hmacKey: Buffer; iv: Buffer } {
  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ANSIBLE_VAULT_PBKDF2_ITERATIONS, 2 * KEY_BYTES + IV_BYTES, 'sha256');
  const out = {
    aesKey: Buffer.from(derived.subarray(0, KEY_BYTES)),
    hmacKey: Buffer.from(derived.subarray(KEY_BYTES, 2 * KEY_BYTES)),
    iv: Buffer.from(derived.subarray(2 * KEY_BYTES)),
  };
  derived.fill(0);
  return out;
}

/**
 * Opens an ansible-vault 1.1/1.2 AES256 file. Verifies the HMAC in constant time *before*
 * decrypting, so a wrong password is reported as `wrong_password` and never yields garbage.
 */
export function decryptAnsibleVault(data: Uint8Array, password: string): VaultResult {
  const text = Buffer.from(data).toString('latin1');
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim().split(';');
  if (header[0] !== ANSIBLE_VAULT_PREFIX) return fail('invalid', 'missing $ANSIBLE_VAULT header');
  const version = header[1];
  const cipher = header[2];
  if (version !== '1.1' && version !== '1.2') return fail('unsupported', `ansible-vault format version ${JSON.stringify(version ?? '')} is not supported (1.1 or 1.2 only)`);
  if (cipher !== 'AES256') return fail('unsupported', `ansible-vault cipher ${JSON.stringify(cipher ?? '')} is not supported (AES256 only)`);

  const bodyHex = lines.slice(1).join('').replace(/\s+/g, '');
  if (bodyHex.length === 0 || !HEX_RE.test(bodyHex)) return fail('invalid', 'vault body is not hex');
  const fields = Buffer.from(bodyHex, 'hex').toString('latin1').split('\n');
  if (fields.length !== 3) return fail('invalid', 'vault body does not have salt, hmac and ciphertext');
  const [saltHex, hmacHex, ctHex] = fields as [string, string, string];
  if (!HEX_RE.test(saltHex) || !HEX_RE.test(hmacHex) || !HEX_RE.test(ctHex)) return fail('invalid', 'vault fields are not hex');
  const salt = Buffer.from(saltHex, 'hex');
  const expectedMac = Buffer.from(hmacHex, 'hex');
  const ciphertext = Buffer.from(ctHex, 'hex');
  if (salt.length === 0 || expectedMac.length !== HMAC_BYTES) return fail('invalid', 'vault salt or hmac has the wrong length');
  if (ciphertext.length === 0 || ciphertext.length % BLOCK_BYTES !== 0) return fail('invalid', 'vault ciphertext is not a whole number of AES blocks');

  const { aesKey, hmacKey, iv } = deriveAnsibleVaultKeys(password, salt);
  try {
    const mac = createHmac('sha256', hmacKey).update(ciphertext).digest();
    if (!timingSafeEqual(mac, expectedMac)) return fail('wrong_password', 'vault HMAC does not match (wrong password or corrupted file)');
    const decipher = createDecipheriv('aes-256-ctr', aesKey, iv);
    const padded = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    const pad = padded[padded.length - 1] ?? 0;
    let padOk = pad >= 1 && pad <= BLOCK_BYTES;
    for (let i = 1; padOk && i <= pad; i++) padOk = padded[padded.length - i] === pad;
    if (!padOk) {
      padded.fill(0);
      return fail('invalid', 'vault plaintext has invalid PKCS#7 padding');
    }
    const plaintext = new Uint8Array(padded.subarray(0, padded.length - pad));
    padded.fill(0);
    return { ok: true, plaintext };
  } finally {
    aesKey.fill(0);
    hmacKey.fill(0);
    iv.fill(0);
  }
}
