/**
 * Container addresses from the node's subnet, one file per address under <state-dir>/ipam/
 * (named by the address, holding the owning container's id). Creating the file with O_EXCL is
 * the allocation, so no address is handed out twice even by two agents sharing a directory by
 * mistake; removing it is the release. The files survive an agent restart, and `recover` drops
 * those whose container is gone.
 */
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cidrContains, cidrSize, ipToNumber, numberToIp, parseCidr, type Cidr } from '../../common/cidr.js';

/** gatewayOf is the subnet's first host address, which the bridge holds. */
export function gatewayOf(subnet: Cidr): string {
  return numberToIp(subnet.base + 1);
}

/**
 * nextFreeAddress picks the first address after `after` (wrapping) that is neither the network,
 * the gateway (.1), the broadcast nor in use. Starting after the last one handed out delays reuse
 * of a just-released address, so a stale peer does not reach its successor. Undefined: full.
 */
export function nextFreeAddress(subnet: Cidr, used: ReadonlySet<string>, after?: string): string | undefined {
  const size = cidrSize(subnet);
  const first = 2;
  const last = size - 2;
  if (last < first) return undefined;
  const prev = after === undefined ? undefined : ipToNumber(after);
  const start = prev !== undefined && cidrContains(subnet, prev) ? prev - subnet.base + 1 : first;
  const span = last - first + 1;
  for (let i = 0; i < span; i++) {
    const off = first + ((start - first + i) % span + span) % span;
    const ip = numberToIp(subnet.base + off);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

/** AddressBook is the file-backed allocator of one node's container addresses. */
export class AddressBook {
  private readonly owners = new Map<string, string>(); // container id → address
  private last: string | undefined;

  constructor(private readonly dir: string) {}

  /** load reads the records left by an earlier run. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.owners.clear();
    for (const name of await readdir(this.dir)) {
      if (ipToNumber(name) === undefined) continue;
      const id = (await readFile(join(this.dir, name), 'utf8').catch(() => '')).trim();
      if (id) this.owners.set(id, name);
    }
  }

  /** addressOf is the container's address, if it holds one. */
  addressOf(id: string): string | undefined {
    return this.owners.get(id);
  }

  /** inUse lists every address held. */
  inUse(): string[] {
    return [...this.owners.values()];
  }

  /** allocate gives the container an address in subnet (the same one again if it holds one); undefined: full. */
  async allocate(id: string, subnet: string): Promise<string | undefined> {
    const held = this.owners.get(id);
    if (held) return held;
    const net = parseCidr(subnet);
    if (!net) throw new Error(`not an IPv4 subnet: ${subnet}`);
    await mkdir(this.dir, { recursive: true });
    const used = new Set(this.owners.values());
    // Bounded: each failed exclusive create marks one more address used.
    for (let i = 0; i < cidrSize(net); i++) {
      const ip = nextFreeAddress(net, used, this.last);
      if (!ip) return undefined;
      try {
        await writeFile(join(this.dir, ip), `${id}\n`, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        used.add(ip);
        continue;
      }
      this.owners.set(id, ip);
      this.last = ip;
      return ip;
    }
    return undefined;
  }

  /** release frees the container's address; idempotent. */
  async release(id: string): Promise<void> {
    const ip = this.owners.get(id);
    if (!ip) return;
    this.owners.delete(id);
    await unlink(join(this.dir, ip)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** recover keeps the addresses of the given live containers and releases every other; it returns the released ids. */
  async recover(liveIds: Iterable<string>): Promise<string[]> {
    await this.load();
    const live = new Set(liveIds);
    const gone = [...this.owners.keys()].filter((id) => !live.has(id));
    for (const id of gone) await this.release(id);
    return gone;
  }
}
