/**
 * `berth exec -i/-t` through a real one-host local cluster: the CLI's WebSocket, the control
 * plane's route and stream, the agent's handler and the shim's pty. The CLI runs under `script`
 * (util-linux) when it needs a terminal of its own, as a person's shell would give it.
 * Traffic goes only to the cluster this test creates.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, cliEnv, downCluster, REPO_ROOT, upCluster, waitFor } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `exec${process.pid % 10000}`;
const WAIT_MS = 90_000;
const CLI = join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js');
const hasScript = spawnSync('script', ['--version']).status === 0;

const serviceYaml = `kind: Service
metadata: { name: shell }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
`;

/** shellQuote quotes one word for sh -c. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Step is something typed on the terminal once the output shows `after` (at once without it). */
interface Step {
  after?: string;
  send: string;
}

/** berthLine is the shell words that run the CLI with args. */
function berthLine(args: string[]): string {
  return [process.execPath, CLI, ...args].map(shellQuote).join(' ');
}

/** underTerminal runs the CLI with args inside `script`, so its stdin and stdout are a pty, and types steps. */
function underTerminal(server: string, args: string[], steps: Step[], shellLine = `exec ${berthLine(args)}`): Promise<{ code: number; out: string }> {
  // -e: script exits with the CLI's code; -q: no banner; the typescript goes nowhere.
  const child = spawn('script', ['-qec', `stty rows 33 cols 101; ${shellLine}`, '/dev/null'], { env: cliEnv(server), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const pending = [...steps];
  const typeNext = (): void => {
    while (pending.length > 0 && (pending[0]!.after === undefined || out.includes(pending[0]!.after))) child.stdin.write(pending.shift()!.send);
  };
  child.stdout.on('data', (b: Buffer) => { out += b.toString('utf8'); typeNext(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  typeNext();
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

describe('interactive exec through a local cluster', { skip: !hasScript && 'needs script(1) from util-linux' }, () => {
  let server = '';
  let task = '';

  before(async () => {
    ensureSeedImage();
    server = upCluster(CLUSTER, 1).server;
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml);
    assert.equal(applied.code, 0, `apply failed: ${applied.stderr}`);
    task = await waitFor(() => berthJson<Task[]>(server, ['get', 'tasks', '--service', 'shell'])
      .find((t) => t.status.phase === 'running')?.metadata.name, WAIT_MS, () => 'the shell task to run');
  });

  after(() => {
    downCluster(CLUSTER);
  });

  it('berth exec -it gives the command a terminal in the container, sized like ours', async () => {
    const r = await underTerminal(server, ['exec', '-it', task, '--', 'sh', '-c', 'tty; stty size'], []);
    assert.equal(r.code, 0, `expected exit 0, saw ${r.code}: ${r.out}`);
    assert.match(r.out, /\/dev\/pts\/\d+/, `expected a /dev/pts path, saw ${JSON.stringify(r.out)}`);
    assert.match(r.out, /33 101/, `expected the terminal's size 33x101, saw ${JSON.stringify(r.out)}`);
  });

  it('an interactive shell reads what is typed and its exit code becomes berth\'s', async () => {
    const r = await underTerminal(server, ['exec', '-it', task, '--', 'sh'],
      [{ send: 'echo typed-$((40+2))\n' }, { after: 'typed-42', send: 'exit 5\n' }]);
    assert.equal(r.code, 5, `expected exit 5, saw ${r.code}: ${r.out}`);
    assert.match(r.out, /typed-42/, `expected the shell's answer, saw ${JSON.stringify(r.out)}`);
  });

  it('a ^C typed on the terminal interrupts the command: exit 130', async () => {
    const r = await underTerminal(server, ['exec', '-it', task, '--', 'sh', '-c', 'echo ready; exec sleep 100'], [{ after: 'ready', send: '\x03' }]);
    assert.equal(r.code, 130, `expected exit 130, saw ${r.code}: ${r.out}`);
  });

  it('the terminal is restored after the command ends and after a failed request', async () => {
    const line = `stty -g; ${berthLine(['exec', '-it', task, '--', 'sh', '-c', 'exit 4'])}; echo "code=$?"; stty -g; `
      + `${berthLine(['exec', '-it', 'no-such-task', '--', 'true'])}; echo "code=$?"; stty -g`;
    const r = await underTerminal(server, [], [], line);
    assert.equal(r.code, 0, `the shell failed: ${r.out}`);
    const lines = r.out.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    const settings = lines.filter((l) => /^[0-9a-f]+(:[0-9a-f]+)+$/.test(l));
    assert.equal(settings.length, 3, `expected three stty -g lines, saw ${JSON.stringify(lines)}`);
    assert.equal(new Set(settings).size, 1, `the terminal's settings changed: ${JSON.stringify(settings)}`);
    assert.ok(lines.includes('code=4') && lines.includes('code=1'), `expected code=4 then code=1, saw ${JSON.stringify(lines)}`);
  });

  it('records each interactive exec in the audit log with its command', async () => {
    const r = berth(server, ['audit', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const records = JSON.parse(r.stdout) as Array<{ verb: string; name?: string; code: number; command?: string[] }>;
    assert.ok(records.some((x) => x.verb === 'exec' && x.name === task && x.code === 101 && x.command?.join(' ') === 'sh -c exit 4'),
      `expected an exec record of "sh -c exit 4" on ${task}, saw ${JSON.stringify(records.filter((x) => x.verb === 'exec'))}`);
  });

  it('a viewer may not exec: 403, exit 1', () => {
    const token = berth(server, ['token', 'create', '--role', 'viewer']);
    assert.equal(token.code, 0, token.stderr);
    const r = spawnSync(process.execPath, [CLI, '--token', token.stdout.trim(), 'exec', '-i', task, '--', 'true'], { env: cliEnv(server), encoding: 'utf8', timeout: WAIT_MS, input: '' });
    assert.equal(r.status, 1, `expected exit 1, saw ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, /BERTH_ERR_FORBIDDEN/);
  });

  it('berth exec -i streams stdin without a terminal, stdout and stderr apart', () => {
    const r = spawnSync(process.execPath, [CLI, 'exec', '-i', task, '--', 'sh', '-c', 'cat; echo done >&2; exit 7'], {
      env: cliEnv(server), input: 'hello\nworld\n', encoding: 'utf8', timeout: WAIT_MS,
    });
    assert.equal(r.status, 7, `expected exit 7, saw ${r.status}: ${r.stderr}`);
    assert.equal(r.stdout, 'hello\nworld\n');
    assert.equal(r.stderr, 'done\n');
  });

  it('an unknown task is a failed request: exit 1 with the server\'s message', () => {
    const r = spawnSync(process.execPath, [CLI, 'exec', '-i', 'no-such-task', '--', 'true'], { env: cliEnv(server), encoding: 'utf8', timeout: WAIT_MS, input: '' });
    assert.equal(r.status, 1, `expected exit 1, saw ${r.status}`);
    assert.match(r.stderr, /^error: .*no-such-task.*not found/m);
  });

  it('without -i/-t exec stays the one-shot request', () => {
    const r = berth(server, ['exec', task, '--', 'sh', '-c', 'echo once; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'once\n');
  });
});
