/**
 * A TCP proxy that can be cut and restored, for fault tests: cut() drops every proxied
 * connection and refuses new ones (the listening socket is closed, so clients see ECONNREFUSED
 * as they would from a dead peer), restore() listens again. Each new client connection goes to
 * the first upstream that accepts, in order, so the proxy keeps working while one member of an
 * etcd cluster is down.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** HostPort is one TCP endpoint. */
export interface HostPort {
  host: string;
  port: number;
}

/** UPSTREAM_CONNECT_TIMEOUT_MS bounds one attempt to reach an upstream before the next is tried. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 2_000;

/** RESTORE_ATTEMPTS bounds the retries of listening again on the same port. */
const RESTORE_ATTEMPTS = 50;

/** parseHostPort reads "host:port" (or "http://host:port"); it throws on anything else. */
export function parseHostPort(s: string): HostPort {
  const m = /^(?:[a-z]+:\/\/)?([^:/]+):(\d+)\/?$/.exec(s.trim());
  if (!m) throw new Error(`not host:port: ${JSON.stringify(s)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** connectFirst connects to the first upstream that accepts within the timeout, in order. */
function connectFirst(upstreams: readonly HostPort[], i = 0): Promise<Socket> {
  if (i >= upstreams.length) return Promise.reject(new Error('no upstream accepted the connection'));
  const u = upstreams[i]!;
  return new Promise<Socket>((resolve, reject) => {
    const s = createConnection(u.port, u.host);
    const timer = setTimeout(() => s.destroy(new Error('connect timeout')), UPSTREAM_CONNECT_TIMEOUT_MS);
    s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s); });
    s.once('error', () => { clearTimeout(timer); s.destroy(); connectFirst(upstreams, i + 1).then(resolve, reject); });
  });
}

/** CuttableProxy forwards listen → upstreams until cut(); restore() resumes on the same address. */
export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** connections counts the client connections accepted so far (for logs and tests). */
  connections = 0;

  constructor(private readonly listen: HostPort, private readonly upstreams: readonly HostPort[]) {
    if (upstreams.length === 0) throw new Error('at least one upstream is required');
  }

  /** isCut tells whether the proxy refuses connections now. */
  get isCut(): boolean {
    return this.server === undefined;
  }

  /** restore starts listening (again); it resolves once the port accepts connections. */
  async restore(): Promise<void> {
    if (this.server) return;
    for (let attempt = 1; ; attempt++) {
      const server = createServer((client) => this.accept(client));
      try {
        await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.listen.port, this.listen.host, () => resolve()));
        this.server = server;
        return;
      } catch (err) {
        // The closed listener's port may take a moment to be released.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= RESTORE_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** cut drops every proxied connection at once and stops listening. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // close() stops listening at once; its callback would wait for every connection it still
    // counts, and one accepted in the same tick can keep it waiting, so it is not awaited.
    server?.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private accept(client: Socket): void {
    this.connections++;
    this.track(client);
    client.pause();
    connectFirst(this.upstreams).then((upstream) => {
      // Cut (or the client left) while we dialled: the new upstream connection must not live on.
      if (this.server === undefined || client.destroyed) {
        upstream.destroy();
        client.destroy();
        return;
      }
      this.track(upstream);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    }, () => client.destroy());
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
  }
}
