/**
 * Service `ports:` and `expose:` to berth's template ports. Short syntax
 * `[HOST:]CONTAINER[/PROTOCOL]` (ranges of equal length expand to one port each) and the long
 * syntax `{ target, published, protocol, mode }`. A host IP is refused: berth publishes a port
 * on every address of the node, so honouring `127.0.0.1:` is not possible and dropping it would
 * expose a port the file meant to keep local.
 */
import type { PortSpec } from '../../objects/types.js';
import { checkKeys, isMap, type Diagnostics } from './diagnostics.js';
import { describe, readInt, readString } from './values.js';

const PROTOCOLS = ['tcp', 'udp'] as const;

/** convertPorts translates a service's `ports:` list; bad entries are reported and skipped. */
export function convertPorts(v: unknown, path: string, diag: Diagnostics): PortSpec[] {
  if (!Array.isArray(v)) {
    diag.error(path, `must be a list, got ${describe(v)}`);
    return [];
  }
  const out: PortSpec[] = [];
  v.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    if (isMap(entry)) out.push(...longPort(entry, at, diag));
    else if (typeof entry === 'string' || typeof entry === 'number') out.push(...shortPort(String(entry), at, diag));
    else diag.error(at, `must be "HOST:CONTAINER[/PROTOCOL]" or a mapping with target, got ${describe(entry)}`);
  });
  return out;
}

/** convertExpose translates `expose:` (container ports other services reach, never published). */
export function convertExpose(v: unknown, path: string, diag: Diagnostics): PortSpec[] {
  if (!Array.isArray(v)) {
    diag.error(path, `must be a list, got ${describe(v)}`);
    return [];
  }
  const out: PortSpec[] = [];
  v.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    if (typeof entry !== 'number' && typeof entry !== 'string') {
      diag.error(at, `must be a port like "80" or "80/udp", got ${describe(entry)}`);
      return;
    }
    const proto = protocolOf(String(entry), at, diag);
    if (!proto) return;
    for (const port of portRange(proto.rest, at, diag) ?? []) out.push({ containerPort: port, protocol: proto.protocol });
  });
  return out;
}

function protocolOf(text: string, at: string, diag: Diagnostics): { rest: string; protocol: PortSpec['protocol'] } | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return { rest: text, protocol: 'tcp' };
  const protocol = text.slice(slash + 1).toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    diag.error(at, `"${text}": protocol "${protocol}" is not supported (tcp or udp)`);
    return undefined;
  }
  return { rest: text.slice(0, slash), protocol: protocol as PortSpec['protocol'] };
}

/** portRange reads "80" or "8000-8010" into the ports it names. */
function portRange(text: string, at: string, diag: Diagnostics): number[] | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  const first = m ? Number(m[1]) : NaN;
  const last = m?.[2] !== undefined ? Number(m[2]) : first;
  if (!m || first < 1 || last > 65535 || last < first) {
    diag.error(at, `"${text}" is not a port (1-65535) or a range like 8000-8010`);
    return undefined;
  }
  return Array.from({ length: last - first + 1 }, (_, k) => first + k);
}

function shortPort(text: string, at: string, diag: Diagnostics): PortSpec[] {
  const proto = protocolOf(text, at, diag);
  if (!proto) return [];
  const parts = proto.rest.startsWith('[') ? ['ip', ...proto.rest.replace(/^\[[^\]]*\]:?/, '').split(':')] : proto.rest.split(':');
  if (parts.length > 2) {
    diag.error(at, `"${text}": a host IP cannot be given; berth publishes a port on every address of the node (write "HOST:CONTAINER", or leave the port unpublished and reach it from other services)`);
    return [];
  }
  const container = portRange(parts[parts.length - 1]!, at, diag);
  if (!container) return [];
  if (parts.length === 1) {
    diag.note(at, `"${text}" publishes on a random host port in compose; berth does not pick one, so port ${parts[0]} is reachable from other services only`);
    return container.map((containerPort) => ({ containerPort, protocol: proto.protocol }));
  }
  const host = portRange(parts[0]!, at, diag);
  if (!host) return [];
  if (host.length !== container.length) {
    diag.error(at, `"${text}": host and container ranges must have the same length`);
    return [];
  }
  return container.map((containerPort, k) => ({ containerPort, hostPort: host[k]!, protocol: proto.protocol }));
}

function longPort(entry: Record<string, unknown>, at: string, diag: Diagnostics): PortSpec[] {
  checkKeys(entry, at, diag, ['target', 'published', 'protocol', 'mode', 'host_ip', 'name'],
    { app_protocol: 'berth does not use an application protocol hint' });
  if (entry.host_ip !== undefined) {
    diag.error(`${at}.host_ip`, 'a host IP cannot be given; berth publishes a port on every address of the node');
    return [];
  }
  if (entry.target === undefined) {
    diag.error(`${at}.target`, 'required (the container port)');
    return [];
  }
  const containerPort = readInt(entry.target, `${at}.target`, diag, 1, 65535);
  const port: PortSpec = { containerPort: containerPort ?? 0, protocol: 'tcp' };
  if (entry.published !== undefined) {
    const hostPort = readInt(entry.published, `${at}.published`, diag, 1, 65535);
    if (hostPort !== undefined) port.hostPort = hostPort;
  }
  if (entry.protocol !== undefined) {
    const protocol = readString(entry.protocol, `${at}.protocol`, diag)?.toLowerCase();
    if (protocol !== undefined && !(PROTOCOLS as readonly string[]).includes(protocol)) diag.error(`${at}.protocol`, `"${protocol}" is not supported (tcp or udp)`);
    else if (protocol !== undefined) port.protocol = protocol as PortSpec['protocol'];
  }
  if (entry.mode !== undefined) {
    const mode = readString(entry.mode, `${at}.mode`, diag);
    if (mode === 'host' || mode === 'ingress') port.mode = mode;
    else if (mode !== undefined) diag.error(`${at}.mode`, `must be host or ingress, got "${mode}"`);
  }
  if (entry.name !== undefined) {
    const name = readString(entry.name, `${at}.name`, diag);
    if (name !== undefined) port.name = name;
  }
  if (port.hostPort === undefined && entry.published === undefined) {
    diag.note(at, `target ${port.containerPort} without published is reachable from other services only (berth does not pick a random host port)`);
  }
  return containerPort === undefined ? [] : [port];
}
