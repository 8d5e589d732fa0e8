/**
 * Throw-away certificates for TLS tests, made with the openssl CLI in a temporary directory:
 * a cluster CA, a server certificate for 127.0.0.1, a client certificate, and the wrong ones
 * (another CA, a self-signed server, a server certificate for another name).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Pem is a certificate with its private key, as PEM text, and the certificate's path on disk. */
export interface Pem {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

/** TestPki is every certificate the TLS tests need; dispose removes the directory. */
export interface TestPki {
  dir: string;
  ca: Pem;
  otherCa: Pem;
  server: Pem;
  wrongNameServer: Pem;
  selfSignedServer: Pem;
  client: Pem;
  dispose(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pem(dir: string, name: string): Pem {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function selfSigned(dir: string, name: string, cn: string, extensions: string[] = []): void {
  openssl(dir, ['req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${cn}`,
    ...extensions.flatMap((e) => ['-addext', e])]);
}

function signed(dir: string, name: string, cn: string, issuer: string, extensions: string[]): void {
  openssl(dir, ['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
}

/** makeTestPki generates the certificates (a few hundred ms of openssl). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'berth-pki-'));
  selfSigned(dir, 'ca', 'berth-test-ca', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  selfSigned(dir, 'other-ca', 'someone-else-ca', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  selfSigned(dir, 'self-signed', 'lonely-server', ['subjectAltName=IP:127.0.0.1']);
  signed(dir, 'server', 'control-plane', 'ca', ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth']);
  signed(dir, 'wrong-name', 'control-plane', 'ca', ['subjectAltName=DNS:elsewhere.example', 'extendedKeyUsage=serverAuth']);
  signed(dir, 'client', 'alice', 'ca', ['extendedKeyUsage=clientAuth']);
  return {
    dir,
    ca: pem(dir, 'ca'),
    otherCa: pem(dir, 'other-ca'),
    server: pem(dir, 'server'),
    wrongNameServer: pem(dir, 'wrong-name'),
    selfSignedServer: pem(dir, 'self-signed'),
    client: pem(dir, 'client'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
