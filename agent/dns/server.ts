/**
 * DnsServer is the node's resolver for its containers: UDP and TCP on one address (the bridge's
 * gateway, port 53), answers from the pushed endpoints (answer.ts), other names relayed to the
 * configured upstreams. A malformed packet is dropped; nothing a client sends can throw out of
 * a socket handler.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { messageOf } from '../errors.js';
import { answer, replyTo, serviceTable, type ServiceTable } from './answer.js';
import { decodeMessage, encodeMessage, Rcode, type DnsMessage } from './codec.js';
import { DNS_PORT, type Upstream } from './upstream.js';

/** MAX_UDP_REPLY_BYTES is the classic UDP limit; longer answers go out truncated (TC) so clients retry over TCP. */
export const MAX_UDP_REPLY_BYTES = 512;
/** UPSTREAM_TIMEOUT_MS bounds a relayed query; past it the client gets SERVFAIL. */
export const UPSTREAM_TIMEOUT_MS = 2_000;
/** TCP_IDLE_MS closes TCP connections that stay silent this long. */
export const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 256;
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** DnsServerOptions configures a DnsServer. */
export interface DnsServerOptions {
  /** port to bind (default 53; 0 picks a free one, for tests). */
  port?: number;
  upstreams?: readonly Upstream[];
  /** namespaceOf names the namespace of the container holding ip (bare-name queries resolve in it). */
  namespaceOf?: (ip: string) => string | undefined;
  /** registry receives berth_agent_dns_queries_total{rcode}. */
  registry?: Registry;
  log?: Logger;
}

/** DnsServer answers on one address at a time; listen() moves it. */
export class DnsServer {
  private table: ServiceTable = new Map();
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  private bound: string | undefined;
  private boundPort = 0;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly log: Logger;
  private readonly queries: Counter<'rcode'> | undefined;

  constructor(private readonly opts: DnsServerOptions = {}) {
    this.log = opts.log ?? silentLogger;
    this.queries = opts.registry && new Counter({
      name: 'berth_agent_dns_queries_total',
      help: 'DNS queries answered by the node resolver, by response code (dropped: malformed, not answered).',
      labelNames: ['rcode'],
      registers: [opts.registry],
    });
  }

  /** setEndpoints replaces the answer table with the complete pushed set. */
  setEndpoints(services: readonly ServiceEndpoints[]): void {
    this.table = serviceTable(services);
  }

  /** port is the bound port (after listen). */
  get port(): number {
    return this.boundPort;
  }

  /** listen binds UDP and TCP on address, replacing an earlier binding elsewhere; calls are serialised. */
  listen(address: string): Promise<void> {
    this.chain = this.chain.then(() => this.rebind(address));
    return this.chain;
  }

  /** close stops both sockets; idempotent. */
  close(): Promise<void> {
    this.closed = true;
    this.chain = this.chain.then(() => this.unbind(), () => this.unbind());
    return this.chain;
  }

  private async rebind(address: string): Promise<void> {
    if (this.closed || address === this.bound) return;
    await this.unbind();
    const udp = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
    udp.on('message', (msg, rinfo) => void this.onUdp(udp, msg, rinfo.address, rinfo.port));
    udp.on('error', (err) => this.log.warn('dns udp socket error', { error: messageOf(err) }));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.opts.port ?? DNS_PORT, address, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      udp.close();
      throw err;
    });
    const port = udp.address().port;
    const tcp = createServer((sock) => this.onTcp(sock));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    tcp.on('error', (err) => this.log.warn('dns tcp server error', { error: messageOf(err) }));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, address, () => {
        tcp.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      udp.close();
      throw err;
    });
    this.udp = udp;
    this.tcp = tcp;
    this.bound = address;
    this.boundPort = port;
    this.log.info('dns listening', { address, port });
  }

  private async unbind(): Promise<void> {
    const { udp, tcp } = this;
    this.udp = this.tcp = this.bound = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  /** resolve turns one query packet from source into a reply packet; undefined: drop it. */
  async resolve(packet: Uint8Array, source: string): Promise<Buffer | undefined> {
    const query = decodeMessage(packet);
    if (!query) {
      this.queries?.inc({ rcode: 'dropped' });
      return undefined;
    }
    const upstreams = this.opts.upstreams ?? [];
    let reply: Buffer | undefined;
    try {
      const decision = answer(query, { table: this.table, namespace: this.opts.namespaceOf?.(source), canForward: upstreams.length > 0 });
      reply = decision.kind === 'reply' ? encodeMessage(decision.message) : await this.relay(packet, query, upstreams);
    } catch (err) {
      // A name that decodes but cannot be re-encoded (a dot inside a label...) is the client's fault.
      this.log.debug('dns query not answerable', { error: messageOf(err) });
      this.queries?.inc({ rcode: 'dropped' });
      return undefined;
    }
    this.queries?.inc({ rcode: RCODE_NAMES[reply[3]! & 0xf] ?? String(reply[3]! & 0xf) });
    return reply;
  }

  /** relay sends the query unchanged to every upstream and returns the first reply; SERVFAIL after the timeout. */
  private relay(packet: Uint8Array, query: DnsMessage, upstreams: readonly Upstream[]): Promise<Buffer> {
    return new Promise<Buffer>((resolve) => {
      const sockets: Socket[] = [];
      let done = false;
      const finish = (reply: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const s of sockets) s.close();
        resolve(reply);
      };
      const timer = setTimeout(() => finish(encodeMessage(replyTo(query, Rcode.SERVFAIL, { ra: true }))), UPSTREAM_TIMEOUT_MS);
      for (const u of upstreams) {
        const s = createSocket(isIPv6(u.host) ? 'udp6' : 'udp4');
        sockets.push(s);
        s.on('error', (err) => this.log.debug('dns upstream error', { upstream: u.host, error: messageOf(err) }));
        s.on('message', (msg, rinfo) => {
          // Only the upstream we asked, answering our id, may answer: anything else is noise or spoofing.
          if (rinfo.address === u.host && rinfo.port === u.port && msg.length >= 4 && msg.readUInt16BE(0) === query.id) finish(msg);
        });
        s.send(packet, u.port, u.host);
      }
    });
  }

  private async onUdp(udp: Socket, msg: Buffer, host: string, port: number): Promise<void> {
    try {
      let reply = await this.resolve(msg, host);
      if (!reply) return;
      if (reply.length > MAX_UDP_REPLY_BYTES) reply = truncated(reply);
      if (udp === this.udp) udp.send(reply, port, host);
    } catch (err) {
      this.log.warn('dns udp query failed', { error: messageOf(err) });
    }
  }

  private onTcp(sock: TcpSocket): void {
    let pending = Buffer.alloc(0);
    let work: Promise<void> = Promise.resolve();
    const source = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('error', () => { sock.destroy(); });
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // A frame is a 2-byte length and at most 65,535 bytes, so pending never grows past one frame + a chunk.
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const frame = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + frame.length);
        work = work.then(async () => {
          const reply = await this.resolve(frame, source);
          if (!reply) {
            sock.destroy();
            return;
          }
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          if (!sock.destroyed) sock.write(Buffer.concat([len, reply]));
        }).catch(() => { sock.destroy(); });
      }
    });
  }
}

/** truncated cuts a reply to its header and question with TC set, so the client asks again over TCP. */
function truncated(reply: Buffer): Buffer {
  const m = decodeMessage(reply);
  if (!m) return reply.subarray(0, MAX_UDP_REPLY_BYTES);
  return encodeMessage({ ...m, flags: { ...m.flags, tc: true }, answers: [], authorities: [], additionals: [] });
}
