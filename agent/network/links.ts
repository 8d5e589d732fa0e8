/**
 * Links and routes through iproute2 (`ip`), run with execFile so the event loop never blocks.
 * The bridge and the host ends of veths live in the agent's network namespace (the "host");
 * container ends are configured by entering the container's netns with nsenter.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** BRIDGE_NAME is the node's container bridge. */
export const BRIDGE_NAME = 'berth0';
/** DEFAULT_MTU_BYTES is used when the uplink's MTU cannot be read. */
export const DEFAULT_MTU_BYTES = 1500;
const IP_TIMEOUT_MS = 10_000;

/** ip runs `ip args...`, optionally inside the netns of pid; it rejects with ip's stderr. */
export async function ip(args: string[], pid?: number): Promise<string> {
  const [file, argv] = pid === undefined ? ['ip', args] : ['nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', ...args]];
  try {
    const { stdout } = await run(file, argv, { timeout: IP_TIMEOUT_MS });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${argv.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** ipBatch runs `ip -batch -` with lines on stdin (in the netns of pid if given): one exec for many changes. */
export async function ipBatch(lines: readonly string[], pid?: number): Promise<void> {
  const [file, argv] = pid === undefined ? ['ip', ['-batch', '-']] : ['nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', '-batch', '-']];
  const pending = run(file, argv, { timeout: IP_TIMEOUT_MS });
  pending.child.stdin?.end(`${lines.join('\n')}\n`);
  try {
    await pending;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${argv.join(' ')} [${lines.join('; ')}]: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** hostVethName is the host end's name for a container: short (IFNAMSIZ is 16) and stable per id. */
export function hostVethName(id: string): string {
  return `vb${createHash('sha256').update(id).digest('hex').slice(0, 11)}`;
}

/** uplinkMtu is the MTU of the interface holding the default route (DEFAULT_MTU_BYTES if none). */
export async function uplinkMtu(): Promise<number> {
  try {
    const routes = JSON.parse(await ip(['-j', 'route', 'show', 'default'])) as { dev?: string }[];
    const dev = routes[0]?.dev;
    const links = JSON.parse(await ip(dev ? ['-j', 'link', 'show', 'dev', dev] : ['-j', 'link', 'show'])) as { ifname: string; mtu: number }[];
    const link = links.find((l) => l.ifname !== 'lo' && l.ifname !== BRIDGE_NAME);
    return link?.mtu ?? DEFAULT_MTU_BYTES;
  } catch {
    return DEFAULT_MTU_BYTES;
  }
}

/**
 * bridgeMac is berth0's fixed MAC, locally administered and derived from the gateway address.
 * A bridge without a set address takes the lowest MAC of its ports, so removing one container's
 * veth could change it under the other containers' ARP caches and cut them off from the gateway
 * (their DNS server) until those entries expire.
 */
export function bridgeMac(gateway: string): string {
  const octets = gateway.split('.').map((o) => Number(o).toString(16).padStart(2, '0'));
  return ['02', 'b0', ...octets].join(':');
}

/** ensureBridge creates berth0 (if missing) with gatewayCidr as its address and a fixed MAC, up. Idempotent. */
export async function ensureBridge(gatewayCidr: string, mtu: number): Promise<void> {
  const mac = bridgeMac(gatewayCidr.split('/')[0]!);
  await ip(['link', 'add', BRIDGE_NAME, 'address', mac, 'mtu', String(mtu), 'type', 'bridge']).catch((err: Error) => {
    if (!/File exists/.test(err.message)) throw err;
  });
  await ip(['link', 'set', BRIDGE_NAME, 'address', mac]);
  await ip(['addr', 'replace', gatewayCidr, 'dev', BRIDGE_NAME]);
  await ip(['link', 'set', BRIDGE_NAME, 'up']);
}

/** ContainerLink is what attachContainer needs to wire one container. */
export interface ContainerLink {
  id: string;
  pid: number;
  address: string;
  prefixBits: number;
  gateway: string;
  mtu: number;
}

/**
 * attachContainer makes a veth pair whose container end is created inside the container's netns
 * as eth0, enslaves the host end to berth0, and gives eth0 the address and a default route via
 * the bridge: two `ip -batch` execs in all, since each exec costs milliseconds. A leftover host
 * end from an earlier attempt is removed and the pair made again.
 */
export async function attachContainer(l: ContainerLink, hairpin = false): Promise<void> {
  const host = hostVethName(l.id);
  const hostSide = [
    `link add ${host} mtu ${l.mtu} type veth peer name eth0 mtu ${l.mtu} netns ${l.pid}`,
    `link set ${host} master ${BRIDGE_NAME} up`,
    // A container reaching its own published port through the node address comes back out its own port.
    ...(hairpin ? [`link set dev ${host} type bridge_slave hairpin on`] : []),
  ];
  await ipBatch(hostSide).catch(async (err: Error) => {
    if (!/File exists/.test(err.message)) throw err;
    await detachContainer(l.id);
    await ipBatch(hostSide);
  });
  try {
    await ipBatch([
      'link set lo up',
      `addr add ${l.address}/${l.prefixBits} dev eth0`,
      'link set eth0 up',
      `route replace default via ${l.gateway} dev eth0`,
    ], l.pid);
  } catch (err) {
    await detachContainer(l.id);
    throw err;
  }
}

/** detachContainer deletes the host end (which takes the container end with it); idempotent. */
export async function detachContainer(id: string): Promise<void> {
  await ip(['link', 'del', hostVethName(id)]).catch(() => undefined);
}
