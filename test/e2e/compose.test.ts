/**
 * A compose file on a two-host local cluster, through `berth apply -f compose.yaml`: three
 * services come up in the project's namespace — one mounting a named volume, one reading a
 * secret made from a file beside the compose file at /run/secrets/<name>, one answering on a
 * published port from the other host; then the example stack in deploy/examples/compose is
 * admitted as converted. Traffic goes only to this cluster's host addresses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, REPO_ROOT, run, waitFor, type ClusterHost, type ClusterStatus, downCluster, upCluster } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `cmp${process.pid % 10000}`;
const NS = 'shop';
const EXAMPLE_NS = 'example';
const HOST_PORT = 18090;
const SECRET_TEXT = 'correct horse battery staple\n';
const RUNNING_TIMEOUT_MS = 120_000;
const WGET_TIMEOUT_MS = 20_000;

const COMPOSE = `name: ${NS}
services:
  store:
    image: oci-archive:${SEED_ARCHIVE}
    command: sh -c "echo kept > /data/mark && exec sleep 100000"
    volumes: ["data:/data"]
    deploy: { resources: { limits: { cpus: "0.1", memory: 32m, pids: 32 } } }
  app:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", 'echo "$$MODE" > /tmp/mode && exec sleep 100000']
    secrets: [db_password]
    environment: { MODE: "\${MODE:-compose}" }
    deploy: { resources: { limits: { cpus: "0.1", memory: 32m, pids: 32 } } }
  web:
    image: oci-archive:${SEED_ARCHIVE}
    entrypoint: ["httpd", "-f"]
    command: ["-p", "8080", "-h", "/var/www"]
    ports: ["${HOST_PORT}:8080"]
    deploy: { replicas: 1, resources: { limits: { cpus: "0.1", memory: 32m, pids: 32 } } }
volumes:
  data: {}
secrets:
  db_password:
    file: ./db_password.txt
`;

describe('a compose file on a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  let dir = '';
  const cli = (args: string[]): ReturnType<typeof berth> => berth(server, ['-n', NS, ...args]);
  const wide = (): string => cli(['get', 'tasks', '-o', 'wide']).stdout;
  const running = (service: string): Promise<Task> => waitFor(
    () => berthJson<Task[]>(server, ['-n', NS, 'get', 'tasks', '--service', service]).find((t) => t.status.phase === 'running' && t.status.ip),
    RUNNING_TIMEOUT_MS, wide);

  before(() => {
    ensureSeedImage();
    dir = mkdtempSync(join(tmpdir(), 'berth-compose-e2e-'));
    writeFileSync(join(dir, 'compose.yaml'), COMPOSE);
    writeFileSync(join(dir, 'db_password.txt'), SECRET_TEXT);
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
    downCluster(CLUSTER);
  });

  test('apply -f compose.yaml creates the namespace, the secret and the three services', () => {
    const r = berth(server, ['apply', '-f', join(dir, 'compose.yaml')]);
    assert.equal(r.code, 0, `apply: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, `namespace/${NS} created\nsecret/db-password created\nservice/store created\nservice/app created\nservice/web created\n`);
    const again = berth(server, ['apply', '-f', join(dir, 'compose.yaml')]);
    assert.equal(again.code, 0, `second apply: ${again.stderr}`);
    assert.match(again.stdout, /service\/web unchanged/, 'applying the same file again changes nothing');
  });

  test('the store service writes into its named volume', async () => {
    const t = await running('store');
    const mark = await waitFor(() => {
      const r = cli(['exec', t.metadata.name, '--', 'cat', '/data/mark']);
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, () => cli(['exec', t.metadata.name, '--', 'ls', '-la', '/data']).stdout);
    assert.equal(mark, 'kept\n');
    const mounts = cli(['exec', t.metadata.name, '--', 'grep', ' /data ', '/proc/mounts']);
    assert.equal(mounts.code, 0, `/data is a mount of its own: ${mounts.stdout}${mounts.stderr}`);
  });

  test('the app service reads the secret file at /run/secrets/db_password, and its interpolated environment', async () => {
    const t = await running('app');
    const secret = cli(['exec', t.metadata.name, '--', 'cat', '/run/secrets/db_password']);
    assert.equal(secret.code, 0, `cat the secret: ${secret.stderr}`);
    assert.equal(secret.stdout, SECRET_TEXT);
    // the container's own process wrote what it saw: $$ left "$MODE" for its shell, ${MODE:-compose} gave the value
    const env = await waitFor(() => {
      const r = cli(['exec', t.metadata.name, '--', 'cat', '/tmp/mode']);
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, () => cli(['exec', t.metadata.name, '--', 'ls', '/tmp']).stdout);
    assert.equal(env, 'compose\n');
  });

  test('the web service answers on its published port from the other host', async () => {
    const t = await running('web');
    const host = cluster.hosts.find((h) => h.node === t.spec.nodeName)!;
    const other: ClusterHost = cluster.hosts.find((h) => h !== host)!;
    const got = await waitFor(() => {
      const r = run('ip', ['netns', 'exec', other.netns, 'busybox', 'wget', '-O', '-', `http://${host.address}:${HOST_PORT}/`], WGET_TIMEOUT_MS);
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, () => `wget from ${other.node} to ${host.address}:${HOST_PORT} keeps failing`);
    assert.match(got, /hello from berth/);
  });

  test('the example stack in deploy/examples/compose is admitted as converted and its tasks read their secret and config', async () => {
    const example = join(REPO_ROOT, 'deploy', 'examples', 'compose', 'compose.yaml');
    const r = berth(server, ['-n', EXAMPLE_NS, 'apply', '-f', example]);
    assert.equal(r.code, 0, `apply the example: ${r.stdout}${r.stderr}`);
    const inExample = (service: string): Promise<Task> => waitFor(
      () => berthJson<Task[]>(server, ['-n', EXAMPLE_NS, 'get', 'tasks', '--service', service]).find((t) => t.status.phase === 'running'),
      RUNNING_TIMEOUT_MS, () => berth(server, ['-n', EXAMPLE_NS, 'get', 'tasks', '-o', 'wide']).stdout);
    const db = await inExample('db');
    const secret = berth(server, ['-n', EXAMPLE_NS, 'exec', db.metadata.name, '--', 'cat', '/run/secrets/db_password']);
    assert.equal(secret.stdout, 'change-me\n', `db reads its secret: ${secret.stderr}`);
    const web = await inExample('web');
    const conf = berth(server, ['-n', EXAMPLE_NS, 'exec', web.metadata.name, '--', 'cat', '/etc/web.conf']);
    assert.equal(conf.stdout, 'greeting=hello from the compose example\n', `web reads its config: ${conf.stderr}`);
  });
});
