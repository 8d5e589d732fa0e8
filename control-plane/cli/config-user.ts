/**
 * `berth config create-user NAME --role ROLE [-n NS]... [--ttl D] --output FILE [--force]`: a
 * config file for a person who signs in with a client certificate. The private key is made here
 * and never leaves this machine: the server sees only a certificate request for CN=NAME, and its
 * CA signs it with the role (O) and namespaces (OU) asked for (admins only, POST /v1/certificates).
 *
 * A client certificate cannot be revoked, so everything that can go wrong locally (a bad flag,
 * an existing or unwritable FILE) is checked before the request: a certificate issued for a key
 * that is then lost is useless, yet valid until it expires.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { accessSync, constants, lstatSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isRole, ROLES, type Role } from '../security/identity.js';
import { errorText } from './client.js';
import { CONFIG_API_VERSION, CONFIG_KIND, writeConfig, type BerthConfig } from './config.js';
import type { CommandContext } from './context.js';
import { CliError, EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { parseTtlSeconds } from './token.js';

/** CreateUserOptions are the flags of `config create-user` (namespaces come from the global -n). */
export interface CreateUserOptions {
  role: string;
  ttl?: string;
  output: string;
  force?: boolean;
}

/** CertificateRequestBody is the body of POST /v1/certificates. */
export interface CertificateRequestBody {
  csr: string;
  name: string;
  role: Role;
  namespaces?: string[];
  ttlSeconds?: number;
}

/** CertificateAnswer is the answer to POST /v1/certificates (PEMs, and notAfter as RFC 3339). */
export interface CertificateAnswer {
  certificate: string;
  ca: string;
  expiresAt: string;
}

/** createUserRequest validates NAME and the flags and builds the body without its CSR, leaving out what was not given (pure). */
export function createUserRequest(name: string, opts: CreateUserOptions, namespaces: readonly string[]): Omit<CertificateRequestBody, 'csr'> {
  if (name.trim() === '') throw usageError('config create-user: NAME must not be empty');
  if (!isRole(opts.role)) throw usageError(`--role: must be one of ${ROLES.join(', ')}, got "${opts.role}"`);
  const body: Omit<CertificateRequestBody, 'csr'> = { name, role: opts.role };
  const scopes = [...new Set(namespaces)];
  if (scopes.length > 0) body.namespaces = scopes;
  if (opts.ttl !== undefined) body.ttlSeconds = parseTtlSeconds(opts.ttl);
  return body;
}

/**
 * checkOutput refuses, before anything is sent, an output that could not be written: an existing
 * file without force, a directory, or a place whose nearest existing directory is not writable.
 */
export function checkOutput(path: string, force: boolean): void {
  const existing = statOrUndefined(path);
  if (existing?.isDirectory()) throw usageError(`--output ${path}: is a directory`);
  if (existing && !force) throw usageError(`--output ${path}: the file exists; pass --force to replace it`);
  // writeConfig creates missing directories and replaces the file by a rename: both need the nearest existing directory writable
  let dir = dirname(resolve(path));
  while (!statOrUndefined(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new CliError('BERTH_ERR_CLI_FILE', `--output ${path}: cannot write in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

function statOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** issuedProblem says what is wrong with the server's answer for this key, or undefined when the certificate holds the key and chains to ca (pure). */
export function issuedProblem(answer: Partial<CertificateAnswer> | undefined, privateKeyPem: string): string | undefined {
  if (typeof answer?.certificate !== 'string' || typeof answer.ca !== 'string' || typeof answer.expiresAt !== 'string') {
    return 'the server answered without certificate, ca and expiresAt';
  }
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(answer.certificate);
    ca = new X509Certificate(answer.ca);
  } catch {
    return 'the server answered with a certificate or CA that is not a PEM certificate';
  }
  if (!cert.checkPrivateKey(createPrivateKey(privateKeyPem))) return 'the server\'s certificate is not for the key this request was made with';
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'the server\'s certificate is not signed by the CA it answered with';
  return undefined;
}

/** userConfig is the config file for the new user: this server, the cluster CA, the certificate and key, the first namespace as default (pure). */
export function userConfig(server: string, issued: CertificateAnswer, privateKeyPem: string, namespaces: readonly string[] | undefined): BerthConfig {
  const config: BerthConfig = {
    apiVersion: CONFIG_API_VERSION,
    kind: CONFIG_KIND,
    server,
    certificateAuthority: issued.ca,
    clientCertificate: issued.certificate,
    clientKey: privateKeyPem,
  };
  // a user scoped to namespaces would be refused in `default`: start them in one of theirs
  if (namespaces?.[0] !== undefined) config.namespace = namespaces[0];
  return config;
}

/** configCreateUserCommand makes a key, has the server sign a request for it and writes the config file; one summary line on stderr. */
export async function configCreateUserCommand(ctx: CommandContext, name: string, opts: CreateUserOptions): Promise<number> {
  const fields = createUserRequest(name, opts, ctx.namespaceFlags);
  checkOutput(opts.output, opts.force === true);
  // loaded here, not at the top: @peculiar/x509 and its polyfill take longer to load than the rest of the CLI, and only this verb needs them
  const { createCsr, distinguishedName, generateKeyPair } = await import('../../common/x509.js');
  const key = await generateKeyPair();
  const body: CertificateRequestBody = { csr: await createCsr(key.keys, distinguishedName(name)), ...fields };
  const r = await ctx.client.post<CertificateAnswer>('/v1/certificates', body);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const problem = issuedProblem(r.body, key.privateKeyPem);
  if (problem) {
    ctx.io.stderr.write(`error: ${problem}\n`);
    return EXIT_REQUEST_FAILED;
  }
  try {
    writeConfig(opts.output, userConfig(ctx.client.server, r.body, key.privateKeyPem, fields.namespaces));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new CliError('BERTH_ERR_CLI_FILE', `cannot write ${opts.output}: ${why} (the certificate was issued, but its key is lost: run again)`, { cause: err });
  }
  const scope = fields.namespaces ? fields.namespaces.join(',') : 'all';
  ctx.io.stderr.write(`wrote ${opts.output}: certificate for ${name} (${fields.role}, namespaces ${scope}), expires ${r.body.expiresAt}\n`);
  return EXIT_OK;
}
