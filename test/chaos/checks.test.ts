/**
 * The chaos suite's own checkers, without a cluster: a checker that cannot see a violation would
 * make every run look clean, so each one is shown a state that breaks its invariant and one that
 * does not. Also the cuttable proxy the etcd-cut fault relies on.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server } from 'node:net';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { CuttableProxy } from '../support/tcp-proxy.js';
import { checkHostIps, compareHost } from './host-checks.js';
import { localAddresses, vethOf, type HostState } from './host-state.js';
import { checkApiIps, checkCapacity, checkSurge, specVersion, type SurgeBound } from './invariants.js';
import { Workload, manifest, type ServiceState } from './workload.js';
import { Liveness, componentsDown } from './liveness.js';
import type { ChaosStatus } from './cluster.js';
import { spawnSync } from 'node:child_process';
import { Rng } from './random.js';

const meta = (name: string, uid = name, generation = 1) => ({ name, namespace: 'default', uid, generation, labels: {}, createdAt: '2026-01-01T00:00:00Z' });

function svc(name: string, replicas: number, generation = 1, observedGeneration = generation, maxSurge = 1): Service {
  return { kind: 'Service', metadata: meta(name, `uid-${name}`, generation),
    spec: { replicas, template: { image: 'x', resources: { cpu: 0.5, memory: 1 } }, update: { maxSurge } },
    status: { observedGeneration, replicas, runningReplicas: replicas, conditions: [] } };
}

function task(name: string, opts: Partial<{ service: string; node: string; desired: 'running' | 'stopped'; phase: Task['status']['phase']; ip: string; cpu: number }> = {}): Task {
  return { kind: 'Task', metadata: meta(name, `uid-${name}`),
    spec: { service: opts.service ?? 'web', nodeName: opts.node ?? 'n1', desiredState: opts.desired ?? 'running', template: { image: 'x', resources: { cpu: opts.cpu ?? 0.5, memory: 1 } }, revision: 1 },
    status: { phase: opts.phase ?? 'running', restarts: 0, ...(opts.ip ? { ip: opts.ip } : {}) } };
}

const node = (name: string, cpu: number): Node => ({ kind: 'Node', metadata: meta(name),
  spec: { unschedulable: false, taints: [] },
  status: { capacity: { cpu, memory: 1e9, pids: 1e5 }, allocatable: { cpu, memory: 1e9, pids: 1e5 }, addresses: [], metricsUrl: '', conditions: [], agentVersion: '', cgroupVersion: 'v1' } });

const currentOnly: SurgeBound = (s) => ({ allowed: specVersion(s).replicas + specVersion(s).maxSurge, detail: 'current' });

describe('chaos checkers', () => {
  it('surge: replicas + maxSurge running is fine, one more is a violation naming the service and its tasks', () => {
    const ok = { services: [svc('web', 2)], tasks: [task('a'), task('b'), task('c'), task('d', { desired: 'stopped' })], nodes: [] };
    assert.deepEqual(checkSurge(ok, currentOnly, 't')[0], []);
    const bad = { ...ok, tasks: [...ok.tasks, task('e')] };
    const [v] = checkSurge(bad, currentOnly, 't');
    assert.equal(v.length, 1);
    assert.equal(v[0]!.invariant, 'surge');
    assert.ok(v[0]!.objects.includes('service default/web'));
    assert.equal(v[0]!.objects.length, 5, 'the service and its four running tasks');
  });

  it('surge: an unknown generation skips the check rather than guess', () => {
    const s = { services: [svc('web', 1)], tasks: [task('a'), task('b'), task('c')], nodes: [] };
    assert.deepEqual(checkSurge(s, () => undefined, 't'), [[], 0]);
  });

  it('ip-unique-api: two running tasks with one address are a violation; a stopped one is not', () => {
    const tasks = [task('a', { ip: '10.0.0.2' }), task('b', { ip: '10.0.0.2', phase: 'stopped' }), task('c', { ip: '10.0.0.3' })];
    assert.deepEqual(checkApiIps({ services: [], tasks, nodes: [] }, 't'), []);
    const v = checkApiIps({ services: [], tasks: [...tasks, task('d', { ip: '10.0.0.3' })], nodes: [] }, 't');
    assert.equal(v.length, 1);
    assert.ok(v[0]!.objects[0] === 'ip 10.0.0.3');
  });

  it('capacity: unfinished tasks past allocatable are a violation; terminal ones hold nothing', () => {
    const tasks = [task('a', { cpu: 1 }), task('b', { cpu: 1, phase: 'assigned' }), task('c', { cpu: 1, phase: 'failed' })];
    assert.deepEqual(checkCapacity({ services: [], tasks, nodes: [node('n1', 2)] }, 't')[0], []);
    const [v] = checkCapacity({ services: [], tasks: [...tasks, task('d', { cpu: 0.5, desired: 'stopped' })], nodes: [node('n1', 2)] }, 't');
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /cpu 2\.500 > 2/);
  });

  it('fib_trie: the container addresses, loopback left out', () => {
    const trie = `Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.244.7.0\n        /24 link UNICAST\n     |-- 10.244.7.5\n        /32 host LOCAL\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 10.244.7.255\n        /32 link BROADCAST\nLocal:\n     |-- 10.244.7.5\n        /32 host LOCAL\n`;
    assert.deepEqual(localAddresses(trie), ['10.244.7.5']);
  });

  const host = (over: Partial<HostState>): HostState => ({ node: 'n1', containers: [], containerDirs: [], cgroupIds: [], veths: [], natIds: [], ipam: new Map(),
    mounts: [], shims: new Map(), netnsProcesses: [], errors: [], ...over });

  it('compareHost: a host that runs exactly its tasks is clean; each kind of leftover is named', () => {
    const t = { ...task('a', { ip: '10.244.1.2' }) };
    const id = t.metadata.uid;
    const exact = host({ containers: [{ id, pid: 10, ips: ['10.244.1.2'] }], containerDirs: [id], cgroupIds: [id], veths: [vethOf(id)],
      ipam: new Map([['10.244.1.2', id]]), shims: new Map([[id, 9]]) });
    assert.deepEqual(compareHost(exact, [t]), []);
    const leaky = host({ ...exact, veths: [vethOf(id), 'vbdeadbeef000'], cgroupIds: [id, 'gone'], natIds: ['gone'], mounts: ['/x/containers/gone/rootfs'],
      ipam: new Map([['10.244.1.2', id], ['10.244.1.3', 'gone']]), netnsProcesses: [{ pid: 5, cmd: 'ip monitor' }] });
    const problems = compareHost(leaky, [t], leaky);
    for (const what of ['veth vbdeadbeef000', 'container cgroup gone', 'nat rule of container gone', 'mount /x/containers/gone/rootfs', 'address record of gone', 'process 5 (ip monitor)']) {
      assert.ok(problems.some((p) => p.includes(what)), `${what} reported in ${JSON.stringify(problems)}`);
    }
    assert.ok(compareHost(exact, []).some((p) => p.includes('without a running task')), 'a container with no task is named');
  });

  it('ip-unique on hosts: one address in two containers anywhere is a violation', () => {
    const a = host({ node: 'n1', containers: [{ id: 'x', pid: 1, ips: ['10.244.1.2'] }] });
    const b = host({ node: 'n2', containers: [{ id: 'y', pid: 2, ips: ['10.244.1.2'] }] });
    assert.deepEqual(checkHostIps([a]), []);
    assert.equal(checkHostIps([a, b]).length, 1);
  });

  it('acknowledged writes: the served state must be one the acknowledgements allow', () => {
    const w = new Workload({ servers: () => [], rng: new Rng(1), runTag: 'ct', clusterCpu: 6, startedAtMs: 0, log: () => undefined });
    const model = (w as unknown as { model: Map<string, ServiceState[]> }).model;
    const s: ServiceState = { present: true, replicas: 2, gen: 3, cpu: 0.1, maxSurge: 1, maxUnavailable: 0 };
    model.set('ct-1', [s]);
    const served = JSON.parse(manifest('ct-1', 'ct', s)) as Service;
    assert.deepEqual(w.checkAcknowledged([served]), []);
    const older = JSON.parse(manifest('ct-1', 'ct', { ...s, gen: 2 })) as Service;
    assert.equal(w.checkAcknowledged([older])[0]?.invariant, 'acked-write-lost');
    assert.equal(w.checkAcknowledged([])[0]?.invariant, 'acked-write-lost', 'a service that vanished');
    model.set('ct-1', [s, { ...s, present: false }]);
    assert.deepEqual(w.checkAcknowledged([]), [], 'an unanswered delete may have applied');
  });
});

describe('liveness', () => {
  it('a process that exits on its own is a crash; one a fault announced is not; a missing one keeps convergence back', () => {
    const gone = spawnSync('true').pid!;
    const status = (pid: number | null): ChaosStatus => ({ server: '', config: '', ca: '', etcd: '', runDir: '', etcdCluster: null, etcdProxy: null, hosts: [],
      controlPlanes: [{ replica: 2, server: '', gateway: '', pid, log: '/nonexistent', dataDir: '', etcd: '' }] });
    const live = new Liveness();
    live.update(status(process.pid));
    assert.deepEqual(live.check(), [], 'this process is alive');
    live.update(status(gone));
    const v = live.check();
    assert.equal(v.length, 1);
    assert.equal(v[0]!.invariant, 'no-crash');
    assert.ok(v[0]!.objects[0] === `control plane 2 pid ${gone}`);
    live.expectExit(gone);
    assert.deepEqual(live.check(), [], 'killed by a fault');
    assert.deepEqual(componentsDown(status(null)), ['control plane 2 is not running (log /nonexistent)']);
  });
});

describe('the cuttable TCP proxy', () => {
  it('forwards, refuses while cut, forwards again once restored', async () => {
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const upstream = (echo.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    // the first upstream refuses: the proxy must fall through to the next one
    const proxy = new CuttableProxy({ host: '127.0.0.1', port }, [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: upstream }]);
    const roundTrip = (): Promise<string> => new Promise((resolve, reject) => {
      const c = createConnection(port, '127.0.0.1', () => c.write('ping'));
      c.on('data', (d) => { resolve(d.toString()); c.destroy(); });
      c.on('error', reject);
    });
    try {
      await proxy.restore();
      assert.equal(await roundTrip(), 'ping');
      await proxy.cut();
      await assert.rejects(roundTrip(), /ECONNREFUSED/);
      await proxy.restore();
      assert.equal(await roundTrip(), 'ping');
    } finally {
      await proxy.cut();
      await new Promise<void>((r) => echo.close(() => r()));
    }
  });
});
