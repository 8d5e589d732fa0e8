/**
 * ContainerNetwork gives each container an address on the node's bridge. The subnet
 * comes from the control plane in RegisterAck; until it arrives containers start without an
 * address (and report none), which is also what a control plane without IPAM gives.
 */
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { parseCidr } from '../../common/cidr.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { messageOf } from '../errors.js';
import { renderIngress, ingressTargets } from './ingress.js';
import { CLUSTER_DOMAIN } from '../dns/answer.js';
import { AddressBook, gatewayOf } from './ipam.js';
import { attachContainer, detachContainer, ensureBridge, uplinkMtu } from './links.js';
import { NatTables, type HostPort } from './ports.js';
import { enableForwarding, ensureMasquerade, syncPeerRoutes, type PeerRoute } from './routes.js';

/** ContainerNetwork is the reconciler's view of container networking. */
export interface ContainerNetwork {
  /** attach wires a running container (its init is pid), publishes its host ports and returns its address; undefined: no subnet yet. */
  attach(id: string, pid: number, ports: readonly HostPort[]): Promise<string | undefined>;
  /** resolvConf is the /etc/resolv.conf for a container of `namespace` (the node's DNS); undefined: the host's. */
  resolvConf(namespace: string): string | undefined;
  /** detach removes the container's link, published ports and address; idempotent. */
  detach(id: string): Promise<void>;
  /** addressOf is the container's address, if it holds one. */
  addressOf(id: string): string | undefined;
  /** recover keeps the addresses of live containers and releases the rest (after an agent restart). */
  recover(liveIds: string[]): Promise<void>;
}

/** BridgeNetwork is the bridge + veth implementation, addresses recorded under stateDir/ipam. */
export class BridgeNetwork implements ContainerNetwork {
  private readonly book: AddressBook;
  private readonly log: Logger;
  private subnet: string | undefined;
  private ready: Promise<void> | undefined;
  private mtu: Promise<number> | undefined;
  private routing: Promise<void> = Promise.resolve();
  private clusterCidr: string | undefined;
  private readonly nat: NatTables;
  private meshScript: string | undefined;

  constructor(stateDir: string, log?: Logger) {
    this.book = new AddressBook(`${stateDir}/ipam`);
    this.log = log ?? silentLogger;
    this.nat = new NatTables(this.log);
  }

  /** setSubnet records the node's subnet and (re)creates the bridge, forwarding and egress NAT for it. */
  setSubnet(subnet: string, clusterCidr?: string): Promise<void> {
    const net = parseCidr(subnet);
    if (!net) {
      this.log.error('ignoring malformed node subnet', { subnet });
      return Promise.resolve();
    }
    if (subnet === this.subnet && this.ready) return this.ready;
    this.subnet = subnet;
    this.clusterCidr = clusterCidr ?? this.clusterCidr;
    const cluster = this.clusterCidr;
    this.mtu ??= uplinkMtu();
    this.ready = this.mtu.then(async (mtu) => {
      await ensureBridge(`${gatewayOf(net)}/${net.bits}`, mtu);
      await enableForwarding();
      if (cluster) await ensureMasquerade(subnet, cluster, this.log);
    }).then(
      () => this.log.info('bridge ready', { subnet }),
      (err: unknown) => { this.ready = undefined; throw err; },
    );
    return this.ready;
  }

  /**
   * setEndpoints makes the routing mesh match the cluster's ready replicas (the complete set);
   * an unchanged set costs nothing. The returned promise is for tests; callers may ignore it.
   */
  setEndpoints(services: readonly ServiceEndpoints[]): Promise<void> {
    const script = renderIngress(ingressTargets(services));
    if (script === this.meshScript) return Promise.resolve();
    this.meshScript = script;
    return this.nat.restoreNat(script).then(
      () => this.log.info('routing mesh synced', { services: services.length }),
      (err: unknown) => {
        if (this.meshScript === script) this.meshScript = undefined; // retried on the next push
        this.log.error('routing mesh not synced', { error: messageOf(err) });
      },
    );
  }

  /** setPeers makes the routes to other nodes' subnets exactly `peers`; calls are serialised. */
  setPeers(peers: PeerRoute[]): Promise<void> {
    this.routing = this.routing.then(() => syncPeerRoutes(peers, this.log)).catch((err: unknown) => this.log.error('peer routes not synced', { error: messageOf(err) }));
    return this.routing;
  }

  async attach(id: string, pid: number, ports: readonly HostPort[]): Promise<string | undefined> {
    const subnet = this.subnet;
    const net = subnet === undefined ? undefined : parseCidr(subnet);
    if (!subnet || !net) return undefined;
    await this.setSubnet(subnet);
    const address = await this.book.allocate(id, subnet);
    if (!address) throw new Error(`no free address in ${subnet}`);
    try {
      await attachContainer({ id, pid, address, prefixBits: net.bits, gateway: gatewayOf(net), mtu: await this.mtu! }, ports.length > 0);
    } catch (err) {
      await this.book.release(id);
      throw err;
    }
    await this.publish(id, address, ports);
    return address;
  }

  // publish DNATs the container's host ports. A failure is logged, not thrown: the container
  // keeps its address and stays reachable by it, as it does without iptables.
  private async publish(id: string, address: string, published: readonly HostPort[]): Promise<void> {
    if (published.length === 0) return;
    try {
      // Hairpin mode was set on the bridge port at attach: bridge-nf-call-iptables makes the
      // hairpin DNAT a bridged frame sent back out its own port.
      await this.nat.publish(id, address, published, this.subnet);
    } catch (err) {
      this.log.error('published ports not set up', { id, ports: published.map((p) => `${p.hostPort}/${p.protocol}`).join(','), error: messageOf(err) });
    }
  }

  resolvConf(namespace: string): string | undefined {
    const net = this.subnet === undefined ? undefined : parseCidr(this.subnet);
    if (!net) return undefined;
    // ndots:2 sends NAME and NAME.NAMESPACE through the search list first (one dot or none).
    return `nameserver ${gatewayOf(net)}\nsearch ${namespace}.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}\noptions ndots:2\n`;
  }

  async detach(id: string): Promise<void> {
    await this.nat.unpublish(id).catch((err: unknown) => this.log.warn('published ports not removed', { id, error: messageOf(err) }));
    await detachContainer(id);
    await this.book.release(id);
  }

  addressOf(id: string): string | undefined {
    return this.book.addressOf(id);
  }

  async recover(liveIds: string[]): Promise<void> {
    await this.nat.recover(liveIds, this.subnet).catch((err: unknown) => this.log.warn('published ports not recovered', { error: messageOf(err) }));
    const gone = await this.book.recover(liveIds);
    for (const id of gone) await detachContainer(id).catch((err: unknown) => this.log.warn('stale link not removed', { id, error: messageOf(err) }));
    if (gone.length > 0) this.log.info('released addresses of containers gone while the agent was down', { count: gone.length });
  }
}
