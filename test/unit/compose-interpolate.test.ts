/**
 * Compose interpolation, env files and scalar readers: every `${...}` form, `$$`, unset and
 * required variables, `.env` beside the file (the process environment wins), Go durations and
 * Docker sizes, shell words.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Diagnostics } from '../../control-plane/cli/compose/diagnostics.js';
import { parseDotenv } from '../../control-plane/cli/compose/dotenv.js';
import { interpolate } from '../../control-plane/cli/compose/interpolate.js';
import { loadCompose } from '../../control-plane/cli/compose/load.js';
import { parseBytes, parseGoDuration, splitShellWords } from '../../control-plane/cli/compose/values.js';

const VARS: Record<string, string> = { SET: 'value', EMPTY: '' };
const lookup = (name: string): string | undefined => VARS[name];

describe('compose interpolation', () => {
  const cases: [text: string, expected: string][] = [
    ['plain', 'plain'],
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['a${SET}b', 'avalueb'],
    ['$SET-x', 'value-x'],
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${UNSET-fallback}', 'fallback'],
    ['${SET:-fallback}', 'value'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-${SET}}', 'value'],
    ['${UNSET:-a ${UNSET2:-b} c}', 'a b c'],
    ['$$SET', '$SET'],
    ['cost: $$5', 'cost: $5'],
    ['${UNSET:-$$}', '$'],
    ['${SET:?must be set}', 'value'],
  ];
  for (const [text, expected] of cases) {
    it(`expands ${JSON.stringify(text)} to ${JSON.stringify(expected)}`, () => {
      const r = interpolate(text, lookup);
      assert.ok(r.ok, `expected success, saw ${JSON.stringify(r)}`);
      assert.equal(r.value, expected);
    });
  }

  it('an unset variable without default becomes "" and is reported as unset', () => {
    assert.deepEqual(interpolate('x${NOPE}y$NOPE2', lookup), { ok: true, value: 'xy', unset: ['NOPE', 'NOPE2'] });
  });

  const refusals: [text: string, message: RegExp][] = [
    ['${UNSET:?set it please}', /required variable UNSET is not set: set it please/],
    ['${EMPTY:?}', /required variable EMPTY is empty/],
    ['${UNSET?gone}', /required variable UNSET is not set: gone/],
    ['${SET', /never closed/],
    ['$ 5', /write \$\$ for a literal/],
    ['${1BAD}', /does not start with a variable name/],
    ['${SET/x/y}', /unknown operator/],
  ];
  for (const [text, message] of refusals) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const r = interpolate(text, lookup);
      assert.equal(r.ok, false, `expected a refusal, saw ${JSON.stringify(r)}`);
      assert.match((r as { message: string }).message, message);
    });
  }
});

describe('compose env files', () => {
  it('reads comments, export, quotes, escapes, inline comments, interpolation and bare keys', () => {
    const text = [
      '# a comment', '', 'A=1', 'export B=two', "C='lit $A'", 'D="x\\ty\\n$A"', 'E=plain # trailing', 'F=${A}-${NOPE:-d}',
      'G="multi', 'line"', 'SET', 'UNSET_BARE', 'H=',
    ].join('\n');
    const r = parseDotenv(text, lookup);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(Object.fromEntries(r.vars), { A: '1', B: 'two', C: 'lit $A', D: 'x\ty\n1', E: 'plain', F: '1-d', G: 'multi\nline', SET: 'value', H: '' });
  });

  it('reports a bad key and an unclosed quote with their line', () => {
    const r = parseDotenv('1X=a\nOK=b\nQ="never', lookup);
    assert.deepEqual(r.errors, ['line 1: "1X" is not a variable name', 'line 3: double quote of Q is never closed']);
    assert.equal(r.vars.get('OK'), 'b');
  });
});

describe('compose file loading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-compose-load-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fills variables from .env beside the file, and the process environment wins over it', () => {
    const project = join(dir, 'Shop_Front');
    mkdirSync(project);
    writeFileSync(join(project, '.env'), 'TAG=from-dotenv\nPORT=80\n');
    const diag = new Diagnostics();
    const p = loadCompose('services:\n  web:\n    image: "busybox:${TAG}"\n    command: ["x", "${PORT}"]\n', join(project, 'compose.yaml'), { TAG: 'from-env' }, diag);
    assert.deepEqual(diag.errors, []);
    const web = (p!.model.services as Record<string, { image: string; command: string[] }>).web!;
    assert.deepEqual([web.image, web.command], ['busybox:from-env', ['x', '80']]);
    assert.equal(p!.name, 'shop-front', 'the directory name, normalised to a DNS label, is the project name');
  });

  it('takes the project name from name:, reads 0440 as octal, and reports a YAML error with its position', () => {
    const diag = new Diagnostics();
    const p = loadCompose('name: My_App\nservices:\n  a: { image: x, x-mode: 0440 }\n', join(dir, 'c.yaml'), {}, diag);
    assert.equal(p!.name, 'my-app');
    assert.equal((p!.model.services as Record<string, Record<string, unknown>>).a!['x-mode'], 0o440);
    const bad = new Diagnostics();
    assert.equal(loadCompose('services:\n  a: [\n', join(dir, 'c.yaml'), {}, bad), undefined);
    assert.match(bad.errors[0] ?? '', /c\.yaml:\d+:\d+: invalid YAML/);
  });
});

describe('compose scalar readers', () => {
  const durations: [string, number | undefined][] = [
    ['10s', 10_000], ['1m30s', 90_000], ['500ms', 500], ['1.5s', 1500], ['1h', 3_600_000], ['0', 0], ['2us', 0.002],
    ['10', undefined], ['', undefined], ['5x', undefined], ['-1s', undefined],
  ];
  for (const [text, ms] of durations) it(`duration ${JSON.stringify(text)} is ${ms} ms`, () => assert.equal(parseGoDuration(text), ms));

  const sizes: [unknown, number | undefined][] = [
    ['64m', 64 * 1024 ** 2], ['1g', 1024 ** 3], ['1.5G', 1.5 * 1024 ** 3], ['512k', 512 * 1024], ['100', 100], [100, 100], ['2gb', 2 * 1024 ** 3],
    ['64Mi', undefined], ['lots', undefined], [-1, undefined],
  ];
  for (const [text, bytes] of sizes) it(`size ${JSON.stringify(text)} is ${bytes} bytes`, () => assert.equal(parseBytes(text), bytes));

  const words: [string, string[] | undefined][] = [
    ['httpd -f -p 80', ['httpd', '-f', '-p', '80']],
    ['sh -c "echo hi there"', ['sh', '-c', 'echo hi there']],
    ["postgres -c 'max_connections=200'", ['postgres', '-c', 'max_connections=200']],
    ['a\\ b "q\\"x" \'\'', ['a b', 'q"x', '']],
    ['echo "unclosed', undefined],
  ];
  for (const [text, expected] of words) it(`splits ${JSON.stringify(text)}`, () => assert.deepEqual(splitShellWords(text), expected));
});

