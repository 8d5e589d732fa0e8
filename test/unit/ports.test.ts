/**
 * Published ports: host-port rule rendering and recovery, the routing mesh's chain,
 * the scheduler's host-port accounting and the admission check between services.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingressTargets, renderIngress } from '../../agent/network/ingress.js';
import { deletionsOf, natScript, renderHostPortRules, rulesById, staleIds, staticRules } from '../../agent/network/ports.js';
import { hostPortsOf } from '../../agent/convert.js';
import { portConflict } from '../../control-plane/api/port-conflicts.js';
import type { PortSpec, Service } from '../../control-plane/objects/types.js';
import { hostPortKeys } from '../../control-plane/scheduler/filter-ports.js';
import type { PortMapping, ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';

const mapping = (hostPort: number, over: Partial<PortMapping> = {}): PortMapping =>
  ({ name: '', containerPort: 80, hostPort, protocol: 'tcp', mode: 'host', ...over });

describe('host-port rules', () => {
  it('publishes host-mode ports with a hostPort, tcp and udp, and skips ingress and unpublished ones', () => {
    const ports = hostPortsOf([mapping(8080), mapping(8080, { protocol: 'udp', containerPort: 53 }), mapping(0), mapping(9090, { mode: 'ingress' }), mapping(7070, { mode: '' })]);
    assert.deepEqual(ports, [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 8080, containerPort: 53, protocol: 'udp' },
      { hostPort: 7070, containerPort: 80, protocol: 'tcp' },
    ]);
  });

  it('renders one DNAT per port tagged with the container id, in one nat transaction', () => {
    const lines = renderHostPortRules('web-1', '10.244.1.5', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 5353, containerPort: 53, protocol: 'udp' }]);
    assert.deepEqual(lines, [
      '-A BERTH-HOSTPORTS -p tcp -m tcp --dport 8080 -m comment --comment berth:web-1 -j DNAT --to-destination 10.244.1.5:80',
      '-A BERTH-HOSTPORTS -p udp -m udp --dport 5353 -m comment --comment berth:web-1 -j DNAT --to-destination 10.244.1.5:53',
    ]);
    assert.equal(natScript(lines), `*nat\n${lines.join('\n')}\nCOMMIT\n`);
  });

  it('finds rules by container id in an iptables listing (quoted comments) and turns them into deletions', () => {
    const listing = [
      '-N BERTH-HOSTPORTS',
      '-A BERTH-HOSTPORTS -p tcp -m tcp --dport 8080 -m comment --comment "berth:web-1" -j DNAT --to-destination 10.244.1.5:80',
      '-A BERTH-HOSTPORTS -p udp -m udp --dport 8080 -m comment --comment "berth:web-1" -j DNAT --to-destination 10.244.1.5:80',
      '-A BERTH-HOSTPORTS -p tcp -m tcp --dport 9090 -m comment --comment "berth:api-2" -j DNAT --to-destination 10.244.1.6:90',
      '-A BERTH-HOSTPORTS -p tcp -m tcp --dport 7070 -j DNAT --to-destination 10.244.1.7:70',
      '',
    ].join('\n');
    const byId = rulesById(listing);
    assert.deepEqual([...byId.keys()].sort(), ['api-2', 'web-1']);
    assert.equal(byId.get('web-1')!.length, 2);
    assert.deepEqual(deletionsOf(byId.get('api-2')!), ['-D BERTH-HOSTPORTS -p tcp -m tcp --dport 9090 -m comment --comment "berth:api-2" -j DNAT --to-destination 10.244.1.6:90']);
    assert.deepEqual(staleIds(byId, ['web-1', 'other']), ['api-2'], 'recover drops rules of containers that are gone and keeps live ones');
  });

  it('jumps from PREROUTING and OUTPUT (not loopback) and adds the hairpin masquerade once the subnet is known', () => {
    const without = staticRules(undefined).map((r) => r.join(' '));
    const withSubnet = staticRules('10.244.1.0/24').map((r) => r.join(' '));
    assert.ok(without.some((r) => r.startsWith('PREROUTING') && r.endsWith('-j BERTH-HOSTPORTS')));
    assert.ok(without.some((r) => r.startsWith('OUTPUT ! -d 127.0.0.0/8') && r.endsWith('-j BERTH-HOSTPORTS')));
    assert.ok(!without.some((r) => r.includes('--ctstate DNAT')));
    assert.ok(withSubnet.some((r) => r.startsWith('POSTROUTING -s 10.244.1.0/24 -m conntrack --ctstate DNAT') && r.endsWith('MASQUERADE')));
  });
});

describe('routing mesh rules', () => {
  const svc = (service: string, ips: string[], ports: Partial<PortMapping>[]): ServiceEndpoints =>
    ({ namespace: 'default', service, ips, ports: ports.map((p) => ({ name: '', containerPort: 80, hostPort: 0, protocol: 'tcp', mode: 'ingress', ...p })) });

  it('spreads an ingress port over every ready replica with conditional probabilities', () => {
    const script = renderIngress(ingressTargets([svc('web', ['10.244.2.3', '10.244.1.5', '10.244.3.3'], [{ hostPort: 30080 }])]));
    assert.equal(script, [
      '*nat',
      ':BERTH-INGRESS - [0:0]',
      '-A BERTH-INGRESS -p tcp -m tcp --dport 30080 -m comment --comment berth-ingress:default/web -j MARK --set-xmark 0x2000/0x2000',
      '-A BERTH-INGRESS -p tcp -m tcp --dport 30080 -m comment --comment berth-ingress:default/web -m statistic --mode random --probability 0.33333333333 -j DNAT --to-destination 10.244.1.5:80',
      '-A BERTH-INGRESS -p tcp -m tcp --dport 30080 -m comment --comment berth-ingress:default/web -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.2.3:80',
      '-A BERTH-INGRESS -p tcp -m tcp --dport 30080 -m comment --comment berth-ingress:default/web -j DNAT --to-destination 10.244.3.3:80',
      'COMMIT',
      '',
    ].join('\n'));
  });

  it('leaves out host-mode and unpublished ports, and ports without a ready replica (closed)', () => {
    const targets = ingressTargets([
      svc('web', ['10.244.1.5'], [{ hostPort: 8080, mode: 'host' }, { hostPort: 0 }, { hostPort: 30053, protocol: 'udp', containerPort: 53 }]),
      svc('idle', [], [{ hostPort: 30081 }]),
    ]);
    assert.deepEqual(targets.map((t) => `${t.service} ${t.hostPort}/${t.protocol}`), ['default/web 30053/udp', 'default/idle 30081/tcp']);
    const script = renderIngress(targets);
    assert.ok(script.includes('-p udp -m udp --dport 30053') && script.includes('--to-destination 10.244.1.5:53'));
    assert.ok(!script.includes('30081'), 'no rule for a port without replicas');
    assert.equal(renderIngress([]), '*nat\n:BERTH-INGRESS - [0:0]\nCOMMIT\n', 'an empty set empties the chain');
  });

  it('is the same on every node whatever order the set arrives in; a duplicate port goes to the first service by name', () => {
    const a = svc('alpha', ['10.244.1.5'], [{ hostPort: 30080 }]);
    const b = svc('beta', ['10.244.2.5'], [{ hostPort: 30080 }]);
    assert.equal(renderIngress(ingressTargets([b, a])), renderIngress(ingressTargets([a, b])));
    assert.deepEqual(ingressTargets([b, a]).map((t) => t.service), ['default/alpha']);
  });
});

describe('scheduler host-port accounting', () => {
  it('counts host-mode ports only: ingress ports never make nodes compete', () => {
    const ports: PortSpec[] = [
      { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
      { containerPort: 81, hostPort: 8081, protocol: 'tcp', mode: 'host' },
      { containerPort: 82, hostPort: 30080, protocol: 'tcp', mode: 'ingress' },
      { containerPort: 83, protocol: 'udp' },
    ];
    assert.deepEqual(hostPortKeys(ports), ['8080/tcp', '8081/tcp']);
    assert.deepEqual(hostPortKeys(undefined), []);
  });
});

describe('published-port admission between services', () => {
  const service = (ns: string, name: string, ports: PortSpec[]): Service => ({
    kind: 'Service',
    metadata: { name, namespace: ns, uid: name, generation: 1, labels: {}, createdAt: '' },
    spec: { replicas: 1, template: { image: 'x', ports } },
    status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  });
  const host = (hostPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortSpec => ({ containerPort: 80, hostPort, protocol });
  const ingress = (hostPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortSpec => ({ containerPort: 80, hostPort, protocol, mode: 'ingress' });
  const others = [service('default', 'web', [host(8080)]), service('shop', 'front', [ingress(30080)])];
  const cases: { name: string; ports: PortSpec[]; self?: string; clash?: RegExp }[] = [
    { name: 'two host-mode services may share a host port (the scheduler separates them)', ports: [host(8080)] },
    { name: 'an ingress port on another service\'s host port is refused', ports: [ingress(8080)], clash: /8080\/tcp .*"default\/web" \(mode host\)/ },
    { name: 'a host port on another service\'s ingress port is refused', ports: [host(30080)], clash: /30080\/tcp .*"shop\/front" \(mode ingress\)/ },
    { name: 'an ingress port on another ingress port is refused, across namespaces', ports: [ingress(30080)], clash: /"shop\/front"/ },
    { name: 'the same number on the other protocol is free', ports: [ingress(8080, 'udp'), host(30080, 'udp')] },
    { name: 'a service does not collide with itself when replaced', ports: [ingress(30080)], self: 'shop/front' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [ns, name] = (c.self ?? 'default/new').split('/') as [string, string];
      const got = portConflict({ replicas: 1, template: { image: 'x', ports: c.ports } }, { namespace: ns, name }, others);
      if (!c.clash) return assert.equal(got, undefined);
      assert.equal(got?.code, 'BERTH_ERR_CONFLICT');
      assert.equal(got?.field, 'spec.template.ports[0].hostPort');
      assert.match(got!.message, c.clash);
    });
  }
});
