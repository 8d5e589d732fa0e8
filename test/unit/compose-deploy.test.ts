/**
 * Compose's deploy block, restart, labels and process fields to berth, and the walk over every
 * key: a field berth has no equivalent for is named in a warning (never dropped silently),
 * extension fields are ignored as compose ignores them.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../../control-plane/objects/types.js';
import { ComposeScratch, oneService, serviceOf } from './compose-support.js';

const scratch = new ComposeScratch();
after(() => scratch.remove());

function specOf(lines: string): ServiceSpec {
  const r = scratch.convert(oneService(lines));
  assert.deepEqual(r.errors, [], 'expected no errors');
  return serviceOf(r.objects, 's').spec;
}

describe('compose deploy', () => {
  const cases: [title: string, lines: string, pick: (s: ServiceSpec) => unknown, expected: unknown][] = [
    ['replicas default to 1', '', (s) => s.replicas, 1],
    ['deploy.replicas sets replicas', 'deploy: { replicas: "3" }', (s) => s.replicas, 3],
    ['scale sets replicas when deploy does not', 'scale: 2', (s) => s.replicas, 2],
    ['mode global', 'deploy: { mode: global }', (s) => s.mode, 'global'],
    ['resource limits: cpus, memory in Docker units, pids', 'deploy: { resources: { limits: { cpus: "0.25", memory: 512M, pids: 64 } } }', (s) => s.template.resources,
      { cpu: 0.25, memory: 512 * 1024 ** 2, pids: 64 }],
    ['cpus, mem_limit and pids_limit outside deploy; deploy wins', 'cpus: 2\nmem_limit: 1g\npids_limit: 10\ndeploy: { resources: { limits: { cpus: 0.5 } } }', (s) => s.template.resources,
      { cpu: 0.5, memory: 1024 ** 3, pids: 10 }],
    ['node.labels and node.hostname constraints in berth syntax, and a spread preference',
      'deploy: { placement: { constraints: ["node.labels.zone == a", "node.hostname!=h3"], preferences: [{ spread: node.labels.zone }] } }', (s) => s.placement,
      { constraints: ['node.labels.zone == a', 'node.name != h3'], spread: 'node.labels.zone' }],
    ['update_config stop-first (the default): parallelism is maxUnavailable', 'deploy: { update_config: { parallelism: 2 } }', (s) => s.update, { maxSurge: 0, maxUnavailable: 2 }],
    ['update_config start-first: parallelism is maxSurge; rollback, monitor', 'deploy: { update_config: { parallelism: 1, order: start-first, failure_action: rollback, monitor: 30s } }', (s) => s.update,
      { maxSurge: 1, maxUnavailable: 0, autoRollback: true, minReadySeconds: 30 }],
    ['update_config parallelism 0 is all replicas at once; pause is no rollback', 'deploy: { replicas: 4, update_config: { parallelism: 0, failure_action: pause } }', (s) => s.update,
      { maxSurge: 0, maxUnavailable: 4, autoRollback: false }],
    ['restart_policy any is always, with its delay', 'deploy: { restart_policy: { condition: any, delay: 5s } }', (s) => s.template.restart, { policy: 'always', backoffSeconds: 5 }],
    ['restart_policy on-failure', 'deploy: { restart_policy: { condition: on-failure } }', (s) => s.template.restart, { policy: 'on-failure' }],
    ['restart_policy none is never', 'deploy: { restart_policy: { condition: none } }', (s) => s.template.restart, { policy: 'never' }],
    ['restart: no is never', 'restart: "no"', (s) => s.template.restart, { policy: 'never' }],
    ['restart: unless-stopped is always', 'restart: unless-stopped', (s) => s.template.restart, { policy: 'always' }],
    ['restart: on-failure:3 is on-failure', 'restart: on-failure:3', (s) => s.template.restart, { policy: 'on-failure' }],
    ['deploy.restart_policy wins over restart', 'restart: always\ndeploy: { restart_policy: { condition: none } }', (s) => s.template.restart, { policy: 'never' }],
    ['stop_signal, stop_grace_period, user, working_dir, init', 'stop_signal: SIGINT\nstop_grace_period: 1m30s\nuser: 1000\nworking_dir: /app\ninit: false',
      (s) => [s.template.stopSignal, s.template.stopGracePeriodSeconds, s.template.user, s.template.workingDir, s.template.init], ['SIGINT', 90, '1000', '/app', false]],
    ['cap_add, cap_drop, read_only, seccomp=unconfined', 'cap_add: [NET_ADMIN]\ncap_drop: [ALL]\nread_only: true\nsecurity_opt: ["seccomp=unconfined"]', (s) => s.template.security,
      { capAdd: ['NET_ADMIN'], capDrop: ['ALL'], readOnlyRootfs: true, seccomp: 'unconfined' }],
    ['pull_policy missing is if-not-present', 'pull_policy: missing', (s) => s.template.pullPolicy, 'if-not-present'],
  ];
  for (const [title, lines, pick, expected] of cases) it(title, () => assert.deepEqual(pick(specOf(lines)), expected));

  it('service labels and deploy labels both become metadata.labels', () => {
    const r = scratch.convert(oneService('labels: ["tier=front", "x.y/z=1"]\ndeploy: { labels: { app: web } }'));
    assert.deepEqual(serviceOf(r.objects, 's').metadata.labels, { tier: 'front', 'x.y/z': '1', app: 'web' });
  });

  it('refuses jobs, constraints that can never hold, and bad values, each naming its field', () => {
    for (const [lines, message] of [
      ['deploy: { mode: replicated-job }', /deploy\.mode: "replicated-job" is not supported/],
      ['deploy: { placement: { constraints: ["node.platform.os == windows"] } }', /constraints\[0\]: "node.platform.os == windows" can never hold/],
      ['deploy: { placement: { constraints: ["node.labels.zone == a b"] } }', /constraints\[0\]: "node.labels.zone == a b": invalid value/],
      ['deploy: { replicas: many }', /deploy\.replicas: must be a whole number, got "many"/],
      ['deploy: { update_config: { order: sideways } }', /update_config\.order: must be start-first or stop-first/],
      ['deploy: { resources: { limits: { memory: lots } } }', /limits\.memory: must be a size like 512m/],
      ['restart: sometimes', /services\.s\.restart: must be no, always/],
      ['stop_grace_period: 2h', /stop_grace_period: must be at most 3600s/],
    ] as const) {
      const r = scratch.convert(oneService(lines));
      assert.match(r.errors.join('\n'), message, `for ${lines}`);
    }
  });
});

describe('compose fields berth does not support', () => {
  it('are each named in a warning with what to do instead; x- extensions and version are accepted silently', () => {
    const r = scratch.convert(oneService([
      'build: .', 'container_name: web1', 'depends_on: [db]', 'networks: [front]', 'sysctls: { a: 1 }', 'x-mine: 1',
      'deploy: { rollback_config: { parallelism: 1 }, resources: { reservations: { cpus: 1 } }, placement: { constraints: ["node.role == manager"] }, restart_policy: { max_attempts: 3 } }',
      'healthcheck: { test: [CMD, x], unknown_timing: 1s }',
    ].join('\n'), 'version: "3.9"\nnetworks: { front: {} }\nx-anchors: { a: 1 }\n'));
    assert.deepEqual(r.unsupported, [
      'networks is not supported, ignored (every berth service is on the one cluster network and reached by its name)',
      'services.s.build is not supported, ignored (berth runs images: build and push the image, then set image)',
      'services.s.container_name is not supported, ignored (berth names tasks itself)',
      'services.s.depends_on is not supported, ignored (berth starts services independently; make clients retry, and use healthcheck)',
      'services.s.networks is not supported, ignored (every berth service is on the one cluster network and reached by its name)',
      'services.s.sysctls is not supported, ignored',
      'services.s.healthcheck.unknown_timing is not supported, ignored',
      'services.s.deploy.rollback_config is not supported, ignored (an automatic rollback goes back to the previous revision with the update settings)',
      'services.s.deploy.resources.reservations is not supported, ignored (berth reserves what limits set)',
      'services.s.deploy.placement.constraints[0] is not supported, ignored ("node.role == manager": every berth node runs tasks and none is a manager; use a node label)',
      'services.s.deploy.restart_policy.max_attempts is not supported, ignored (berth restarts with a growing backoff, without a limit)',
    ]);
    assert.deepEqual(r.errors, []);
  });

  it('a service without image is an error: berth does not build', () => {
    const r = scratch.convert('services:\n  s: { build: . }\n');
    assert.match(r.errors.join('\n'), /services\.s\.image: required: berth runs images/);
  });
});

describe('compose names', () => {
  it('objects go to the given namespace, else the project name; names become DNS labels with a note', () => {
    const r = scratch.convert('services:\n  My_Web: { image: img }\n', { project: 'Shop.Front' });
    assert.deepEqual(r.errors, []);
    assert.equal(serviceOf(r.objects, 'my-web').metadata.namespace, 'shop-front');
    assert.match(r.notes.join('\n'), /services\.My_Web: is named my-web in berth/);
    const given = scratch.convert('services:\n  web: { image: img }\n', { namespace: 'prod' });
    assert.equal(serviceOf(given.objects, 'web').metadata.namespace, 'prod');
  });

  it('two services that normalise to one name are refused', () => {
    const r = scratch.convert('services:\n  a_b: { image: img }\n  a-b: { image: img }\n');
    assert.match(r.errors.join('\n'), /services\.a-b: is named a-b in berth, as services\.a_b is/);
  });
});
