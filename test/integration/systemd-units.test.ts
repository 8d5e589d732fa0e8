/**
 * The systemd units and example config files in deploy/systemd: systemd-analyze accepts the
 * units, both daemons accept the example files with --check-config (without starting anything),
 * and a bad file is refused with a message naming the bad key.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { REPO_ROOT } from '../support/cluster.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const UNITS_DIR = join(REPO_ROOT, 'deploy', 'systemd');
/** CHECK_TIMEOUT_MS bounds a --check-config run: it must return at once, never start the daemon. */
const CHECK_TIMEOUT_MS = 20_000;

interface Program {
  name: 'berth-control-plane' | 'berth-agent';
  main: string;
  example: string;
  /** sections are the example's top-level keys that are not flags. */
  sections: string[];
}

const PROGRAMS: Program[] = [
  { name: 'berth-control-plane', main: join(REPO_ROOT, 'dist', 'control-plane', 'main.js'), example: join(UNITS_DIR, 'control-plane.yaml'), sections: [] },
  { name: 'berth-agent', main: join(REPO_ROOT, 'dist', 'agent', 'main.js'), example: join(UNITS_DIR, 'agent.yaml'), sections: ['registries', 'insecureRegistries', 'images', 'dns'] },
];

const tmp = mkdtempSync(join(tmpdir(), 'berth-systemd-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(p: Program, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [p.main, ...args], { encoding: 'utf8', timeout: CHECK_TIMEOUT_MS });
  assert.equal(r.signal, null, `${p.name} ${args.join(' ')} did not return within ${CHECK_TIMEOUT_MS} ms: it must check and exit, not start`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** unitCopy is the shipped unit with /usr/local/bin/berth-* replaced by this repo's build, run by this node. */
function unitCopy(unit: string): string {
  const text = readFileSync(join(UNITS_DIR, unit), 'utf8')
    .replaceAll('/usr/local/bin/berth-control-plane', `${process.execPath} ${join(REPO_ROOT, 'dist', 'control-plane', 'main.js')}`)
    .replaceAll('/usr/local/bin/berth-agent', `${process.execPath} ${join(REPO_ROOT, 'dist', 'agent', 'main.js')}`);
  const path = join(tmp, unit);
  writeFileSync(path, text);
  return path;
}

test('the shipped units run the installed binaries with the config file and check it first', () => {
  for (const [unit, bin, conf] of [
    ['berth-control-plane.service', 'berth-control-plane', 'control-plane.yaml'],
    ['berth-agent.service', 'berth-agent', 'agent.yaml'],
  ] as const) {
    const text = readFileSync(join(UNITS_DIR, unit), 'utf8');
    const directive = (name: string): string[] => [...text.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]!);
    assert.deepEqual(directive('ExecStart'), [`/usr/local/bin/${bin} --config /etc/berth/${conf}`], unit);
    assert.deepEqual(directive('ExecStartPre'), [`/usr/local/bin/${bin} --config /etc/berth/${conf} --check-config`], unit);
    assert.deepEqual(directive('Restart'), ['on-failure'], unit);
    assert.equal(directive('LimitNOFILE').length, 1, `${unit} sets LimitNOFILE`);
    assert.deepEqual(directive('After'), ['network-online.target'], unit);
  }
  const agent = readFileSync(join(UNITS_DIR, 'berth-agent.service'), 'utf8');
  assert.match(agent, /^KillMode=process$/m, 'the agent unit must leave the shims (and so the containers) running on stop');
  assert.match(agent, /^Delegate=yes$/m, 'the agent manages cgroups itself');
  assert.doesNotMatch(agent, /^(PrivateTmp|ProtectSystem|ProtectHome|ReadWritePaths|MountFlags)=/m, 'a private mount namespace would hide container mounts from the next agent');
});

test('systemd-analyze verify accepts both units', (t) => {
  if (!existsSync(SYSTEMD_ANALYZE)) {
    t.skip(`${SYSTEMD_ANALYZE} is not installed (apt-get install systemd); units not verified`);
    return;
  }
  const units = ['berth-control-plane.service', 'berth-agent.service'].map(unitCopy);
  const r = spawnSync(SYSTEMD_ANALYZE, ['verify', ...units], { encoding: 'utf8', timeout: 60_000 });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
  // systemd-analyze also loads the units' dependencies; only lines about our units count.
  const ours = lines.filter((l) => units.some((u) => l.includes(basename(u))));
  assert.deepEqual(ours, [], `systemd-analyze verify complained about the units:\n${lines.join('\n')}`);
  assert.equal(r.status, 0, `systemd-analyze verify exited ${r.status}:\n${lines.join('\n')}`);

  // The check above can fail: a misspelt directive is reported with the unit's name.
  const broken = join(tmp, 'berth-broken.service');
  writeFileSync(broken, readFileSync(units[1]!, 'utf8').replace('KillMode=process', 'KillMode=proces'));
  const b = spawnSync(SYSTEMD_ANALYZE, ['verify', broken], { encoding: 'utf8', timeout: 60_000 });
  assert.match(`${b.stdout}${b.stderr}`, /berth-broken\.service:\d+: Failed to parse kill mode/);
});

for (const p of PROGRAMS) {
  test(`${p.name} --check-config accepts the example file and starts nothing`, () => {
    const r = run(p, ['--config', p.example, '--check-config']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, `config OK: ${p.example}\n`);
    assert.equal(r.status, 0);
  });

  test(`${p.name} --check-config accepts every commented-out example setting of a flag it has`, (t) => {
    const help = run(p, ['--help']).stdout;
    const skipped: string[] = [];
    const text = readFileSync(p.example, 'utf8').replace(/^# ([a-zA-Z-]+): (.*)$/gm, (line, key: string, value: string) => {
      if (!help.includes(`--${key} `) && !p.sections.includes(key)) {
        skipped.push(key);
        return line;
      }
      // Files the example names under /etc/berth are inputs: stand in temporary ones.
      if (value.startsWith('/etc/berth/')) {
        const stand = join(tmp, `${p.name}-${basename(value)}`);
        writeFileSync(stand, 'example\n', { mode: 0o600 });
        return `${key}: ${stand}`;
      }
      return `${key}: ${value}`;
    });
    if (skipped.length > 0) t.diagnostic(`not flags of ${p.name} yet, left commented: ${skipped.join(', ')}`);
    const file = join(tmp, `${p.name}-uncommented.yaml`);
    writeFileSync(file, text);
    const r = run(p, ['--config', file, '--check-config']);
    assert.equal(r.stderr, '', `the uncommented example:\n${text}`);
    assert.equal(r.status, 0);
  });

  test(`${p.name} --check-config makes no directory`, () => {
    const missing = join(tmp, `${p.name}-never-made`, 'state');
    const key = p.name === 'berth-agent' ? 'state-dir' : 'data-dir';
    const file = join(tmp, `${p.name}-dirs.yaml`);
    writeFileSync(file, `${key}: ${missing}\n`);
    const r = run(p, ['--config', file, '--check-config']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(join(tmp, `${p.name}-never-made`)), false, `--check-config created ${missing}`);
  });

  test(`${p.name} --check-config refuses a bad file with exit 1, naming each bad key`, () => {
    const file = join(tmp, `${p.name}-bad.yaml`);
    writeFileSync(file, 'log-levle: debug\nmetrics-listen: 1\nlog-level: loud\n');
    const r = run(p, ['--config', file, '--check-config']);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`${p.name}: ${file}: log-levle: unknown key; did you mean log-level\\?`));
    assert.match(r.stderr, new RegExp(`${file}: log-level: argument 'loud' is invalid`));
    assert.match(r.stderr, /config has \d problems/);
  });

  test(`${p.name}: a flag on the command line overrides the file, and is checked as a flag`, () => {
    const r = run(p, ['--config', p.example, '--check-config', '--log-level', 'debug']);
    assert.equal(r.status, 0, r.stderr);
    const bad = run(p, ['--config', p.example, '--check-config', p.name === 'berth-agent' ? '--advertise-address' : '--cluster-cidr', '10.0.0']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^berth-[a-z-]+: --(advertise-address|cluster-cidr): "10\.0\.0" is not/m);
  });
}

test('berth-control-plane refuses to start on a bad file: exit 2 before anything starts', () => {
  const p = PROGRAMS[0]!;
  const dataDir = join(tmp, 'cp-never-started');
  const file = join(tmp, 'cp-bad-start.yaml');
  writeFileSync(file, `data-dir: ${dataDir}\nnode-lease-ttl: -1\n`);
  const r = run(p, ['--config', file, '--listen', '127.0.0.1:0', '--gateway-listen', '127.0.0.1:0']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`berth-control-plane: ${file}: node-lease-ttl: argument '-1' is invalid\\. must be a whole number >= 1`));
  assert.equal(existsSync(dataDir), false);
});
