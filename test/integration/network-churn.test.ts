/**
 * Address churn on one node: 200 containers started and stopped on a one-host local
 * cluster, as a service of 50 replicas scaled 50 → 0 four times. At every sampled moment no two
 * running tasks share an address and every address lies in the node's subnet; after the last stop
 * nothing is left (veths, address records, per-container nat rules) and the next container still
 * gets an address. Traffic: none; the test only reads the cluster's state.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { cidrContains, ipToNumber, parseCidr, type Cidr } from '../../common/cidr.js';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, downCluster, upCluster, waitFor, type ClusterHost, type ClusterStatus } from '../support/cluster.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import {
  containerVeths, duplicateIps, ipamRecords, listTasks, natRules, perContainerNatRules, runningWithIp, STOPS_ON_TERM,
} from '../support/network.js';

const CLUSTER = `ch${process.pid % 10000}`;
const SERVICE = 'churn';
const REPLICAS = 50;
const CYCLES = 4;
/** SAMPLE_MS is the pause between two looks at the task list. */
const SAMPLE_MS = 200;
/** UP_TIMEOUT_MS / DOWN_TIMEOUT_MS bound one scale-up and one scale-down (50 start in seconds on 2 cores; a stop takes ≤ 1 s). */
const UP_TIMEOUT_MS = 180_000;
const DOWN_TIMEOUT_MS = 120_000;
/** CLEAN_TIMEOUT_MS bounds the wait for the agent to remove links and records after the tasks are gone. */
const CLEAN_TIMEOUT_MS = 30_000;

const serviceDoc = (replicas: number): string => JSON.stringify({
  kind: 'Service',
  metadata: { name: SERVICE },
  spec: {
    replicas,
    template: { image: `oci-archive:${SEED_ARCHIVE}`, command: STOPS_ON_TERM, resources: { cpu: 0.01, memory: '16Mi', pids: 16 } },
  },
});

/** Churn keeps what the samples saw across cycles: every task that ran and the address it held. */
class Churn {
  readonly addressOf = new Map<string, string>(); // task uid → ip
  samples = 0;

  constructor(private readonly subnet: Cidr, private readonly subnetText: string) {}

  /** check asserts the invariants on one sample of the task list. */
  check(tasks: Task[]): Task[] {
    this.samples++;
    const running = runningWithIp(tasks);
    assert.deepEqual(duplicateIps(running), [], `no two running tasks share an address (sample ${this.samples})`);
    for (const t of running) {
      const ip = t.status.ip!;
      assert.ok(cidrContains(this.subnet, ipToNumber(ip) ?? -1), `${t.metadata.name}: ${ip} lies in ${this.subnetText}`);
      const seen = this.addressOf.get(t.metadata.uid);
      assert.ok(seen === undefined || seen === ip, `${t.metadata.name} keeps its address: ${seen} then ${ip}`);
      this.addressOf.set(t.metadata.uid, ip);
    }
    return running;
  }

  /** sampleUntil samples the task list every SAMPLE_MS until done() holds, failing after timeoutMs. */
  async sampleUntil(server: string, timeoutMs: number, done: (tasks: Task[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let tasks: Task[] = [];
    while (Date.now() <= deadline) {
      tasks = await listTasks(server, SERVICE);
      this.check(tasks);
      if (done(tasks)) return;
      await sleep(SAMPLE_MS);
    }
    const phases = tasks.map((t) => `${t.metadata.name}=${t.status.phase}${t.status.ip ? `@${t.status.ip}` : ''}`).join(' ');
    assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; tasks: ${phases || 'none'}`);
  }
}

/** leftovers describes what the host still holds of its containers (empty: nothing). */
function leftovers(host: ClusterHost): string {
  const veths = containerVeths(host.netns);
  const records = ipamRecords(host.stateDir);
  const rules = perContainerNatRules(host.netns);
  return [veths.length ? `veths: ${veths.join(' | ')}` : '', records.length ? `ipam: ${records.join(',')}` : '',
    rules.length ? `nat: ${rules.join(' | ')}` : ''].filter(Boolean).join('; ');
}

describe('200 containers started and stopped on one node', () => {
  let cluster: ClusterStatus;
  let server = '';
  let host: ClusterHost;
  let subnetText = '';

  before(async () => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 1);
    server = cluster.server;
    host = cluster.hosts[0]!;
    // Containers started before the subnet reaches the agent run without an address.
    subnetText = await waitFor(() => berthJson<Node[]>(server, ['get', 'nodes']).find((n) => n.metadata.name === host.node)?.status.subnet,
      30_000, () => berth(server, ['get', 'nodes', '-o', 'json']).stdout);
  });

  after(() => {
    berth(server, ['delete', 'service', SERVICE]);
    downCluster(CLUSTER);
  });

  test('addresses are unique, in the subnet, and all released after four cycles of 50 → 0', async (t) => {
    const subnet = parseCidr(subnetText);
    assert.ok(subnet, `node subnet ${subnetText} parses`);
    const churn = new Churn(subnet, subnetText);
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const up = cycle === 1 ? berth(server, ['apply', '-f', '-'], serviceDoc(REPLICAS)) : berth(server, ['scale', SERVICE, String(REPLICAS)]);
      assert.equal(up.code, 0, `cycle ${cycle}: scale to ${REPLICAS}: ${up.stderr}`);
      await churn.sampleUntil(server, UP_TIMEOUT_MS, (ts) => runningWithIp(ts).length === REPLICAS, `${REPLICAS} running with an address (cycle ${cycle})`);
      const down = berth(server, ['scale', SERVICE, '0']);
      assert.equal(down.code, 0, `cycle ${cycle}: scale to 0: ${down.stderr}`);
      await churn.sampleUntil(server, DOWN_TIMEOUT_MS, (ts) => ts.length === 0, `no task left (cycle ${cycle})`);
      // Each cycle must end clean, or a leak would hide behind the next cycle's allocations.
      await waitFor(() => (leftovers(host) === '' ? true : undefined), CLEAN_TIMEOUT_MS, () => `cycle ${cycle}: ${leftovers(host)}`);
    }
    t.diagnostic(`${churn.addressOf.size} tasks ran with ${new Set(churn.addressOf.values()).size} distinct addresses over ${churn.samples} samples`);
    assert.equal(churn.addressOf.size, CYCLES * REPLICAS, `${CYCLES * REPLICAS} distinct tasks ran with an address (${churn.samples} samples)`);

    // After the last stop: no container veth, no address record, no per-container nat rule, and
    // no nat rule that still names an address handed out during the churn.
    assert.deepEqual(containerVeths(host.netns), [], 'no container veth left in the host netns');
    assert.deepEqual(ipamRecords(host.stateDir), [], `no address record left in ${host.stateDir}/ipam`);
    assert.deepEqual(perContainerNatRules(host.netns), [], 'no berth: rule left in the nat table');
    const used = new Set(churn.addressOf.values());
    const naming = natRules(host.netns).filter((l) => [...l.matchAll(/\d+\.\d+\.\d+\.\d+/g)].some((m) => used.has(m[0])));
    assert.deepEqual(naming, [], 'no nat rule names a churned address');

    const next = berth(server, ['scale', SERVICE, '1']);
    assert.equal(next.code, 0, `scale to 1: ${next.stderr}`);
    const [one] = await waitFor(async () => {
      const ts = runningWithIp(await listTasks(server, SERVICE));
      return ts.length === 1 ? ts : undefined;
    }, UP_TIMEOUT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.ok(cidrContains(subnet, ipToNumber(one!.status.ip!) ?? -1), `the next container's ${one!.status.ip} lies in ${subnetText}`);
    assert.deepEqual(ipamRecords(host.stateDir), [one!.status.ip], 'exactly its address is recorded');
  });
});
