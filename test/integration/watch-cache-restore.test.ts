/**
 * A watch cache under a store restored from a snapshot: etcd's revision goes back in time, the
 * resumed watch waits for revisions that now mean other writes, and a mirror that trusted it
 * would keep objects the restored store no longer has. catchUp (which the scheduler runs before
 * every placement and a new leader before its controllers start) notices etcd is behind the
 * mirror, relists comparing values, and emits what changed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createLogger } from '../../common/log.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { type CacheEvent, WatchCache } from '../../control-plane/store/cache.js';
import { Store } from '../../control-plane/store/store.js';
import { REPO_ROOT, waitFor } from '../support/cluster.js';

const CLIENT_PORT = 23917;
const PEER_PORT = 23918;
const log = createLogger(process.env.TEST_LOG === '1' ? 'debug' : 'error');
const dir = mkdtempSync(join(tmpdir(), 'berth-cache-restore-'));
let etcd: EmbeddedEtcd | undefined;
let store: Store | undefined;
let cache: WatchCache<Obj> | undefined;

after(async () => {
  await cache?.stop();
  store?.close();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Obj { kind: string; metadata: { name: string; resourceVersion?: string }; spec: { n: number } }
const obj = (name: string, n: number): Obj => ({ kind: 'Test', metadata: { name }, spec: { n } });

function snapshot(verb: 'save' | 'restore', file: string): void {
  const args = verb === 'save'
    ? ['snapshot', 'save', file, '--data-dir', dir, '--etcd-client-port', String(CLIENT_PORT)]
    : ['snapshot', 'restore', file, '--data-dir', dir, '--etcd-peer-port', String(PEER_PORT), '--force'];
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'main.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `snapshot ${verb}: ${r.stderr}`);
}

test('after a restore, catchUp finds etcd behind the mirror and relists to the restored state', async () => {
  etcd = await startEmbeddedEtcd({ dataDir: dir, clientPort: CLIENT_PORT, peerPort: PEER_PORT, log });
  store = Store.connect([etcd.endpoint]);
  await store.create('tests/a', obj('a', 1) as never);
  await store.create('tests/b', obj('b', 1) as never);
  const file = join(dir, 'backup.db');
  snapshot('save', file);
  // After the snapshot: enough writes that the restored store's revisions are all behind.
  await store.create('tests/c', obj('c', 1) as never);
  for (let n = 2; n <= 20; n++) await store.mutate<never>('tests/a', (cur: Obj) => ({ ...cur, spec: { n } }) as never);
  cache = new WatchCache<Obj>(store, 'tests/', (k) => k.split('/').length === 2, log);
  await cache.start();
  assert.deepEqual(cache.list().map((o) => [o.metadata.name, o.spec.n]).sort(), [['a', 20], ['b', 1], ['c', 1]]);
  const events: CacheEvent<Obj>[] = [];
  cache.onChange((e) => events.push(e));

  await etcd.stop();
  snapshot('restore', file);
  etcd = await startEmbeddedEtcd({ dataDir: dir, clientPort: CLIENT_PORT, peerPort: PEER_PORT, log });
  assert.equal(await waitFor(async () => ((await cache!.catchUp()) ? true : undefined), 30_000, () => 'catchUp after the restore'), true);
  assert.deepEqual(cache.list().map((o) => [o.metadata.name, o.spec.n]).sort(), [['a', 1], ['b', 1]], 'the mirror is the restored state');
  assert.deepEqual(events.map((e) => `${e.type} ${e.key}`).sort(), ['delete tests/c', 'put tests/a'], 'the differences were emitted');
  assert.ok(cache.relists >= 1);
});
