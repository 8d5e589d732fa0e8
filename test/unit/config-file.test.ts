/**
 * The daemons' config-file layer: file keys are the Command's long flag names, values go through
 * the flags' own parsers, the command line wins, and every mistake names its key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { applyConfigFile, applyConfigText, problemAt, type ConfigFileOptions } from '../../common/config-file.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

/** program is a daemon-like Command with one option of every kind the layer handles. */
function program(): Command {
  return new Command('demo')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .version('1.0.0')
    .option('--listen <addr:port>', 'API address', '0.0.0.0:7480')
    .option('--node-lease-ttl <seconds>', 'lease TTL', positiveInt, 10)
    .option('--etcd <urls>', 'external etcd')
    .option('--version-label <v>', 'kept as text', (v: string) => v)
    .option('--label <k=v>', 'repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--tag <t...>', 'variadic')
    .option('--verbose', 'a boolean')
    .option('--no-color', 'a negated boolean')
    .option('--config <file>', 'config file')
    .option('--check-config', 'check and exit');
}

function apply(argv: string[], text: string, options?: ConfigFileOptions): { opts: Record<string, unknown>; problems: string[]; cmd: Command; fromFile: string[]; sections: Record<string, unknown> } {
  const cmd = program();
  cmd.parse(argv, { from: 'user' });
  const r = applyConfigText(cmd, text, 'demo.yaml', options);
  return { opts: cmd.opts(), problems: r.problems.map((p) => p.text), cmd, fromFile: r.fromFile, sections: r.sections };
}

test('file values are applied through the flags\' parsers, with source "config"', () => {
  const r = apply([], 'listen: 127.0.0.1:7480\nnode-lease-ttl: 5\netcd: http://10.0.0.1:2379\n');
  assert.deepEqual(r.problems, []);
  assert.equal(r.opts.listen, '127.0.0.1:7480');
  assert.equal(r.opts.nodeLeaseTtl, 5, 'parsed to a number by positiveInt, as --node-lease-ttl 5 would be');
  assert.equal(r.opts.etcd, 'http://10.0.0.1:2379');
  assert.equal(r.cmd.getOptionValueSource('nodeLeaseTtl'), 'config');
  assert.deepEqual(r.fromFile, ['listen', 'node-lease-ttl', 'etcd']);
  assert.equal(apply([], '').opts.nodeLeaseTtl, 10, 'an empty file keeps the defaults');
});

test('a flag on the command line overrides the file', () => {
  const r = apply(['--node-lease-ttl', '3'], 'node-lease-ttl: 5\nlisten: 127.0.0.1:1\n');
  assert.deepEqual(r.problems, []);
  assert.equal(r.opts.nodeLeaseTtl, 3);
  assert.equal(r.cmd.getOptionValueSource('nodeLeaseTtl'), 'cli');
  assert.equal(r.opts.listen, '127.0.0.1:1', 'keys the command line left alone still apply');
  assert.deepEqual(r.fromFile, ['listen']);
  const bad = apply(['--node-lease-ttl', '3'], 'node-lease-ttl: zero\n');
  assert.equal(bad.opts.nodeLeaseTtl, 3);
  assert.match(bad.problems.join('\n'), /node-lease-ttl: argument 'zero' is invalid/, 'a bad file value is reported even when overridden');
});

test('keys may be kebab-case or camelCase, not both for one flag', () => {
  assert.equal(apply([], 'nodeLeaseTtl: 7\n').opts.nodeLeaseTtl, 7);
  assert.equal(apply([], 'node-lease-ttl: 7\n').opts.nodeLeaseTtl, 7);
  const both = apply([], 'node-lease-ttl: 7\nnodeLeaseTtl: 8\n');
  assert.equal(both.opts.nodeLeaseTtl, 7, 'the first one counts');
  assert.deepEqual(both.problems, ['demo.yaml: nodeLeaseTtl: sets the same flag as node-lease-ttl; keep one']);
});

test('an unknown key is an error naming it and the close valid keys', () => {
  const cases: [string, RegExp][] = [
    ['node-lease-tll: 5', /^demo\.yaml: node-lease-tll: unknown key; did you mean node-lease-ttl\?$/],
    ['nodeLeaseTll: 5', /^demo\.yaml: nodeLeaseTll: unknown key; did you mean node-lease-ttl\?$/],
    ['lissen: a:1', /^demo\.yaml: lissen: unknown key; did you mean listen\?$/],
    ['registres: {}', /registres: unknown key; did you mean registries\?$/],
    ['zzzzzzzzzzzz: 1', /zzzzzzzzzzzz: unknown key; valid keys: color, etcd, label, listen, no-color, node-lease-ttl, registries, tag, verbose, version-label$/],
  ];
  for (const [text, want] of cases) {
    const r = apply([], text, { sections: ['registries'] });
    assert.equal(r.problems.length, 1, text);
    assert.match(r.problems[0]!, want, text);
  }
});

test('a value of the wrong type is an error naming the key; parser messages are the flag\'s own', () => {
  // The same reason text as commander prints for the flag on the command line.
  assert.throws(() => program().parse(['--node-lease-ttl', 'x'], { from: 'user' }), /option '--node-lease-ttl <seconds>' argument 'x' is invalid\. must be a whole number >= 1/);
  const cases: [string, string][] = [
    ['node-lease-ttl: x', "demo.yaml: node-lease-ttl: argument 'x' is invalid. must be a whole number >= 1"],
    ['node-lease-ttl: 0', "demo.yaml: node-lease-ttl: argument '0' is invalid. must be a whole number >= 1"],
    ['listen: { host: a }', 'demo.yaml: listen: must be a string or a number, not a mapping'],
    ['listen: true', 'demo.yaml: listen: must be a string or a number, not a boolean'],
    ['listen:', 'demo.yaml: listen: must be a string or a number, not empty (remove the key to keep the default)'],
    ['listen: [a:1, b:2]', 'demo.yaml: listen: takes one value (--listen <addr:port>), not a list'],
    ['verbose: "yes"', 'demo.yaml: verbose: must be true or false, not a string'],
    ['label: [{ a: b }]', 'demo.yaml: label: must be a string or a number or a list of them, not a mapping'],
    ['config: other.yaml', 'demo.yaml: config: can only be given on the command line'],
    ['check-config: true', 'demo.yaml: check-config: can only be given on the command line'],
    ['version: true', 'demo.yaml: version: can only be given on the command line'],
  ];
  for (const [text, want] of cases) {
    const r = apply([], text);
    assert.deepEqual(r.problems, [want], text);
    assert.equal(r.opts.nodeLeaseTtl, 10, `${text}: a refused value leaves the default`);
  }
});

test('the file must be a YAML or JSON mapping', () => {
  assert.match(apply([], 'listen: [unclosed\n').problems[0]!, /^demo\.yaml: not valid YAML or JSON: /);
  assert.deepEqual(apply([], '- listen\n').problems, ['demo.yaml: must be a mapping of flag names to values, not a list']);
  const json = apply([], '{"listen": "127.0.0.1:9", "nodeLeaseTtl": 4}');
  assert.deepEqual([json.opts.listen, json.opts.nodeLeaseTtl, json.problems], ['127.0.0.1:9', 4, []]);
});

test('numbers reach the parser as written: 1.10 stays 1.10', () => {
  assert.equal(apply([], 'version-label: 1.10\n').opts.versionLabel, '1.10');
  assert.equal(apply([], 'listen: 0x1F\n').opts.listen, '0x1F');
});

test('a repeatable option takes a list, each item through its parser; the command line replaces the whole list', () => {
  assert.deepEqual(apply([], 'label: [zone=a, rack=r1]\n').opts.label, ['zone=a', 'rack=r1']);
  assert.deepEqual(apply([], 'label: zone=a\n').opts.label, ['zone=a'], 'one value is a list of one');
  assert.deepEqual(apply(['--label', 'x=1'], 'label: [zone=a, rack=r1]\n').opts.label, ['x=1']);
  assert.deepEqual(apply([], 'tag: [a, b]\n').opts.tag, ['a', 'b'], 'variadic options too');
  assert.deepEqual(apply([], 'label: []\n').problems, ['demo.yaml: label: is an empty list (remove the key to keep the default)']);
});

test('booleans: true/false, and a --no-x flag by either name', () => {
  assert.equal(apply([], 'verbose: true\n').opts.verbose, true);
  assert.equal(apply([], 'verbose: false\n').opts.verbose, false);
  assert.equal(apply([], '').opts.verbose, undefined);
  assert.equal(apply([], '').opts.color, true, 'commander default for --no-color');
  assert.equal(apply([], 'no-color: true\n').opts.color, false);
  assert.equal(apply([], 'noColor: false\n').opts.color, true);
  assert.equal(apply([], 'color: false\n').opts.color, false);
  assert.equal(apply(['--verbose'], 'verbose: false\n').opts.verbose, true, 'the command line wins for booleans too');
});

test('sections are handed back untouched and never mistaken for flags', () => {
  const r = apply([], 'listen: a:1\nregistries:\n  r.local:5000: { insecure: true }\n', { sections: ['registries'] });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.sections, { registries: { 'r.local:5000': { insecure: true } } });
  assert.throws(() => apply([], '', { sections: ['listen'] }), /has the name of a flag/);
});

test('applyConfigFile: --config wins, the default file only if it exists, an unreadable file is a problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-file-'));
  try {
    const def = join(dir, 'default.yaml');
    const given = join(dir, 'given.yaml');
    writeFileSync(given, 'node-lease-ttl: 4\n');
    const none = program().parse([], { from: 'user' });
    assert.deepEqual(applyConfigFile(none, { defaultFile: def }), { fromFile: [], sections: {}, problems: [] }, 'no default file: nothing read');
    writeFileSync(def, 'node-lease-ttl: 6\n');
    const withDefault = program().parse([], { from: 'user' });
    assert.equal(applyConfigFile(withDefault, { defaultFile: def }).file, def);
    assert.deepEqual([withDefault.opts().nodeLeaseTtl, withDefault.opts().config], [6, def]);
    const explicit = program().parse(['--config', given], { from: 'user' });
    applyConfigFile(explicit, { defaultFile: def });
    assert.equal(explicit.opts().nodeLeaseTtl, 4);
    const missing = program().parse(['--config', join(dir, 'nope.yaml')], { from: 'user' });
    const r = applyConfigFile(missing, { defaultFile: def });
    assert.match(r.problems[0]!.text, /nope\.yaml: cannot read: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('problemAt names the file for a value from it and the flag otherwise', () => {
  const cmd = program().parse(['--etcd', 'x'], { from: 'user' });
  const r = applyConfigText(cmd, 'listen: a:1\nregistries: {}\n', '/etc/demo.yaml', { sections: ['registries'] });
  assert.equal(problemAt(r, 'listen', 'bad').text, '/etc/demo.yaml: listen: bad');
  assert.equal(problemAt(r, 'etcd', 'bad').text, '--etcd: bad');
  assert.equal(problemAt(r, 'registries.r.caFile', 'missing').text, '/etc/demo.yaml: registries.r.caFile: missing');
});
