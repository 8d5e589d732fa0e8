/**
 * Node lifecycle on a real 3-host local cluster: a stopped agent's node goes not Ready, its
 * tasks are lost and replaced on the other hosts; when it returns the stale containers are
 * stopped and exactly `replicas` run. Cordon keeps new tasks away, drain moves tasks without
 * dropping below replicas - maxUnavailable, a global service follows uncordon, and events tell.
 * The cluster runs with a 3 s node lease and a 4 s lost grace so the test stays short.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { nodeSubnetKey } from '../../control-plane/network/subnets.js';
import { ROOT_PREFIX } from '../../control-plane/store/keys.js';
import { berth, berthJson, clusterStatus, localCluster, pidAlive, waitFor, type ClusterStatus, cliEnv, configFor } from '../support/cluster.js';
import { apiJson } from '../support/secure.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `lc${process.pid % 10000}`;
const LEASE_TTL_S = 3;
const LOST_GRACE_S = 4;
const REPLICAS = 6;

const service = (name: string, extra = ''): string => `kind: Service
metadata: { name: ${name} }
spec:
  replicas: ${REPLICAS}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { memory: 8Mi }
${extra}`;

const live = (ts: Task[]): Task[] => ts.filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running');
const perNode = (ts: Task[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const t of ts) out[t.spec.nodeName] = (out[t.spec.nodeName] ?? 0) + 1;
  return out;
};

describe('node lifecycle on a 3-host cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  let stopped: number | undefined;
  const tasks = (svc: string): Task[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', svc]);
  const fetchTasks = async (svc: string): Promise<Task[]> =>
    (await apiJson<{ items: Task[] }>({ apiUrl: server, adminConfig: configFor(server)! }, 'GET', `/v1/namespaces/default/tasks?service=${svc}`)).body.items;

  before(() => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--hosts', '3', '--name', CLUSTER, '--control-plane-args', `--node-lease-ttl ${LEASE_TTL_S} --node-lost-grace ${LOST_GRACE_S}`]);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    cluster = clusterStatus(CLUSTER);
    server = cluster.server;
  });

  after(() => {
    if (stopped !== undefined && pidAlive(stopped)) process.kill(stopped, 'SIGCONT');
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  });

  test('a stopped agent\'s tasks are replaced elsewhere; on return exactly replicas run, stale containers stopped', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], service('web')).code, 0);
    await waitFor(() => (live(tasks('web')).length === REPLICAS ? true : undefined), 90_000, () => `want ${REPLICAS} running: ${JSON.stringify(perNode(live(tasks('web'))))}`);
    const victim = cluster.hosts[2]!;
    const onVictim = live(tasks('web')).filter((t) => t.spec.nodeName === victim.node);
    assert.ok(onVictim.length > 0, `spread put tasks on ${victim.node}: ${JSON.stringify(perNode(tasks('web')))}`);
    const stalePids = onVictim.map((t) => t.status.pid!).filter((p) => p > 0);

    process.kill(victim.agentPid, 'SIGSTOP');
    stopped = victim.agentPid;
    const budgetMs = (LEASE_TTL_S + LOST_GRACE_S + 20) * 1000;
    const moved = await waitFor(() => {
      const ts = live(tasks('web'));
      return ts.length === REPLICAS && ts.every((t) => t.spec.nodeName !== victim.node) ? ts : undefined;
    }, budgetMs, () => `want ${REPLICAS} running off ${victim.node}: ${JSON.stringify(perNode(live(tasks('web'))))}`);
    assert.equal(Object.keys(perNode(moved)).length, 2, 'the replacements run on the two other hosts');
    for (const p of stalePids) assert.ok(pidAlive(p), 'the stopped host\'s containers still run while it is away');

    process.kill(victim.agentPid, 'SIGCONT');
    stopped = undefined;
    let maxRunning = 0;
    await waitFor(async () => {
      const ts = await fetchTasks('web');
      maxRunning = Math.max(maxRunning, ts.filter((t) => t.status.phase === 'running').length);
      const node = berthJson<{ status: { conditions: { type: string; status: string }[] } }>(server, ['get', 'nodes', victim.node]);
      const ready = node.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
      return ready && stalePids.every((p) => !pidAlive(p)) ? true : undefined;
    }, 60_000, () => `want ${victim.node} Ready and its stale containers ${stalePids.join(',')} gone`);
    const final = tasks('web');
    assert.equal(live(final).length, REPLICAS, `exactly ${REPLICAS} running after the host returned`);
    assert.equal(new Set(final.map((t) => t.metadata.name)).size, final.length, 'no duplicate task names');
    assert.ok(final.every((t) => t.spec.nodeName !== victim.node), 'no task went back to the returned host by itself');
    assert.ok(maxRunning <= REPLICAS, `never more than ${REPLICAS} running tasks while converging (saw ${maxRunning})`);

    const events = berth(server, ['events']);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    assert.match(events.stdout, new RegExp(`NodeNotReady\\s+node/${victim.node}`));
    assert.match(events.stdout, /Rescheduled\s+task\/web-/);
    assert.match(events.stdout, /Started\s+task\/web-/);
  });

  test('a cordoned node receives no new task', async () => {
    const h1 = cluster.hosts[0]!.node;
    assert.equal(berth(server, ['cordon', h1]).code, 0);
    assert.equal(berth(server, ['apply', '-f', '-'], service('side').replace(`replicas: ${REPLICAS}`, 'replicas: 4')).code, 0);
    const ts = await waitFor(() => { const x = live(tasks('side')); return x.length === 4 ? x : undefined; }, 60_000, () => 'want 4 side tasks running');
    assert.ok(ts.every((t) => t.spec.nodeName !== h1), `no task on cordoned ${h1}: ${JSON.stringify(perNode(ts))}`);
    assert.equal(berth(server, ['uncordon', h1]).code, 0);
    assert.equal(berth(server, ['delete', 'service', 'side']).code, 0);
  });

  test('drain moves a host\'s tasks away without dropping below replicas, and leaves it empty', async () => {
    const target = cluster.hosts[0]!.node;
    assert.ok(live(tasks('web')).some((t) => t.spec.nodeName === target), `web has tasks on ${target}`);
    let minRunning = Infinity;
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; i < 2_000 && sampling; i++) {
        minRunning = Math.min(minRunning, live(await fetchTasks('web')).length);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['dist/control-plane/cli/main.js', 'drain', target, '--timeout', '120'], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv(server) });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    sampling = false;
    await sampler;
    assert.equal(out.code, 0, `drain exited ${out.code}: ${out.stdout}\n${out.stderr}`);
    assert.match(out.stdout, new RegExp(`node/${target} drained: no tasks left`));
    assert.ok(minRunning >= REPLICAS, `web never dropped below ${REPLICAS} running (maxUnavailable 0); lowest seen ${minRunning}`);
    const after = tasks('web');
    assert.equal(live(after).length, REPLICAS);
    assert.ok(after.every((t) => t.spec.nodeName !== target), `no web task left on ${target}`);
    assert.match(berth(server, ['events']).stdout, new RegExp(`Rescheduled\\s+task/web-\\S+\\s+drained off ${target}`));
    assert.equal(berth(server, ['uncordon', target]).code, 0);
  });

  test('a global service runs one task per eligible node and gains one when a node is uncordoned', async () => {
    const h2 = cluster.hosts[1]!.node;
    assert.equal(berth(server, ['cordon', h2]).code, 0);
    const spec = service('agentd').replace(`  replicas: ${REPLICAS}\n`, '  replicas: 1\n  mode: global\n');
    const applied = berth(server, ['apply', '-f', '-'], spec);
    assert.equal(applied.code, 0, applied.stderr);
    const others = cluster.hosts.map((h) => h.node).filter((n) => n !== h2).sort();
    await waitFor(() => {
      const ts = live(tasks('agentd'));
      return JSON.stringify(ts.map((t) => t.spec.nodeName).sort()) === JSON.stringify(others) ? true : undefined;
    }, 60_000, () => `want one agentd task on each of ${others.join(',')}: ${JSON.stringify(perNode(tasks('agentd')))}`);
    assert.equal(berth(server, ['uncordon', h2]).code, 0);
    const all = cluster.hosts.map((h) => h.node).sort();
    await waitFor(() => {
      const ts = live(tasks('agentd'));
      return JSON.stringify(ts.map((t) => t.spec.nodeName).sort()) === JSON.stringify(all) ? true : undefined;
    }, 60_000, () => `want one agentd task on every node: ${JSON.stringify(perNode(tasks('agentd')))}`);
  });

  test('get tasks -w streams changes', async () => {
    const out = berth(server, ['get', 'tasks', '--service', 'agentd', '-w', '--timeout', '2']);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split('\n');
    assert.match(lines[0]!, /^EVENT\s+NAME/);
    assert.equal(lines.filter((l) => l.startsWith('ADDED')).length, 3, out.stdout);
  });

  test('removing a node: refused while Ready, then its tasks are replaced, its subnet freed, and a returning agent stops its stale containers', async () => {
    const victim = cluster.hosts[1]!;
    const refused = berth(server, ['delete', 'node', victim.node]);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`node "${victim.node}" is Ready`));
    const onVictim = live(tasks('web')).filter((t) => t.spec.nodeName === victim.node);
    assert.ok(onVictim.length > 0, `tasks on ${victim.node} expected: ${JSON.stringify(perNode(tasks('web')))}`);
    const etcd = new Etcd3({ hosts: cluster.etcd! });
    after(() => etcd.close());
    const subnet = await etcd.get(ROOT_PREFIX + nodeSubnetKey(victim.node)).string();
    assert.ok(subnet, `${victim.node} holds a subnet before removal`);

    // A crashed agent: its containers keep running on the host while the node is removed.
    const argv = readFileSync(`/proc/${victim.agentPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    process.kill(victim.agentPid, 'SIGKILL');
    const forced = berth(server, ['delete', 'node', victim.node, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stdout.trim(), `node/${victim.node} deleted`);
    assert.ok(!berthJson<Node[]>(server, ['get', 'nodes']).some((n) => n.metadata.name === victim.node), 'node gone');
    assert.equal(await etcd.get(ROOT_PREFIX + nodeSubnetKey(victim.node)).string(), null, 'subnet released');
    const gone = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'web']).filter((t) => onVictim.some((v) => v.metadata.uid === t.metadata.uid));
    assert.ok(gone.every((t) => t.status.phase === 'lost' && t.status.reason === 'NodeDeleted'), JSON.stringify(gone.map((t) => [t.metadata.name, t.status.phase, t.status.reason])));
    await waitFor(() => {
      const ts = live(tasks('web'));
      return ts.length === REPLICAS && ts.every((t) => t.spec.nodeName !== victim.node) ? true : undefined;
    }, 60_000, () => `want ${REPLICAS} running off ${victim.node}: ${JSON.stringify(perNode(live(tasks('web'))))}`);

    // The agent comes back: it registers anew (a fresh node) and stops what is no longer its.
    const out = openSync(`${victim.stateDir}/agent-returned.log`, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${victim.netns}`, ...argv], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    const stalePids = onVictim.map((t) => t.status.pid!).filter((p) => p > 0);
    await waitFor(() => {
      const n = berthJson<Node[]>(server, ['get', 'nodes']).find((x) => x.metadata.name === victim.node);
      const ready = n?.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True') && n.status.subnet;
      return ready && stalePids.every((p) => !pidAlive(p)) ? true : undefined;
    }, 60_000, () => `${victim.node} back Ready with a subnet and stale pids ${stalePids.filter(pidAlive).join(',')} stopped`);
    assert.equal(live(tasks('web')).length, REPLICAS);
  });
});
