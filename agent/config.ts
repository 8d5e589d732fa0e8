/**
 * The agent's config file (`berth-agent --config FILE`, JSON or YAML). Its keys are the agent's
 * long flag names (`server:`, `state-dir:`, ..., applied by common/config-file.ts) beside the
 * sections below, which have no flag: registry settings, the image store and the node resolver.
 *
 * ```yaml
 * server: 10.0.0.1:7481
 * registries:
 *   registry.local:5000: { insecure: true }
 *   ghcr.io: { username: bot, password: s3cret, caFile: /etc/berth/ghcr-ca.pem }
 * insecureRegistries: [10.0.0.5:5000]
 * images: { allowSetuid: true, maxLayerBytes: 8589934592, gcAfterSeconds: 3600, storeBudgetBytes: 21474836480 }
 * dns: { upstreams: [10.0.0.2, "10.0.0.3:5353"] }
 * ```
 */
import { parseUpstream, type Upstream } from './dns/upstream.js';

/** RegistryHostConfig is what the agent knows about one registry host (`host[:port]`). */
export interface RegistryHostConfig {
  /** insecure allows plain HTTP (and is implied for hosts in insecureRegistries). */
  insecure?: boolean;
  username?: string;
  password?: string;
  /** caFile is a PEM bundle trusted for this host on top of the system CAs. */
  caFile?: string;
}

/** RegistriesConfig is the registry part of the agent config. */
export interface RegistriesConfig {
  registries: Record<string, RegistryHostConfig>;
  /** insecureRegistries are hosts (`host` or `host:port`) reached over plain HTTP. */
  insecureRegistries: string[];
}

/** ImagesConfig tunes the image store; absent fields keep the store's defaults. */
export interface ImagesConfig {
  /** allowSetuid keeps setuid/setgid bits in unpacked layers (default true, like Docker). */
  allowSetuid?: boolean;
  /** maxLayerBytes bounds one layer's unpacked size. */
  maxLayerBytes?: number;
  /** gcAfterSeconds is how long an image no container uses is kept. */
  gcAfterSeconds?: number;
  /** storeBudgetBytes is the store size above which unused images go, least recently used first. */
  storeBudgetBytes?: number;
}

/** DnsConfig configures the node resolver; without upstreams, names outside svc.berth get SERVFAIL. */
export interface DnsConfig {
  /** upstreams receive queries for names outside svc.berth (`ip` or `ip:port`, port 53 by default). */
  upstreams: Upstream[];
}

/** AgentConfig is the whole config file, validated, with defaults filled in. */
export interface AgentConfig extends RegistriesConfig {
  images: ImagesConfig;
  /** dns is absent when the file has no dns section (no upstreams). */
  dns?: DnsConfig;
}

/** DEFAULT_INSECURE_REGISTRIES are loopback hosts: plain HTTP there never leaves the machine. */
export const DEFAULT_INSECURE_REGISTRIES = ['localhost', '127.0.0.1', '::1', '[::1]'];

/** ConfigError is a config file the agent refuses; main prints it and exits 2. */
export class ConfigError extends Error {}

/** DEFAULT_AGENT_CONFIG_FILE is read when `--config` is not given and it exists. */
export const DEFAULT_AGENT_CONFIG_FILE = '/etc/berth/agent.yaml';

/** AGENT_CONFIG_SECTIONS are the config file's top-level keys that are not flags. */
export const AGENT_CONFIG_SECTIONS: readonly string[] = ['registries', 'insecureRegistries', 'images', 'dns'];

const TOP_FIELDS = new Set(AGENT_CONFIG_SECTIONS);
const DNS_FIELDS = new Set(['upstreams']);
const IMAGE_FIELDS = new Set(['allowSetuid', 'maxLayerBytes', 'gcAfterSeconds', 'storeBudgetBytes']);
const HOST_FIELDS = new Set(['insecure', 'username', 'password', 'caFile']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rejectUnknown(obj: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) if (!allowed.has(k)) throw new ConfigError(`${where}: unknown field ${JSON.stringify(k)}`);
}

function hostConfig(host: string, v: unknown, file: string): RegistryHostConfig {
  const where = `${file}: registries.${host}`;
  if (!isObject(v)) throw new ConfigError(`${where} must be an object`);
  rejectUnknown(v, HOST_FIELDS, where);
  const out: RegistryHostConfig = {};
  if (v.insecure !== undefined) {
    if (typeof v.insecure !== 'boolean') throw new ConfigError(`${where}.insecure must be true or false`);
    out.insecure = v.insecure;
  }
  for (const f of ['username', 'password', 'caFile'] as const) {
    if (v[f] === undefined) continue;
    if (typeof v[f] !== 'string' || v[f] === '') throw new ConfigError(`${where}.${f} must be a non-empty string`);
    out[f] = v[f];
  }
  if ((out.username === undefined) !== (out.password === undefined)) {
    throw new ConfigError(`${where}: username and password go together`);
  }
  if (out.caFile !== undefined && !out.caFile.startsWith('/')) throw new ConfigError(`${where}.caFile must be an absolute path`);
  return out;
}

/** parseAgentConfig validates a parsed config document; unknown fields are errors. */
export function parseAgentConfig(doc: unknown, file = 'config'): AgentConfig {
  if (doc === null || doc === undefined) doc = {};
  if (!isObject(doc)) throw new ConfigError(`${file}: must be a mapping`);
  rejectUnknown(doc, TOP_FIELDS, file);
  const registries: Record<string, RegistryHostConfig> = {};
  if (doc.registries !== undefined) {
    if (!isObject(doc.registries)) throw new ConfigError(`${file}: registries must be a mapping of host to settings`);
    for (const [host, v] of Object.entries(doc.registries)) registries[host] = hostConfig(host, v, file);
  }
  let insecureRegistries = DEFAULT_INSECURE_REGISTRIES;
  if (doc.insecureRegistries !== undefined) {
    const list = doc.insecureRegistries;
    if (!Array.isArray(list) || list.some((h) => typeof h !== 'string' || h === '')) {
      throw new ConfigError(`${file}: insecureRegistries must be a list of hosts`);
    }
    insecureRegistries = list as string[];
  }
  const dns = dnsConfig(doc.dns, file);
  return { registries, insecureRegistries, images: imagesConfig(doc.images, file), ...(dns ? { dns } : {}) };
}

function dnsConfig(v: unknown, file: string): DnsConfig | undefined {
  if (v === undefined) return undefined;
  const where = `${file}: dns`;
  if (!isObject(v)) throw new ConfigError(`${where} must be a mapping`);
  rejectUnknown(v, DNS_FIELDS, where);
  if (v.upstreams === undefined) return { upstreams: [] };
  if (!Array.isArray(v.upstreams)) throw new ConfigError(`${where}.upstreams must be a list of ip or ip:port`);
  const upstreams = v.upstreams.map((u: unknown) => {
    const parsed = typeof u === 'string' ? parseUpstream(u) : undefined;
    if (!parsed) throw new ConfigError(`${where}.upstreams: ${JSON.stringify(u)} is not an ip or ip:port`);
    return parsed;
  });
  return { upstreams };
}

function imagesConfig(v: unknown, file: string): ImagesConfig {
  if (v === undefined) return {};
  const where = `${file}: images`;
  if (!isObject(v)) throw new ConfigError(`${where} must be a mapping`);
  rejectUnknown(v, IMAGE_FIELDS, where);
  const out: ImagesConfig = {};
  if (v.allowSetuid !== undefined) {
    if (typeof v.allowSetuid !== 'boolean') throw new ConfigError(`${where}.allowSetuid must be true or false`);
    out.allowSetuid = v.allowSetuid;
  }
  for (const f of ['maxLayerBytes', 'gcAfterSeconds', 'storeBudgetBytes'] as const) {
    const n = v[f];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) throw new ConfigError(`${where}.${f} must be a positive integer`);
    out[f] = n;
  }
  return out;
}
