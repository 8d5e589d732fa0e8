/**
 * The CLI's HTTP client for the control plane's REST API (undici). Answers from the server,
 * including 4xx/5xx, come back as values; only an unreachable server is an exception,
 * because no verb can do anything useful without it.
 */
import { request } from 'undici';
import { CliError, usageError } from './errors.js';

/** DEFAULT_SERVER is the control plane's API address when neither --server nor BERTH_SERVER is set. */
export const DEFAULT_SERVER = 'http://127.0.0.1:7480';

const CONNECT_TIMEOUT_MS = 10_000;
const RESPONSE_TIMEOUT_MS = 60_000;
const MAX_ERROR_SNIPPET_CHARS = 200;

/** ApiError is the server's error body: `{"error":{"code","message","field"?}}`. */
export interface ApiError {
  code: string;
  message: string;
  field?: string;
}

/** ApiResult is one answered request: the decoded body on 2xx, the server's error otherwise. */
export type ApiResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; error: ApiError };

/** ListBody is the shape of every list response. */
export interface ListBody<T> {
  items: T[];
}

/** ClientOptions configures the client: base URL and an optional bearer token. */
export interface ClientOptions {
  server: string;
  token?: string;
}

/** normalizeServer turns `host:port` or a URL into a base URL without a trailing slash; bad input is a usage error. */
export function normalizeServer(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageError(`--server: not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`--server: unsupported scheme ${url.protocol} (use http or https)`);
  }
  return url.toString().replace(/\/+$/, '');
}

/** ApiClient sends JSON requests to the control plane. */
export class ApiClient {
  readonly server: string;
  /** token is the bearer token sent with every request (streams too). */
  readonly token: string | undefined;

  constructor(options: ClientOptions) {
    this.server = normalizeServer(options.server);
    this.token = options.token || undefined;
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

  private async send<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown,
    responseTimeoutMs = RESPONSE_TIMEOUT_MS): Promise<ApiResult<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await request(`${this.server}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: responseTimeoutMs,
        bodyTimeout: responseTimeoutMs,
        signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS + responseTimeoutMs),
      });
    } catch (err) {
      throw new CliError(
        'BERTH_ERR_CLI_UNREACHABLE',
        `cannot reach the control plane at ${this.server}: ${networkErrorCode(err)}`,
        { cause: err },
      );
    }
    const text = await response.body.text();
    const status = response.statusCode;
    if (status >= 200 && status < 300) {
      if (text === '') return { ok: true, status, body: undefined as T };
      try {
        return { ok: true, status, body: JSON.parse(text) as T };
      } catch {
        return { ok: false, status, error: { code: 'BERTH_ERR_CLI_BAD_RESPONSE', message: `${method} ${path}: the server answered with invalid JSON` } };
      }
    }
    return { ok: false, status, error: decodeError(status, text) };
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

/** errorText formats an ApiError for people, naming the field when the message does not. */
export function errorText(error: ApiError): string {
  if (error.field && !error.message.includes(error.field)) return `${error.field}: ${error.message}`;
  return error.message;
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
