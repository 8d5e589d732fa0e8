import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// compiled to dist/test/integration/; the repo root is three levels up
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = `${REPO}deploy/local-cluster`;
const CLI = `${REPO}dist/control-plane/cli/main.js`;
const SEED_IMAGE = '/var/lib/berth/seed/busybox.tar';
const NAME = `lct${process.pid % 100000}`;
const UP_TIMEOUT_MS = 120_000;
const RUNNING_WAIT_MS = 90_000;
const POLL_MS = 500;

function sh(args: string[], timeoutMs = UP_TIMEOUT_MS): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(SCRIPT, args, { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** berth runs the CLI with the admin config `up` printed (BERTH_CONFIG), as the quick start tells people to. */
function berth(config: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, BERTH_CONFIG: config };
  delete env.BERTH_SERVER;
  delete env.BERTH_TOKEN;
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, input: input ?? '', env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** leftovers lists everything of cluster NAME that `down` must have removed. */
function leftovers(name: string, idx: string | undefined): string[] {
  const found: string[] = [];
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const line of netns.split('\n')) if (line.startsWith(`berth-${name}-`)) found.push(`netns ${line}`);
  if (idx) {
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    for (const line of links.split('\n')) {
      const link = line.split(': ')[1]?.split('@')[0];
      if (link === `bl${idx}` || link?.startsWith(`bl${idx}h`)) found.push(`link ${link}`);
    }
  }
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(`/sys/fs/cgroup/${ctrl}/berth-${name}`)) found.push(`cgroup ${ctrl}/berth-${name}`);
  }
  const stateDir = `/var/lib/berth-local/${name}`;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(`${stateDir}/`) || cmd.includes(`/run/berth-local/${name}/`)) found.push(`process ${pid} ${cmd}`);
    } catch {
      // the process exited while we looked
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(stateDir)) found.push(`mount ${line}`);
  }
  if (existsSync(stateDir)) found.push(`dir ${stateDir}`);
  if (existsSync(`/run/berth-local/${name}`)) found.push(`dir /run/berth-local/${name}`);
  if (idx && existsSync(`/run/berth-local/.index/${idx}`)) found.push(`registry entry ${idx}`);
  return found;
}

const isRoot = process.getuid?.() === 0;
const built = existsSync(`${REPO}dist/control-plane/main.js`) && existsSync(`${REPO}dist/agent/main.js`);

describe('deploy/local-cluster argument handling', { skip: !isRoot && 'needs root' }, () => {
  it('refuses a bad host count and a bad name with exit status 1', () => {
    assert.equal(sh(['up', '--hosts', '0', '--name', NAME]).status, 1);
    assert.match(sh(['up', '--hosts', '1', '--name', 'Bad_Name']).stderr, /--name must be a DNS label/);
  });

  it('down of a cluster that does not exist succeeds and leaves nothing', () => {
    const r = sh(['down', '--name', `${NAME}x`]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(leftovers(`${NAME}x`, undefined), []);
  });

  it('status of a cluster that does not exist fails', () => {
    assert.equal(sh(['status', '--name', `${NAME}x`]).status, 1);
  });
});

describe('deploy/local-cluster with one host', { skip: (!isRoot && 'needs root') || (!built && 'control plane or agent not built yet') }, () => {
  let server = '';
  let config = '';
  let idx: string | undefined;
  before(() => {
    const r = sh(['up', '--hosts', '1', '--name', NAME]);
    assert.equal(r.status, 0, `up failed:\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines.at(-1)!, /^BERTH_SERVER=https:\/\/10\.88\.\d+\.1:\d+$/);
    assert.match(lines.at(-2)!, /^BERTH_CONFIG=\/\S+$/, 'BERTH_CONFIG comes just before the last line');
    assert.ok(lines.some((l) => /^BERTH_REGISTRY=10\.88\.\d+\.1:\d+$/.test(l)), `no BERTH_REGISTRY line in:\n${r.stdout}`);
    server = lines.at(-1)!.slice('BERTH_SERVER='.length);
    config = lines.at(-2)!.slice('BERTH_CONFIG='.length);
    idx = server.split('.')[2];
  });
  after(() => {
    // cleanup runs even when a test failed; the last test checks it separately
    sh(['down', '--name', NAME]);
  });

  it('refuses a second up with the same name', () => {
    const r = sh(['up', '--hosts', '1', '--name', NAME]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists/);
  });

  it('status reports the server, admin config, CA, etcd, the registry and a live agent per host', () => {
    const r = sh(['status', '--name', NAME]);
    assert.equal(r.status, 0, r.stderr);
    const status = JSON.parse(r.stdout) as { server: string; config: string; ca: string; etcd: string; registry: string; hosts: { node: string; netns: string; address: string; agentPid: number; stateDir: string }[] };
    assert.equal(status.server, server);
    assert.equal(status.config, config);
    assert.equal(statSync(config).mode & 0o777, 0o600, 'the admin config holds a token: mode 0600');
    assert.match(readFileSync(status.ca, 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    assert.match(status.etcd, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(status.hosts.length, 1);
    const host = status.hosts[0]!;
    assert.deepEqual([host.node, host.netns, host.address], [`${NAME}-h1`, `berth-${NAME}-h1`, `10.88.${idx}.11`]);
    assert.ok(existsSync(`/proc/${host.agentPid}`), `agent pid ${host.agentPid} is alive`);
    for (const f of ['ca.crt', 'node.key', 'node.crt']) {
      assert.equal(statSync(`${host.stateDir}/pki/${f}`).mode & 0o777, 0o600, `the agent keeps pki/${f} with mode 0600`);
    }
  });

  it('the CLI without the admin config is refused', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, BERTH_SERVER: server, HOME: '/nonexistent' };
    delete env.BERTH_CONFIG;
    delete env.BERTH_TOKEN;
    const r = spawnSync(process.execPath, [CLI, 'get', 'nodes'], { encoding: 'utf8', timeout: 30_000, env, cwd: '/' });
    assert.equal(r.status, 1, `without a CA or credential the CLI must fail: ${r.stdout}${r.stderr}`);
  });

  it('the node is Ready through the CLI', () => {
    const r = berth(config, ['get', 'nodes', '-o', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const nodes = JSON.parse(r.stdout) as { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[];
    const node = nodes.find((n) => n.metadata.name === `${NAME}-h1`);
    assert.ok(node, `node ${NAME}-h1 listed`);
    assert.ok(node.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'));
  });

  it('runs a service and down removes its containers too', { skip: !existsSync(SEED_IMAGE) && `no seed image at ${SEED_IMAGE}` }, async () => {
    const manifest = JSON.stringify({
      kind: 'Service',
      metadata: { name: 'lc-web' },
      spec: { replicas: 2, template: { image: `oci-archive:${SEED_IMAGE}`, command: ['sleep', '3600'], resources: { cpu: 0.1, memory: '32Mi', pids: 16 } } },
    });
    const applied = berth(config, ['apply', '-f', '-'], manifest);
    assert.equal(applied.status, 0, applied.stderr);
    const deadline = Date.now() + RUNNING_WAIT_MS;
    let running = 0;
    while (Date.now() < deadline) {
      const r = berth(config, ['get', 'tasks', '--service', 'lc-web', '-o', 'json']);
      if (r.status === 0) running = (JSON.parse(r.stdout) as { status: { phase: string } }[]).filter((t) => t.status.phase === 'running').length;
      if (running === 2) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    assert.equal(running, 2, 'both replicas running before down');
  });

  it('down leaves no netns, link, cgroup, process, mount, dir or registry entry, and is safe twice', () => {
    const first = sh(['down', '--name', NAME]);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(leftovers(NAME, idx), []);
    const second = sh(['down', '--name', NAME]);
    assert.equal(second.status, 0, second.stderr);
  });
});
