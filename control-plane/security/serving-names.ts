/** The names and addresses the serving certificate must cover: what clients may dial. */
import { hostname, networkInterfaces } from 'node:os';

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** servingNames lists listen hosts and advertised names; a wildcard listen adds every local address. */
export function servingNames(listenHosts: string[], advertised: string[], interfaces = networkInterfaces(), host = hostname()): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1', host]);
  for (const h of listenHosts) {
    if (!WILDCARDS.has(h)) {
      names.add(h);
      continue;
    }
    for (const addrs of Object.values(interfaces)) {
      for (const a of addrs ?? []) names.add(a.address.replace(/%.*$/, ''));
    }
  }
  for (const a of advertised) if (a.trim() !== '') names.add(a.trim());
  return [...names];
}
