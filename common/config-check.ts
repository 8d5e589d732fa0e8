/**
 * Checks behind `--check-config`: what can be known about a daemon's settings without starting
 * it. They only look (stat, access); they never create, bind or connect.
 */
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { problemAt, type ConfigFileResult, type ConfigProblem } from './config-file.js';

/** HOSTNAME matches a DNS name (RFC 1123 labels). */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** isHostOrIp tells whether s is an IPv4/IPv6 address or a DNS name. */
export function isHostOrIp(s: string): boolean {
  return isIP(s) !== 0 || HOSTNAME.test(s);
}

/** parseDialAddress parses `HOST:PORT` or `[v6]:PORT` with a port 1-65535; undefined when it is not one. */
export function parseDialAddress(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || !isHostOrIp(host) || (m[1] !== undefined && isIP(host) !== 6)) return undefined;
  return { host, port };
}

/** ConfigChecker collects problems for one daemon's settings, each naming its key and where the value came from. */
export class ConfigChecker {
  /** problems found so far, in the order checked. */
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly result: ConfigFileResult) {}

  /** problem records detail against key (a kebab-case flag name). */
  problem(key: string, detail: string): void {
    this.problems.push(problemAt(this.result, key, detail));
  }

  /** parses runs parse(value) and records its error message against key. */
  parses(key: string, value: string | undefined, parse: (s: string) => unknown): void {
    if (value === undefined) return;
    try {
      parse(value);
    } catch (err) {
      this.problem(key, err instanceof Error ? err.message : String(err));
    }
  }

  /** dialAddresses checks a comma-separated list of HOST:PORT a daemon connects to (at least one). */
  dialAddresses(key: string, value: string | undefined): void {
    if (value === undefined) return;
    const items = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) this.problem(key, 'names no address (want HOST:PORT[,HOST:PORT...])');
    for (const item of items) if (!parseDialAddress(item)) this.problem(key, `${JSON.stringify(item)} is not HOST:PORT`);
  }

  /** hostOrIp checks an address or DNS name. */
  hostOrIp(key: string, value: string | undefined): void {
    if (value !== undefined && !isHostOrIp(value)) this.problem(key, `${JSON.stringify(value)} is not an IP address or a DNS name`);
  }

  /** ip checks an IPv4 or IPv6 address. */
  ip(key: string, value: string | undefined): void {
    if (value !== undefined && isIP(value) === 0) this.problem(key, `${JSON.stringify(value)} is not an IP address`);
  }

  /** readableFile checks that path is an existing, readable regular file. */
  readableFile(key: string, path: string | undefined): void {
    if (path === undefined) return;
    const st = statOf(path);
    if (!st) this.problem(key, `${path}: no such file`);
    else if (!st.isFile()) this.problem(key, `${path}: not a regular file`);
    else if (!canAccess(path, constants.R_OK)) this.problem(key, `${path}: not readable`);
  }

  /** creatableDir checks that path is a directory, or could be made: its nearest existing ancestor is a writable directory. */
  creatableDir(key: string, path: string | undefined): void {
    if (path === undefined) return;
    const st = statOf(path);
    if (st) {
      if (!st.isDirectory()) this.problem(key, `${path}: not a directory`);
      return;
    }
    this.creatableBelow(key, path);
  }

  /** creatableFile checks that path is a writable regular file, or could be made below its nearest existing ancestor. */
  creatableFile(key: string, path: string | undefined): void {
    if (path === undefined) return;
    const st = statOf(path);
    if (st) {
      if (!st.isFile()) this.problem(key, `${path}: not a regular file`);
      else if (!canAccess(path, constants.W_OK)) this.problem(key, `${path}: not writable`);
      return;
    }
    this.creatableBelow(key, path);
  }

  private creatableBelow(key: string, path: string): void {
    let dir = dirname(resolve(path));
    let st = statOf(dir);
    while (!st && dir !== dirname(dir)) {
      dir = dirname(dir);
      st = statOf(dir);
    }
    if (!st?.isDirectory()) this.problem(key, `${path}: ${dir} is not a directory`);
    else if (!canAccess(dir, constants.W_OK | constants.X_OK)) this.problem(key, `${path}: cannot be created, ${dir} is not writable`);
  }
}
