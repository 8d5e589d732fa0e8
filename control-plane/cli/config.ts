/**
 * The berth config file (like a kubeconfig): where the control plane is, the CA its certificate
 * must chain to, and the credential to present. YAML, so JSON too:
 *
 *   apiVersion: berth/v1
 *   kind: Config
 *   server: https://10.88.1.1:7480
 *   certificateAuthority: |            # or certificateAuthorityFile: ca.crt
 *     -----BEGIN CERTIFICATE-----
 *   token: bt1_...                      # or clientCertificate(File) + clientKey(File)
 *   namespace: default
 *
 * resolveConnection decides which file is read and what overrides it: flags, then the
 * environment, then the file, then the defaults. The file holds a credential, so it is written
 * 0600 in a 0700 directory.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { DEFAULT_SERVER, parseServer, type ClientOptions, type CredentialOrigin } from './client.js';
import { CliError } from './errors.js';

/** CONFIG_API_VERSION and CONFIG_KIND head every config file. */
export const CONFIG_API_VERSION = 'berth/v1';
/** CONFIG_KIND is the kind of a config file. */
export const CONFIG_KIND = 'Config';
/** CONFIG_FILE_MODE is the mode writeConfig gives the file: it may hold a token or a private key. */
export const CONFIG_FILE_MODE = 0o600;
/** CONFIG_DIR_MODE is the mode of a directory writeConfig has to create. */
export const CONFIG_DIR_MODE = 0o700;
/** DEFAULT_CONFIG_PATH is where the config is looked for under $HOME when neither --config nor BERTH_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = '.berth/config';
/** DEFAULT_NAMESPACE is used when neither -n, the config file nor metadata.namespace names one. */
export const DEFAULT_NAMESPACE = 'default';

/** BerthConfig is one config file. Each PEM is given inline or as a *File path, never both. */
export interface BerthConfig {
  apiVersion: typeof CONFIG_API_VERSION;
  kind: typeof CONFIG_KIND;
  server?: string;
  certificateAuthority?: string;
  certificateAuthorityFile?: string;
  token?: string;
  clientCertificate?: string;
  clientCertificateFile?: string;
  clientKey?: string;
  clientKeyFile?: string;
  namespace?: string;
}

// Key order of a written file: identity of the document, where, whom to trust, who we are, defaults.
const CONFIG_KEYS: readonly (keyof BerthConfig)[] = [
  'apiVersion', 'kind', 'server', 'certificateAuthority', 'certificateAuthorityFile', 'token',
  'clientCertificate', 'clientCertificateFile', 'clientKey', 'clientKeyFile', 'namespace',
];
const FILE_KEYS = ['certificateAuthorityFile', 'clientCertificateFile', 'clientKeyFile'] as const;
type PemKey = 'certificateAuthority' | 'clientCertificate' | 'clientKey';
const PEM_FILE_KEY: Record<PemKey, (typeof FILE_KEYS)[number]> = {
  certificateAuthority: 'certificateAuthorityFile',
  clientCertificate: 'clientCertificateFile',
  clientKey: 'clientKeyFile',
};

/** validateConfig checks a parsed document against the config format; a bad one is a reason, not an exception. */
export function validateConfig(doc: unknown): { ok: true; config: BerthConfig } | { ok: false; reason: string } {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, reason: 'not a mapping of keys to values' };
  const record = doc as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      return { ok: false, reason: `unknown key "${key}" (known: ${CONFIG_KEYS.join(', ')})` };
    }
    const value = record[key];
    if (typeof value !== 'string' || value.trim() === '') return { ok: false, reason: `${key}: must be a non-empty string` };
  }
  if (record.apiVersion !== CONFIG_API_VERSION) {
    return { ok: false, reason: `apiVersion: must be ${CONFIG_API_VERSION}, got ${record.apiVersion === undefined ? 'nothing' : `"${String(record.apiVersion)}"`}` };
  }
  if (record.kind !== CONFIG_KIND) {
    return { ok: false, reason: `kind: must be ${CONFIG_KIND}, got ${record.kind === undefined ? 'nothing' : `"${String(record.kind)}"`}` };
  }
  if (typeof record.server === 'string') {
    const server = parseServer(record.server);
    if (!server.ok) return { ok: false, reason: `server: ${server.reason}` };
  }
  for (const [inline, file] of Object.entries(PEM_FILE_KEY)) {
    if (record[inline] !== undefined && record[file] !== undefined) return { ok: false, reason: `give ${inline} or ${file}, not both` };
  }
  const hasCert = record.clientCertificate !== undefined || record.clientCertificateFile !== undefined;
  const hasKey = record.clientKey !== undefined || record.clientKeyFile !== undefined;
  if (hasCert !== hasKey) return { ok: false, reason: 'clientCertificate and clientKey go together (or their *File forms)' };
  return { ok: true, config: record as unknown as BerthConfig };
}

function configError(path: string, why: string, cause?: unknown): CliError {
  return new CliError('BERTH_ERR_CLI_CONFIG', `config ${path}: ${why}`, { cause });
}

function readError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? String(err);
}

/**
 * loadConfig reads and validates a config file. Relative *File paths are resolved against the
 * file's directory (the returned config holds absolute paths); a missing, unreadable or invalid
 * file is a usage error (exit 2) naming the path and what is wrong.
 */
export function loadConfig(path: string): BerthConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(path, readError(err), err);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const problem = doc.errors[0];
  if (problem) {
    const pos = problem.linePos?.[0];
    throw configError(path, `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}invalid YAML: ${problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const checked = validateConfig(doc.toJS());
  if (!checked.ok) throw configError(path, checked.reason);
  const config = { ...checked.config };
  for (const key of FILE_KEYS) {
    const file = config[key];
    if (file !== undefined) config[key] = resolve(dirname(resolve(path)), file);
  }
  return config;
}

/**
 * writeConfig writes config as YAML (PEMs as block scalars) with mode 0600, creating its
 * directory 0700 if needed. The file is replaced by a rename, so a reader never sees half of it
 * and a looser mode of an older file does not survive.
 */
export function writeConfig(path: string, config: BerthConfig): void {
  const checked = validateConfig(config);
  if (!checked.ok) throw new Error(`writeConfig ${path}: ${checked.reason}`);
  const ordered: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const value = config[key];
    if (value !== undefined) ordered[key] = value;
  }
  mkdirSync(dirname(path), { recursive: true, mode: CONFIG_DIR_MODE });
  const temp = join(dirname(path), `.${Date.now()}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, stringify(ordered, { lineWidth: 0 }), { mode: CONFIG_FILE_MODE, flag: 'wx' });
    chmodSync(temp, CONFIG_FILE_MODE); // the umask may have narrowed it further; make it exact
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** ConnectionFlags are the global flags that bear on the connection; namespace is set only when -n was given. */
export interface ConnectionFlags {
  config?: string;
  server?: string;
  token?: string;
  namespace?: string;
}

/** ConnectionOrigin names where each resolved setting came from (`--server`, `BERTH_TOKEN`, `server in /p`, `default`). */
export interface ConnectionOrigin extends CredentialOrigin {
  /** config is how the config file was chosen: `--config`, `BERTH_CONFIG` or `~/.berth/config`. */
  config?: string;
  server: string;
  namespace: string;
}

/** Connection is how the CLI reaches the control plane, PEMs read and checked. */
export interface Connection {
  server: string;
  token?: string;
  /** certificateAuthority, clientCertificate and clientKey are PEM text. */
  certificateAuthority?: string;
  clientCertificate?: string;
  clientKey?: string;
  namespace: string;
  /** configPath is the config file read, if any, and config its contents (absolute *File paths). */
  configPath?: string;
  config?: BerthConfig;
  origin: ConnectionOrigin;
}

/** ResolveInput is the world resolveConnection looks at: the flags, the environment and $HOME. */
export interface ResolveInput {
  flags: ConnectionFlags;
  env: Record<string, string | undefined>;
  /** home is $HOME; without it there is no default config file. */
  home?: string;
}

/** nonEmpty treats an empty flag or variable (BERTH_TOKEN= ) as not given. */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** chooseConfigFile picks the file to read: --config, else BERTH_CONFIG, else ~/.berth/config when it exists. */
function chooseConfigFile(input: ResolveInput): { path: string; origin: string } | undefined {
  const flag = nonEmpty(input.flags.config);
  if (flag !== undefined) return { path: flag, origin: '--config' };
  const env = nonEmpty(input.env.BERTH_CONFIG);
  if (env !== undefined) return { path: env, origin: 'BERTH_CONFIG' };
  if (input.home === undefined || input.home === '') return undefined;
  const path = join(input.home, DEFAULT_CONFIG_PATH);
  return existsSync(path) ? { path, origin: `~/${DEFAULT_CONFIG_PATH}` } : undefined;
}

/** readPem returns a PEM given inline or by file, checked to be what the key says it is. */
function readPem(configPath: string, config: BerthConfig, key: PemKey): string | undefined {
  const fileKey = PEM_FILE_KEY[key];
  const file = config[fileKey];
  let pem = config[key];
  const where = file === undefined ? key : `${fileKey} ${file}`;
  if (file !== undefined) {
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      throw configError(configPath, `${fileKey}: cannot read ${file}: ${readError(err)}`, err);
    }
  }
  if (pem === undefined) return undefined;
  try {
    if (key === 'clientKey') createPrivateKey(pem);
    else new X509Certificate(pem);
  } catch (err) {
    throw configError(configPath, `${where}: not a PEM ${key === 'clientKey' ? 'private key' : 'certificate'}`, err);
  }
  return pem;
}

/**
 * resolveConnection decides server, CA, credential and namespace. The config file is --config,
 * else BERTH_CONFIG, else ~/.berth/config if it exists (a named file that is missing is an
 * error). --server/BERTH_SERVER and --token/BERTH_TOKEN override the file; a token given so
 * replaces the file's credential, client certificate included, so the caller acts as that token.
 * An explicit -n overrides the file's namespace. The file's CA stays in force under --server.
 */
export function resolveConnection(input: ResolveInput): Connection {
  const chosen = chooseConfigFile(input);
  const config = chosen ? loadConfig(chosen.path) : undefined;
  const inFile = (key: string): string => `${key} in ${chosen?.path}`;

  const flagServer = nonEmpty(input.flags.server);
  const envServer = nonEmpty(input.env.BERTH_SERVER);
  const [server, serverOrigin] = flagServer !== undefined ? [flagServer, '--server']
    : envServer !== undefined ? [envServer, 'BERTH_SERVER']
      : config?.server !== undefined ? [config.server, inFile('server')]
        : [DEFAULT_SERVER, 'default'];

  const flagToken = nonEmpty(input.flags.token);
  const envToken = nonEmpty(input.env.BERTH_TOKEN);
  const explicitToken = flagToken ?? envToken;
  const origin: ConnectionOrigin = {
    config: chosen?.origin,
    server: serverOrigin,
    namespace: input.flags.namespace !== undefined ? '-n' : config?.namespace !== undefined ? inFile('namespace') : 'default',
  };
  const connection: Connection = {
    server,
    namespace: input.flags.namespace ?? config?.namespace ?? DEFAULT_NAMESPACE,
    configPath: chosen?.path,
    config,
    origin,
  };
  if (explicitToken !== undefined) {
    connection.token = explicitToken;
    origin.token = flagToken !== undefined ? '--token' : 'BERTH_TOKEN';
  }
  if (config && chosen) {
    connection.certificateAuthority = readPem(chosen.path, config, 'certificateAuthority');
    if (connection.certificateAuthority !== undefined) {
      origin.ca = inFile(config.certificateAuthorityFile !== undefined ? 'certificateAuthorityFile' : 'certificateAuthority');
    }
    if (explicitToken === undefined) {
      if (config.token !== undefined) {
        connection.token = config.token;
        origin.token = inFile('token');
      }
      connection.clientCertificate = readPem(chosen.path, config, 'clientCertificate');
      connection.clientKey = readPem(chosen.path, config, 'clientKey');
      if (connection.clientCertificate !== undefined) {
        origin.clientCertificate = inFile(config.clientCertificateFile !== undefined ? 'clientCertificateFile' : 'clientCertificate');
        checkKeyPair(chosen.path, connection.clientCertificate, connection.clientKey!);
      }
    }
  }
  return connection;
}

function checkKeyPair(configPath: string, certPem: string, keyPem: string): void {
  if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw configError(configPath, 'clientKey does not belong to clientCertificate');
  }
}

/** clientOptions turns a connection into what ApiClient takes. */
export function clientOptions(connection: Connection): ClientOptions {
  return {
    server: connection.server,
    token: connection.token,
    ca: connection.certificateAuthority,
    cert: connection.clientCertificate,
    key: connection.clientKey,
    origin: connection.origin,
  };
}

/** REDACTED replaces secrets in `berth config view`. */
export const REDACTED = 'REDACTED';

/**
 * viewConfig is the resolved connection as a config document for `berth config view`: the
 * server, CA and credential in use, with the token and an inline client key replaced by
 * REDACTED. File paths are shown as they were resolved (absolute).
 */
export function viewConfig(connection: Connection): BerthConfig {
  const file = connection.config;
  const server = parseServer(connection.server);
  const view: BerthConfig = { apiVersion: CONFIG_API_VERSION, kind: CONFIG_KIND, server: server.ok ? server.url : connection.server };
  if (file?.certificateAuthorityFile !== undefined) view.certificateAuthorityFile = file.certificateAuthorityFile;
  else if (connection.certificateAuthority !== undefined) view.certificateAuthority = connection.certificateAuthority;
  if (connection.token !== undefined) view.token = REDACTED;
  if (connection.clientCertificate !== undefined && file) {
    if (file.clientCertificateFile !== undefined) view.clientCertificateFile = file.clientCertificateFile;
    else view.clientCertificate = connection.clientCertificate;
    if (file.clientKeyFile !== undefined) view.clientKeyFile = file.clientKeyFile;
    else view.clientKey = REDACTED;
  }
  view.namespace = connection.namespace;
  return view;
}

/** plaintextCredentialWarning warns when a token would cross the network unencrypted (http:// to another host). */
export function plaintextCredentialWarning(connection: Connection): string | undefined {
  if (connection.token === undefined) return undefined;
  const server = parseServer(connection.server);
  if (!server.ok) return undefined;
  const url = new URL(server.url);
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || url.hostname.startsWith('127.');
  if (url.protocol !== 'http:' || loopback) return undefined;
  return `warning: sending the token unencrypted to ${connection.server}; use https://`;
}
