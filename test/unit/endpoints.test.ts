/** Endpoints: which replicas count as ready addresses, and one shared, debounced feed for all sessions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareIPv4, EndpointsFeed, endpointsOf, type EndpointsSnapshot } from '../../control-plane/network/endpoints.js';
import type { Service, Task, TaskStatus } from '../../control-plane/objects/types.js';
import type { CacheEvent } from '../../control-plane/store/cache.js';

const service = (name: string, namespace = 'default', ports: Service['spec']['template']['ports'] = []): Service => ({
  kind: 'Service',
  metadata: { name, namespace, uid: `${namespace}-${name}`, generation: 1, labels: {}, createdAt: '' },
  spec: { replicas: 1, template: { image: 'x', ports } },
});

let seq = 0;
const task = (svc: string, status: Partial<TaskStatus>, desiredState: 'running' | 'stopped' = 'running', namespace = 'default'): Task => ({
  kind: 'Task',
  metadata: { name: `${svc}-${++seq}`, namespace, uid: `t${seq}`, generation: 1, labels: {}, createdAt: '' },
  spec: { service: svc, nodeName: 'n1', desiredState, template: { image: 'x' }, revision: 1 },
  status: { phase: 'running', restarts: 0, ...status },
});

test('endpointsOf keeps running, ready, addressed, wanted replicas only, sorted numerically', () => {
  const services = [service('web', 'default', [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }, { name: 'm', containerPort: 9, protocol: 'udp', mode: 'ingress' }]), service('idle'), service('web', 'shop')];
  const tasks = [
    task('web', { ready: true, ip: '10.244.0.10' }),
    task('web', { ready: true, ip: '10.244.0.9' }),
    task('web', { ready: false, ip: '10.244.0.11' }),
    task('web', { ready: true }),
    task('web', { phase: 'starting', ready: true, ip: '10.244.0.12' }),
    task('web', { ready: true, ip: '10.244.0.13' }, 'stopped'),
    task('web', { ready: true, ip: '10.244.3.1' }, 'running', 'shop'),
    task('gone', { ready: true, ip: '10.244.0.14' }),
  ];
  assert.deepEqual(endpointsOf(services, tasks), [
    { namespace: 'default', service: 'idle', ips: [], ports: [] },
    {
      namespace: 'default',
      service: 'web',
      ips: ['10.244.0.9', '10.244.0.10'],
      ports: [
        { name: '', containerPort: 80, hostPort: 8080, protocol: 'tcp', mode: 'host' },
        { name: 'm', containerPort: 9, hostPort: 0, protocol: 'udp', mode: 'ingress' },
      ],
    },
    { namespace: 'shop', service: 'web', ips: ['10.244.3.1'], ports: [] },
  ]);
});

test('compareIPv4 orders addresses by value', () => {
  assert.deepEqual(['10.0.0.10', '10.0.0.9', '9.255.255.255', '10.0.1.0'].sort(compareIPv4), ['9.255.255.255', '10.0.0.9', '10.0.0.10', '10.0.1.0']);
});

/** FakeCache is the part of a WatchCache the feed uses. */
class FakeCache<T> {
  items = new Map<string, T>();
  listeners = new Set<(e: CacheEvent<T>) => void>();
  list(): T[] { return [...this.items.values()]; }
  onChange(fn: (e: CacheEvent<T>) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  put(key: string, obj: T): void {
    const previous = this.items.get(key);
    this.items.set(key, obj);
    for (const fn of this.listeners) fn({ type: 'put', key, object: obj, ...(previous ? { previous } : {}) });
  }
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('EndpointsFeed computes once per burst for every subscriber and stays quiet on irrelevant changes', async () => {
  const services = new FakeCache<Service>();
  const tasks = new FakeCache<Task>();
  services.put('web', service('web'));
  let computations = 0;
  const origList = tasks.list.bind(tasks);
  tasks.list = () => {
    computations++;
    return origList();
  };
  const feed = new EndpointsFeed({ services, tasks } as never, 5);
  const seen: EndpointsSnapshot[][] = [[], [], []];
  const offs = seen.map((log) => feed.subscribe((s) => log.push(s)));
  assert.equal(computations, 1, 'the first subscriber computes; the others share the set');
  assert.ok(seen.every((l) => l.length === 1 && l[0]!.services[0]!.ips.length === 0));

  // A burst of changes that make two replicas ready: one recomputation, one notification each.
  const a = task('web', { ready: false, ip: '10.244.0.2' });
  const b = task('web', { ready: false, ip: '10.244.0.3' });
  tasks.put('a', a);
  tasks.put('b', b);
  assert.equal(computations, 1, 'unready replicas do not trigger work');
  tasks.put('a', { ...a, status: { ...a.status, ready: true } });
  tasks.put('b', { ...b, status: { ...b.status, ready: true } });
  await tick(30);
  assert.equal(computations, 2);
  assert.ok(seen.every((l) => l.length === 2));
  assert.deepEqual(seen[0]![1]!.services[0]!.ips, ['10.244.0.2', '10.244.0.3']);

  // A service change with the same outcome recomputes but notifies nobody.
  services.put('web', { ...service('web'), metadata: { ...service('web').metadata, generation: 2 } });
  await tick(30);
  assert.equal(computations, 3);
  assert.ok(seen.every((l) => l.length === 2), 'identical sets are not re-sent');

  for (const off of offs) off();
  assert.equal(tasks.listeners.size + services.listeners.size, 0, 'the last unsubscribe stops watching');
});
