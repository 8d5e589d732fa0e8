/**
 * berth0 keeps its MAC while container veths come and go. A bridge without a set address takes
 * the lowest MAC of its ports; when that port left, the gateway's MAC changed under the other
 * containers' ARP caches and they lost the gateway (and the node's DNS server) for ~30 s.
 * Runs ensureBridge in a network namespace this test creates; no traffic is sent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { bridgeMac } from '../../agent/network/links.js';
import { REPO_ROOT, run } from '../support/cluster.js';

const NETNS = `bmac${process.pid % 100000}`;
const LINKS_JS = join(REPO_ROOT, 'dist', 'agent', 'network', 'links.js');
const GATEWAY = '10.244.7.1';

const bridgeAddress = (): string => (JSON.parse(run('ip', ['-n', NETNS, '-j', 'link', 'show', 'berth0']).stdout) as { address: string }[])[0]!.address;

before(() => {
  run('ip', ['netns', 'del', NETNS]);
  assert.equal(run('ip', ['netns', 'add', NETNS]).code, 0);
});

after(() => {
  run('ip', ['netns', 'del', NETNS]);
});

test('bridgeMac is locally administered and unique per gateway', () => {
  assert.equal(bridgeMac(GATEWAY), '02:b0:0a:f4:07:01');
  assert.notEqual(bridgeMac('10.244.8.1'), bridgeMac(GATEWAY));
});

test('berth0 keeps its MAC while ports are added and removed', () => {
  const code = `const { ensureBridge } = await import(${JSON.stringify(LINKS_JS)}); await ensureBridge('${GATEWAY}/24', 1500); await ensureBridge('${GATEWAY}/24', 1500);`;
  const r = run('ip', ['netns', 'exec', NETNS, process.execPath, '--input-type=module', '-e', code]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(bridgeAddress(), bridgeMac(GATEWAY));
  for (let i = 0; i < 4; i++) {
    assert.equal(run('ip', ['-n', NETNS, 'link', 'add', `ha${i}`, 'type', 'veth', 'peer', 'name', `hb${i}`]).code, 0);
    assert.equal(run('ip', ['-n', NETNS, 'link', 'set', `ha${i}`, 'master', 'berth0']).code, 0);
  }
  for (let i = 0; i < 4; i++) {
    assert.equal(run('ip', ['-n', NETNS, 'link', 'del', `ha${i}`]).code, 0);
    assert.equal(bridgeAddress(), bridgeMac(GATEWAY), `after removing port ha${i}`);
  }
});
