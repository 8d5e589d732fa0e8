/**
 * HA control plane: two berth-control-plane processes on a 3-member etcd (deploy/etcd-cluster).
 * Proves: one leader, takeover within 5 s of a SIGKILL, a scale 10 → 50 interrupted by the
 * leader's death ends with exactly 50 distinct placed tasks, a deposed leader's writes are
 * fenced, and losing one etcd member keeps the cluster serving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { AgentGatewayClient, type AgentMessage } from '../../proto/gen/berth/v1/agent.js';
import { NodeIdentity } from '../../agent/pki.js';
import { AGENT_SESSION_CHANNEL_OPTIONS, GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import { Election, LEADER_KEY, type LeaderRecord } from '../../control-plane/election.js';
import type { Task } from '../../control-plane/objects/types.js';
import { ROOT_PREFIX } from '../../control-plane/store/keys.js';
import { Store, type Guard } from '../../control-plane/store/store.js';
import { createLogger } from '../../common/log.js';
import { REPO_ROOT, pidAlive, waitFor } from '../support/cluster.js';
import { apiFetch, joinToken, type SecureTarget } from '../support/secure.js';

const NAME = `ha${process.pid % 100000}`;
const PORT_BASE = 25790;
const API_PORTS = [25880, 25882];
const LEADER_TAKEOVER_LIMIT_MS = 5_000;
const dataDir = mkdtempSync(join(tmpdir(), 'berth-ha-test-'));
const script = join(REPO_ROOT, 'deploy', 'etcd-cluster');
const log = createLogger('warn');
/** sealingKeyFile is shared by every replica: each must open the CA key the first one sealed. */
const sealingKeyFile = join(dataDir, 'sealing.key');
/** adminConfig is written by the first replica, which makes the CA and the admin token; its token works on every replica. */
const adminConfig = join(dataDir, 'admin.config');

let endpoints: string[] = [];
let etcd: Etcd3;
const replicas = new Map<string, ChildProcess>();
const agents: (() => void)[] = [];

function etcdCluster(...args: string[]): string {
  const r = spawnSync(script, [...args, '--name', NAME], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`etcd-cluster ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function startReplica(apiPort: number): string {
  const apiUrl = `https://127.0.0.1:${apiPort}`;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'main.js'),
    '--etcd', endpoints.join(','), '--listen', `127.0.0.1:${apiPort}`, '--gateway-listen', `127.0.0.1:${apiPort + 1}`,
    '--data-dir', join(dataDir, String(apiPort)), '--sealing-key-file', sealingKeyFile, '--admin-config', adminConfig,
    '--leader-lease-ttl', '2', '--node-lease-ttl', '30', '--log-level', 'warn'],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  replicas.set(apiUrl, child);
  return apiUrl;
}

async function leader(): Promise<LeaderRecord | undefined> {
  const v = await etcd.get(ROOT_PREFIX + LEADER_KEY).string();
  return v ? (JSON.parse(v) as LeaderRecord) : undefined;
}

/** target is the replica serving base, reached as the cluster admin. */
function target(base: string): SecureTarget {
  return { apiUrl: base, adminConfig };
}

/** api sends one request to the replica at base as the admin, over HTTPS verified against the cluster CA. */
async function api(base: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await apiFetch(target(base), method, path, { body });
  await res.arrayBuffer();
  return res.status;
}

/** waitHealthy waits until the replica at base answers /healthz (its admin config must exist by then). */
async function waitHealthy(base: string): Promise<void> {
  await waitFor(async () => ((await api(base, 'GET', '/healthz').catch(() => 0)) === 200 ? true : undefined), 30_000, () => `${base} healthy`);
}

async function tasksOf(service: string): Promise<Task[]> {
  const all = await etcd.getAll().prefix(`${ROOT_PREFIX}tasks/default/${service}/`).strings();
  // Task templates are stored once beside the tasks (task-templates.ts): count tasks only.
  return Object.values(all).map((v) => JSON.parse(v) as Task).filter((o) => o.kind === 'Task');
}

/**
 * fakeAgent joins as nodeName through gateway with a join token made on apiUrl (a real node
 * certificate), registers over mTLS and heartbeats until the test ends.
 */
async function fakeAgent(apiUrl: string, gateway: string, nodeName: string): Promise<void> {
  const identity = new NodeIdentity({ stateDir: join(dataDir, 'agents', nodeName), nodeName, joinToken: await joinToken(target(apiUrl)), log });
  const client = new AgentGatewayClient(gateway, await identity.channel([gateway]),
    { ...AGENT_SESSION_CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
  const call = client.session();
  call.on('data', () => undefined);
  call.on('error', () => undefined);
  const send = (m: AgentMessage): void => { call.write(m); };
  send({ msg: { $case: 'register', value: {
    nodeName, labels: { zone: nodeName.endsWith('1') ? 'a' : 'b' }, capacity: { cpuCores: 64, memoryBytes: 64 * 1024 ** 3, pids: 100_000 },
    addresses: [{ type: 'InternalIP', address: '10.79.0.1' }], metricsUrl: 'http://10.79.0.1:9480/metrics', agentVersion: 'test', cgroupVersion: 'v1', images: [], volumes: [],
  } } });
  const beat = setInterval(() => send({ msg: { $case: 'heartbeat', value: { sentAtUnixMs: Date.now() } } }), 500);
  agents.push(() => { clearInterval(beat); call.end(); call.cancel(); client.close(); });
}

const service = (name: string, n: number) => ({
  kind: 'Service', metadata: { name },
  spec: { replicas: n, template: { image: 'oci-archive:/images/busybox.tar', command: ['sleep', '1000'], resources: { cpu: '10m', memory: '4Mi' } } },
});

before(async () => {
  etcdCluster('down');
  const out = etcdCluster('up', '--port-base', String(PORT_BASE));
  endpoints = /BERTH_ETCD=(\S+)/.exec(out)![1]!.split(',');
  etcd = new Etcd3({ hosts: endpoints });
  // One at a time: the first makes sealingKeyFile, the CA and the admin token (adminConfig); the
  // others open that CA. Started together, both would find no CA and race to make the key file.
  for (const p of API_PORTS) await waitHealthy(startReplica(p));
});

after(async () => {
  for (const end of agents) end();
  for (const child of replicas.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  etcd?.close();
  etcdCluster('down');
  rmSync(dataDir, { recursive: true, force: true });
});

test('leader killed during a scale 10 → 50: a follower leads within 5 s and exactly 50 distinct tasks are placed', async () => {
  const first = await waitFor(leader, 10_000, () => 'a leader');
  assert.ok(replicas.has(first.apiUrl!), `leader ${first.apiUrl} is one of ours`);
  const follower = [...replicas.keys()].find((u) => u !== first.apiUrl)!;
  // Agents hold sessions on the follower, so the leader's death does not touch their nodes.
  const followerGateway = follower.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) + 1}`).replace('https://', '');
  for (const n of ['ha-node-1', 'ha-node-2', 'ha-node-3']) await fakeAgent(follower, followerGateway, n);

  assert.equal(await api(follower, 'PUT', '/v1/namespaces/default/services/scaled', service('scaled', 10)), 201, 'the follower serves writes too');
  await waitFor(async () => ((await tasksOf('scaled')).filter((t) => t.spec.nodeName !== '').length === 10 ? true : undefined),
    20_000, () => '10 placed tasks');

  assert.equal(await api(follower, 'PUT', '/v1/namespaces/default/services/scaled/scale', { replicas: 50 }), 200);
  const killedAt = Date.now();
  replicas.get(first.apiUrl!)!.kill('SIGKILL');
  const next = await waitFor(async () => {
    const l = await leader();
    return l && l.apiUrl !== first.apiUrl ? l : undefined;
  }, LEADER_TAKEOVER_LIMIT_MS + 2_000, () => 'a new leader', 50);
  const takeoverMs = Date.now() - killedAt;
  assert.equal(next.apiUrl, follower);
  assert.ok(takeoverMs <= LEADER_TAKEOVER_LIMIT_MS, `takeover took ${takeoverMs} ms, want <= ${LEADER_TAKEOVER_LIMIT_MS}`);

  await waitFor(async () => {
    const ts = await tasksOf('scaled');
    return ts.length >= 50 && ts.every((t) => t.spec.nodeName !== '') ? true : undefined;
  }, 30_000, () => '50 placed tasks');
  // Give a stray duplicate time to show up before counting for good.
  await new Promise((r) => setTimeout(r, 2_000));
  const tasks = (await tasksOf('scaled')).filter((t) => t.spec.desiredState === 'running');
  assert.equal(tasks.length, 50, `running tasks: ${tasks.length}`);
  assert.equal(new Set(tasks.map((t) => t.metadata.name)).size, 50, 'task names are unique');
  assert.ok(tasks.every((t) => t.spec.nodeName.startsWith('ha-node-')), 'every task is placed on a registered node');
});

test('losing one etcd member keeps the control plane serving', async () => {
  const status = JSON.parse(etcdCluster('status')) as { members: { name: string; pid: number }[] };
  const victim = status.members[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await waitFor(() => (pidAlive(victim.pid) ? undefined : true), 5_000, () => `etcd member ${victim.name} gone`);
  const live = [...replicas.entries()].find(([, c]) => c.exitCode === null && c.signalCode === null)![0];
  const ok = await waitFor(async () => ((await api(live, 'PUT', '/v1/namespaces/default/services/survivor', service('survivor', 5)).catch(() => 0)) === 201 ? true : undefined),
    20_000, () => 'service accepted with one etcd member down');
  assert.ok(ok);
  await waitFor(async () => ((await tasksOf('survivor')).filter((t) => t.spec.nodeName !== '').length === 5 ? true : undefined),
    30_000, () => '5 placed survivor tasks');
});

test('a deposed leader that is still alive cannot write: its commit is fenced', async () => {
  // The same mechanism the replicas use, on a key of our own so the running leader is untouched:
  // a guard taken while "leading", then the key expires and a successor re-creates it.
  const fenceKey = 'election/test-fence';
  const abs = ROOT_PREFIX + fenceKey;
  const store = new Store(etcd);
  const createRevision = async (): Promise<string> => String((await etcd.kv.range({ key: Buffer.from(abs) })).kvs[0]!.create_revision);
  await etcd.put(abs).value('old-leader');
  const guard: Guard = { key: fenceKey, createRevision: await createRevision() };
  const leaderStore = store.withGuard(guard);
  const task = (name: string) => ({ kind: 'Task', metadata: { name, namespace: 'default', uid: name, generation: 1, labels: {}, createdAt: new Date().toISOString() }, spec: {}, status: {} }) as never;

  const [ok] = await leaderStore.commit([{ type: 'create', key: 'tasks/default/fence/fence-a', object: task('fence-a') }]);
  assert.equal(ok?.ok, true, 'the leader writes while its key holds');

  await etcd.delete().key(abs);
  await etcd.put(abs).value('new-leader');
  assert.notEqual(await createRevision(), guard.createRevision);
  const results = await leaderStore.commit([
    { type: 'create', key: 'tasks/default/fence/fence-b', object: task('fence-b') },
    { type: 'create', key: 'tasks/default/fence/fence-c', object: task('fence-c') },
  ]);
  assert.deepEqual(results, [{ ok: false, reason: 'Fenced' }, { ok: false, reason: 'Fenced' }]);
  const mutated = await leaderStore.mutate<Task>('tasks/default/fence/fence-a', (t) => ({ ...t, spec: { ...t.spec, nodeName: 'x' } }));
  assert.deepEqual(mutated, { ok: false, reason: 'Fenced' });
  const removed = await leaderStore.remove('tasks/default/fence/fence-a');
  assert.deepEqual(removed, { ok: false, reason: 'Fenced' });
  assert.equal(await store.get('tasks/default/fence/fence-b'), undefined, 'nothing was written');
  assert.ok(await store.get('tasks/default/fence/fence-a'), 'nothing was deleted');
  await etcd.delete().prefix(ROOT_PREFIX + 'tasks/default/fence/');
  await etcd.delete().key(abs);
});

test('an elector that loses its key steps down at once, and the next one leads', async () => {
  // Election on the real key against the live replica would race it; instead two electors on a
  // separate etcd prefix are not possible (the key is fixed), so check the contract in one: a
  // stopped elector resigns (deletes its key) and a waiting one takes over without a TTL wait.
  const client = new Etcd3({ hosts: endpoints });
  const events: string[] = [];
  const e = new Election({ store: new Store(client), ttlSeconds: 2, identity: 'probe', log, onElected: () => { events.push('elected'); }, onDeposed: () => { events.push('deposed'); } });
  try {
    e.start();
    // The live replica leads; the probe must wait and never claim leadership meanwhile.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(e.isLeader(), false, 'a follower while another replica holds the key');
    const live = [...replicas.values()].find((c) => c.exitCode === null && c.signalCode === null)!;
    live.kill('SIGKILL');
    await waitFor(() => (e.isLeader() ? true : undefined), LEADER_TAKEOVER_LIMIT_MS, () => `probe elected (events ${events.join(',')})`, 50);
    // Take the key away: the probe must notice and step down.
    await etcd.delete().key(ROOT_PREFIX + LEADER_KEY);
    await waitFor(() => (events.includes('deposed') ? true : undefined), 5_000, () => `probe steps down (events ${events.join(',')})`, 50);
  } finally {
    await e.stop();
    client.close();
  }
  assert.equal(events[0], 'elected');
});
