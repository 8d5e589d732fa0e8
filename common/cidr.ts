/**
 * IPv4 CIDR arithmetic shared by the control plane (node subnets) and the agent (container
 * addresses). Addresses are unsigned 32-bit numbers; everything here is pure.
 */

/** Cidr is a parsed IPv4 prefix: base is the network address, bits the prefix length. */
export interface Cidr {
  base: number;
  bits: number;
}

/** ipToNumber parses a dotted quad; it returns undefined for anything else. */
export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** numberToIp formats an unsigned 32-bit number as a dotted quad. */
export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** parseCidr parses "a.b.c.d/n", normalising host bits away; undefined if malformed. */
export function parseCidr(s: string): Cidr | undefined {
  const [ip, len, extra] = s.split('/');
  if (ip === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const bits = Number(len);
  const addr = ipToNumber(ip);
  if (addr === undefined || bits > 32) return undefined;
  return { base: (addr & maskOf(bits)) >>> 0, bits };
}

/** formatCidr is parseCidr's inverse. */
export function formatCidr(c: Cidr): string {
  return `${numberToIp(c.base)}/${c.bits}`;
}

/** cidrSize is the number of addresses in a prefix. */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

/** cidrContains tells whether ip (a number) lies in c. */
export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.bits)) >>> 0) === c.base;
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}
