/** Upstream resolvers, as the agent config names them. */
import { isIP } from 'node:net';

/** DNS_PORT is the standard port: containers' resolv.conf points at it, and upstreams default to it. */
export const DNS_PORT = 53;

/** Upstream is one resolver queries for foreign names are relayed to. */
export interface Upstream {
  host: string;
  port: number;
}

/** parseUpstream reads `ip`, `ip:port` or `[ipv6]:port`; undefined when it is none of them. */
export function parseUpstream(s: string): Upstream | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s) ?? /^([0-9.]+)(?::(\d+))?$/.exec(s) ?? /^([0-9a-fA-F:]+)()$/.exec(s);
  if (!m || isIP(m[1]!) === 0) return undefined;
  const port = m[2] ? Number(m[2]) : DNS_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}
