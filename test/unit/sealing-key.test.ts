import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSealingKey, readSealingKey, seal, sealedKeyId, SEALING_KEY_BYTES, unseal, type SealingKey,
} from '../../control-plane/security/sealing-key.js';

const CONTEXT = 'pki/ca';

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'berth-sealing-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

/** errorOf runs fn and returns what it threw, failing the test when it returned. */
function errorOf(fn: () => unknown, what: string): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  assert.fail(`expected ${what} to throw, it returned`);
}

describe('createSealingKey', () => {
  it('writes 64 hex characters in a 0600 file inside a 0700 directory it makes', () => {
    const path = join(dir, 'made', 'sealing.key');
    const key = createSealingKey(path);
    const mode = statSync(path).mode & 0o777;
    assert.equal(mode, 0o600, `key file mode: expected 0600, saw 0${mode.toString(8)}`);
    const dirMode = statSync(join(dir, 'made')).mode & 0o777;
    assert.equal(dirMode & 0o077, 0, `key directory mode: expected no group/other bits, saw 0${dirMode.toString(8)}`);
    const text = readFileSync(path, 'utf8').trim();
    assert.match(text, /^[0-9a-f]{64}$/, `key file contents: expected 64 hex characters, saw ${JSON.stringify(text)}`);
    assert.equal(key.key.length, SEALING_KEY_BYTES);
    assert.equal(key.key.toString('hex'), text, 'the returned key is the one written');
    assert.match(key.id, /^[0-9a-f]{16}$/, `key id: expected 16 hex characters, saw ${key.id}`);
  });

  it('never overwrites an existing key file: a second create returns the key already there', () => {
    const path = join(dir, 'kept.key');
    const first = createSealingKey(path);
    const before = readFileSync(path, 'utf8');
    const second = createSealingKey(path);
    assert.equal(second.id, first.id, `expected the existing key ${first.id}, saw ${second.id}`);
    assert.equal(readFileSync(path, 'utf8'), before, 'the existing key file must be untouched');
  });

  it('refuses, rather than replaces, an existing key file with bad contents', () => {
    const path = join(dir, 'broken.key');
    writeFileSync(path, 'not a key\n', { mode: 0o600 });
    const err = errorOf(() => createSealingKey(path), 'create over a broken key file');
    assert.ok(err.message.includes(path), `message should name ${path}, saw: ${err.message}`);
    assert.equal(readFileSync(path, 'utf8'), 'not a key\n', 'the broken file must be left for a person to look at');
  });

  it('makes a different key every time', () => {
    const a = createSealingKey(join(dir, 'a.key'));
    const b = createSealingKey(join(dir, 'b.key'));
    assert.notEqual(a.id, b.id);
  });
});

describe('readSealingKey', () => {
  it('reads back the key createSealingKey wrote, with the same id', () => {
    const path = join(dir, 'round.key');
    const made = createSealingKey(path);
    const read = readSealingKey(path);
    assert.equal(read.id, made.id);
    assert.ok(read.key.equals(made.key), 'key bytes differ');
  });

  const bad: { name: string; contents: string }[] = [
    { name: 'empty file', contents: '' },
    { name: 'too short', contents: 'ab'.repeat(31) },
    { name: 'too long', contents: 'ab'.repeat(33) },
    { name: 'not hex', contents: 'zz'.repeat(32) },
    { name: 'base64 instead of hex', contents: Buffer.alloc(32, 7).toString('base64') },
  ];
  for (const c of bad) {
    it(`refuses a key file with bad contents (${c.name}) naming the path and the expected form`, () => {
      const path = join(dir, `bad-${c.name.replace(/\W+/g, '-')}.key`);
      writeFileSync(path, c.contents, { mode: 0o600 });
      const err = errorOf(() => readSealingKey(path), `reading ${c.name}`);
      assert.ok(err.message.includes(path), `message should name ${path}, saw: ${err.message}`);
      assert.match(err.message, /64 hex characters/, `message should say what is expected, saw: ${err.message}`);
    });
  }

  it('refuses a missing file naming the path and the errno code', () => {
    const path = join(dir, 'absent.key');
    const err = errorOf(() => readSealingKey(path), 'reading a missing file');
    assert.ok(err.message.includes(path) && err.message.includes('ENOENT'), `expected the path and ENOENT, saw: ${err.message}`);
  });

  it('accepts surrounding white space and upper-case hex', () => {
    const path = join(dir, 'upper.key');
    writeFileSync(path, `  ${'AB'.repeat(32)}\n\n`, { mode: 0o600 });
    assert.equal(readSealingKey(path).key.toString('hex'), 'ab'.repeat(32));
  });
});

describe('seal and unseal', () => {
  let key: SealingKey;
  let other: SealingKey;
  before(() => {
    key = createSealingKey(join(dir, 'seal.key'));
    other = createSealingKey(join(dir, 'other.key'));
  });

  const plaintexts: { name: string; value: string | Buffer }[] = [
    { name: 'a PEM private key', value: '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n' },
    { name: 'an empty string', value: '' },
    { name: 'binary bytes with colons', value: Buffer.from([0, 58, 255, 58, 1]) },
  ];
  for (const p of plaintexts) {
    it(`round-trips ${p.name}`, () => {
      const sealed = seal(key, p.value, CONTEXT);
      const opened = unseal([key], sealed, CONTEXT);
      assert.ok(opened.equals(Buffer.from(p.value)), `expected ${Buffer.from(p.value).toString('hex')}, saw ${opened.toString('hex')}`);
    });
  }

  it('writes sealed:v1:<key id>:… and never the plaintext', () => {
    const secret = 'the-ca-private-key';
    const sealed = seal(key, secret, CONTEXT);
    assert.ok(sealed.startsWith(`sealed:v1:${key.id}:`), `expected the prefix and key id, saw ${sealed.slice(0, 40)}`);
    assert.equal(sealedKeyId(sealed), key.id);
    assert.ok(!sealed.includes(secret), 'the sealed value contains the plaintext');
    assert.notEqual(seal(key, secret, CONTEXT), sealed, 'two seals of one value must differ (fresh IV)');
  });

  it('opens with the right key among several', () => {
    const sealed = seal(key, 'x', CONTEXT);
    assert.equal(unseal([other, key], sealed, CONTEXT).toString(), 'x');
  });

  it('refuses a value sealed with another key, naming both key ids', () => {
    const sealed = seal(other, 'x', CONTEXT);
    const err = errorOf(() => unseal([key], sealed, CONTEXT), 'unseal with the wrong key');
    assert.ok(err.message.includes(other.id), `message should name the sealing key id ${other.id}, saw: ${err.message}`);
    assert.ok(err.message.includes(key.id), `message should name the key held ${key.id}, saw: ${err.message}`);
  });

  it('refuses any value when no key is held, saying so', () => {
    const err = errorOf(() => unseal([], seal(key, 'x', CONTEXT), CONTEXT), 'unseal with no key');
    assert.match(err.message, new RegExp(`sealed with key ${key.id}.*no key`), `saw: ${err.message}`);
  });

  it('refuses a value sealed for another context (moved to another etcd key), naming the key id', () => {
    const sealed = seal(key, 'x', 'pki/ca');
    const err = errorOf(() => unseal([key], sealed, 'tokens/0123456789ab'), 'unseal in another context');
    assert.match(err.message, /does not authenticate/, `saw: ${err.message}`);
    assert.ok(err.message.includes(key.id), `message should name the key id ${key.id}, saw: ${err.message}`);
  });

  /** Each case alters one part of a sealed value; the key id part stays, so the key is found. */
  const tampers: { name: string; alter: (parts: string[]) => void }[] = [
    { name: 'a flipped ciphertext byte', alter: (p) => { p[5] = flip(p[5]!); } },
    { name: 'a flipped tag byte', alter: (p) => { p[4] = flip(p[4]!); } },
    { name: 'a flipped IV byte', alter: (p) => { p[3] = flip(p[3]!); } },
    { name: 'a truncated ciphertext', alter: (p) => { p[5] = Buffer.from(p[5]!, 'base64').subarray(1).toString('base64'); } },
  ];
  for (const t of tampers) {
    it(`refuses ${t.name} as not authenticating`, () => {
      const parts = seal(key, 'some secret worth altering', CONTEXT).split(':');
      t.alter(parts);
      const err = errorOf(() => unseal([key], parts.join(':'), CONTEXT), `unseal of ${t.name}`);
      assert.match(err.message, /does not authenticate/, `saw: ${err.message}`);
    });
  }

  const notSealed = ['', 'plain text', 'sealed:v2:a:b:c:d', 'sealed:v1:a:b:c', 'sealed:v1:a:b:c:d:e'];
  for (const v of notSealed) {
    it(`says ${JSON.stringify(v)} is not a sealed value`, () => {
      assert.equal(sealedKeyId(v), undefined);
      const err = errorOf(() => unseal([key], v, CONTEXT), `unseal of ${JSON.stringify(v)}`);
      assert.equal(err.message, 'not a sealed value');
    });
  }
});

/** flip inverts the first byte of a base64 part. */
function flip(b64: string): string {
  const b = Buffer.from(b64, 'base64');
  b[0] = b[0]! ^ 0xff;
  return b.toString('base64');
}
