import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// the compiled test sits at dist/test/unit/; the CLI at dist/control-plane/cli/main.js
const CLI = fileURLToPath(new URL('../../control-plane/cli/main.js', import.meta.url));
const SPAWN_TIMEOUT_MS = 20_000;

function berth(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input: input ?? '',
    encoding: 'utf8',
    timeout: SPAWN_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** freePort finds a loopback port nobody listens on (bind, note it, close). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('berth exit codes (built CLI in a child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const usage: [string, string[], RegExp][] = [
    ['no verb', [], /Usage: berth/],
    ['an unknown verb', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown flag', ['get', 'tasks', '--colour'], /unknown option '--colour'/],
    ['a missing argument', ['scale', 'web'], /missing required argument 'replicas'/],
    ['an unknown resource', ['get', 'pods'], /unknown resource type "pods"/],
    ['an unknown output format', ['get', 'nodes', '-o', 'xml'], /unknown output format "xml"/],
    ['negative replicas', ['scale', 'web', '-1'], /non-negative integer/],
    ['fractional replicas', ['scale', 'web', '2.5'], /non-negative integer/],
    ['apply without -f', ['apply'], /-f FILE is required/],
    ['a file that does not exist', ['apply', '-f', '/nonexistent/web.yaml'], /\/nonexistent\/web\.yaml: no such file/],
    ['a verb of a later issue', ['top', 'tasks'], /top: not implemented yet/],
    ['logs with a --tail that is no number', ['logs', 'web-1', '--tail', 'ten'], /--tail must be a number of lines/],
    ['logs of something that is not a task or service', ['logs', 'node/n1'], /"node" is not a task or a service/],
    ['a bad server URL', ['--server', 'ftp://x', 'get', 'nodes'], /unsupported scheme/],
  ];
  for (const [name, args, message] of usage) {
    it(`exits 2 on ${name}`, () => {
      const r = berth(args);
      assert.equal(r.status, 2, `expected exit 2, saw ${r.status}; stderr: ${r.stderr}`);
      assert.match(r.stderr, message);
    });
  }

  it('exits 2 on invalid YAML and names the line and column', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'kind: Service\nmetadata:\n  name: web\n   replicas: 2\n');
    const r = berth(['apply', '-f', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: invalid YAML: `));
  });

  it('exits 1 with ECONNREFUSED when nothing listens at --server', async () => {
    const port = await freePort();
    const r = berth(['--server', `http://127.0.0.1:${port}`, 'get', 'nodes']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `error: cannot reach the control plane at http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });

  it('--help exits 0 and lists the verbs', () => {
    const r = berth(['--help']);
    assert.equal(r.status, 0);
    for (const verb of ['apply', 'get', 'delete', 'scale', 'version']) assert.match(r.stdout, new RegExp(`\\n  ${verb} `));
  });
});
