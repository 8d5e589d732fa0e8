/**
 * NatTables against the real iptables (nft backend), inside a network namespace this test
 * creates: publish, unpublish, recover after a restart and the mesh's chain rewrite. No traffic
 * is sent; only the rule tables are read back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT, run } from '../support/cluster.js';

const NETNS = `bpt${process.pid % 100000}`;
const PORTS_JS = join(REPO_ROOT, 'dist', 'agent', 'network', 'ports.js');
const INGRESS_JS = join(REPO_ROOT, 'dist', 'agent', 'network', 'ingress.js');

/** inNetns runs an ES module body in NETNS with `nat` (a fresh NatTables, as after an agent start) and `S()` (the nat listing). */
function inNetns(body: string): string {
  const code = `const { NatTables } = await import(${JSON.stringify(PORTS_JS)});
    const { renderIngress, ingressTargets } = await import(${JSON.stringify(INGRESS_JS)});
    const { execFileSync } = await import('node:child_process');
    const S = () => execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S'], { encoding: 'utf8' });
    const nat = new NatTables({ debug() {}, info() {}, warn() {}, error() {} });
    ${body}`;
  const r = run('ip', ['netns', 'exec', NETNS, process.execPath, '--input-type=module', '-e', code]);
  assert.equal(r.code, 0, `script in ${NETNS} failed: ${r.stderr}`);
  return r.stdout;
}

before(() => {
  run('ip', ['netns', 'del', NETNS]);
  assert.equal(run('ip', ['netns', 'add', NETNS]).code, 0);
});

after(() => {
  run('ip', ['netns', 'del', NETNS]);
});

test('a container\'s host ports are published in one step and removed by id', () => {
  const out = inNetns(`
    await nat.publish('web-1', '10.244.1.5', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 8080, containerPort: 80, protocol: 'udp' }], '10.244.1.0/24');
    await nat.publish('api-2', '10.244.1.6', [{ hostPort: 9090, containerPort: 90, protocol: 'tcp' }], '10.244.1.0/24');
    const published = S();
    await nat.unpublish('web-1');
    await nat.unpublish('web-1');
    console.log(JSON.stringify({ published, after: S() }));`);
  const { published, after: left } = JSON.parse(out) as { published: string; after: string };
  assert.match(published, /-A PREROUTING -m addrtype --dst-type LOCAL .*-j BERTH-HOSTPORTS/);
  assert.match(published, /-A OUTPUT ! -d 127\.0\.0\.0\/8 -m addrtype --dst-type LOCAL .*-j BERTH-HOSTPORTS/);
  assert.match(published, /-A POSTROUTING -s 10\.244\.1\.0\/24 -m conntrack --ctstate DNAT .*-j MASQUERADE/);
  assert.match(published, /-p udp -m udp --dport 8080 -m comment --comment "berth:web-1" -j DNAT --to-destination 10\.244\.1\.5:80/);
  assert.ok(!left.includes('berth:web-1'), `web-1's rules are gone:\n${left}`);
  assert.match(left, /berth:api-2/, 'api-2 keeps its rule');
});

test('after a restart, recover keeps live containers\' rules and drops the others', () => {
  const out = inNetns(`
    await nat.recover(['api-2'], '10.244.1.0/24');
    await nat.publish('db-3', '10.244.1.7', [{ hostPort: 5432, containerPort: 5432, protocol: 'tcp' }], '10.244.1.0/24');
    const kept = S();
    await nat.recover(['db-3'], '10.244.1.0/24');
    const dropped = S();
    await nat.unpublish('db-3');
    console.log(JSON.stringify({ kept, dropped, after: S() }));`);
  const { kept, dropped, after: left } = JSON.parse(out) as Record<string, string>;
  assert.match(kept!, /berth:api-2/);
  assert.match(kept!, /berth:db-3/);
  assert.ok(!dropped!.includes('berth:api-2') && dropped!.includes('berth:db-3'), `only db-3 is live:\n${dropped}`);
  assert.ok(!/berth:/.test(left!.replace(/berth-ingress/g, '')), `no host-port rule left:\n${left}`);
  assert.equal((left!.match(/-j BERTH-HOSTPORTS/g) ?? []).length, 2, 'the jumps are added once however often the chains are ensured');
});

test('the mesh chain is rewritten whole from the endpoint set', () => {
  const out = inNetns(`
    const set = (ips) => [{ namespace: 'default', service: 'web', ips, ports: [{ name: '', containerPort: 80, hostPort: 30080, protocol: 'tcp', mode: 'ingress' }] }];
    await nat.restoreNat(renderIngress(ingressTargets(set(['10.244.1.5', '10.244.2.5']))));
    const two = S();
    await nat.restoreNat(renderIngress(ingressTargets(set(['10.244.2.5']))));
    const one = S();
    await nat.restoreNat(renderIngress(ingressTargets([])));
    console.log(JSON.stringify({ two, one, none: S() }));`);
  const { two, one, none } = JSON.parse(out) as Record<string, string>;
  assert.equal((two!.match(/-A BERTH-INGRESS .*-j DNAT/g) ?? []).length, 2);
  assert.match(two!, /--probability 0\.50000000000 -j DNAT --to-destination 10\.244\.1\.5:80/);
  assert.equal((one!.match(/-A BERTH-INGRESS .*-j DNAT/g) ?? []).length, 1);
  assert.ok(!one!.includes('10.244.1.5'), 'a replica that is no longer ready drops out');
  assert.ok(!/-A BERTH-INGRESS/.test(none!), `an empty set leaves the chain empty:\n${none}`);
  assert.match(none!, /-A POSTROUTING -m mark --mark 0x2000\/0x2000 .*-j MASQUERADE/);
});
