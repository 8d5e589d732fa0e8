/**
 * A real registry for tests: Debian's `docker-registry` on 127.0.0.1:<free port> with its own
 * storage and config in a temp dir (optionally behind htpasswd basic auth), images pushed with
 * skopeo; plus a fault-injecting proxy that counts requests, can demand the bearer-token flow
 * (with its own token endpoint) and can cut blob bodies short.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const START_LIMIT_MS = 15_000;
const POLL_MS = 50;

/** RegistryAuth turns on htpasswd basic auth with one user. */
export interface RegistryAuth {
  username: string;
  password: string;
}

/** TestRegistry is a running docker-registry; stop() kills it and removes its files. */
export interface TestRegistry {
  /** host is `127.0.0.1:PORT`. */
  host: string;
  port: number;
  storageDir: string;
  auth?: RegistryAuth;
  /** push copies an image (any skopeo source, e.g. `oci:DIR:tag`) to `host/name`. */
  push(source: string, name: string, opts?: { format?: 'oci' | 'v2s2'; all?: boolean }): void;
  /** blobPath is where the registry keeps a blob's bytes (to tamper with it). */
  blobPath(digest: string): string;
  /** requestLog returns the registry's access log lines so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** freePort asks the kernel for an unused loopback port. */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** startRegistry starts docker-registry and waits until /v2/ answers. */
export async function startRegistry(opts: { auth?: RegistryAuth } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const storageDir = join(dir, 'storage');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log: { level: info, formatter: text }',
    `storage: { filesystem: { rootdirectory: ${storageDir} }, delete: { enabled: true } }`,
    `http: { addr: "${host}" }`,
  ];
  if (opts.auth) {
    const htpasswd = run('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password]);
    await writeFile(join(dir, 'htpasswd'), htpasswd);
    lines.push(`auth: { htpasswd: { realm: berth-test, path: ${join(dir, 'htpasswd')} } }`);
  }
  await writeFile(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const logFile = join(dir, 'registry.log');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_LIMIT_MS;
  for (;;) {
    const status = await fetch(`http://${host}/v2/`).then((r) => r.status, () => 0);
    if (status === 200 || status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const { readFile } = await import('node:fs/promises');
      const log = await readFile(logFile, 'utf8').catch(() => '');
      await stop();
      throw new Error(`docker-registry did not start on ${host}: ${log.slice(-2000)}`);
    }
    await sleep(POLL_MS);
  }
  return {
    host,
    port,
    storageDir,
    ...(opts.auth ? { auth: opts.auth } : {}),
    push(source, name, o = {}) {
      const args = ['copy', '--quiet', '--dest-tls-verify=false'];
      if (opts.auth) args.push('--dest-creds', `${opts.auth.username}:${opts.auth.password}`);
      if (o.format) args.push('--format', o.format);
      if (o.all) args.push('--all');
      run('skopeo', [...args, source, `docker://${host}/${name}`]);
    },
    blobPath(digest) {
      const hex = digest.replace(/^sha256:/, '');
      return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
    async log() {
      const { readFile } = await import('node:fs/promises');
      return readFile(logFile, 'utf8').catch(() => '');
    },
    stop,
  };
}

/** ProxyOptions choose the faults a RegistryProxy injects. */
export interface ProxyOptions {
  /** bearer demands `Authorization: Bearer <token>`, issued by the proxy's /token to these credentials. */
  bearer?: { username: string; password: string; expiresInS?: number };
  /** cutBlobsAfterBytes closes the connection after this many body bytes on each blob's first GET. */
  cutBlobsAfterBytes?: number;
  /** redirectBlobsTo answers blob GETs with a 307 to this origin (same path). */
  redirectBlobsTo?: string;
  /** slowBlobsBytesPerSecond paces blob bodies (so a test can interrupt a download midway). */
  slowBlobsBytesPerSecond?: number;
}

/** RegistryProxy forwards to a registry, counting requests per method and path. */
export interface RegistryProxy {
  host: string;
  /** requests lists `METHOD path[ range=…]` for every proxied request, in order. */
  requests: string[];
  /** tokenRequests counts requests to /token (with the scope asked). */
  tokenRequests: string[];
  /** authorizations records the Authorization header of each proxied request. */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

// pace forwards src to dst at about bytesPerSecond, in 64 KiB steps.
function pace(src: IncomingMessage, dst: ServerResponse, bytesPerSecond: number): void {
  const STEP = 64 * 1024;
  src.on('data', (chunk: Buffer) => {
    src.pause();
    let off = 0;
    const next = (): void => {
      if (dst.destroyed) { src.destroy(); return; }
      if (off >= chunk.length) { src.resume(); return; }
      const part = chunk.subarray(off, off + STEP);
      off += part.length;
      dst.write(part);
      setTimeout(next, (part.length / bytesPerSecond) * 1000);
    };
    next();
  });
  src.on('end', () => dst.end());
}

/** startProxy starts a counting, fault-injecting HTTP proxy in front of `target` (`host:port`). */
export async function startProxy(target: string, opts: ProxyOptions = {}): Promise<RegistryProxy> {
  const requests: string[] = [];
  const tokenRequests: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const cut = new Set<string>();
  const tokens = new Set<string>();
  let host = '';
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith('/token')) {
      const q = new URL(url, 'http://x').searchParams;
      tokenRequests.push(q.get('scope') ?? '');
      const want = `Basic ${Buffer.from(`${opts.bearer?.username}:${opts.bearer?.password}`).toString('base64')}`;
      if (req.headers.authorization !== want || q.get('service') !== 'berth-test') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      const token = `t${tokens.size}-${Math.random().toString(36).slice(2)}`;
      tokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token, expires_in: opts.bearer?.expiresInS ?? 300 }));
      return;
    }
    requests.push(`${req.method} ${url}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    authorizations.push(req.headers.authorization);
    if (opts.bearer) {
      const got = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (got === undefined || !tokens.has(got)) {
        const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(url)?.[1] ?? '';
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="berth-test",scope="repository:${repo}:pull"`,
          'content-type': 'application/json',
        }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
    }
    const isBlob = /\/blobs\/sha256:/.test(url) && req.method === 'GET';
    if (isBlob && opts.redirectBlobsTo) {
      res.writeHead(307, { location: `${opts.redirectBlobsTo}${url}` }).end();
      return;
    }
    const headers = { ...req.headers, host: target };
    delete headers.authorization; // the registry behind is open; auth is the proxy's job
    const up = httpRequest({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const limit = isBlob && opts.cutBlobsAfterBytes !== undefined && !cut.has(url) ? opts.cutBlobsAfterBytes : undefined;
      if (limit === undefined && isBlob && opts.slowBlobsBytesPerSecond !== undefined) {
        pace(upRes, res, opts.slowBlobsBytesPerSecond);
        return;
      }
      if (limit === undefined) {
        upRes.pipe(res);
        return;
      }
      cut.add(url);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        const part = chunk.subarray(0, limit - sent);
        sent += part.length;
        res.write(part);
        if (sent >= limit) {
          // end (FIN), not destroy (RST): the bytes written still reach the client, then the cut.
          upRes.destroy();
          res.socket?.end();
        }
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    requests,
    tokenRequests,
    authorizations,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
