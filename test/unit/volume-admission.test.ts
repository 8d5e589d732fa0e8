/**
 * Template volumes at admission: each type's fields, targets, duplicate mounts, tmpfs sizes
 * normalised to bytes (objects/volume-admission.ts through validation.ts), and host paths
 * allowed only at policy level privileged (objects/admission-policy.ts, rule hostPath).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkPolicy } from '../../control-plane/objects/admission-policy.js';
import type { ContainerTemplate, PolicyLevel, ServiceSpec, VolumeSpec } from '../../control-plane/objects/types.js';
import { admitServiceSpec } from '../../control-plane/objects/validation.js';
import { DEFAULT_TMPFS_BYTES, namedVolumesOf } from '../../control-plane/objects/volume-admission.js';

const IMAGE = 'oci-archive:/images/busybox.tar';

function spec(volumes: unknown[]): ServiceSpec {
  return { replicas: 1, template: { image: IMAGE, volumes: volumes as VolumeSpec[] } };
}

describe('volume admission refuses what cannot be mounted, naming the field', () => {
  const refused: { name: string; volumes: unknown[]; field: string; message: string | RegExp }[] = [
    { name: 'a relative target', volumes: [{ type: 'volume', name: 'data', target: 'data' }], field: 'spec.template.volumes[0].target', message: 'spec.template.volumes[0].target: "data" must be an absolute path' },
    { name: 'target /', volumes: [{ type: 'volume', name: 'data', target: '/' }], field: 'spec.template.volumes[0].target', message: /must not be \// },
    { name: 'target //. (/ written otherwise)', volumes: [{ type: 'tmpfs', target: '//.' }], field: 'spec.template.volumes[0].target', message: /must not be \// },
    { name: 'a target that climbs', volumes: [{ type: 'volume', name: 'data', target: '/data/../etc' }], field: 'spec.template.volumes[0].target', message: /must not contain "\.\."/ },
    { name: 'a volume without name', volumes: [{ type: 'volume', target: '/data' }], field: 'spec.template.volumes[0].name', message: 'spec.template.volumes[0].name: required for type volume' },
    { name: 'a volume name that is not a DNS label', volumes: [{ type: 'volume', name: 'DB_data', target: '/data' }], field: 'spec.template.volumes[0].name', message: /DNS label/ },
    { name: 'a volume with a source', volumes: [{ type: 'volume', name: 'd', source: '/srv', target: '/data' }], field: 'spec.template.volumes[0].source', message: 'spec.template.volumes[0].source: only for type bind' },
    { name: 'a volume with a size', volumes: [{ type: 'volume', name: 'd', size: '1Gi', target: '/data' }], field: 'spec.template.volumes[0].size', message: 'spec.template.volumes[0].size: only for type tmpfs' },
    { name: 'a bind without source', volumes: [{ type: 'bind', target: '/data' }], field: 'spec.template.volumes[0].source', message: /required for type bind/ },
    { name: 'a bind with a relative source', volumes: [{ type: 'bind', source: 'srv/data', target: '/data' }], field: 'spec.template.volumes[0].source', message: /must be an absolute path/ },
    { name: 'a bind with a name', volumes: [{ type: 'bind', source: '/srv', name: 'x', target: '/data' }], field: 'spec.template.volumes[0].name', message: 'spec.template.volumes[0].name: only for type volume' },
    { name: 'a tmpfs with a source', volumes: [{ type: 'tmpfs', target: '/scratch' }, { type: 'tmpfs', source: '/srv', target: '/t' }], field: 'spec.template.volumes[1].source', message: 'spec.template.volumes[1].source: only for type bind' },
    { name: 'a tmpfs size that is no quantity', volumes: [{ type: 'tmpfs', target: '/t', size: '64MB' }], field: 'spec.template.volumes[0].size', message: /invalid memory quantity "64MB"/ },
    { name: 'a tmpfs smaller than a page', volumes: [{ type: 'tmpfs', target: '/t', size: 100 }], field: 'spec.template.volumes[0].size', message: /outside 4096 bytes \.\. 16 GiB/ },
    { name: 'a tmpfs over the bound', volumes: [{ type: 'tmpfs', target: '/t', size: '64Gi' }], field: 'spec.template.volumes[0].size', message: /outside/ },
    { name: 'two mounts on one target (spelled differently)', volumes: [{ type: 'volume', name: 'a', target: '/data' }, { type: 'tmpfs', target: '/data/' }], field: 'spec.template.volumes[1].target', message: 'spec.template.volumes[1].target: "/data" is already the target of spec.template.volumes[0]' },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const r = admitServiceSpec(spec(c.volumes));
      assert.equal(r.ok, false, `expected a refusal, saw ${JSON.stringify(r)}`);
      if (r.ok) return;
      assert.equal(r.error.code, 'BERTH_ERR_VALIDATION');
      assert.equal(r.error.field, c.field, `field: expected ${c.field}, saw ${r.error.field} (${r.error.message})`);
      if (typeof c.message === 'string') assert.equal(r.error.message, c.message);
      else assert.match(r.error.message, c.message);
    });
  }
});

describe('volume admission normalises what it accepts', () => {
  it('gives a tmpfs without size 64 MiB and turns a quantity into bytes', () => {
    const r = admitServiceSpec(spec([{ type: 'tmpfs', target: '/a' }, { type: 'tmpfs', target: '/b', size: '128Mi' }, { type: 'tmpfs', target: '/c', size: 8192 }]));
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value.template.volumes?.map((v) => v.size), [DEFAULT_TMPFS_BYTES, 128 * 1024 ** 2, 8192]);
  });

  it('cleans targets and sources and keeps readOnly', () => {
    const r = admitServiceSpec(spec([
      { type: 'volume', name: 'db-data', target: '/var/lib//db/', readOnly: true },
      { type: 'bind', source: '/srv/./logs/', target: '/logs' },
    ]));
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value.template.volumes, [
      { type: 'volume', name: 'db-data', target: '/var/lib/db', readOnly: true },
      { type: 'bind', source: '/srv/logs', target: '/logs' },
    ]);
  });

  it('lists the named volumes a template mounts once each', () => {
    const volumes: VolumeSpec[] = [{ type: 'volume', name: 'a', target: '/a' }, { type: 'tmpfs', target: '/t' }, { type: 'volume', name: 'a', target: '/b' }, { type: 'volume', name: 'b', target: '/c' }];
    assert.deepEqual(namedVolumesOf(volumes), ['a', 'b']);
    assert.deepEqual(namedVolumesOf(undefined), []);
  });
});

describe('policy: bind volumes only at privileged (rule hostPath)', () => {
  const template: ContainerTemplate = {
    image: IMAGE, user: '1000', security: { capDrop: ['ALL'] },
    volumes: [{ type: 'volume', name: 'data', target: '/data' }, { type: 'tmpfs', target: '/t', size: DEFAULT_TMPFS_BYTES }, { type: 'bind', source: '/var/log', target: '/host-logs' }],
  };
  const expected: Record<PolicyLevel, string[]> = {
    privileged: [],
    baseline: ['spec.template.volumes[2].source: /var/log is not allowed at policy level baseline (a bind volume reaches the node\'s filesystem; only namespaces at policy level privileged may use one: use a named volume (type volume) instead)'],
    restricted: ['spec.template.volumes[2].source: /var/log is not allowed at policy level restricted (a bind volume reaches the node\'s filesystem; only namespaces at policy level privileged may use one: use a named volume (type volume) instead)'],
  };
  for (const level of ['privileged', 'baseline', 'restricted'] as const) {
    it(`${level}: ${expected[level].length === 0 ? 'allows' : 'refuses'} a bind volume; named and tmpfs volumes pass`, () => {
      assert.deepEqual(checkPolicy(template, level).map((v) => v.message), expected[level]);
    });
  }
});
