/**
 * ContainerNetwork gives each container an address on the node's bridge (issue 6). The subnet
 * comes from the control plane in RegisterAck; until it arrives containers start without an
 * address (and report none), which is also what a control plane without IPAM gives.
 */
import type { PortMapping, ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { parseCidr } from '../../common/cidr.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { messageOf } from '../errors.js';
import { AddressBook, gatewayOf } from './ipam.js';
import { attachContainer, detachContainer, ensureBridge, uplinkMtu } from './links.js';
import { enableForwarding, ensureMasquerade, syncPeerRoutes, type PeerRoute } from './routes.js';

/** ContainerNetwork is the reconciler's view of container networking. */
export interface ContainerNetwork {
  /** attach wires a running container (its init is pid), publishes its host-mode ports and returns its address; undefined: no subnet yet. */
  attach(id: string, pid: number, ports: readonly PortMapping[]): Promise<string | undefined>;
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

  constructor(stateDir: string, log?: Logger) {
    this.book = new AddressBook(`${stateDir}/ipam`);
    this.log = log ?? silentLogger;
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

  /** setEndpoints receives the cluster's ready replicas (routing mesh for ingress-mode ports). */
  setEndpoints(_services: readonly ServiceEndpoints[]): void {
  }

  /** setPeers makes the routes to other nodes' subnets exactly `peers`; calls are serialised. */
  setPeers(peers: PeerRoute[]): Promise<void> {
    this.routing = this.routing.then(() => syncPeerRoutes(peers, this.log)).catch((err: unknown) => this.log.error('peer routes not synced', { error: messageOf(err) }));
    return this.routing;
  }

  async attach(id: string, pid: number, _ports: readonly PortMapping[]): Promise<string | undefined> {
    const subnet = this.subnet;
    const net = subnet === undefined ? undefined : parseCidr(subnet);
    if (!subnet || !net) return undefined;
    await this.setSubnet(subnet);
    const address = await this.book.allocate(id, subnet);
    if (!address) throw new Error(`no free address in ${subnet}`);
    try {
      await attachContainer({ id, pid, address, prefixBits: net.bits, gateway: gatewayOf(net), mtu: await this.mtu! });
    } catch (err) {
      await this.book.release(id);
      throw err;
    }
    return address;
  }

  resolvConf(_namespace: string): string | undefined {
    return undefined;
  }

  async detach(id: string): Promise<void> {
    await detachContainer(id);
    await this.book.release(id);
  }

  addressOf(id: string): string | undefined {
    return this.book.addressOf(id);
  }

  async recover(liveIds: string[]): Promise<void> {
    const gone = await this.book.recover(liveIds);
    for (const id of gone) await detachContainer(id).catch((err: unknown) => this.log.warn('stale link not removed', { id, error: messageOf(err) }));
    if (gone.length > 0) this.log.info('released addresses of containers gone while the agent was down', { count: gone.length });
  }
}
