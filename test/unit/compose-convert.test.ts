/**
 * Compose to berth, field by field: each compose form a `docker stack deploy` file uses is
 * translated into the template, spec or metadata field the table names, and each form berth
 * cannot honour is an error naming the field.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerTemplate } from '../../control-plane/objects/types.js';
import { ComposeScratch, oneService, serviceOf } from './compose-support.js';

const scratch = new ComposeScratch();
after(() => scratch.remove());

/** templateOf converts one service and returns its template, failing on any error. */
function templateOf(lines: string, opts: Parameters<ComposeScratch['convert']>[1] = {}, top = ''): ContainerTemplate {
  const r = scratch.convert(oneService(lines, top), opts);
  assert.deepEqual(r.errors, [], 'expected no errors');
  return serviceOf(r.objects, 's').spec.template;
}

/** Case is one row: the YAML under the service, the template field to look at, and what it must hold. */
type Case = [title: string, lines: string, field: keyof ContainerTemplate, expected: unknown];

function table(cases: Case[], opts: Parameters<ComposeScratch['convert']>[1] = {}, top = ''): void {
  for (const [title, lines, field, expected] of cases) {
    it(title, () => assert.deepEqual(templateOf(lines, opts, top)[field], expected));
  }
}

describe('compose ports', () => {
  table([
    ['short HOST:CONTAINER publishes on the host port', 'ports: ["8080:80"]', 'ports', [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]],
    ['a bare container port is exposed, not published', 'ports: ["80", 81]', 'ports', [{ containerPort: 80, protocol: 'tcp' }, { containerPort: 81, protocol: 'tcp' }]],
    ['/udp sets the protocol', 'ports: ["5353:53/udp"]', 'ports', [{ containerPort: 53, hostPort: 5353, protocol: 'udp' }]],
    ['equal ranges expand port by port', 'ports: ["8000-8001:9000-9001"]', 'ports', [{ containerPort: 9000, hostPort: 8000, protocol: 'tcp' }, { containerPort: 9001, hostPort: 8001, protocol: 'tcp' }]],
    ['long syntax keeps target, published, protocol and mode', 'ports: [{ target: 80, published: "8080", protocol: udp, mode: ingress, name: web }]', 'ports',
      [{ containerPort: 80, hostPort: 8080, protocol: 'udp', mode: 'ingress', name: 'web' }]],
    ['expose adds container ports once', 'ports: ["8080:80"]\nexpose: ["80", "9000/udp"]', 'ports',
      [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }, { containerPort: 9000, protocol: 'udp' }]],
  ]);

  const refused: [string, string, RegExp][] = [
    ['a host IP', 'ports: ["127.0.0.1:8080:80/udp"]', /services\.s\.ports\[0\]: "127\.0\.0\.1:8080:80\/udp": a host IP cannot be given/],
    ['an IPv6 host IP', 'ports: ["[::1]:8080:80"]', /a host IP cannot be given/],
    ['a long host_ip', 'ports: [{ target: 80, published: 8080, host_ip: 127.0.0.1 }]', /ports\[0\]\.host_ip: a host IP cannot be given/],
    ['sctp', 'ports: ["80:80/sctp"]', /protocol "sctp" is not supported/],
    ['a port out of range', 'ports: ["70000:80"]', /"70000" is not a port/],
    ['ranges of different lengths', 'ports: ["8000-8002:80-81"]', /same length/],
  ];
  for (const [what, lines, message] of refused) {
    it(`refuses ${what}`, () => {
      const r = scratch.convert(oneService(lines));
      assert.match(r.errors.join('\n'), message);
    });
  }
});

describe('compose environment', () => {
  table([
    ['a KEY=VALUE list, a bare KEY from the environment, an unset bare KEY left out', 'environment: ["A=1", "B=x=y", "FROM_ENV", "NOT_SET"]', 'env', { A: '1', B: 'x=y', FROM_ENV: 'shell' }],
    ['a mapping with numbers, booleans and a null from the environment', 'environment: { N: 3, T: true, FROM_ENV: null, S: "s" }', 'env', { N: '3', T: 'true', FROM_ENV: 'shell', S: 's' }],
  ], { env: { FROM_ENV: 'shell' } });

  it('env_file entries are read in order and environment overrides them', () => {
    const t = templateOf('env_file: [a.env, { path: missing.env, required: false }, sub/b.env]\nenvironment: { B: from-environment }',
      { files: { 'a.env': 'A=1\nB=from-a\n', 'sub/b.env': 'C="c ${A:-}"\n' } });
    assert.deepEqual(t.env, { A: '1', B: 'from-environment', C: 'c ' });
  });

  it('a missing required env_file is an error naming the file', () => {
    const r = scratch.convert(oneService('env_file: nope.env'));
    assert.match(r.errors.join('\n'), /services\.s\.env_file: .*nope\.env: no such file/);
  });
});

describe('compose command and entrypoint', () => {
  table([
    ['a string command is split into words', 'command: httpd -f -p "80"', 'command', ['httpd', '-f', '-p', '80']],
    ['entrypoint and command combine into one command', 'entrypoint: ["/entry.sh"]\ncommand: ["run", "--fast"]', 'command', ['/entry.sh', 'run', '--fast']],
    ['a string entrypoint alone replaces the image\'s', 'entrypoint: /bin/sh -c "echo hi"', 'command', ['/bin/sh', '-c', 'echo hi']],
    ['an empty entrypoint leaves the command alone', 'entrypoint: []\ncommand: [run]', 'command', ['run']],
  ]);

  it('a command without entrypoint warns that the image\'s ENTRYPOINT is not kept', () => {
    const r = scratch.convert(oneService('command: [run]'));
    assert.match(r.notes.join('\n'), /services\.s\.command: berth runs it in place of the image's ENTRYPOINT and CMD/);
    const withEntry = scratch.convert(oneService('entrypoint: [e]\ncommand: [run]'));
    assert.deepEqual(withEntry.notes, [], 'no warning once entrypoint is given');
  });
});

describe('compose healthcheck', () => {
  table([
    ['CMD is an exec probe with Docker\'s default timing', 'healthcheck: { test: ["CMD", "check", "-q"] }', 'health',
      { exec: { command: ['check', '-q'] }, intervalSeconds: 30, timeoutSeconds: 30, failureThreshold: 3 }],
    ['CMD-SHELL runs under sh -c with its durations', 'healthcheck: { test: ["CMD-SHELL", "curl -f localhost || exit 1"], interval: 1m30s, timeout: 500ms, retries: 5 }', 'health',
      { exec: { command: ['sh', '-c', 'curl -f localhost || exit 1'] }, intervalSeconds: 90, timeoutSeconds: 1, failureThreshold: 5 }],
    ['a string test runs under sh -c', 'healthcheck: { test: "pgrep app", interval: 10s }', 'health',
      { exec: { command: ['sh', '-c', 'pgrep app'] }, intervalSeconds: 10, timeoutSeconds: 30, failureThreshold: 3 }],
    ['NONE sets no probe', 'healthcheck: { test: ["NONE"] }', 'health', undefined],
    ['disable: true sets no probe', 'healthcheck: { test: ["CMD", "x"], disable: true }', 'health', undefined],
    ['start_period becomes a startup probe allowing its length in failures', 'healthcheck: { test: ["CMD", "x"], interval: 10s, start_period: 1m, retries: 2 }', 'startup',
      { exec: { command: ['x'] }, intervalSeconds: 10, timeoutSeconds: 30, failureThreshold: 8 }],
  ]);

  it('refuses an unknown test kind and a duration without a unit', () => {
    const kind = scratch.convert(oneService('healthcheck: { test: ["RUN", "x"] }'));
    assert.match(kind.errors.join('\n'), /healthcheck\.test: must start with "CMD", "CMD-SHELL" or "NONE", got "RUN"/);
    const unit = scratch.convert(oneService('healthcheck: { test: ["CMD", "x"], interval: 10 }'));
    assert.match(unit.errors.join('\n'), /healthcheck\.interval: must be a duration like 10s/);
  });
});

describe('compose volumes', () => {
  const top = 'volumes:\n  db_data: {}\n  shared: { external: true }\n';
  it('named, relative bind, absolute read-only bind, tmpfs forms', () => {
    const r = scratch.convert(oneService([
      'volumes:',
      '  - db_data:/var/lib/db',
      '  - ./site:/var/www',
      '  - /etc/app:/etc/app:ro',
      '  - shared:/shared:rw',
      '  - { type: tmpfs, target: /cache, tmpfs: { size: 64m } }',
      '  - { type: bind, source: ../up, target: /up, read_only: true }',
      '  - { type: volume, source: db_data, target: /again }',
      'tmpfs: ["/run", "/tmp:size=1g,mode=1777"]',
    ].join('\n'), top));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(serviceOf(r.objects, 's').spec.template.volumes, [
      { type: 'volume', name: 'db-data', target: '/var/lib/db' },
      { type: 'bind', source: `${r.dir}/site`, target: '/var/www' },
      { type: 'bind', source: '/etc/app', target: '/etc/app', readOnly: true },
      { type: 'volume', name: 'shared', target: '/shared' },
      { type: 'tmpfs', target: '/cache', size: 64 * 1024 ** 2 },
      { type: 'bind', source: r.dir.replace(/\/proj$/, '/up'), target: '/up', readOnly: true },
      { type: 'volume', name: 'db-data', target: '/again' },
      { type: 'tmpfs', target: '/run' },
      { type: 'tmpfs', target: '/tmp', size: 1024 ** 3 },
    ]);
    assert.deepEqual(r.unsupported, ['services.s.tmpfs[1] option mode is not supported, ignored (a berth tmpfs takes only a size)']);
  });

  it('an undeclared named volume is an error; an anonymous one is unsupported', () => {
    const r = scratch.convert(oneService('volumes: ["nope:/x", "/anon"]'));
    assert.match(r.errors.join('\n'), /volumes\[0\]: volume "nope" is not declared in the top-level volumes: mapping/);
    assert.match(r.unsupported.join('\n'), /volumes\[1\] is not supported, ignored \("\/anon" is an anonymous volume/);
  });
});

describe('compose secrets and configs', () => {
  const top = [
    'secrets:',
    '  db_pw: { file: ./pw.txt }',
    '  api_key: { environment: API_KEY }',
    '  ext_one: { external: true }',
    'configs:',
    '  app_cfg: { file: ./app.conf }',
    '  inline: { content: "a=1" }',
  ].join('\n');
  const files = { 'pw.txt': Buffer.from([0x73, 0x33, 0x0a, 0xff]), 'app.conf': 'port=80\n' };

  it('a declared secret becomes a Secret with one key holding the file\'s bytes; external makes none', () => {
    const r = scratch.convert(oneService('secrets: [db_pw]', top), { files, env: { API_KEY: 'k3y' } });
    assert.deepEqual(r.errors, []);
    const secrets = r.objects.filter((o) => o.kind === 'Secret');
    assert.deepEqual(secrets, [
      { kind: 'Secret', metadata: { name: 'db-pw', namespace: 'proj' }, data: { db_pw: Buffer.from([0x73, 0x33, 0x0a, 0xff]).toString('base64') } },
      { kind: 'Secret', metadata: { name: 'api-key', namespace: 'proj' }, data: { api_key: Buffer.from('k3y').toString('base64') } },
    ]);
    assert.deepEqual(r.objects.filter((o) => o.kind === 'Config'), [
      { kind: 'Config', metadata: { name: 'app-cfg', namespace: 'proj' }, data: { app_cfg: 'port=80\n' } },
      { kind: 'Config', metadata: { name: 'inline', namespace: 'proj' }, data: { inline: 'a=1' } },
    ]);
    assert.deepEqual(r.objects.map((o) => o.kind), ['Secret', 'Secret', 'Config', 'Config', 'Service'], 'files before services');
  });

  table([
    ['a short secret lands at /run/secrets/<name>', 'secrets: [db_pw, ext_one]', 'secrets',
      [{ name: 'db-pw', key: 'db_pw', target: '/run/secrets/db_pw' }, { name: 'ext_one', key: 'ext_one', target: '/run/secrets/ext_one' }]],
    ['a long secret keeps target, uid, gid and an octal mode', 'secrets: [{ source: db_pw, target: pw, uid: "103", gid: 104, mode: 0440 }, { source: db_pw, target: /etc/pw }]', 'secrets',
      [{ name: 'db-pw', key: 'db_pw', target: '/run/secrets/pw', uid: 103, gid: 104, mode: 0o440 }, { name: 'db-pw', key: 'db_pw', target: '/etc/pw' }]],
    ['a config lands at /<name> unless target says otherwise', 'configs: [app_cfg, { source: inline, target: /etc/inline.conf, mode: "0444" }]', 'configs',
      [{ name: 'app-cfg', key: 'app_cfg', target: '/app_cfg' }, { name: 'inline', key: 'inline', target: '/etc/inline.conf', mode: 0o444 }]],
  ], { files, env: { API_KEY: 'k' } }, top);

  it('refuses an undeclared secret, a missing file, an unset variable and a binary config', () => {
    const r = scratch.convert(oneService('secrets: [nope]', 'secrets:\n  gone: { file: ./gone }\n  e: { environment: UNSET_VAR }\nconfigs:\n  bin: { file: ./bin }\n'),
      { files: { bin: Buffer.from([0xff, 0xfe]) } });
    const errors = r.errors.join('\n');
    assert.match(errors, /services\.s\.secrets\[0\]: secret "nope" is not declared/);
    assert.match(errors, /secrets\.gone\.file: .*gone: no such file/);
    assert.match(errors, /secrets\.e\.environment: variable UNSET_VAR is not set/);
    assert.match(errors, /configs\.bin: a config holds text/);
  });
});
