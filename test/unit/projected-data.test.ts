/** What of Secrets and Configs a node's agent receives: only the objects its own tasks project. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProjectedData } from '../../control-plane/gateway/projected-data.js';
import { toDesiredTasks } from '../../control-plane/gateway/convert.js';
import type { Config, Secret } from '../../control-plane/objects/secret-types.js';
import type { ContainerTemplate, Task } from '../../control-plane/objects/types.js';
import type { WatchCache } from '../../control-plane/store/cache.js';
import type { SecretSealer } from '../../control-plane/security/secret-sealer.js';
import { silentLogger } from '../../common/log.js';
import { waitFor } from '../support/cluster.js';

/** cacheOf is a watch cache stand-in over fixed objects keyed by their etcd keys. */
function cacheOf<T>(objects: Record<string, T>): WatchCache<T> {
  return { get: (k: string) => objects[k], list: () => Object.values(objects), onChange: () => () => undefined } as unknown as WatchCache<T>;
}

const meta = (ns: string, name: string, generation = 1): Secret['metadata'] =>
  ({ name, namespace: ns, uid: name, generation, labels: {}, createdAt: '', resourceVersion: String(generation) });

// The sealer stand-in "opens" a value by reading it as the JSON it would have sealed.
const sealer = { open: async (sealed: string) => Buffer.from(sealed) } as unknown as SecretSealer;
const sealedOf = (values: Record<string, string>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])));

function task(ns: string, name: string, template: ContainerTemplate): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: ns, uid: `${name}-uid`, generation: 1, labels: {}, createdAt: '' },
    spec: { service: 'svc', nodeName: 'n1', desiredState: 'running', template, revision: 1 },
    status: { phase: 'assigned' },
  } as unknown as Task;
}

test('a node receives exactly the secrets and configs its tasks project, from their own namespace', async () => {
  const secrets = cacheOf<Secret>({
    'secrets/default/db': { kind: 'Secret', metadata: meta('default', 'db', 3), spec: { sealed: sealedOf({ password: 'pw' }), sizes: { password: 2 } }, status: {} },
    'secrets/default/other': { kind: 'Secret', metadata: meta('default', 'other'), spec: { sealed: sealedOf({ k: 'nope' }), sizes: { k: 4 } }, status: {} },
    'secrets/team/db': { kind: 'Secret', metadata: meta('team', 'db'), spec: { sealed: sealedOf({ password: 'team-pw' }), sizes: { password: 7 } }, status: {} },
  });
  const configs = cacheOf<Config>({ 'configs/default/app': { kind: 'Config', metadata: meta('default', 'app', 2), data: { 'app.conf': 'x=1' } } });
  const data = new ProjectedData(secrets, configs, sealer, silentLogger);
  const desired = toDesiredTasks([
    task('default', 'web-1', { image: 'x', secrets: [{ name: 'db' }], configs: [{ name: 'app' }] }),
    task('default', 'plain-1', { image: 'x' }),
  ]);
  await waitFor(() => {
    data.fill(desired);
    return Object.keys(desired.secrets).length > 0 ? true : undefined;
  }, 5_000, () => 'the secret was opened');
  assert.deepEqual(Object.keys(desired.secrets), ['default/db'], 'neither the unused secret nor another namespace\'s of the same name');
  assert.equal(desired.secrets['default/db']!.generation, 3);
  assert.equal(Buffer.from(desired.secrets['default/db']!.data.password!).toString(), 'pw');
  assert.deepEqual(Object.keys(desired.configs), ['default/app']);
  assert.equal(Buffer.from(desired.configs['default/app']!.data['app.conf']!).toString(), 'x=1');

  const none = toDesiredTasks([task('default', 'plain-2', { image: 'x' })]);
  data.fill(none);
  assert.deepEqual([Object.keys(none.secrets), Object.keys(none.configs)], [[], []], 'a node without such a task gets nothing');
  const missing = toDesiredTasks([task('default', 'w-1', { image: 'x', secrets: [{ name: 'absent' }] })]);
  data.fill(missing);
  assert.deepEqual(Object.keys(missing.secrets), [], 'a missing secret is left out; the agent reports SecretNotFound');
  data.stop();
});
