/**
 * The watch cache heals itself (reflector semantics): its etcd connection is cut (a TCP proxy
 * in between stops forwarding), writes and a compaction happen meanwhile, the connection comes
 * back — etcd cancels the watch because its revision was compacted — and the cache relists,
 * emits what it missed and catches up. Before the fix it kept a stale view for good.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { noop } from 'cockatiel';
import { createLogger } from '../../common/log.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { CacheEvent, WatchCache } from '../../control-plane/store/cache.js';
import { ROOT_PREFIX } from '../../control-plane/store/keys.js';
import { Store } from '../../control-plane/store/store.js';

const CLIENT_PORT = 23891;
const PEER_PORT = 23892;
const PROXY_PORT = 23893;
const CONVERGE_MS = 20_000;
const canRun = existsSync('/usr/bin/etcd');

interface Obj { kind: string; metadata: { name: string; resourceVersion?: string }; spec: { n: number } }

/** CuttableProxy forwards TCP to etcd until cut() (every connection dropped, new ones refused). */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(CLIENT_PORT, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(PROXY_PORT, '127.0.0.1', () => resolve()));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const obj = (name: string, n: number): Obj => ({ kind: 'Test', metadata: { name }, spec: { n } });

describe('watch cache after a cut connection and a compaction', { skip: !canRun && 'needs etcd' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-relist-'));
  const log = createLogger(process.env.TEST_LOG === '1' ? 'debug' : 'error');
  let etcd: EmbeddedEtcd;
  let direct: Etcd3;
  let proxied: Etcd3;
  const proxy = new CuttableProxy();

  before(async () => {
    etcd = await startEmbeddedEtcd({ dataDir: dir, clientPort: CLIENT_PORT, peerPort: PEER_PORT, log });
    direct = new Etcd3({ hosts: [etcd.endpoint] });
    await proxy.open();
    // As the control plane's client: one endpoint, no circuit breaker.
    proxied = new Etcd3({ hosts: [`http://127.0.0.1:${PROXY_PORT}`], dialTimeout: 2_000, faultHandling: { host: () => noop } });
  });

  after(async () => {
    await proxy.cut();
    proxied?.close();
    direct?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relists, emits the differences and catches up with every write made meanwhile', async () => {
    const put = (name: string, n: number) => direct.put(`${ROOT_PREFIX}tests/${name}`).value(JSON.stringify(obj(name, n)));
    await put('a', 1);
    await put('b', 1);
    const cache = new WatchCache<Obj>(new Store(proxied), 'tests/', () => true, log);
    const events: CacheEvent<Obj>[] = [];
    cache.onChange((e) => events.push(e));
    await cache.start();
    assert.deepEqual(cache.list().map((o) => o.metadata.name).sort(), ['a', 'b']);

    await proxy.cut();
    // 50 writes while the cache cannot see them: b changes, a goes, c and d arrive.
    for (let i = 2; i < 48; i++) await put('b', i);
    await direct.delete().key(`${ROOT_PREFIX}tests/a`);
    await put('c', 1);
    await put('d', 1);
    const latest = (await direct.get(`${ROOT_PREFIX}tests/d`).exec()).header.revision;
    await direct.kv.compact({ revision: latest, physical: true });
    await proxy.open();

    assert.ok(await cache.waitForRevision(latest, CONVERGE_MS), `the cache must reach revision ${latest}; it is at ${cache.lastRevision()}`);
    const seen = Object.fromEntries(cache.list().map((o) => [o.metadata.name, o.spec.n]));
    assert.deepEqual(seen, { b: 47, c: 1, d: 1 }, 'the mirror equals etcd after the relist');
    assert.ok(cache.relists >= 1, 'the lost watch was replaced by a relist');
    assert.ok(events.some((e) => e.type === 'delete' && e.key === 'tests/a'), 'the deletion it missed is emitted');
    assert.ok(events.some((e) => e.type === 'put' && e.key === 'tests/b' && e.object?.spec.n === 47), 'the last change of b is emitted');
    assert.ok(events.some((e) => e.type === 'put' && e.key === 'tests/c' && e.previous === undefined), 'c arrives as new');

    // And it keeps watching afterwards.
    const name = `e-${randomUUID().slice(0, 8)}`;
    await put(name, 5);
    const rev = (await direct.get(`${ROOT_PREFIX}tests/${name}`).exec()).header.revision;
    assert.ok(await cache.waitForRevision(rev, CONVERGE_MS), 'the new watch delivers later writes');
    assert.equal(cache.get(`tests/${name}`)?.spec.n, 5);
    await cache.stop();
  });
});
