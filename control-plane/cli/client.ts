/**
 * The CLI's HTTP client for the control plane's REST API (undici). Answers from the server,
 * including 4xx/5xx, come back as values; only an unreachable server is an exception,
 * because no verb can do anything useful without it. Every request, streams included, goes
 * through one dispatcher that holds the TLS settings (cluster CA, client certificate).
 */
import { Agent, request } from 'undici';
import { CliError, usageError } from './errors.js';

/** DEFAULT_SERVER is the control plane's API address when neither a flag, the environment nor a config file names one. */
export const DEFAULT_SERVER = 'https://127.0.0.1:7480';

const CONNECT_TIMEOUT_MS = 10_000;
const RESPONSE_TIMEOUT_MS = 60_000;
const MAX_ERROR_SNIPPET_CHARS = 200;

/** ApiError is the server's error body: `{"error":{"code","message","field"?}}`, plus the CLI's hint for people. */
export interface ApiError {
  code: string;
  message: string;
  field?: string;
  /** hint says what the user can do about it (401: which credential to pass); added by the client. */
  hint?: string;
}

/** ApiResult is one answered request: the decoded body on 2xx, the server's error otherwise. */
export type ApiResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; error: ApiError };

/** ListBody is the shape of every list response. */
export interface ListBody<T> {
  items: T[];
}

/** StreamResult is an opened long-lived response (watch): its body on 200, the server's error otherwise. */
export type StreamResult =
  | { ok: true; body: AsyncIterable<Buffer> }
  | { ok: false; status: number; error: ApiError };

/**
 * CredentialOrigin names where each setting came from (`--token`, `BERTH_TOKEN`,
 * `certificateAuthority in /home/u/.berth/config`), so an error can say what to check.
 */
export interface CredentialOrigin {
  server?: string;
  ca?: string;
  token?: string;
  clientCertificate?: string;
}

/**
 * ClientOptions configures the client: base URL, bearer token, and TLS material as PEM text.
 * Without ca the server's certificate must chain to one of the system's CAs; with it, only to ca.
 */
export interface ClientOptions {
  server: string;
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
  origin?: CredentialOrigin;
}

/** parseServer turns `host:port` (https assumed) or an http(s) URL into a base URL without a trailing slash. */
export function parseServer(raw: string): { ok: true; url: string } | { ok: false; reason: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { ok: false, reason: `not a URL: ${raw}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `unsupported scheme ${url.protocol} (use http or https)` };
  }
  return { ok: true, url: url.toString().replace(/\/+$/, '') };
}

/** normalizeServer is parseServer for the --server flag: bad input is a usage error. */
export function normalizeServer(raw: string): string {
  const parsed = parseServer(raw);
  if (!parsed.ok) throw usageError(`--server: ${parsed.reason}`);
  return parsed.url;
}

/** ApiClient sends JSON requests to the control plane. */
export class ApiClient {
  readonly server: string;
  /** token is the bearer token sent with every request (streams too). */
  readonly token: string | undefined;
  private readonly dispatcher: Agent;
  private readonly origin: CredentialOrigin;
  private readonly tls: TlsSettings;

  constructor(options: ClientOptions) {
    this.server = normalizeServer(options.server);
    this.token = options.token || undefined;
    this.origin = options.origin ?? {};
    this.tls = { ca: options.ca !== undefined, clientCertificate: options.cert !== undefined };
    // ca undefined leaves Node's bundled root CAs in force; a ca replaces them (the cluster CA is pinned)
    this.dispatcher = new Agent({
      connect: { ca: options.ca, cert: options.cert, key: options.key, timeout: CONNECT_TIMEOUT_MS },
    });
  }

  /** close drops the client's connections; the client is unusable afterwards. */
  async close(): Promise<void> {
    await this.dispatcher.destroy();
  }

  /** get fetches one path. */
  get<T>(path: string): Promise<ApiResult<T>> {
    return this.send<T>('GET', path);
  }

  /** put sends body as JSON. */
  put<T>(path: string, body: unknown): Promise<ApiResult<T>> {
    return this.send<T>('PUT', path, body);
  }

  /** post sends body as JSON; responseTimeoutMs extends the wait for slow answers (exec). */
  post<T>(path: string, body: unknown, responseTimeoutMs?: number): Promise<ApiResult<T>> {
    return this.send<T>('POST', path, body, responseTimeoutMs);
  }

  /** delete removes the object at path. */
  delete<T>(path: string): Promise<ApiResult<T>> {
    return this.send<T>('DELETE', path);
  }

  /**
   * stream opens a long-lived GET (a watch) with the same TLS settings and token as every other
   * request; the caller reads the body until the server ends it or signal aborts it.
   */
  async stream(path: string, accept: string, signal: AbortSignal): Promise<StreamResult> {
    let response;
    try {
      response = await request(`${this.server}${path}`, {
        method: 'GET', headers: this.headers(accept), signal, bodyTimeout: 0, dispatcher: this.dispatcher,
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (response.statusCode === 200) return { ok: true, body: response.body };
    const text = await response.body.text().catch(() => '');
    return { ok: false, status: response.statusCode, error: this.withHint(response.statusCode, decodeError(response.statusCode, text)) };
  }

  private headers(accept: string, hasBody = false): Record<string, string> {
    const headers: Record<string, string> = { accept };
    if (hasBody) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  private unreachable(err: unknown): CliError {
    return new CliError(
      'BERTH_ERR_CLI_UNREACHABLE',
      `cannot reach the control plane at ${this.server}: ${describeConnectError(err, { server: this.server, tls: this.tls, origin: this.origin })}`,
      { cause: err },
    );
  }

  /** withHint adds what the user can do where the client knows more than the server: which credential it sent (401). */
  private withHint(status: number, error: ApiError): ApiError {
    if (status !== 401) return error;
    return { ...error, hint: unauthenticatedHint({ token: this.token !== undefined, tls: this.tls, origin: this.origin }) };
  }

  private async send<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown,
    responseTimeoutMs = RESPONSE_TIMEOUT_MS): Promise<ApiResult<T>> {
    let status: number;
    let text: string;
    try {
      const response = await request(`${this.server}${path}`, {
        method,
        headers: this.headers('application/json', body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: responseTimeoutMs,
        bodyTimeout: responseTimeoutMs,
        signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS + responseTimeoutMs),
        dispatcher: this.dispatcher,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    if (status >= 200 && status < 300) {
      if (text === '') return { ok: true, status, body: undefined as T };
      try {
        return { ok: true, status, body: JSON.parse(text) as T };
      } catch {
        return { ok: false, status, error: { code: 'BERTH_ERR_CLI_BAD_RESPONSE', message: `${method} ${path}: the server answered with invalid JSON` } };
      }
    }
    return { ok: false, status, error: this.withHint(status, decodeError(status, text)) };
  }
}

/** decodeError reads the server's error body, falling back to the status and a snippet of the text. */
function decodeError(status: number, text: string): ApiError {
  try {
    const parsed = JSON.parse(text) as { error?: Partial<ApiError> };
    if (parsed.error && typeof parsed.error.message === 'string') {
      return {
        code: typeof parsed.error.code === 'string' ? parsed.error.code : `HTTP_${status}`,
        message: parsed.error.message,
        field: typeof parsed.error.field === 'string' ? parsed.error.field : undefined,
      };
    }
  } catch {
    // not JSON: a proxy or a crashed server; report what we got
  }
  const snippet = text.trim().slice(0, MAX_ERROR_SNIPPET_CHARS);
  return { code: `HTTP_${status}`, message: `the server answered HTTP ${status}${snippet ? `: ${snippet}` : ''}` };
}

/** errorText formats an ApiError for people, naming the field when the message does not, then the hint. */
export function errorText(error: ApiError): string {
  const text = error.field && !error.message.includes(error.field) ? `${error.field}: ${error.message}` : error.message;
  return error.hint ? `${text}; ${error.hint}` : text;
}

/** TlsSettings says which TLS material the client was given (not the material itself). */
export interface TlsSettings {
  ca: boolean;
  clientCertificate: boolean;
}

/** unauthenticatedHint is the advice after a 401: how to pass a credential, or which one was refused. */
export function unauthenticatedHint(sent: { token: boolean; tls: TlsSettings; origin: CredentialOrigin }): string {
  if (sent.token) return `the token (${sent.origin.token ?? '--token'}) was not accepted (expired or revoked?)`;
  if (sent.tls.clientCertificate) {
    return `the client certificate (${sent.origin.clientCertificate ?? 'from the config'}) was not accepted`;
  }
  return 'no credential: pass --token, set BERTH_TOKEN or use --config';
}

/** ConnectErrorContext is what describeConnectError needs to say what to check. */
export interface ConnectErrorContext {
  server: string;
  tls: TlsSettings;
  origin: CredentialOrigin;
}

// Node's certificate verification codes that all mean "the chain does not end at a CA we trust".
const UNTRUSTED_CHAIN_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_SIGNATURE_FAILURE',
]);
// TLS alerts the server sends when it does not like the client certificate (or its absence).
const CLIENT_CERT_ALERT_CODES = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);
// Ways a connection ends before any answer; over HTTPS usually a refused handshake.
const CLOSED_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * describeConnectError says in one line why the control plane could not be reached and what to
 * check: `the server's certificate is not signed by the configured CA
 * (UNABLE_TO_VERIFY_LEAF_SIGNATURE); check certificateAuthority in /home/u/.berth/config`.
 * Plain network failures stay their bare code (ECONNREFUSED, ENOTFOUND).
 */
export function describeConnectError(err: unknown, where: ConnectErrorContext): string {
  const code = networkErrorCode(err);
  const root = findCoded(err);
  const https = where.server.startsWith('https:');
  const caCheck = where.origin.ca
    ? `check ${where.origin.ca}`
    : 'no certificateAuthority is configured: use --config FILE or BERTH_CONFIG with the cluster\'s CA';
  const certCheck = `check ${where.origin.clientCertificate ?? 'clientCertificate and clientKey in the config'}`;
  const host = safeHost(where.server);
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    return `the server's certificate is self-signed and ${where.tls.ca ? 'not the configured CA' : 'not trusted'} (${code}); ${caCheck}`;
  }
  if (UNTRUSTED_CHAIN_CODES.has(code)) {
    return where.tls.ca
      ? `the server's certificate is not signed by the configured CA (${code}); ${caCheck}`
      : `the server's certificate is not signed by a CA this machine trusts (${code}); ${caCheck}`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const reason = typeof root?.reason === 'string' ? `: ${root.reason}` : '';
    return `the server's certificate is not valid for ${host}${reason} (${code}); connect with a name or address the certificate lists (${where.origin.server ?? '--server'})`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `the server's certificate has expired (${code}); check this machine's clock, or renew the control plane's certificate`;
  if (code === 'CERT_NOT_YET_VALID') return `the server's certificate is not valid yet (${code}); check this machine's clock`;
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return `the server requires a client certificate or a token (${code}); ${where.tls.clientCertificate ? certCheck : 'pass --token, set BERTH_TOKEN or use --config'}`;
  }
  if (CLIENT_CERT_ALERT_CODES.has(code)) return `the server refused the client certificate (${code}); ${certCheck}`;
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH') return `the client key does not match the client certificate (${code}); ${certCheck}`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(String(root?.message ?? ''))) {
    return `the server does not speak TLS at this address (${code}); if it serves plain HTTP, use http://${host}`;
  }
  if (CLOSED_CODES.has(code)) {
    if (!https) return `the server closed the connection (${code}); if it serves HTTPS, use https://${host}`;
    const advice = where.tls.clientCertificate ? `it may have refused the client certificate: ${certCheck}` : 'it may require a client certificate (clientCertificate and clientKey in the config)';
    return `the server closed the connection during or right after the TLS handshake (${code}); ${advice}`;
  }
  return code;
}

function safeHost(server: string): string {
  try {
    return new URL(server).host;
  } catch {
    return server;
  }
}

/** findCoded returns the first error in the chain (causes, aggregate members) that carries a code. */
function findCoded(err: unknown): { code?: unknown; reason?: unknown; message?: unknown } | undefined {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { code?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof e.code === 'string') return e as { code: string };
    current = Array.isArray(e.errors) && e.errors.length > 0 ? e.errors[0] : e.cause;
  }
  return undefined;
}

/** networkErrorCode digs the errno-style code (ECONNREFUSED, ENOTFOUND, ...) out of undici's error chain. */
export function networkErrorCode(err: unknown): string {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { code?: unknown; errors?: unknown[]; cause?: unknown; name?: unknown; message?: unknown };
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
    // happy-eyeballs connects fail with an AggregateError holding one error per address
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      current = e.errors[0];
      continue;
    }
    if (e.cause) {
      current = e.cause;
      continue;
    }
    if (typeof e.code === 'string') return e.code;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'ETIMEDOUT';
    return typeof e.message === 'string' ? e.message : String(current);
  }
  return String(err);
}
