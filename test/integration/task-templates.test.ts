/**
 * Task templates stored once per revision, against a real etcd: a task refers to its template
 * instead of carrying it, the tasks cache fills it in (one shared object per revision), holds a
 * task back while its template has not been seen, and API-style reads fill it in as well.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import type { ContainerTemplate, Task } from '../../control-plane/objects/types.js';
import type { CacheEvent } from '../../control-plane/store/cache.js';
import { startInformers, type Informers } from '../../control-plane/store/informers.js';
import { taskKey } from '../../control-plane/store/keys.js';
import { Store } from '../../control-plane/store/store.js';
import { listTasks, templateCreateOp } from '../../control-plane/store/task-templates.js';
import { waitFor } from '../support/cluster.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-task-templates-test-'));
let etcd: EmbeddedEtcd;
let store: Store;
let inf: Informers | undefined;

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23919, peerPort: 23920, log: silentLogger });
  store = Store.connect([etcd.endpoint]);
});

after(async () => {
  await inf?.stop();
  store?.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const TEMPLATE: ContainerTemplate = { image: 'oci-archive:/images/busybox.tar', env: { BIG: 'x'.repeat(4096) } };

function task(name: string, ref: string): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: { service: 'web', nodeName: '', desiredState: 'running', template: TEMPLATE, templateRef: ref, revision: 1 },
    status: { phase: 'pending', restarts: 0 },
  };
}

test('tasks are stored without their template and read back with it; the cache shares one copy and waits for it', async () => {
  inf = await startInformers(store, silentLogger);
  const events: CacheEvent<Task>[] = [];
  inf.tasks.onChange((e) => events.push(e));
  // Out of order on purpose: the task is written before its template.
  assert.ok((await store.create(taskKey('default', 'web', 'web-a'), task('web-a', 'svc1.1'))).ok);
  const raw = (await store.list<Task>('tasks/default/web/')).items;
  assert.equal(raw.length, 1);
  assert.equal(raw[0]!.spec.template, undefined, 'stored without the template');
  assert.equal((await listTasks(store, 'tasks/default/web/'))[0]!.spec.template, undefined, 'no template stored yet: read without one');
  await waitFor(() => (BigInt(inf!.tasks.lastRevision()) >= BigInt(raw[0]!.metadata.resourceVersion!) ? true : undefined), 10_000, () => 'the cache saw the task');
  assert.equal(inf.tasks.list().length, 0, 'held back while its template is unknown');

  const [created] = await store.commit([templateCreateOp('default', 'web', 'svc1.1', TEMPLATE)]);
  assert.ok(created!.ok);
  await waitFor(() => (inf!.tasks.list().length === 1 ? true : undefined), 10_000, () => 'the task appears once its template is seen');
  assert.deepEqual(events.map((e) => `${e.type} ${e.key}`), ['put tasks/default/web/web-a']);

  assert.ok((await store.create(taskKey('default', 'web', 'web-b'), task('web-b', 'svc1.1'))).ok);
  await waitFor(() => (inf!.tasks.list().length === 2 ? true : undefined), 10_000, () => 'second task cached');
  const [a, b] = inf.tasks.list();
  assert.deepEqual(a!.spec.template, TEMPLATE);
  assert.equal(a!.spec.template, b!.spec.template, 'one shared template object per revision');
  assert.ok(Object.isFrozen(a!.spec.template.env), 'the shared template is frozen through');
  const listed = await listTasks(store, 'tasks/default/');
  assert.deepEqual(listed.map((t) => [t.metadata.name, t.spec.template.env?.BIG?.length]), [['web-a', 4096], ['web-b', 4096]]);
  assert.deepEqual(inf.templates.refs('default', 'web'), ['svc1.1']);
});
