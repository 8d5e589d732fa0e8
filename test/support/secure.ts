/**
 * Talking to a real, secure control plane from tests: its admin config file (written at its
 * first start) gives the server URL, the cluster CA and an admin token. Requests go over HTTPS
 * verified against that CA, like the CLI's; nothing here turns security off.
 */
import { readFileSync, statSync } from 'node:fs';
import { Agent, fetch as undiciFetch, type RequestInit } from 'undici';
import { parse } from 'yaml';

/** SecureTarget is a control plane as tests know it: its API URL and admin config file (ControlPlane has both). */
export interface SecureTarget {
  apiUrl: string;
  adminConfig: string;
}

/** AdminCredentials is what an admin config file holds. */
export interface AdminCredentials {
  server: string;
  ca: string;
  token: string;
}

const credentials = new Map<string, { mtimeMs: number; creds: AdminCredentials }>();

/** adminCredentials reads an admin config file (parsed once per version of the file: polls call it often). */
export function adminCredentials(configPath: string): AdminCredentials {
  const mtimeMs = statSync(configPath).mtimeMs;
  const cached = credentials.get(configPath);
  if (cached?.mtimeMs === mtimeMs) return cached.creds;
  const doc = parse(readFileSync(configPath, 'utf8')) as { server: string; certificateAuthority: string; token: string };
  const creds = { server: doc.server, ca: doc.certificateAuthority, token: doc.token };
  credentials.set(configPath, { mtimeMs, creds });
  return creds;
}

const agents = new Map<string, Agent>();

/** trustingAgent is an undici dispatcher that trusts only ca (and may present a client certificate). */
export function trustingAgent(ca: string, client?: { cert: string; key: string }): Agent {
  const key = `${ca}\0${client?.cert ?? ''}`;
  let a = agents.get(key);
  if (!a) {
    a = new Agent({ connect: { ca, ...(client ? { cert: client.cert, key: client.key } : {}) } });
    agents.set(key, a);
  }
  return a;
}

/** ApiCall options: token undefined means the admin's, null means no credential at all. */
export interface ApiCallOptions {
  token?: string | null;
  body?: unknown;
  raw?: string;
  client?: { cert: string; key: string };
  signal?: AbortSignal;
}

/** apiFetch sends one request to the target's API and returns undici's Response. */
export async function apiFetch(target: SecureTarget, method: string, path: string, o: ApiCallOptions = {}): Promise<Awaited<ReturnType<typeof undiciFetch>>> {
  const creds = adminCredentials(target.adminConfig);
  const token = o.token === undefined ? creds.token : o.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (o.body !== undefined || o.raw !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = { method, headers, dispatcher: trustingAgent(creds.ca, o.client) };
  if (o.raw !== undefined) init.body = o.raw;
  else if (o.body !== undefined) init.body = JSON.stringify(o.body);
  if (o.signal) init.signal = o.signal;
  return undiciFetch(target.apiUrl + path, init);
}

/** apiJson sends one request and parses the JSON answer (or undefined for an empty body). */
export async function apiJson<T = unknown>(target: SecureTarget, method: string, path: string, o: ApiCallOptions = {}): Promise<{ status: number; body: T }> {
  const res = await apiFetch(target, method, path, o);
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** createToken makes a token through the API as the admin; it throws on refusal. */
export async function createToken(target: SecureTarget, body: { role: string; name?: string; namespaces?: string[]; ttlSeconds?: number }): Promise<string> {
  const r = await apiJson<{ token: string }>(target, 'POST', '/v1/tokens', { body });
  if (r.status !== 201) throw new Error(`token create answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.token;
}

/** joinToken makes an agent join token. */
export function joinToken(target: SecureTarget): Promise<string> {
  return createToken(target, { role: 'agent' });
}
