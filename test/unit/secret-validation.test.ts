/** Admission of Secrets, Configs and projections, and the effective template that rolls services. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitKeyed, admitProjections, projectionTarget, type KeyedBody } from '../../control-plane/objects/secret-validation.js';
import { effectiveService, servicesUsing, userTemplate, type InputCaches } from '../../control-plane/controllers/template-inputs.js';
import type { Service } from '../../control-plane/objects/types.js';
import type { Config, Secret } from '../../control-plane/objects/secret-types.js';
import { keyedValues } from '../../control-plane/cli/secrets.js';

const secret = (over: Partial<KeyedBody> = {}): KeyedBody => ({ kind: 'Secret', metadata: { name: 'db' }, ...over });

test('admitKeyed: secrets decode base64 data and take stringData as text; configs take data as text', () => {
  const s = admitKeyed(secret({ data: { a: Buffer.from([0, 1, 255]).toString('base64') }, stringData: { b: 'é' } }), { namespace: 'default' });
  assert.ok(s.ok);
  assert.deepEqual(s.value.values.a, Buffer.from([0, 1, 255]));
  assert.equal(s.value.values.b!.toString(), 'é');
  const c = admitKeyed({ kind: 'Config', metadata: { name: 'app' }, data: { 'app.conf': 'x=1' } }, { namespace: 'ns1' });
  assert.ok(c.ok);
  assert.equal(c.value.values['app.conf']!.toString(), 'x=1');
  assert.equal(c.value.namespace, 'ns1');
});

test('admitKeyed refuses what would break a file name, the size limit or the URL', () => {
  const cases: [KeyedBody, { namespace: string; name?: string }, RegExp][] = [
    [secret({ data: { k: '%%%' } }), { namespace: 'default' }, /data\.k: must be base64/],
    [secret({ stringData: { 'a/b': 'x' } }), { namespace: 'default' }, /becomes a file name/],
    [secret({ stringData: { '..': 'x' } }), { namespace: 'default' }, /"\." and "\.\." are not file names/],
    [secret({}), { namespace: 'default' }, /at least one key/],
    [secret({ stringData: { a: 'x'.repeat(600 * 1024) } }), { namespace: 'default' }, /over the limit/],
    [secret({ stringData: { a: 'x' } }), { namespace: 'default', name: 'other' }, /does not match the name in the URL/],
    [{ ...secret({ stringData: { a: 'x' } }), metadata: { name: 'db', namespace: 'x' } }, { namespace: 'default' }, /does not match the namespace/],
  ];
  for (const [body, url, message] of cases) {
    const r = admitKeyed(body, url);
    assert.ok(!r.ok, `${JSON.stringify(body).slice(0, 80)} admitted`);
    assert.match(r.error.message, message);
  }
});

test('projection targets: default <dir>/<name>, relative under dir, absolute kept; duplicates and .. refused', () => {
  assert.equal(projectionTarget({ name: 'db' }, '/run/secrets'), '/run/secrets/db');
  assert.equal(projectionTarget({ name: 'db', target: 'x/y' }, '/run/secrets'), '/run/secrets/x/y');
  assert.equal(projectionTarget({ name: 'db', target: '/etc//db.pw' }, '/run/secrets'), '/etc/db.pw');
  const t = { image: 'x' };
  assert.equal(admitProjections({ ...t, secrets: [{ name: 'a' }], configs: [{ name: 'a' }] }, 'spec.template'), undefined, 'a secret and a config of one name land in different dirs');
  const dup = admitProjections({ ...t, secrets: [{ name: 'a' }, { name: 'b', target: '/run/secrets/a' }] }, 'spec.template');
  assert.match(dup!.message, /secrets\[1\]\.target: \/run\/secrets\/a is also the target of spec\.template\.secrets\[0\]/);
  assert.match(admitProjections({ ...t, secrets: [{ name: 'a', target: '../../etc/passwd' }] }, 'f')!.message, /must not contain "\." or "\.\."/);
  assert.match(admitProjections({ ...t, secrets: [{ name: 'A' }] }, 'f')!.message, /f\.secrets\[0\]\.name/);
  assert.match(admitProjections({ ...t, configs: [{ name: 'a', target: '/' }] }, 'f')!.message, /not \//);
  const octal = { ...t, secrets: [{ name: 'a', mode: '0440' as unknown as number }] };
  assert.equal(admitProjections(octal, 'f'), undefined);
  assert.equal(octal.secrets[0]!.mode, 0o440, 'an octal string becomes its number');
  assert.match(admitProjections({ ...t, secrets: [{ name: 'a', mode: '0999' as unknown as number }] }, 'f')!.message, /octal mode/);
  assert.match(admitProjections({ ...t, secrets: [{ name: 'a', mode: 600 }] }, 'f')!.message, /0-511/);
});

/** caches is a stand-in for the two watch caches: get by key only. */
function caches(secrets: Record<string, number>, configs: Record<string, number> = {}): InputCaches {
  const cache = <T>(gens: Record<string, number>) => ({ get: (key: string) => (key in gens ? { metadata: { generation: gens[key] } } as T : undefined) });
  return { secrets: cache<Secret>(secrets), configs: cache<Config>(configs) } as unknown as InputCaches;
}

const svc = (template: Service['spec']['template']): Service => ({
  kind: 'Service', metadata: { name: 'web', namespace: 'default', uid: 'u', generation: 1, labels: {}, createdAt: '' }, spec: { replicas: 1, template },
});

test('effectiveService writes each projected object\'s generation; userTemplate takes them out again', () => {
  const plain = svc({ image: 'x' });
  assert.equal(effectiveService(plain, caches({})), plain, 'a template that projects nothing is itself');
  const s = svc({ image: 'x', secrets: [{ name: 'db' }, { name: 'gone' }], configs: [{ name: 'app', key: 'k' }] });
  const eff = effectiveService(s, caches({ 'secrets/default/db': 3 }, { 'configs/default/app': 7 }));
  assert.deepEqual(eff.spec.template.secrets, [{ name: 'db', generation: 3 }, { name: 'gone', generation: 0 }]);
  assert.deepEqual(eff.spec.template.configs, [{ name: 'app', key: 'k', generation: 7 }]);
  assert.equal(s.spec.template.secrets![0]!.generation, undefined, 'the input is not changed');
  assert.deepEqual(userTemplate(eff.spec.template), s.spec.template);
  assert.deepEqual(servicesUsing([s, plain], 'default', 'secrets', 'db'), ['default/web']);
  assert.deepEqual(servicesUsing([s], 'other', 'secrets', 'db'), []);
});

test('create secret values: literals and files, keys defaulting to the file name, duplicates refused', async () => {
  const v = await keyedValues({ fromLiteral: ['a=b=c'], fromFile: [] });
  assert.equal(v.get('a')!.toString(), 'b=c', 'only the first = splits');
  await assert.rejects(keyedValues({ fromLiteral: ['a=1', 'a=2'], fromFile: [] }), /key "a" is given twice/);
  await assert.rejects(keyedValues({ fromLiteral: ['novalue'], fromFile: [] }), /must be KEY=VALUE/);
  await assert.rejects(keyedValues({ fromLiteral: [], fromFile: ['/nonexistent/file'] }), /no such file/);
  await assert.rejects(keyedValues({ fromLiteral: [], fromFile: [] }), /--from-literal/);
});
