/**
 * Node subnets against a real etcd: two allocators (two control-plane replicas) racing for many
 * nodes never hand out one subnet twice, a node keeps its subnet, and release frees it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { silentLogger } from '../../common/log.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { SubnetAllocator } from '../../control-plane/network/subnets.js';
import { Store } from '../../control-plane/store/store.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-subnets-test-'));
let etcd: EmbeddedEtcd;
const clients: Etcd3[] = [];

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23796, peerPort: 23806, log: silentLogger });
});

after(async () => {
  for (const c of clients) c.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const client = (): Etcd3 => {
  const c = new Etcd3({ hosts: etcd.endpoint });
  clients.push(c);
  return c;
};

test('two replicas racing for 40 nodes hand out 40 distinct subnets, stable per node', async () => {
  const a = new SubnetAllocator(new Store(client()), '10.244.0.0/16');
  const b = new SubnetAllocator(new Store(client()), '10.244.0.0/16');
  const nodes = Array.from({ length: 40 }, (_, i) => `n${i}`);
  // Each node registers at both replicas at once, as a reconnecting agent might.
  const got = await Promise.all(nodes.flatMap((n) => [a.subnetFor(n), b.subnetFor(n)]));
  const byNode = new Map<string, string>();
  got.forEach((r, i) => {
    assert.ok(r.ok, `allocation ${i} failed: ${JSON.stringify(r)}`);
    const n = nodes[Math.floor(i / 2)]!;
    if (byNode.has(n)) assert.equal(r.subnet, byNode.get(n), `${n} got two different subnets`);
    byNode.set(n, r.subnet);
  });
  assert.equal(new Set(byNode.values()).size, nodes.length, 'a subnet was handed out twice');
  const again = await new SubnetAllocator(new Store(client()), '10.244.0.0/16').subnetFor('n7');
  assert.deepEqual(again, { ok: true, subnet: byNode.get('n7') }, 'a restarted control plane gives the node the same subnet');
});

test('a released subnet is handed out again; a full CIDR says Exhausted', async () => {
  const small = new SubnetAllocator(new Store(client()), '10.250.0.0/23');
  const x = await small.subnetFor('x');
  const y = await small.subnetFor('y');
  assert.ok(x.ok && y.ok && x.subnet !== y.subnet);
  assert.deepEqual(await small.subnetFor('z'), { ok: false, reason: 'Exhausted' });
  await small.release('x');
  assert.deepEqual(await small.subnetFor('z'), { ok: true, subnet: x.ok ? x.subnet : '' });
});
