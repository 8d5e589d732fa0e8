/**
 * Secrets and configs on a real local cluster, driven by the real CLI: the container reads a
 * secret's files on a tmpfs of its own while the value is absent from etcd's files, every API
 * answer without --reveal and every file on the node's disk; a missing secret keeps the task
 * preparing with a reason naming it; a changed value rolls the service.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, downCluster, run, upCluster, waitFor, type ClusterStatus } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `sec${process.pid % 10000}`;
const VALUE = `pw-${process.pid}-Zq7xVb9`;
const NEW_VALUE = `pw2-${process.pid}-Kd3mQp1`;

function serviceYaml(name: string, secret: string): string {
  return `kind: Service
metadata: { name: ${name} }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    user: "1000:1000"
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    secrets:
      - { name: ${secret} }
      - { name: ${secret}, key: password, target: /etc/app/db-password, mode: "0440" }
    configs:
      - { name: app, key: app.conf, target: /etc/app/app.conf }
`;
}

describe('secrets and configs on a local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';

  before(() => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 1);
    server = cluster.server;
  });

  after(() => {
    downCluster(CLUSTER);
  });

  const runningTask = (service: string, not?: string): Promise<Task> => waitFor(() =>
    berthJson<Task[]>(server, ['get', 'tasks', '--service', service]).find((t) => t.status.phase === 'running' && t.metadata.name !== not),
  90_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
  const exec = (task: string, cmd: string[]): { code: number; stdout: string; stderr: string } => berth(server, ['exec', task, '--', ...cmd]);

  test('a container reads its secret and config files; the value is nowhere on disk or in API answers', async () => {
    const created = berth(server, ['create', 'secret', 'db', '--from-literal', `password=${VALUE}`, '--from-literal', 'user=app']);
    assert.equal(created.code, 0, created.stderr);
    const cfg = berth(server, ['apply', '-f', '-'], 'kind: Config\nmetadata: { name: app }\ndata: { app.conf: "port=8080\\n" }\n');
    assert.equal(cfg.code, 0, cfg.stderr);
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml('api', 'db'));
    assert.equal(applied.code, 0, applied.stderr);
    const task = await runningTask('api');

    assert.equal(exec(task.metadata.name, ['cat', '/run/secrets/db/password']).stdout, VALUE);
    assert.equal(exec(task.metadata.name, ['cat', '/run/secrets/db/user']).stdout, 'app');
    assert.equal(exec(task.metadata.name, ['cat', '/etc/app/db-password']).stdout, VALUE);
    assert.equal(exec(task.metadata.name, ['cat', '/etc/app/app.conf']).stdout, 'port=8080\n');
    const modes = exec(task.metadata.name, ['stat', '-c', '%a %u %g', '/run/secrets/db/password', '/etc/app/db-password', '/etc/app/app.conf']).stdout.trim().split('\n');
    assert.deepEqual(modes, ['400 1000 1000', '440 1000 1000', '444 1000 1000'], 'secret files are the container user\'s, 0400 by default');
    const mounts = exec(task.metadata.name, ['cat', '/proc/self/mounts']).stdout;
    assert.match(mounts, /^tmpfs \/run\/secrets\/db\/password /m, `the secret lies on a tmpfs:\n${mounts}`);

    // Nowhere on disk: the node's state dir (spec.json, logs, layers), etcd's data, the host's mount table.
    for (const dir of [cluster.hosts[0]!.stateDir, `/var/lib/berth-local/${CLUSTER}`]) {
      const found = run('grep', ['-rlaF', VALUE, dir]);
      assert.equal(found.code, 1, `the value is in files under ${dir}: ${found.stdout}`);
    }
    assert.ok(!run('cat', ['/proc/self/mountinfo']).stdout.includes('/run/secrets'), 'the host sees no secret mount');
    for (const args of [['get', 'secrets', '-o', 'json'], ['get', 'secret', 'db', '-o', 'yaml'], ['get', 'services', '-o', 'json'], ['get', 'tasks', '-o', 'json'], ['describe', 'task', task.metadata.name]]) {
      const out = berth(server, args);
      assert.ok(!out.stdout.includes(VALUE) && !out.stdout.includes(Buffer.from(VALUE).toString('base64')), `berth ${args.join(' ')} shows the value`);
    }
    const revealed = berth(server, ['get', 'secret', 'db', '--reveal']);
    assert.equal(revealed.code, 0, revealed.stderr);
    assert.match(revealed.stdout, new RegExp(`^password: ${VALUE}$`, 'm'));
  });

  test('a missing secret keeps the task preparing with a reason naming it, until it exists', async () => {
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml('waits', 'later'));
    assert.equal(applied.code, 0, applied.stderr);
    const waiting = await waitFor(() => berthJson<Task[]>(server, ['get', 'tasks', '--service', 'waits'])
      .find((t) => t.status.phase === 'preparing' && /later/.test(`${t.status.reason} ${t.status.message ?? ''}`)), 60_000,
    () => JSON.stringify(berthJson<Task[]>(server, ['get', 'tasks', '--service', 'waits']).map((t) => t.status)));
    assert.equal(waiting.status.reason, 'SecretNotFound');
    const created = berth(server, ['create', 'secret', 'later', '--from-literal', 'password=p']);
    assert.equal(created.code, 0, created.stderr);
    const task = await runningTask('waits');
    assert.equal(exec(task.metadata.name, ['cat', '/run/secrets/later/password']).stdout, 'p');
  });

  test('a changed secret rolls the service: the replacement reads the new value', async () => {
    const before = await runningTask('api');
    const changed = berth(server, ['apply', '-f', '-'], `kind: Secret\nmetadata: { name: db }\nstringData: { password: ${NEW_VALUE}, user: app }\n`);
    assert.equal(changed.code, 0, changed.stderr);
    const after = await runningTask('api', before.metadata.name);
    assert.equal(exec(after.metadata.name, ['cat', '/run/secrets/db/password']).stdout, NEW_VALUE);
    const inUse = berth(server, ['delete', 'secret', 'db']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /used by service api/);
  });
});
