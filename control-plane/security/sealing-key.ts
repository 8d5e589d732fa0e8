/**
 * The sealing key: 32 random bytes in a file only control-plane hosts hold (mode 0600). It
 * encrypts what must not lie in etcd in clear — the cluster CA's private key today — with
 * AES-256-GCM. Every sealed value names the key id, so a rotated key can still open old values.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** SEALING_KEY_BYTES is AES-256's key size. */
export const SEALING_KEY_BYTES = 32;
const IV_BYTES = 12;
const SEALED_PREFIX = 'sealed:v1';

/** SealingKey is a loaded key; id is a short digest of it, stored beside every value it seals. */
export interface SealingKey {
  id: string;
  key: Buffer;
}

function keyOf(bytes: Buffer): SealingKey {
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 16), key: bytes };
}

/** readSealingKey loads the key file (64 hex characters); it throws naming the path when unusable. */
export function readSealingKey(path: string): SealingKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the sealing key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new Error(`sealing key file ${path} must hold 64 hex characters (32 bytes)`);
  return keyOf(Buffer.from(text, 'hex'));
}

/** createSealingKey writes a new random key file (0600, directory 0700) and returns it; an existing file is read, never overwritten. */
export function createSealingKey(path: string): SealingKey {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const bytes = randomBytes(SEALING_KEY_BYTES);
  try {
    writeFileSync(path, `${bytes.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another replica sharing the path made it a moment ago: use that one.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readSealingKey(path);
    throw err;
  }
  chmodSync(path, 0o600);
  return keyOf(bytes);
}

/** seal encrypts plaintext; the result is `sealed:v1:<key id>:<iv>:<tag>:<ciphertext>` (base64 parts). */
export function seal(key: SealingKey, plaintext: Buffer | string, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  // The context (e.g. the etcd key) is authenticated, so a sealed value moved elsewhere fails to open.
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [SEALED_PREFIX, key.id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
}

/** sealedKeyId is the key id a sealed value names, or undefined when it is not a sealed value. */
export function sealedKeyId(sealed: string): string | undefined {
  const parts = sealed.split(':');
  return parts.length === 6 && `${parts[0]}:${parts[1]}` === SEALED_PREFIX ? parts[2] : undefined;
}

/** unseal decrypts a value sealed with one of keys; it throws saying which key id is missing or that the value was altered. */
export function unseal(keys: SealingKey[], sealed: string, context: string): Buffer {
  const id = sealedKeyId(sealed);
  if (id === undefined) throw new Error('not a sealed value');
  const key = keys.find((k) => k.id === id);
  if (!key) throw new Error(`the value is sealed with key ${id}, but the sealing key file holds ${keys.map((k) => k.id).join(', ') || 'no key'}`);
  const [, , , iv, tag, body] = sealed.split(':') as [string, string, string, string, string, string];
  const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]);
  } catch (err) {
    throw new Error(`the value sealed with key ${id} does not authenticate for ${context}: it was altered, or sealed for another place`, { cause: err });
  }
}
