/**
 * The CLI's namespace verbs: `apply -f` of kind Namespace, `get namespaces [NAME]`,
 * `describe namespace NAME` and `delete namespace NAME`, against a fake control plane that
 * records requests; and the pure renderers they use.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyOrder, violationWarning } from '../../control-plane/cli/apply.js';
import { describeNamespace } from '../../control-plane/cli/describe.js';
import { namespacesTable } from '../../control-plane/cli/format.js';
import { parseManifests } from '../../control-plane/cli/manifest.js';
import type { Namespace, NamespaceViolation, PolicyLevel } from '../../control-plane/objects/types.js';
import { FakeApi, NOW_MS, runBerth } from '../support/fake-api.js';

function ns(name: string, policy: PolicyLevel, status: Namespace['status'] = {}, generation = 1): Namespace {
  return { kind: 'Namespace', metadata: { name, uid: `u-${name}`, generation, labels: {}, createdAt: '2025-01-01T00:00:00Z' }, spec: { policy }, status };
}

const WEB_VIOLATION: NamespaceViolation = {
  service: 'web',
  violations: [
    'spec.template.user: <unset> is not allowed at policy level restricted (set a numeric non-root user)',
    'spec.template.security.capDrop: <unset> is not allowed at policy level restricted (must contain ALL)',
  ],
};

describe('berth namespace verbs against a fake control plane', () => {
  const api = new FakeApi();
  before(() => api.start());
  after(() => api.stop());
  beforeEach(() => api.reset());
  const cli = (...args: string[]) => runBerth(['--server', api.url, ...args]);

  it('apply PUTs a Namespace to /v1/namespaces/NAME, before the services of the same file', async () => {
    api.routes.set('PUT /v1/namespaces/prod', { status: 201, body: ns('prod', 'restricted') });
    api.routes.set('PUT /v1/namespaces/prod/services/web', { status: 201, body: { kind: 'Service', metadata: { name: 'web', generation: 1 } } });
    const file = 'kind: Service\nmetadata: { name: web, namespace: prod }\nspec: { template: { image: "oci-archive:/x.tar" } }\n---\n'
      + 'kind: Namespace\nmetadata: { name: prod }\nspec: { policy: restricted }\n';
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: file });
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'namespace/prod created\nservice/web created\n', '']);
    const puts = api.requests.filter((q) => q.method === 'PUT');
    assert.deepEqual(puts.map((q) => q.url), ['/v1/namespaces/prod', '/v1/namespaces/prod/services/web']);
    assert.deepEqual(puts[0]!.body, { kind: 'Namespace', metadata: { name: 'prod' }, spec: { policy: 'restricted' } });
  });

  it('apply of a Namespace says configured or unchanged by generation, and warns about services that break the level', async () => {
    api.routes.set('GET /v1/namespaces/prod', { status: 200, body: ns('prod', 'baseline', {}, 2) });
    api.routes.set('PUT /v1/namespaces/prod', { status: 200, body: ns('prod', 'restricted', { violations: [WEB_VIOLATION] }, 3) });
    const yaml = 'kind: Namespace\nmetadata: { name: prod }\nspec: { policy: restricted }\n';
    const changed = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: yaml });
    assert.equal(changed.code, 0);
    assert.equal(changed.stdout, 'namespace/prod configured\n');
    assert.equal(changed.stderr, 'Warning: namespace/prod: 1 existing service breaks policy level restricted (web); running tasks are not touched, but the next template change must comply (berth describe namespace prod)\n');
    api.routes.set('PUT /v1/namespaces/prod', { status: 200, body: ns('prod', 'restricted', { violations: [] }, 2) });
    assert.deepEqual(Object.values(await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: yaml })), [0, 'namespace/prod unchanged\n', '']);
  });

  it('apply prints the policy refusal of a service and exits 1', async () => {
    const message = 'service "default/web" is not allowed in namespace "default" at policy level baseline (1 violation): spec.template.security.capAdd[0]: SYS_ADMIN is not allowed at policy level baseline (allowed: ...)';
    api.routes.set('PUT /v1/namespaces/default/services/web', { status: 400, body: { error: { code: 'BERTH_ERR_POLICY_VIOLATION', field: 'spec.template.security.capAdd[0]', message } } });
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: 'kind: Service\nmetadata: { name: web }\nspec: { template: { image: "oci-archive:/x.tar", security: { capAdd: [SYS_ADMIN] } } }\n' });
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', `error: service/web: ${message}\n`]);
  });

  it('get namespaces prints NAME POLICY AGE, marks implicit ones, and ignores -n', async () => {
    api.routes.set('GET /v1/namespaces', { status: 200, body: { items: [ns('default', 'baseline', { implicit: true }), ns('prod', 'restricted')] } });
    const r = await cli('-n', 'other', 'get', 'namespaces');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'NAME      POLICY                AGE\ndefault   baseline (implicit)   10m\nprod      restricted            10m\n');
  });

  it('get ns NAME -o json prints the object; -o yaml a list', async () => {
    api.routes.set('GET /v1/namespaces/prod', { status: 200, body: ns('prod', 'restricted', { violations: [] }) });
    api.routes.set('GET /v1/namespaces', { status: 200, body: { items: [ns('prod', 'restricted')] } });
    const json = await cli('get', 'ns', 'prod', '-o', 'json');
    assert.deepEqual(JSON.parse(json.stdout), ns('prod', 'restricted', { violations: [] }));
    const yaml = await cli('get', 'namespace', '-o', 'yaml');
    assert.match(yaml.stdout, /^- kind: Namespace\n {2}metadata:\n {4}name: prod\n/);
  });

  it('get namespaces refuses -A and -w, and says when there are none', async () => {
    assert.deepEqual([(await cli('get', 'namespaces', '-A')).code, (await cli('get', 'namespaces', '-A')).stderr], [2, 'error: namespaces are not namespaced; drop -A\n']);
    assert.equal((await cli('get', 'namespaces', '-w')).stderr, 'error: -w is not supported for namespaces\n');
    api.routes.set('GET /v1/namespaces', { status: 200, body: { items: [] } });
    assert.deepEqual(Object.values(await cli('get', 'namespaces')), [0, '', 'No namespaces found.\n']);
  });

  it('describe namespace prints the policy and each violating service with its messages', async () => {
    api.routes.set('GET /v1/namespaces/prod', { status: 200, body: ns('prod', 'restricted', { violations: [WEB_VIOLATION] }) });
    const r = await cli('describe', 'namespace', 'prod');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, describeNamespace(ns('prod', 'restricted', { violations: [WEB_VIOLATION] }), NOW_MS));
    assert.deepEqual(api.requests.map((q) => `${q.method} ${q.url}`), ['GET /v1/namespaces/prod']);
  });

  it('delete namespace sends DELETE /v1/namespaces/NAME and prints the refusal of a non-empty one', async () => {
    api.routes.set('DELETE /v1/namespaces/dev', { status: 200, body: ns('dev', 'baseline') });
    assert.deepEqual(Object.values(await cli('delete', 'namespace', 'dev')), [0, 'namespace/dev deleted\n', '']);
    const message = 'namespace "prod" still has 2 services (api, web); delete them first';
    api.routes.set('DELETE /v1/namespaces/prod', { status: 409, body: { error: { code: 'BERTH_ERR_NAMESPACE_NOT_EMPTY', message } } });
    assert.deepEqual(Object.values(await cli('delete', 'ns', 'prod')), [1, '', `error: ${message}\n`]);
    assert.equal((await cli('delete', 'ns', 'prod', '--force')).code, 2, '--force is for nodes only');
  });
});

describe('namespace rendering and manifests (pure)', () => {
  it('namespacesTable shows the level, "(implicit)" without an object, and the age', () => {
    assert.equal(namespacesTable([ns('a', 'privileged'), ns('b', 'baseline', { implicit: true })], { now: NOW_MS }),
      'NAME   POLICY                AGE\na      privileged            10m\nb      baseline (implicit)   10m\n');
  });

  it('describeNamespace says "none" without violations and names an implicit namespace', () => {
    assert.equal(describeNamespace(ns('default', 'baseline', { implicit: true, violations: [] }), NOW_MS),
      'Name:     default\nPolicy:   baseline (implicit: no Namespace object, so the default level)\nLabels:   <none>\nCreated:  2025-01-01T00:00:00Z (10m ago)\nViolations:  none\n');
  });

  it('describeNamespace lists each service and every message under it', () => {
    const text = describeNamespace(ns('prod', 'restricted', { violations: [WEB_VIOLATION] }), NOW_MS);
    assert.ok(text.startsWith('Name:     prod\nPolicy:   restricted\n'), text);
    assert.ok(text.endsWith(`Violations (running tasks are not touched; each service's next template change must comply):\n  web:\n    ${WEB_VIOLATION.violations[0]}\n    ${WEB_VIOLATION.violations[1]}\n`), text);
  });

  it('violationWarning is empty without violations and counts services otherwise', () => {
    assert.equal(violationWarning(ns('p', 'restricted', { violations: [] })), '');
    assert.match(violationWarning(ns('p', 'restricted', { violations: [WEB_VIOLATION, { ...WEB_VIOLATION, service: 'api' }] })), /^Warning: namespace\/p: 2 existing services break policy level restricted \(web, api\)/);
  });

  it('parseManifests accepts kind Namespace without metadata.namespace and refuses one with it', () => {
    const [m] = parseManifests('kind: Namespace\nmetadata: { name: prod }\nspec: { policy: baseline }\n', 'ns.yaml');
    assert.deepEqual([m!.kind, m!.name, m!.namespace], ['Namespace', 'prod', undefined]);
    assert.throws(() => parseManifests('kind: Namespace\nmetadata: { name: prod, namespace: x }\nspec: { policy: baseline }\n', 'ns.yaml'),
      /ns\.yaml: metadata\.namespace: a Namespace is not inside a namespace/);
  });

  it('applyOrder moves Namespaces first and keeps the rest in file order', () => {
    const docs = parseManifests('kind: Service\nmetadata: {name: a}\n---\nkind: Namespace\nmetadata: {name: n}\n---\nkind: Service\nmetadata: {name: b}\n', 'f');
    assert.deepEqual(applyOrder(docs).map((m) => `${m.kind}/${m.name}`), ['Namespace/n', 'Service/a', 'Service/b']);
  });
});
