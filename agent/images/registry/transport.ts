/**
 * HTTP to registries (undici): plain HTTP only for insecure registries, HTTPS with the system CAs
 * plus configured CA files otherwise; the auth dance (anonymous → basic or bearer challenge);
 * redirects followed by hand so Authorization never reaches another origin.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { AgentError, messageOf } from '../../errors.js';
import { silentLogger, type Logger } from '../../../common/log.js';
import type { RegistriesConfig } from '../../config.js';
import { basicHeader, parseChallenge, TokenCache, type Challenge, type Credentials, type CredentialsHook } from './auth.js';
import { RetryableError } from './retry.js';

/** MAX_REDIRECTS bounds redirect chains (blob GETs commonly redirect once, to storage). */
export const MAX_REDIRECTS = 5;
/** HEADERS_TIMEOUT_MS bounds the wait for a response's headers. */
export const HEADERS_TIMEOUT_MS = 30_000;
/** BODY_TIMEOUT_MS bounds a stall between two body chunks (not the whole download). */
export const BODY_TIMEOUT_MS = 60_000;
const MAX_ERROR_BODY_BYTES = 8 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** RegistryHost names where a request goes: the host as configured and its API endpoint. */
export interface RegistryHost {
  host: string;
  endpoint: string;
}

/** RegistryRequest is one API call; scope is the token scope it needs (`repository:NAME:pull`). */
export interface RegistryRequest {
  method?: 'GET' | 'HEAD';
  path: string;
  scope: string;
  headers?: Record<string, string>;
  /** what names the object in errors, e.g. `manifest latest`. */
  what: string;
}

/** TransportOptions configures hosts, credentials and logging. */
export interface TransportOptions {
  config: RegistriesConfig;
  /** credentials, when it answers, wins over the config file (pull secrets). */
  credentials?: CredentialsHook;
  log?: Logger;
}

function unauthorized(host: string, what: string, detail: string): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_UNAUTHORIZED', `registry ${host}: ${what}: ${detail}`);
}

/** readErrorBody returns the registry's error text (`CODE: message`, from its JSON) or raw text. */
async function readErrorBody(res: Dispatcher.ResponseData): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= MAX_ERROR_BODY_BYTES) break;
    }
  } catch {
    return '';
  } finally {
    // dump (not destroy) drains or closes the body without an unhandled 'error' event.
    await res.body.dump().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY_BYTES);
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const parts = (doc.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': '));
    if (parts.length) return parts.join('; ');
  } catch {
    // not JSON: use the text
  }
  return text.trim().slice(0, 200);
}

/** RegistryTransport sends authenticated API requests to registries. */
export class RegistryTransport {
  private readonly tokens = new TokenCache();
  /** basicHosts remembers hosts that asked for basic auth, to send credentials up front. */
  private readonly basicHosts = new Set<string>();
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();
  private readonly defaultAgent = new Agent({ headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS });
  private readonly log: Logger;

  constructor(private readonly opts: TransportOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** isInsecure tells whether `host` (`name[:port]`) is reached over plain HTTP. */
  isInsecure(host: string): boolean {
    if (this.opts.config.registries[host]?.insecure === true) return true;
    const name = host.replace(/:[0-9]+$/, '');
    return this.opts.config.insecureRegistries.some((h) => h === host || h === name);
  }

  /** baseUrl is the scheme and endpoint of a registry's API. */
  baseUrl(r: RegistryHost): string {
    return `${this.isInsecure(r.host) ? 'http' : 'https'}://${r.endpoint}`;
  }

  private credentialsFor(host: string): Credentials | undefined {
    const hooked = this.opts.credentials?.(host);
    if (hooked) return hooked;
    const c = this.opts.config.registries[host];
    return c?.username !== undefined && c.password !== undefined ? { username: c.username, password: c.password } : undefined;
  }

  private dispatcherFor(host: string): Promise<Dispatcher> {
    let d = this.dispatchers.get(host);
    if (!d) {
      const caFile = this.opts.config.registries[host]?.caFile;
      d = caFile === undefined
        ? Promise.resolve(this.defaultAgent)
        : readFile(caFile, 'utf8').then(
          (pem) => new Agent({ headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS, connect: { ca: [...rootCertificates, pem] } }),
          (err) => { throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', `registry ${host}: caFile ${caFile}: ${messageOf(err)}`, { cause: err }); });
      this.dispatchers.set(host, d);
      d.catch(() => this.dispatchers.delete(host));
    }
    return d;
  }

  /**
   * send performs one request and returns a 200/206 response whose body the caller must consume.
   * 401/403 → Unauthorized, 404 → NotFound, other 4xx → PullFailed; 5xx, 429 and network errors
   * throw RetryableError for withRetries.
   */
  async send(r: RegistryHost, req: RegistryRequest): Promise<Dispatcher.ResponseData> {
    const creds = this.credentialsFor(r.host);
    const url = new URL(`${this.baseUrl(r)}${req.path}`);
    let authz = this.tokens.get(r.host, req.scope);
    if (authz !== undefined) authz = `Bearer ${authz}`;
    else if (creds && this.basicHosts.has(r.host)) authz = basicHeader(creds);
    let res = await this.follow(r.host, url, req, authz);
    for (let round = 0; res.statusCode === 401 && round < 2; round++) {
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      const detail = await readErrorBody(res);
      let next: string | undefined;
      if (challenge.scheme === 'bearer' && !authz?.startsWith('Bearer ')) {
        next = `Bearer ${await this.fetchToken(r.host, challenge, req.scope, creds)}`;
      } else if (challenge.scheme === 'basic' && creds && authz === undefined) {
        this.basicHosts.add(r.host);
        next = basicHeader(creds);
      }
      if (next === undefined) {
        const why = creds ? 'credentials rejected' : 'no credentials configured for this registry';
        throw unauthorized(r.host, req.what, `401 Unauthorized (${why})${detail ? `: ${detail}` : ''}`);
      }
      authz = next;
      res = await this.follow(r.host, url, req, authz);
    }
    const status = res.statusCode;
    if (status === 200 || status === 206) return res;
    const detail = await readErrorBody(res);
    const msg = `registry ${r.host}: ${req.what}: ${status}${detail ? ` ${detail}` : ''}`;
    if (status === 401 || status === 403) throw new AgentError('BERTH_ERR_IMAGE_UNAUTHORIZED', msg);
    if (status === 404) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', msg);
    if (status === 429 || status >= 500) throw new RetryableError(msg);
    throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', msg);
  }

  /** follow sends the request and follows redirects, dropping Authorization once the origin changes. */
  private async follow(host: string, url: URL, req: RegistryRequest, authz: string | undefined): Promise<Dispatcher.ResponseData> {
    let cur = url;
    let auth = authz;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { ...req.headers };
      if (auth !== undefined) headers.authorization = auth;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(cur, { method: req.method ?? 'GET', headers, dispatcher: await this.dispatcherFor(cur.host) });
      } catch (err) {
        if (err instanceof AgentError) throw err;
        throw new RetryableError(`registry ${host}: ${req.what}: ${cur.origin}: ${messageOf(err)}`, { cause: err });
      }
      if (!REDIRECTS.has(res.statusCode)) return res;
      const location = res.headers.location;
      await res.body.dump().catch(() => undefined);
      if (typeof location !== 'string' || location === '') {
        throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', `registry ${host}: ${req.what}: redirect ${res.statusCode} without a Location`);
      }
      const next = new URL(location, cur);
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.isInsecure(next.host))) {
        throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', `registry ${host}: ${req.what}: refusing redirect to ${next.origin} (not https and not an insecure registry)`);
      }
      // Storage backends get pre-signed URLs; our credentials are for the registry alone.
      if (next.origin !== cur.origin) auth = undefined;
      this.log.debug('registry redirect', { from: cur.origin, to: next.origin, what: req.what });
      cur = next;
    }
    throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', `registry ${host}: ${req.what}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** fetchToken runs the bearer flow: GET realm?service=…&scope=… with basic credentials if any. */
  private async fetchToken(host: string, challenge: Challenge, scope: string, creds: Credentials | undefined): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw unauthorized(host, 'token', 'bearer challenge without a realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw unauthorized(host, 'token', `bearer realm ${JSON.stringify(realm)} is not a URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.isInsecure(url.host))) {
      throw unauthorized(host, 'token', `refusing token realm ${url.origin} (not https and not an insecure registry)`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicHeader(creds);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers, dispatcher: await this.dispatcherFor(url.host) });
    } catch (err) {
      if (err instanceof AgentError) throw err;
      throw new RetryableError(`registry ${host}: token from ${url.origin}: ${messageOf(err)}`, { cause: err });
    }
    if (res.statusCode !== 200) {
      const detail = await readErrorBody(res);
      const msg = `registry ${host}: token server ${url.origin}${url.pathname} answered ${res.statusCode}${detail ? `: ${detail}` : ''}`;
      if (res.statusCode >= 500 || res.statusCode === 429) throw new RetryableError(msg);
      throw new AgentError('BERTH_ERR_IMAGE_UNAUTHORIZED', `${msg}${creds ? ' (credentials rejected)' : ' (no credentials configured for this registry)'}`);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = (await res.body.json()) as typeof doc;
    } catch (err) {
      throw unauthorized(host, 'token', `token response is not JSON: ${messageOf(err)}`);
    }
    const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token;
    if (typeof token !== 'string' || token === '') throw unauthorized(host, 'token', 'token response holds no token');
    this.tokens.set(host, scope, token, typeof doc.expires_in === 'number' ? doc.expires_in : undefined);
    return token;
  }

  /** close releases pooled connections. */
  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.dispatchers.values()]);
    await Promise.allSettled([this.defaultAgent.close(), ...all.flatMap((d) => (d.status === 'fulfilled' && d.value !== this.defaultAgent ? [d.value.close()] : []))]);
  }
}
