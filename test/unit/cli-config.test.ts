import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  loadConfig, plaintextCredentialWarning, resolveConnection, viewConfig, writeConfig, type BerthConfig,
  type Connection, type ConnectionFlags,
} from '../../control-plane/cli/config.js';
import { DEFAULT_SERVER } from '../../control-plane/cli/client.js';
import { CliError } from '../../control-plane/cli/errors.js';
import { runBerth } from '../support/fake-api.js';
import { makeTestPki, type TestPki } from '../support/test-pki.js';

function config(fields: Partial<BerthConfig>): string {
  return JSON.stringify({ apiVersion: 'berth/v1', kind: 'Config', ...fields });
}

/** configError runs fn and returns the CliError it throws, failing when it throws nothing or something else. */
function configError(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CliError, `expected a CliError, saw ${String(err)}`);
    assert.equal(err.code, 'BERTH_ERR_CLI_CONFIG');
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected a config error, nothing was thrown');
}

describe('cli config file', () => {
  let pki: TestPki;
  let dir: string;
  let home: string;
  let emptyHome: string;
  before(() => {
    pki = makeTestPki();
    dir = join(pki.dir, 'configs');
    home = join(pki.dir, 'home');
    emptyHome = join(pki.dir, 'empty-home');
    mkdirSync(join(dir, 'certs'), { recursive: true });
    mkdirSync(join(home, '.berth'), { recursive: true });
    mkdirSync(emptyHome);
    copyFileSync(pki.ca.certPath, join(dir, 'certs', 'ca.crt'));
    writeFileSync(join(home, '.berth', 'config'), config({ server: 'https://home.example:7480', token: 'home-token', namespace: 'home-ns' }));
    writeFileSync(join(dir, 'env.yaml'), config({ server: 'https://env-file.example:7480', token: 'env-file-token' }));
    writeFileSync(join(dir, 'flag.yaml'), [
      'apiVersion: berth/v1',
      'kind: Config',
      'server: https://flag-file.example:7480',
      'certificateAuthorityFile: certs/ca.crt',
      'clientCertificate: |',
      ...pki.client.cert.trimEnd().split('\n').map((l) => `  ${l}`),
      `clientKeyFile: ${pki.client.keyPath}`,
      'namespace: file-ns',
      '',
    ].join('\n'));
  });
  after(() => pki.dispose());

  describe('resolveConnection precedence', () => {
    type Case = {
      name: string;
      flags?: ConnectionFlags;
      env?: Record<string, string>;
      home?: 'with-config' | 'without-config';
      want: { server: string; serverFrom: string; token?: string; tokenFrom?: string; namespace: string; config?: string; clientCert?: boolean };
    };
    const cases: Case[] = [
      { name: 'nothing at all: the default https server, no credential, namespace default',
        want: { server: DEFAULT_SERVER, serverFrom: 'default', namespace: 'default' } },
      { name: 'a home without ~/.berth/config is the same as none',
        home: 'without-config', want: { server: DEFAULT_SERVER, serverFrom: 'default', namespace: 'default' } },
      { name: '~/.berth/config is read when it exists',
        home: 'with-config', want: { server: 'https://home.example:7480', serverFrom: 'server in HOME', token: 'home-token', tokenFrom: 'token in HOME', namespace: 'home-ns', config: 'HOME' } },
      { name: 'BERTH_CONFIG beats ~/.berth/config',
        home: 'with-config', env: { BERTH_CONFIG: 'ENV' }, want: { server: 'https://env-file.example:7480', serverFrom: 'server in ENV', token: 'env-file-token', tokenFrom: 'token in ENV', namespace: 'default', config: 'ENV' } },
      { name: 'an empty BERTH_CONFIG counts as unset',
        home: 'with-config', env: { BERTH_CONFIG: '' }, want: { server: 'https://home.example:7480', serverFrom: 'server in HOME', token: 'home-token', tokenFrom: 'token in HOME', namespace: 'home-ns', config: 'HOME' } },
      { name: '--config beats BERTH_CONFIG',
        home: 'with-config', env: { BERTH_CONFIG: 'ENV' }, flags: { config: 'FLAG' }, want: { server: 'https://flag-file.example:7480', serverFrom: 'server in FLAG', namespace: 'file-ns', config: 'FLAG', clientCert: true } },
      { name: 'BERTH_SERVER beats the file, --server beats BERTH_SERVER',
        home: 'with-config', env: { BERTH_SERVER: 'https://env.example:1' }, flags: { server: 'https://flag.example:2' }, want: { server: 'https://flag.example:2', serverFrom: '--server', token: 'home-token', tokenFrom: 'token in HOME', namespace: 'home-ns', config: 'HOME' } },
      { name: 'BERTH_SERVER beats the file',
        home: 'with-config', env: { BERTH_SERVER: 'https://env.example:1' }, want: { server: 'https://env.example:1', serverFrom: 'BERTH_SERVER', token: 'home-token', tokenFrom: 'token in HOME', namespace: 'home-ns', config: 'HOME' } },
      { name: 'BERTH_TOKEN beats the file, --token beats BERTH_TOKEN',
        home: 'with-config', env: { BERTH_TOKEN: 'env-token' }, flags: { token: 'flag-token' }, want: { server: 'https://home.example:7480', serverFrom: 'server in HOME', token: 'flag-token', tokenFrom: '--token', namespace: 'home-ns', config: 'HOME' } },
      { name: 'BERTH_TOKEN beats the file',
        home: 'with-config', env: { BERTH_TOKEN: 'env-token' }, want: { server: 'https://home.example:7480', serverFrom: 'server in HOME', token: 'env-token', tokenFrom: 'BERTH_TOKEN', namespace: 'home-ns', config: 'HOME' } },
      { name: 'an explicit -n beats the file\'s namespace',
        home: 'with-config', flags: { namespace: 'cli-ns' }, want: { server: 'https://home.example:7480', serverFrom: 'server in HOME', token: 'home-token', tokenFrom: 'token in HOME', namespace: 'cli-ns', config: 'HOME' } },
      { name: 'a token given by flag replaces the file\'s client certificate',
        flags: { config: 'FLAG', token: 'flag-token' }, want: { server: 'https://flag-file.example:7480', serverFrom: 'server in FLAG', token: 'flag-token', tokenFrom: '--token', namespace: 'file-ns', config: 'FLAG', clientCert: false } },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const paths: Record<string, string> = { HOME: join(home, '.berth', 'config'), ENV: join(dir, 'env.yaml'), FLAG: join(dir, 'flag.yaml') };
        const swap = (s: string | undefined): string | undefined => s?.replace(/\b(HOME|ENV|FLAG)\b/, (k) => paths[k]!);
        const flags = { ...c.flags, config: swap(c.flags?.config) };
        const env = Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, swap(v)!]));
        const got = resolveConnection({ flags, env, home: c.home === 'with-config' ? home : c.home === 'without-config' ? emptyHome : undefined });
        const w = c.want;
        assert.deepEqual(
          { server: got.server, serverFrom: got.origin.server, token: got.token, tokenFrom: got.origin.token, namespace: got.namespace, config: got.configPath },
          { server: w.server, serverFrom: swap(w.serverFrom), token: w.token, tokenFrom: swap(w.tokenFrom), namespace: w.namespace, config: swap(w.config) },
        );
        if (w.clientCert !== undefined) assert.equal(got.clientCertificate !== undefined, w.clientCert, 'client certificate in use');
      });
    }

    it('keeps the file\'s CA when --server points elsewhere, and reads relative *File paths against the file\'s directory', () => {
      const got = resolveConnection({ flags: { config: join(dir, 'flag.yaml'), server: 'https://other.example' }, env: {} });
      assert.equal(got.certificateAuthority, pki.ca.cert);
      assert.equal(got.origin.ca, `certificateAuthorityFile in ${join(dir, 'flag.yaml')}`);
      assert.equal(got.clientCertificate, pki.client.cert);
      assert.equal(got.clientKey, pki.client.key);
    });

    it('a --config that does not exist is an error, not a fall-back to ~/.berth/config', () => {
      const err = configError(() => resolveConnection({ flags: { config: join(dir, 'nope.yaml') }, env: {}, home }));
      assert.equal(err.message, `config ${join(dir, 'nope.yaml')}: no such file`);
    });
  });

  describe('loadConfig', () => {
    it('resolves relative *File paths against the config file\'s directory', () => {
      const loaded = loadConfig(join(dir, 'flag.yaml'));
      assert.equal(loaded.certificateAuthorityFile, join(dir, 'certs', 'ca.crt'));
      assert.equal(loaded.clientKeyFile, pki.client.keyPath);
    });

    const invalid: [string, string, RegExp][] = [
      ['an unknown key, named', config({ server: 'https://x' }).replace('"server"', '"sever"'), /: unknown key "sever" \(known: apiVersion, kind, server,/],
      ['a missing apiVersion', '{"kind":"Config"}', /: apiVersion: must be berth\/v1, got nothing$/],
      ['a wrong kind', '{"apiVersion":"berth/v1","kind":"Service"}', /: kind: must be Config, got "Service"$/],
      ['invalid YAML, with line and column', 'apiVersion: berth/v1\nkind: Config\n server: x\n', /: line \d+, column \d+: invalid YAML: [^:]+$/],
      ['a list instead of a mapping', '- a\n- b\n', /: not a mapping of keys to values$/],
      ['a non-string value', config({}).replace('}', ',"token":42}'), /: token: must be a non-empty string$/],
      ['an inline CA and a CA file', config({ certificateAuthority: 'x', certificateAuthorityFile: 'y' }), /: give certificateAuthority or certificateAuthorityFile, not both$/],
      ['a client certificate without a key', config({ clientCertificateFile: 'c.crt' }), /: clientCertificate and clientKey go together/],
      ['a server that is not http(s)', config({ server: 'ftp://x' }), /: server: unsupported scheme ftp:/],
    ];
    for (const [name, text, message] of invalid) {
      it(`refuses ${name}`, () => {
        const path = join(dir, 'invalid.yaml');
        writeFileSync(path, text);
        const err = configError(() => loadConfig(path));
        assert.ok(err.message.startsWith(`config ${path}: `), `the message names the file: ${err.message}`);
        assert.match(err.message, message);
      });
    }

    it('refuses an unreadable file and names the path', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, () => {
      const path = join(dir, 'secret.yaml');
      writeFileSync(path, config({}));
      chmodSync(path, 0o000);
      try {
        assert.equal(configError(() => loadConfig(path)).message, `config ${path}: permission denied`);
      } finally {
        chmodSync(path, 0o600);
      }
    });

    const badMaterial: [string, Partial<BerthConfig>, RegExp][] = [
      ['a CA file that does not exist', { certificateAuthorityFile: 'missing-ca.crt' }, /: certificateAuthorityFile: cannot read .*missing-ca\.crt: no such file$/],
      ['an inline CA that is not a certificate', { certificateAuthority: 'hello' }, /: certificateAuthority: not a PEM certificate$/],
      ['a key that is not a key', { clientCertificate: 'CERT', clientKey: 'not a key' }, /: clientKey: not a PEM private key$/],
      ['a key of another certificate', { clientCertificate: 'CERT', clientKey: 'OTHER_KEY' }, /: clientKey does not belong to clientCertificate$/],
    ];
    for (const [name, fields, message] of badMaterial) {
      it(`refuses ${name} when the connection is resolved`, () => {
        const path = join(dir, 'material.yaml');
        const swapped = JSON.parse(JSON.stringify(fields).replace('"CERT"', JSON.stringify(pki.client.cert)).replace('"OTHER_KEY"', JSON.stringify(pki.otherCa.key))) as Partial<BerthConfig>;
        writeFileSync(path, config(swapped));
        assert.match(configError(() => resolveConnection({ flags: { config: path }, env: {} })).message, message);
      });
    }
  });

  describe('writeConfig', () => {
    it('writes 0600 in a new 0700 directory, and loadConfig reads back what was written', () => {
      const path = join(pki.dir, 'new-home', '.berth', 'config');
      const written: BerthConfig = { apiVersion: 'berth/v1', kind: 'Config', server: 'https://10.88.1.1:7480', certificateAuthority: pki.ca.cert, token: 'bt1_abc', namespace: 'prod' };
      writeConfig(path, written);
      assert.equal(statSync(path).mode & 0o777, 0o600, 'file mode');
      assert.equal(statSync(join(pki.dir, 'new-home', '.berth')).mode & 0o777, 0o700, 'directory mode');
      assert.deepEqual(loadConfig(path), written);
    });

    it('writes the CA as a YAML block scalar and the keys in a fixed order', () => {
      const path = join(pki.dir, 'order', 'config');
      writeConfig(path, { namespace: 'prod', token: 't', certificateAuthority: pki.ca.cert, server: 'https://x', kind: 'Config', apiVersion: 'berth/v1' });
      const text = readFileSync(path, 'utf8');
      assert.deepEqual(text.split('\n').filter((l) => /^\w/.test(l)).map((l) => l.split(':')[0]), ['apiVersion', 'kind', 'server', 'certificateAuthority', 'token', 'namespace']);
      assert.match(text, /^certificateAuthority: \|\n {2}-----BEGIN CERTIFICATE-----\n/m);
    });

    it('replaces a looser existing file with a 0600 one', () => {
      const path = join(pki.dir, 'loose-config');
      writeFileSync(path, 'old', { mode: 0o644 });
      chmodSync(path, 0o644);
      writeConfig(path, { apiVersion: 'berth/v1', kind: 'Config', token: 't' });
      assert.equal(statSync(path).mode & 0o777, 0o600);
    });

    it('refuses to write an unknown key', () => {
      assert.throws(() => writeConfig(join(pki.dir, 'bad'), { apiVersion: 'berth/v1', kind: 'Config', tokn: 'x' } as BerthConfig), /unknown key "tokn"/);
    });
  });

  describe('berth config view', () => {
    it('shows server, CA file and where each came from, with the token and the client key redacted', async () => {
      const path = join(dir, 'view.yaml');
      writeFileSync(path, config({ server: 'https://10.88.1.1:7480', certificateAuthorityFile: 'certs/ca.crt', token: 'bt1_secret', clientCertificate: pki.client.cert, clientKey: pki.client.key }));
      const r = await runBerth(['config', 'view'], { env: { BERTH_CONFIG: path } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes('bt1_secret') && !r.stdout.includes(pki.client.key.split('\n')[1]!), 'no secret is printed');
      assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('#')).join('\n'), [
        `# config file: ${path} (BERTH_CONFIG)`,
        `# server: server in ${path}`,
        `# certificate authority: certificateAuthorityFile in ${path}`,
        `# credential: token (token in ${path})`,
        '# namespace: default',
      ].join('\n'));
      assert.deepEqual(parseYaml(r.stdout), {
        apiVersion: 'berth/v1', kind: 'Config', server: 'https://10.88.1.1:7480', certificateAuthorityFile: join(dir, 'certs', 'ca.crt'),
        token: 'REDACTED', clientCertificate: pki.client.cert, clientKey: 'REDACTED', namespace: 'default',
      });
    });

    it('with flags only, -o json shows the overrides and no file', async () => {
      const r = await runBerth(['--server', '127.0.0.1:7480', '--token', 'tok', '-n', 'prod', 'config', 'view', '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { apiVersion: 'berth/v1', kind: 'Config', server: 'https://127.0.0.1:7480', token: 'REDACTED', namespace: 'prod' });
    });

    it('exits 2 and names the file and the key when the config is invalid', async () => {
      const path = join(dir, 'typo.yaml');
      writeFileSync(path, 'apiVersion: berth/v1\nkind: Config\nsrever: https://x\n');
      const r = await runBerth(['--config', path, 'get', 'nodes']);
      assert.deepEqual([r.code, r.stdout], [2, '']);
      assert.match(r.stderr, new RegExp(`^error: config ${escape(path)}: unknown key "srever"`));
    });
  });

  describe('plaintextCredentialWarning', () => {
    const base: Connection = { server: '', namespace: 'default', origin: { server: '--server', namespace: 'default' } };
    const cases: [string, Partial<Connection>, boolean][] = [
      ['a token over http to another host', { server: 'http://10.0.0.1:7480', token: 't' }, true],
      ['a token over http to loopback', { server: 'http://127.0.0.1:7480', token: 't' }, false],
      ['a token over https', { server: 'https://10.0.0.1:7480', token: 't' }, false],
      ['no token over http', { server: 'http://10.0.0.1:7480' }, false],
    ];
    for (const [name, conn, warns] of cases) {
      it(`${warns ? 'warns' : 'is quiet'} for ${name}`, () => {
        assert.equal(plaintextCredentialWarning({ ...base, ...conn }) !== undefined, warns);
      });
    }
  });

  it('viewConfig never shows an inline token or key', () => {
    const view = viewConfig({
      server: 'https://x', token: 'secret', clientCertificate: 'C', clientKey: 'K', namespace: 'n',
      config: { apiVersion: 'berth/v1', kind: 'Config', clientCertificate: 'C', clientKey: 'K' }, origin: { server: 'default', namespace: 'default' },
    });
    assert.deepEqual([view.token, view.clientKey, view.clientCertificate], ['REDACTED', 'REDACTED', 'C']);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
