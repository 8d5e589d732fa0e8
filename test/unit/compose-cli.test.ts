/**
 * `berth apply -f compose.yaml` and `berth compose convert` against a fake control plane: a
 * compose file is recognised by its content, applied Namespace (only when absent) → Secrets and
 * Configs → Services in the project's namespace or -n's, warnings on stderr, and nothing is sent
 * when the file has errors or, with --strict, unsupported fields.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeApi, runBerth, type Reply } from '../support/fake-api.js';
import { ComposeScratch } from './compose-support.js';

const COMPOSE = `services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    ports: ["8080:80"]
    secrets: [db_pw]
secrets:
  db_pw:
    file: ./pw.txt
`;

const created = (kind: string, name: string): Reply => ({ status: 201, body: { kind, metadata: { name, generation: 1 } } });

describe('compose files through the CLI', () => {
  const api = new FakeApi();
  const scratch = new ComposeScratch();
  let file = '';
  before(async () => {
    await api.start();
    const dir = join(scratch.root, 'shop');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pw.txt'), 'hunter2');
    file = join(dir, 'compose.yaml');
    writeFileSync(file, COMPOSE);
  });
  after(async () => {
    await api.stop();
    scratch.remove();
  });
  beforeEach(() => api.reset());

  const routesFor = (ns: string): void => {
    api.routes.set(`PUT /v1/namespaces/${ns}`, created('Namespace', ns));
    api.routes.set(`PUT /v1/namespaces/${ns}/secrets/db-pw`, created('Secret', 'db-pw'));
    api.routes.set(`PUT /v1/namespaces/${ns}/services/web`, created('Service', 'web'));
  };
  const puts = (): string[] => api.requests.filter((q) => q.method === 'PUT').map((q) => q.url);

  it('apply creates the namespace named after the project, then the secret, then the service', async () => {
    routesFor('shop');
    const r = await runBerth(['--server', api.url, 'apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'namespace/shop created\nsecret/db-pw created\nservice/web created\n');
    assert.deepEqual(puts(), ['/v1/namespaces/shop', '/v1/namespaces/shop/secrets/db-pw', '/v1/namespaces/shop/services/web']);
    const secret = api.requests.find((q) => q.url.endsWith('/secrets/db-pw') && q.method === 'PUT')!.body as { data: Record<string, string> };
    assert.deepEqual(secret.data, { db_pw: Buffer.from('hunter2').toString('base64') });
    const service = api.requests.find((q) => q.url.endsWith('/services/web') && q.method === 'PUT')!.body as { spec: { template: { secrets: unknown } } };
    assert.deepEqual(service.spec.template.secrets, [{ name: 'db-pw', key: 'db_pw', target: '/run/secrets/db_pw' }]);
    assert.match(r.stderr, /warning: services\.web\.command: berth runs it in place of the image's ENTRYPOINT/);
  });

  it('apply leaves an existing namespace alone and uses -n over the project name', async () => {
    routesFor('prod');
    api.routes.set('GET /v1/namespaces/prod', { status: 200, body: { kind: 'Namespace', metadata: { name: 'prod', generation: 3 }, spec: { policy: 'restricted' }, status: {} } });
    const r = await runBerth(['--server', api.url, '-n', 'prod', 'apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(puts(), ['/v1/namespaces/prod/secrets/db-pw', '/v1/namespaces/prod/services/web'], 'the namespace is not replaced');
  });

  it('apply goes on when the namespace may not be created, with a warning', async () => {
    routesFor('shop');
    api.routes.set('PUT /v1/namespaces/shop', { status: 403, body: { error: { code: 'BERTH_ERR_FORBIDDEN', message: 'operators may not create namespaces' } } });
    const r = await runBerth(['--server', api.url, 'apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: namespace\/shop: not created \(operators may not create namespaces\)/);
    assert.deepEqual(puts().slice(1), ['/v1/namespaces/shop/secrets/db-pw', '/v1/namespaces/shop/services/web']);
  });

  it('a compose file with errors sends nothing and exits 2, listing each error', async () => {
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: 'services:\n  a:\n    image: x\n    ports: ["127.0.0.1:80:80"]\n    deploy: { replicas: -1 }\n' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: <stdin>: services\.a\.ports\[0\]: "127\.0\.0\.1:80:80": a host IP cannot be given/m);
    assert.match(r.stderr, /^error: <stdin>: services\.a\.deploy\.replicas: must be between 0 and 10000, got -1$/m);
    assert.equal(api.requests.length, 0);
  });

  it('unsupported fields are warnings, or with --strict a refusal (exit 1) that sends nothing', async () => {
    const text = 'services:\n  a:\n    image: x\n    cap_add: [NET_ADMIN]\n    privileged: true\n    logging: { driver: syslog }\n';
    api.routes.set('PUT /v1/namespaces/ns1', created('Namespace', 'ns1'));
    api.routes.set('PUT /v1/namespaces/ns1/services/a', created('Service', 'a'));
    const warned = await runBerth(['--server', api.url, '-n', 'ns1', 'apply', '-f', '-'], { stdin: text });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /^warning: services\.a\.privileged is not supported, ignored \(berth never runs privileged containers; use cap_add\)$/m);
    assert.match(warned.stderr, /^warning: services\.a\.logging is not supported, ignored/m);
    api.reset();
    const strict = await runBerth(['--server', api.url, '-n', 'ns1', 'apply', '--strict', '-f', '-'], { stdin: text });
    assert.equal(strict.code, 1);
    assert.equal(strict.stderr, 'error: <stdin>: 2 unsupported fields (--strict):\n'
      + '  services.a.privileged is not supported, refused (berth never runs privileged containers; use cap_add)\n'
      + '  services.a.logging is not supported, refused (berth keeps container logs itself: berth logs)\n');
    assert.equal(api.requests.length, 0);
  });

  it('an ordinary manifest with a services: key but a kind is not taken for a compose file', async () => {
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: 'kind: Widget\nmetadata: { name: w }\nservices: {}\n' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /kind "Widget" is not supported/);
  });

  it('compose convert prints YAML documents or a JSON array and sends nothing', async () => {
    const yaml = await runBerth(['--server', api.url, 'compose', 'convert', '-f', file]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^kind: Secret\nmetadata:\n {2}name: db-pw\n {2}namespace: shop\n/);
    assert.match(yaml.stdout, /\n---\nkind: Service\n/);
    const json = await runBerth(['--server', api.url, '-n', 'x', 'compose', 'convert', '-f', file, '-o', 'json']);
    const objects = JSON.parse(json.stdout) as { kind: string; metadata: { namespace: string } }[];
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.namespace}`), ['Secret/x', 'Service/x']);
    assert.equal(api.requests.length, 0);
  });

  it('compose convert refuses a bad output format and a missing file with exit 2', async () => {
    const format = await runBerth(['compose', 'convert', '-f', file, '-o', 'table']);
    assert.deepEqual([format.code, format.stderr], [2, 'error: compose convert: -o must be yaml or json, got "table"\n']);
    const missing = await runBerth(['compose', 'convert', '-f', join(scratch.root, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml: no such file/);
    const none = await runBerth(['compose', 'convert']);
    assert.deepEqual([none.code, none.stderr], [2, 'error: compose convert: -f FILE is required (- reads stdin)\n']);
  });
});
