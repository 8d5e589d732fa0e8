/**
 * Restart policy and health checks on a real one-host local cluster: real containers exiting,
 * real HTTP probes into the containers' network namespaces, status flowing up through the
 * gateway into etcd and out through the CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, clusterStatus, localCluster, waitFor, type ClusterStatus } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `hr${process.pid % 100000}`;
const OBSERVE_MS = 120_000;
const POLL_MS = 200;

function service(name: string, command: string[], extra: string): string {
  return `kind: Service
metadata: { name: ${name} }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ${JSON.stringify(command)}
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
${extra}
`;
}

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];
const SERVICES = [
  service('crashy', ['sh', '-c', 'sleep 1; exit 1'], '    restart: { policy: always, backoffSeconds: 1 }'),
  service('oneshot', ['sh', '-c', 'sleep 1; exit 1'], '    restart: { policy: never }'),
  service('web-ok', HTTPD, '    health: { http: { path: /, port: 8080 }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }'),
  service('web-bad', HTTPD, '    health: { http: { path: /, port: 9090 }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }'),
].join('---\n');

/** Seen accumulates what polling saw of one service's tasks. */
interface Seen {
  names: Set<string>;
  reasons: Set<string>;
  phases: Set<string>;
  maxRestarts: number;
  everReady: boolean;
  last?: Task;
}

describe('restart policy and health checks on a one-host cluster', () => {
  let cluster: ClusterStatus;

  before(() => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--hosts', '1', '--name', CLUSTER]);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    cluster = clusterStatus(CLUSTER);
  });

  after(() => {
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  });

  test('crashes restart in place, never replaces, health decides ready and restarts the unhealthy', async (t) => {
    const server = cluster.server;
    const applied = berth(server, ['apply', '-f', '-'], SERVICES);
    assert.equal(applied.code, 0, `apply failed: ${applied.stderr}`);
    const seen = new Map<string, Seen>();
    const of = (svc: string): Seen => {
      let s = seen.get(svc);
      if (!s) seen.set(svc, (s = { names: new Set(), reasons: new Set(), phases: new Set(), maxRestarts: 0, everReady: false }));
      return s;
    };
    const done = (): boolean => {
      const crashy = of('crashy'), oneshot = of('oneshot'), ok = of('web-ok'), bad = of('web-bad');
      return crashy.maxRestarts >= 2 && crashy.reasons.has('CrashLoopBackOff')
        && oneshot.phases.has('failed') && oneshot.names.size >= 2
        && ok.last?.status.ready === true
        && bad.reasons.has('Unhealthy') && bad.maxRestarts >= 1;
    };
    let pollErrors = 0;
    let lastError = '';
    await waitFor(() => {
      let tasks: Task[];
      try {
        tasks = berthJson<Task[]>(server, ['get', 'tasks']);
      } catch (err) {
        // One failed read says nothing about restarts; the bound on time and count still holds.
        pollErrors++;
        lastError = String(err);
        assert.ok(pollErrors <= 20, `too many failed reads of the task list; last: ${lastError}`);
        return undefined;
      }
      for (const t of tasks) {
        const s = of(t.spec.service);
        s.names.add(t.metadata.name);
        s.phases.add(t.status.phase);
        if (t.status.reason) s.reasons.add(t.status.reason);
        s.maxRestarts = Math.max(s.maxRestarts, t.status.restarts ?? 0);
        s.everReady ||= t.status.ready === true;
        s.last = t;
      }
      return done() ? true : undefined;
    }, OBSERVE_MS, () => JSON.stringify([...seen].map(([k, s]) => ({
      service: k, names: [...s.names], reasons: [...s.reasons], phases: [...s.phases], maxRestarts: s.maxRestarts, everReady: s.everReady, last: s.last?.status,
    })), null, 1), POLL_MS);

    if (pollErrors > 0) t.diagnostic(`${pollErrors} failed reads of the task list; last: ${lastError}`);
    for (const [svc, s] of seen) {
      t.diagnostic(`${svc}: tasks=${s.names.size} restarts=${s.maxRestarts} reasons=${[...s.reasons]} phases=${[...s.phases]} ready=${s.last?.status.ready} message=${s.last?.status.message ?? ''}`);
    }
    const crashy = of('crashy');
    assert.equal(crashy.names.size, 1, `restart policy always keeps exactly one task (no replacement churn), saw ${[...crashy.names]}`);
    assert.ok(!crashy.phases.has('failed'), 'a crash under policy always is never reported failed');
    assert.equal(crashy.last?.status.exitCode, 1, 'the last run\'s exit code is kept');
    assert.ok(of('oneshot').reasons.has('Error'), 'policy never reports the exit as Error');
    assert.equal(of('web-ok').maxRestarts, 0, 'a healthy server is never restarted');
    const bad = of('web-bad');
    assert.ok(!bad.everReady, 'a check on the wrong port never makes the task ready');
    assert.equal(bad.names.size, 1, 'an unhealthy task restarts in place');

    // The CLI shows the READY column and the waiting reason.
    const table = berth(server, ['get', 'tasks', '--service', 'web-ok']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /READY/);
    assert.match(table.stdout, /web-ok-\S+\s+web-ok\s+\S+\s+running\s+true\s/);
    const described = berth(server, ['describe', 'task', of('web-bad').last!.metadata.name]);
    assert.match(described.stdout, /Last probe:\s+http :9090\/: ECONNREFUSED/);
  });
});
