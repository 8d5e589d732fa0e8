/**
 * Named volumes end to end on a three-host local cluster: a replica's data survives its container
 * being killed, its agent restarting and its task being replaced; the replacement is placed on
 * the node holding the volume; `berth get volumes` lists it with its size and the node's metrics
 * carry it; `berth delete volume` is refused while a task uses it and removes the directory once
 * the service is gone; a bind volume is refused in a baseline namespace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, downCluster, pidAlive, upCluster, waitFor, type ClusterHost, type ClusterStatus } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `vol${process.pid % 10000}`;
const SERVICE = 'db';
const VOLUME = 'db-data';
const WAIT_MS = 90_000;

/** VolumeRow is a row of `berth get volumes -o json`. */
interface VolumeRow {
  node: string;
  namespace: string;
  name: string;
  sizeBytes: number;
  inUse: boolean;
  createdAt: string;
}

/**
 * serviceYaml: every container start appends a line to /data/starts, so the line count says how
 * many containers have seen the same volume. `rev` changes the template (a new task); `pinTo`
 * places the first task on one node.
 */
function serviceYaml(rev: number, pinTo?: string): string {
  return `kind: Service
metadata: { name: ${SERVICE} }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", "echo start >> /data/starts && exec sleep 100000"]
    env: { REV: "${rev}" }
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    volumes: [{ type: volume, name: ${VOLUME}, target: /data }]
${pinTo ? `  placement: { constraints: ["node.name == ${pinTo}"] }\n` : ''}`;
}

describe('named volumes on a three-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  /** holder is the host the volume was made on: the last by name, where nothing would go by itself. */
  let holder: ClusterHost;

  before(() => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 3);
    server = cluster.server;
    holder = [...cluster.hosts].sort((a, b) => a.node.localeCompare(b.node)).at(-1)!;
  });

  after(() => {
    downCluster(CLUSTER);
  });

  const tasks = (): Task[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]);
  const running = (): Task | undefined => tasks().find((t) => t.status.phase === 'running' && t.spec.desiredState === 'running');
  const volumes = (): VolumeRow[] => berthJson<VolumeRow[]>(server, ['get', 'volumes', '-A']);
  const starts = (task: Task): number => {
    const r = berth(server, ['exec', task.metadata.name, '--', 'cat', '/data/starts']);
    assert.equal(r.code, 0, `cat /data/starts in ${task.metadata.name}: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l === 'start').length;
  };
  const tasksTable = (): string => berth(server, ['get', 'tasks', '-o', 'wide']).stdout;

  test('a replica writes into its named volume, made on its node under the agent state dir', async () => {
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(1, holder.node));
    assert.equal(applied.code, 0, applied.stderr);
    const t = await waitFor(running, WAIT_MS, tasksTable);
    assert.equal(t.spec.nodeName, holder.node);
    assert.equal(starts(t), 1);
    const data = `${holder.stateDir}/volumes/default/${VOLUME}/_data`;
    assert.ok(existsSync(`${data}/starts`), `${data}/starts expected on the host`);
  });

  test('berth get volumes lists it on its node with a size, and the node\'s metrics carry it', async () => {
    const row = await waitFor(() => volumes().find((v) => v.name === VOLUME && v.inUse), WAIT_MS, () => berth(server, ['get', 'volumes', '-A']).stdout);
    assert.deepEqual([row.node, row.namespace], [holder.node, 'default']);
    assert.ok(row.sizeBytes > 0, `size > 0 expected, saw ${row.sizeBytes}`);
    const table = berth(server, ['get', 'volumes']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NODE\s+NAMESPACE\s+NAME\s+SIZE\s+IN-USE\s+AGE/);
    assert.match(table.stdout, new RegExp(`${holder.node}\\s+default\\s+${VOLUME}\\s+\\S+\\s+yes`));
    const node = berthJson<Node[]>(server, ['get', 'nodes']).find((n) => n.metadata.name === holder.node)!;
    const text = await (await fetch(node.status.metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`berth_volume_bytes{namespace="default",volume="${VOLUME}"}`));
    assert.ok(line && Number(line.split(' ').pop()) > 0, `berth_volume_bytes for ${VOLUME} expected, saw ${line}`);
    assert.match(text, /^berth_volumes\{state="in-use"\} 1$/m);
  });

  test('a killed container is restarted and sees the data', async () => {
    const t = running()!;
    process.kill(t.status.pid!, 'SIGKILL');
    const again = await waitFor(() => {
      const now = running();
      return now && now.status.pid !== t.status.pid ? now : undefined;
    }, WAIT_MS, tasksTable);
    assert.equal(again.metadata.uid, t.metadata.uid, 'restarted in place: the same task');
    // The API may say running a moment before the node answers exec for the new container; the
    // count still proves one restart (a second one would read 3).
    const count = await waitFor(() => {
      const r = berth(server, ['exec', again.metadata.name, '--', 'cat', '/data/starts']);
      return r.code === 0 ? r.stdout.split('\n').filter((l) => l === 'start').length : undefined;
    }, WAIT_MS, () => `exec into ${again.metadata.name} after its restart; ${tasksTable()}`);
    assert.equal(count, 2);
  });

  test('the data is still there after the agent restarts', async () => {
    const t = running()!;
    const argv = readFileSync(`/proc/${holder.agentPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    process.kill(holder.agentPid, 'SIGTERM');
    await waitFor(() => (pidAlive(holder.agentPid) ? undefined : true), 20_000, () => `agent ${holder.agentPid} still alive`);
    // `local-cluster down` kills whatever runs in the host's netns, this agent included.
    const out = openSync(`${holder.stateDir}/agent-restarted.log`, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${holder.netns}`, ...argv], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    await waitFor(() => {
      const n = berthJson<Node[]>(server, ['get', 'nodes']).find((x) => x.metadata.name === holder.node);
      const lastBeat = Date.parse(n?.status.lastHeartbeatTime ?? '');
      return n?.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True') && lastBeat > Date.now() - 20_000
        && n.status.volumes?.some((v) => v.name === VOLUME) ? true : undefined;
    }, WAIT_MS, () => `node ${holder.node} back with its volume: ${JSON.stringify(berthJson<Node[]>(server, ['get', 'nodes']).map((n) => n.status.volumes))}`);
    const now = running();
    assert.equal(now?.status.pid, t.status.pid, 'the container kept running through the agent restart');
    assert.equal(starts(now!), 2);
  });

  test('a replacement task, free to go anywhere, lands on the node holding the volume and sees the data', async () => {
    const old = running()!;
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(2));
    assert.equal(applied.code, 0, applied.stderr);
    const fresh = await waitFor(() => {
      const now = running();
      return now && now.metadata.uid !== old.metadata.uid && tasks().every((t) => t.metadata.uid !== old.metadata.uid) ? now : undefined;
    }, WAIT_MS, tasksTable);
    assert.equal(fresh.spec.nodeName, holder.node, `replacement placed on ${fresh.spec.nodeName}, the volume is on ${holder.node}`);
    assert.equal(starts(fresh), 3);
  });

  test('berth delete volume is refused while a task uses it', () => {
    const r = berth(server, ['delete', 'volume', VOLUME, '--node', holder.node]);
    assert.equal(r.code, 1, `exit 1 expected, saw ${r.code}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`volume default/${VOLUME} on node ${holder.node} is in use by task default/${SERVICE}-`));
    assert.ok(existsSync(`${holder.stateDir}/volumes/default/${VOLUME}/_data/starts`), 'the data is untouched');
  });

  test('after berth delete service, berth delete volume removes it from the node and the list', async () => {
    assert.equal(berth(server, ['delete', 'service', SERVICE]).code, 0);
    await waitFor(() => (tasks().length === 0 ? true : undefined), WAIT_MS, tasksTable);
    // Without --node: only one node has a volume by that name.
    const r = await waitFor(() => {
      const d = berth(server, ['delete', 'volume', VOLUME]);
      // The agent may still be removing the container the control plane no longer stores.
      return d.code === 0 || !/in use/.test(d.stderr) ? d : undefined;
    }, WAIT_MS, () => berth(server, ['delete', 'volume', VOLUME]).stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `volume/${VOLUME} deleted from node ${holder.node}\n`);
    assert.ok(!existsSync(`${holder.stateDir}/volumes/default/${VOLUME}`), 'the directory is gone');
    assert.deepEqual(volumes(), [], 'the node reported its new list before the delete answered');
    const again = berth(server, ['delete', 'volume', VOLUME, '--node', holder.node]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /does not exist/);
  });

  test('a bind volume is refused in a baseline namespace, naming the field', () => {
    const yaml = serviceYaml(1).replace(`[{ type: volume, name: ${VOLUME}, target: /data }]`, '[{ type: bind, source: /etc, target: /host-etc }]');
    const r = berth(server, ['apply', '-f', '-'], yaml);
    assert.equal(r.code, 1, `exit 1 expected: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /spec\.template\.volumes\[0\]\.source: \/etc is not allowed at policy level baseline/);
  });
});
