import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planRoutes } from '../../agent/network/routes.js';
import { peersOf } from '../../control-plane/network/peers.js';
import type { Node } from '../../control-plane/objects/types.js';

describe('peer route planning', () => {
  const cases: { name: string; installed: [string, string][]; wanted: [string, string][]; remove: string[]; replace: string[] }[] = [
    { name: 'installs every route on a fresh host', installed: [], wanted: [['10.244.1.0/24', '10.0.0.2'], ['10.244.2.0/24', '10.0.0.3']], remove: [], replace: ['10.244.1.0/24', '10.244.2.0/24'] },
    { name: 'leaves matching routes alone', installed: [['10.244.1.0/24', '10.0.0.2']], wanted: [['10.244.1.0/24', '10.0.0.2']], remove: [], replace: [] },
    { name: 'removes routes of departed nodes', installed: [['10.244.1.0/24', '10.0.0.2'], ['10.244.2.0/24', '10.0.0.3']], wanted: [['10.244.1.0/24', '10.0.0.2']], remove: ['10.244.2.0/24'], replace: [] },
    { name: 'replaces a route whose node moved', installed: [['10.244.1.0/24', '10.0.0.2']], wanted: [['10.244.1.0/24', '10.0.0.9']], remove: [], replace: ['10.244.1.0/24'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = planRoutes(c.installed.map(([subnet, address]) => ({ subnet, address })), c.wanted.map(([subnet, address]) => ({ subnet, address })));
      assert.deepEqual(p.remove, c.remove);
      assert.deepEqual(p.replace.map((r) => r.subnet), c.replace);
    });
  }
});

describe('peers of a node', () => {
  const node = (name: string, subnet?: string, address?: string): Node => ({
    kind: 'Node', metadata: { name, uid: name, generation: 1, labels: {}, createdAt: '' },
    spec: { unschedulable: false, taints: [] },
    status: {
      capacity: { cpu: 1, memory: 1, pids: 1 }, allocatable: { cpu: 1, memory: 1, pids: 1 }, metricsUrl: '', conditions: [], agentVersion: '', cgroupVersion: 'v1',
      addresses: address ? [{ type: 'InternalIP', address }] : [], ...(subnet ? { subnet } : {}),
    },
  });
  it('lists every other node with a subnet and an address, by name', () => {
    const peers = peersOf([node('c', '10.244.2.0/24', '10.0.0.3'), node('a', '10.244.0.0/24', '10.0.0.1'), node('b', '10.244.1.0/24', '10.0.0.2'),
      node('d'), node('e', '10.244.4.0/24')], 'a');
    assert.deepEqual(peers, [
      { nodeName: 'b', subnet: '10.244.1.0/24', address: '10.0.0.2' },
      { nodeName: 'c', subnet: '10.244.2.0/24', address: '10.0.0.3' },
    ]);
  });
});
