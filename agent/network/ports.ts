/**
 * Host-mode published ports: a DNAT rule per `hostPort` in nat chain BERTH-HOSTPORTS (jumped to
 * from PREROUTING and OUTPUT for traffic addressed to the node itself), tagged with the container
 * id in a comment so detach and recover find the rules again without remembering ports. Each
 * container's rules go in one `iptables-restore --noflush` so attach costs one exec, not one per
 * port. The routing mesh's chain (ingress.ts) shares the set-up here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../../common/log.js';
import { messageOf } from '../errors.js';

const run = promisify(execFile);

/** HOSTPORTS_CHAIN holds one DNAT rule per published host port of a container on this node. */
export const HOSTPORTS_CHAIN = 'BERTH-HOSTPORTS';
/** INGRESS_CHAIN holds the routing mesh: every ingress port DNATed to a ready replica anywhere. */
export const INGRESS_CHAIN = 'BERTH-INGRESS';
/** INGRESS_MARK marks mesh connections so POSTROUTING masquerades them (replies return via the entry node). */
export const INGRESS_MARK = '0x2000';
/** RULE_COMMENT_PREFIX + container id tags a container's host-port rules. */
export const RULE_COMMENT_PREFIX = 'berth:';
const IPTABLES_TIMEOUT_MS = 10_000;
const IPTABLES_WAIT_S = '5';

/** HostPort is one port published on the node's own addresses. */
export interface HostPort {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** renderHostPortRules is the `-A` lines (iptables-restore syntax) publishing ports to address. */
export function renderHostPortRules(id: string, address: string, ports: readonly HostPort[]): string[] {
  return ports.map((p) => `-A ${HOSTPORTS_CHAIN} -p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} -m comment --comment ${RULE_COMMENT_PREFIX}${id} -j DNAT --to-destination ${address}:${p.containerPort}`);
}

/** natScript wraps rule lines into one iptables-restore transaction on the nat table. */
export function natScript(lines: readonly string[]): string {
  return `*nat\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}COMMIT\n`;
}

/** rulesById groups the `-A` lines of `iptables -t nat -S BERTH-HOSTPORTS` by the container id in their comment. */
export function rulesById(listing: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of listing.split('\n')) {
    if (!line.startsWith(`-A ${HOSTPORTS_CHAIN} `)) continue;
    const m = /--comment "?berth:([a-z0-9-]+)"?/.exec(line);
    if (!m) continue;
    const rules = out.get(m[1]!) ?? [];
    rules.push(line.trim());
    out.set(m[1]!, rules);
  }
  return out;
}

/** deletionsOf turns listed `-A` rules into the `-D` lines that remove them. */
export function deletionsOf(rules: readonly string[]): string[] {
  return rules.map((r) => `-D${r.slice(2)}`);
}

/** staleIds are the ids holding rules that are not live (recover drops their rules). */
export function staleIds(byId: ReadonlyMap<string, unknown>, liveIds: readonly string[]): string[] {
  const live = new Set(liveIds);
  return [...byId.keys()].filter((id) => !live.has(id)).sort();
}

/**
 * staticRules are the jumps and masquerades the chains need, as `iptables -t nat` argument
 * lists. OUTPUT skips 127.0.0.0/8: loopback is not published (a DNAT to a container from
 * 127.0.0.1 would need route_localnet). The hairpin masquerade makes a container reaching its
 * own or a neighbour's published port through the node's address see the reply come back from
 * the address it dialled. Without a subnet (not yet known) the hairpin rule is left out.
 */
export function staticRules(subnet: string | undefined): string[][] {
  const rules: string[][] = [];
  for (const chain of [INGRESS_CHAIN, HOSTPORTS_CHAIN]) {
    rules.push(['PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-m', 'comment', '--comment', 'berth ports', '-j', chain]);
    rules.push(['OUTPUT', '!', '-d', '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL', '-m', 'comment', '--comment', 'berth ports', '-j', chain]);
  }
  rules.push(['POSTROUTING', '-m', 'mark', '--mark', `${INGRESS_MARK}/${INGRESS_MARK}`, '-m', 'comment', '--comment', 'berth ingress', '-j', 'MASQUERADE']);
  if (subnet) rules.push(['POSTROUTING', '-s', subnet, '-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', 'berth hairpin', '-j', 'MASQUERADE']);
  return rules;
}

/**
 * NatTables runs iptables for published ports, one command at a time (concurrent nft
 * transactions from one agent would only contend), and remembers each container's rules so
 * detach needs no listing. Without iptables it logs once and does nothing.
 */
export class NatTables {
  private queue: Promise<unknown> = Promise.resolve();
  private missing = false;
  private ensured = new Set<string>();
  private readonly byId = new Map<string, string[]>();

  constructor(private readonly log: Logger) {}

  /** ensure creates the chains and the static rules once (and the hairpin rule once the subnet is known). */
  ensure(subnet: string | undefined): Promise<void> {
    return this.serial(async () => {
      for (const chain of [HOSTPORTS_CHAIN, INGRESS_CHAIN]) {
        if (this.ensured.has(chain)) continue;
        await this.iptables(['-t', 'nat', '-N', chain]).catch((err: Error) => {
          if (!/exists/i.test(err.message)) throw err;
        });
        this.ensured.add(chain);
      }
      for (const rule of staticRules(subnet)) {
        const key = rule.join(' ');
        if (this.ensured.has(key)) continue;
        const present = await this.iptables(['-t', 'nat', '-C', ...rule]).then(() => true, () => false);
        if (!present) await this.iptables(['-t', 'nat', '-A', ...rule]);
        this.ensured.add(key);
      }
    });
  }

  /** publish adds the container's host-port rules in one transaction (replacing any it had). */
  publish(id: string, address: string, ports: readonly HostPort[], subnet: string | undefined): Promise<void> {
    if (ports.length === 0) return Promise.resolve();
    return this.ensure(subnet).then(() => this.serial(async () => {
      const old = this.byId.get(id) ?? [];
      const add = renderHostPortRules(id, address, ports);
      await this.restore([...deletionsOf(old), ...add]);
      this.byId.set(id, add);
    }));
  }

  /** unpublish removes the container's host-port rules; idempotent. */
  unpublish(id: string): Promise<void> {
    return this.serial(async () => {
      const rules = this.byId.get(id);
      if (!rules) return;
      await this.restore(deletionsOf(rules));
      this.byId.delete(id);
    });
  }

  /** recover reads the rules left by an earlier agent, keeps those of live containers and drops the rest. */
  recover(liveIds: readonly string[], subnet: string | undefined): Promise<void> {
    return this.ensure(subnet).then(() => this.serial(async () => {
      const listed = rulesById(await this.iptables(['-t', 'nat', '-S', HOSTPORTS_CHAIN]));
      const stale = staleIds(listed, liveIds);
      await this.restore(stale.flatMap((id) => deletionsOf(listed.get(id)!)));
      for (const [id, rules] of listed) if (!stale.includes(id)) this.byId.set(id, rules);
      if (stale.length > 0) this.log.info('removed published ports of containers gone while the agent was down', { count: stale.length });
    }));
  }

  /** restoreNat applies a full nat script (the mesh rewrites its chain this way). */
  restoreNat(script: string): Promise<void> {
    return this.ensure(undefined).then(() => this.serial(() => this.restoreText(script)));
  }

  private async restore(lines: readonly string[]): Promise<void> {
    if (lines.length > 0) await this.restoreText(natScript(lines));
  }

  private async restoreText(script: string): Promise<void> {
    if (this.missing) return;
    try {
      const pending = run('iptables-restore', ['-w', IPTABLES_WAIT_S, '--noflush'], { timeout: IPTABLES_TIMEOUT_MS });
      pending.child.stdin?.end(script);
      await pending;
    } catch (err) {
      throw this.failure(err, 'iptables-restore');
    }
  }

  private async iptables(args: string[]): Promise<string> {
    if (this.missing) return '';
    try {
      return (await run('iptables', ['-w', IPTABLES_WAIT_S, ...args], { timeout: IPTABLES_TIMEOUT_MS })).stdout;
    } catch (err) {
      throw this.failure(err, `iptables ${args.join(' ')}`);
    }
  }

  private failure(err: unknown, what: string): Error {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!this.missing) this.log.warn('iptables not found; published ports and the routing mesh are skipped');
      this.missing = true;
      return new IptablesMissing();
    }
    const stderr = ((err as { stderr?: string }).stderr ?? '').trim();
    return new Error(`${what}: ${stderr || messageOf(err)}`, { cause: err });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next.catch((err: unknown) => {
      if (err instanceof IptablesMissing) return undefined as T;
      throw err;
    });
  }
}

class IptablesMissing extends Error {
  constructor() {
    super('iptables not found');
  }
}
