/**
 * Backup and restore with `berth-control-plane snapshot save|restore` on the real pieces: a
 * control-plane process with its embedded etcd and a real agent running containers. The store
 * is changed after the snapshot (a scale-up, a new service, a deleted one, a new token); after
 * the restore and a restart on the same data dir, the agent re-registers, the cluster is the
 * snapshot's again and the host runs exactly what it describes: the snapshot's services at
 * their replicas, nothing of the later service, no duplicate. Also: the refusals and exit codes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { classify } from '../../control-plane/snapshot/data-dir.js';
import { chooseEndpoint, etcdctlError, parseEndpointStatus } from '../../control-plane/snapshot/etcdctl.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import { LABEL_SERVICE } from '../../agent/reconciler/spec.js';
import { berth, berthJson, REPO_ROOT, useConfigFor, waitFor, type CommandResult } from '../support/cluster.js';
import { apiFetch, apiJson, createToken, joinToken, type SecureTarget } from '../support/secure.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';

const ETCD_CLIENT_PORT = 23921;
const ETCD_PEER_PORT = 23922;
const API_PORT = 23923;
const GATEWAY_PORT = 23924;
const NODE = 'snapshot-node';
/** KEEP and GONE exist at snapshot time; LATER is created after it. */
const KEEP = { name: 'keep', replicas: 3 };
const GONE = { name: 'gone', replicas: 2 };
const LATER = { name: 'later', replicas: 2 };
const STEP_LIMIT_MS = 180_000;
const STOP_LIMIT_MS = 30_000;
const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/etcd') && existsSync(process.env.BERTH_ETCDCTL_BIN ?? '/usr/bin/etcdctl');

/** snapshotCli runs `berth-control-plane snapshot ARGS` (never the host's config file). */
function snapshotCli(args: string[]): CommandResult {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist/control-plane/main.js'), 'snapshot', ...args, '--config', '/dev/null'],
    { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
}

const service = (s: { name: string; replicas: number }): string => `kind: Service
metadata: { name: ${s.name} }
spec:
  replicas: ${s.replicas}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.05, memory: 16Mi, pids: 16 }
`;

describe('snapshot helpers', () => {
  it('prefers the leader among the members that answered, else the first', () => {
    const a = { endpoint: 'a', memberId: '1', leaderId: '3', revision: 9 };
    const b = { endpoint: 'b', memberId: '2', leaderId: '3', revision: 9 };
    const c = { endpoint: 'c', memberId: '3', leaderId: '3', revision: 9 };
    assert.equal(chooseEndpoint([a, b, c])?.endpoint, 'c');
    assert.equal(chooseEndpoint([a, b])?.endpoint, 'a');
    assert.equal(chooseEndpoint([]), undefined);
  });

  it('keeps 64-bit member ids exact (JSON numbers would round them together)', () => {
    const out = '[{"Endpoint":"e","Status":{"header":{"cluster_id":1,"member_id":13049071153751544597,"revision":42,"raft_term":2},"leader":13049071153751544596}}]';
    const s = parseEndpointStatus('e', out)!;
    assert.deepEqual(s, { endpoint: 'e', memberId: '13049071153751544597', leaderId: '13049071153751544596', revision: 42 });
    assert.notEqual(s.memberId, s.leaderId, 'a follower is not taken for the leader');
  });

  it('reports etcdctl\'s Error: line, not its structured log lines', () => {
    assert.equal(etcdctlError('{"level":"info","msg":"x"}\nError: invalid database\n'), 'invalid database');
    assert.equal(etcdctlError('{"level":"warn","msg":"retrying","error":"refused"}\n'), 'retrying: refused');
  });

  it('finds the embedded etcd and the control plane of a data dir from their command lines', () => {
    const etcd = ['/usr/bin/etcd', '--name', 'berth', '--data-dir', '/d/cp/etcd', '--listen-client-urls', 'http://127.0.0.1:1'];
    assert.deepEqual(classify(etcd, '/', '/d/cp'), { what: 'etcd', clientUrls: ['http://127.0.0.1:1'] });
    assert.deepEqual(classify(['/usr/bin/etcd', '--data-dir=cp/etcd'], '/d', '/d/cp/'), { what: 'etcd' }, 'relative to its cwd');
    assert.equal(classify(['/usr/bin/etcd', '--data-dir', '/d/other/etcd'], '/', '/d/cp'), undefined);
    assert.deepEqual(classify(['node', '/x/dist/control-plane/main.js', '--data-dir', '/d/cp'], '/', '/d/cp'), { what: 'control plane' });
    assert.equal(classify(['node', '/x/dist/control-plane/main.js', 'snapshot', 'restore', 'f', '--data-dir', '/d/cp'], '/', '/d/cp'), undefined,
      'another snapshot command is not a server');
  });
});

describe('snapshot argument checks', { skip: !canRun && 'needs root, etcd and etcdctl' }, () => {
  let work: string;
  before(async () => { work = await mkdtemp(join(tmpdir(), 'berth-snapshot-args-')); });
  after(async () => { await rm(work, { recursive: true, force: true }); });

  it('save without FILE is bad usage (exit 2)', () => {
    const r = snapshotCli(['save']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /missing required argument 'file'/);
  });

  it('save into a missing directory is bad usage (exit 2), before etcd is asked', () => {
    const r = snapshotCli(['save', join(work, 'no', 'such', 'x.db'), '--etcd', 'http://127.0.0.1:1']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /BERTH_ERR_SNAPSHOT_USAGE: directory .* does not exist/);
  });

  it('save with no etcd answering exits 3 and writes nothing', () => {
    const file = join(work, 'unreachable.db');
    const r = snapshotCli(['save', file, '--data-dir', join(work, 'cp'), '--etcd-client-port', '1']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /BERTH_ERR_ETCD_UNREACHABLE: .*is the control plane of --data-dir .* running\?/);
    assert.deepEqual(readdirSync(work), [], 'no file and no temporary left behind');
  });

  it('restore of a missing file exits 6', () => {
    const r = snapshotCli(['restore', join(work, 'missing.db'), '--data-dir', join(work, 'cp')]);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /BERTH_ERR_SNAPSHOT_INVALID: .*missing\.db does not exist/);
  });

  it('restore of a file that is no snapshot exits 6 and creates nothing', () => {
    const junk = join(work, 'junk.db');
    writeFileSync(junk, 'not a bolt database\n');
    const r = snapshotCli(['restore', junk, '--data-dir', join(work, 'cp')]);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /is not a readable etcd snapshot: invalid database/);
    assert.equal(existsSync(join(work, 'cp')), false, 'the data dir is not created for a refused restore');
  });

  it('restore --etcd is refused (exit 2): external clusters are restored member by member', () => {
    const r = snapshotCli(['restore', join(work, 'junk.db'), '--data-dir', join(work, 'cp'), '--etcd', 'http://127.0.0.1:1']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /member by member/);
  });
});

describe('snapshot save, later changes, restore: the cluster converges on the snapshot', { skip: !canRun && 'needs root, etcd and etcdctl' }, () => {
  const cgroupParent = `berth-snapshot-${process.pid}`;
  let work: string;
  let dataDir: string;
  let stateDir: string;
  let agentLog: string;
  let cpLog: string;
  let snapshotFile: string;
  let cp: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  let laterToken = '';
  let lastSeen = '';
  const target: SecureTarget = { apiUrl: `https://127.0.0.1:${API_PORT}`, adminConfig: '' };

  const startControlPlane = async (): Promise<void> => {
    const out = openSync(cpLog, 'a');
    cp = spawn(process.execPath, [join(REPO_ROOT, 'dist/control-plane/main.js'),
      '--listen', `127.0.0.1:${API_PORT}`, '--gateway-listen', `127.0.0.1:${GATEWAY_PORT}`, '--data-dir', dataDir,
      '--etcd-client-port', String(ETCD_CLIENT_PORT), '--etcd-peer-port', String(ETCD_PEER_PORT),
      '--node-lease-ttl', '3', '--log-level', 'info', '--config', '/dev/null'], { stdio: ['ignore', out, out] });
    closeSync(out);
    await waitFor(async () => (existsSync(target.adminConfig)
      && (await apiFetch(target, 'GET', '/healthz').then((r) => r.status, () => 0)) === 200 ? true : undefined),
    STEP_LIMIT_MS, () => `the control plane answers /healthz; its log:\n${readFileSync(cpLog, 'utf8').slice(-2000)}`);
  };
  const stopProcess = async (child: ChildProcess | undefined): Promise<void> => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(STOP_LIMIT_MS).then(() => false)])) return;
    child.kill('SIGKILL');
    await exited;
  };
  const runtime = (): NativeRuntime => new NativeRuntime({ stateDir, cgroupParent });
  /** hostContainers counts the running containers on the host per service, from the agent's runtime. */
  const hostContainers = async (): Promise<{ perService: Record<string, number>; ids: string[] }> => {
    const perService: Record<string, number> = {};
    const ids: string[] = [];
    for (const c of await runtime().list()) {
      if (c.status !== 'running') continue;
      const svc = c.labels[LABEL_SERVICE] ?? '?';
      perService[svc] = (perService[svc] ?? 0) + 1;
      ids.push(c.id);
    }
    return { perService, ids: ids.sort() };
  };
  const registrations = (): number => (readFileSync(agentLog, 'utf8').match(/ registered server=/g) ?? []).length;
  /**
   * converged is defined when the API shows exactly `want` (service → replicas) with every
   * replica running and the host runs exactly those tasks' containers, one each, nothing else.
   */
  const converged = async (want: Record<string, number>): Promise<true | undefined> => {
    const services = berthJson<Service[]>(target.apiUrl, ['get', 'services']);
    const tasks = berthJson<Task[]>(target.apiUrl, ['get', 'tasks']);
    const host = await hostContainers();
    const live = tasks.filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running');
    const perService: Record<string, number> = {};
    for (const t of live) perService[t.spec.service] = (perService[t.spec.service] ?? 0) + 1;
    const specs = Object.fromEntries(services.map((s) => [s.metadata.name, s.spec.replicas]));
    const liveIds = live.map((t) => t.status.containerId ?? '').sort();
    lastSeen = JSON.stringify({ specs, runningTasks: perService, hostContainers: host.perService, taskContainers: liveIds, hostIds: host.ids,
      allTasks: tasks.map((t) => `${t.metadata.name}:${t.spec.desiredState}/${t.status.phase}`) });
    const sorted = (o: Record<string, number>): string => JSON.stringify(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
    const ok = sorted(specs) === sorted(want)
      && tasks.every((t) => t.spec.desiredState !== 'running' || t.status.phase === 'running')
      && Object.entries(want).every(([name, n]) => perService[name] === n && host.perService[name] === n)
      && Object.keys(host.perService).every((name) => name in want)
      && JSON.stringify(liveIds) === JSON.stringify(host.ids);
    return ok ? true : undefined;
  };

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-snapshot-'));
    dataDir = join(work, 'cp');
    stateDir = join(work, 'agent');
    agentLog = join(work, 'agent.log');
    cpLog = join(work, 'control-plane.log');
    snapshotFile = join(work, 'backup', 'cluster.db');
    target.adminConfig = join(dataDir, 'admin.config');
    await startControlPlane();
    useConfigFor(target.apiUrl, target.adminConfig);
    const out = openSync(agentLog, 'a');
    agent = spawn(process.execPath, [join(REPO_ROOT, 'dist/agent/main.js'),
      '--name', NODE, '--server', `127.0.0.1:${GATEWAY_PORT}`, '--state-dir', stateDir, '--cgroup-parent', cgroupParent,
      '--metrics-listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1', '--log-level', 'info',
      // This agent shares the machine's network namespace: no bridge there.
      '--network', 'none', '--config', '/dev/null', '--join-token', await joinToken(target)], { stdio: ['ignore', out, out] });
    closeSync(out);
  });

  after(async () => {
    await stopProcess(agent);
    // Whatever still runs (a failed step) is stopped through the agent's own runtime.
    for (const c of await runtime().list().catch(() => [])) {
      await runtime().stop(c.id, 0).catch(() => undefined);
      await runtime().remove(c.id).catch(() => undefined);
    }
    await stopProcess(cp);
    await removeCgroupParent(cgroupParent);
    if (process.env.BERTH_TEST_KEEP_LOGS) {
      process.stderr.write(await readFile(cpLog, 'utf8').catch(() => ''));
      process.stderr.write(await readFile(agentLog, 'utf8').catch(() => ''));
    }
    await rm(work, { recursive: true, force: true });
  });

  it('runs the services that the snapshot will hold', async () => {
    for (const s of [KEEP, GONE]) {
      const r = berth(target.apiUrl, ['apply', '-f', '-'], service(s));
      assert.equal(r.code, 0, r.stderr);
    }
    await waitFor(() => converged({ [KEEP.name]: KEEP.replicas, [GONE.name]: GONE.replicas }), STEP_LIMIT_MS,
      () => `keep and gone running at their replicas; saw ${lastSeen}`, 1000);
  });

  it('saves a 0600 snapshot from the running embedded etcd, and does not overwrite it without --force', () => {
    mkdirSync(join(work, 'backup'));
    const r = snapshotCli(['save', snapshotFile, '--data-dir', dataDir, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const saved = JSON.parse(r.stdout) as { file: string; endpoint: string; sizeBytes: number; revision: number; totalKey: number };
    assert.equal(saved.file, snapshotFile);
    assert.equal(saved.endpoint, `http://127.0.0.1:${ETCD_CLIENT_PORT}`, 'the etcd of the data dir, found from its process');
    assert.ok(saved.revision > 0 && saved.totalKey > 0, `revision and key count printed: ${r.stdout}`);
    const st = statSync(snapshotFile);
    assert.equal(st.size, saved.sizeBytes);
    assert.equal(st.mode & 0o777, 0o600, `the snapshot holds the sealed CA key: mode 0600, saw 0${(st.mode & 0o777).toString(8)}`);
    assert.deepEqual(readdirSync(join(work, 'backup')), ['cluster.db'], 'no temporary left beside it');

    const again = snapshotCli(['save', snapshotFile, '--data-dir', dataDir]);
    assert.equal(again.code, 4, again.stderr);
    assert.match(again.stderr, /BERTH_ERR_SNAPSHOT_EXISTS: .* exists; pass --force/);
    assert.equal(statSync(snapshotFile).mtimeMs, st.mtimeMs, 'the existing snapshot is untouched');
  });

  it('changes after the snapshot: keep scaled up, later created, gone deleted, a token made', async () => {
    assert.equal(berth(target.apiUrl, ['scale', KEEP.name, '5']).code, 0);
    assert.equal(berth(target.apiUrl, ['apply', '-f', '-'], service(LATER)).code, 0);
    assert.equal(berth(target.apiUrl, ['delete', 'service', GONE.name]).code, 0);
    laterToken = await createToken(target, { role: 'viewer', name: 'made-after-the-snapshot' });
    assert.equal((await apiFetch(target, 'GET', '/v1/services', { token: laterToken })).status, 200, 'the new token works before the restore');
    await waitFor(() => converged({ [KEEP.name]: 5, [LATER.name]: LATER.replicas }), STEP_LIMIT_MS,
      () => `keep at 5, later at ${LATER.replicas}, gone stopped; saw ${lastSeen}`, 1000);
  });

  it('refuses to restore under a running control plane (exit 5), and over an etcd dir without --force (exit 4)', async () => {
    const etcdDir = join(dataDir, 'etcd');
    const before = readdirSync(dataDir).sort();
    const busy = snapshotCli(['restore', snapshotFile, '--data-dir', dataDir, '--force']);
    assert.equal(busy.code, 5, busy.stderr);
    assert.match(busy.stderr, /BERTH_ERR_DATA_DIR_IN_USE: .* in use by .*etcd \(pid \d+\)/);
    assert.deepEqual(readdirSync(dataDir).sort(), before, 'nothing in the data dir changed');

    await stopProcess(cp);
    const exists = snapshotCli(['restore', snapshotFile, '--data-dir', dataDir]);
    assert.equal(exists.code, 4, exists.stderr);
    assert.match(exists.stderr, /BERTH_ERR_ETCD_DIR_EXISTS: .*etcd exists; pass --force/);
    assert.ok(existsSync(join(etcdDir, 'member')), 'the etcd dir is untouched');
  });

  it('restores with --force, moving the old etcd dir aside', () => {
    const r = snapshotCli(['restore', snapshotFile, '--data-dir', dataDir, '--force', '--etcd-peer-port', String(ETCD_PEER_PORT)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /snapshot restored: .*cluster\.db -> .*\/etcd\n {2}revision {2}\d+\n {2}keys {6}\d+\n {2}previous {2}.*etcd\.before-restore-\d{8}T\d{6}Z/);
    assert.equal(r.stderr, '', 'no warning: the sealing key file is in the data dir');
    const aside = readdirSync(dataDir).filter((n) => n.startsWith('etcd.before-restore-'));
    assert.equal(aside.length, 1, `the previous etcd dir is kept: ${readdirSync(dataDir).join(' ')}`);
    assert.ok(existsSync(join(dataDir, aside[0]!, 'member')), 'with its data');
    assert.equal(readdirSync(dataDir).some((n) => n.startsWith('etcd.restoring-')), false, 'no staging dir left');
  });

  it('restarted on the restored data: the agent re-registers and the host runs exactly the snapshot\'s services', async () => {
    const registered = registrations();
    await startControlPlane();
    await waitFor(() => (registrations() > registered ? true : undefined), STEP_LIMIT_MS, () => 'the agent registers again');
    await waitFor(() => {
      const node = berthJson<Node[]>(target.apiUrl, ['get', 'nodes']).find((n) => n.metadata.name === NODE);
      return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    }, STEP_LIMIT_MS, () => `node ${NODE} Ready`);
    await waitFor(() => converged({ [KEEP.name]: KEEP.replicas, [GONE.name]: GONE.replicas }), STEP_LIMIT_MS,
      () => `keep at ${KEEP.replicas} and gone at ${GONE.replicas} as in the snapshot, later nowhere, one container per running task; saw ${lastSeen}`, 1000);
    const services = berthJson<Service[]>(target.apiUrl, ['get', 'services']).map((s) => `${s.metadata.name}=${s.spec.replicas}`).sort();
    assert.deepEqual(services, [`${GONE.name}=${GONE.replicas}`, `${KEEP.name}=${KEEP.replicas}`]);
  });

  it('keeps the CA and the admin token of the snapshot; a token made after it is gone', async () => {
    const who = berth(target.apiUrl, ['auth', 'whoami', '-o', 'json']);
    assert.equal(who.code, 0, `the admin config (same CA, same token) still authenticates: ${who.stderr}`);
    assert.equal((JSON.parse(who.stdout) as { role: string }).role, 'admin');
    const later = await apiJson(target, 'GET', '/v1/services', { token: laterToken });
    assert.equal(later.status, 401, `a token created after the snapshot is unknown to the restored cluster: ${JSON.stringify(later.body)}`);
  });
});
