import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageReference } from '../../agent/images/index.js';
import { AgentError } from '../../agent/errors.js';

const CASES: [string, unknown][] = [
  ['oci-archive:/seed/busybox.tar', { kind: 'oci-archive', raw: 'oci-archive:/seed/busybox.tar', path: '/seed/busybox.tar' }],
  ['oci:/seed/busybox:1.36', { kind: 'oci', raw: 'oci:/seed/busybox:1.36', path: '/seed/busybox', tag: '1.36' }],
  ['oci:/seed/busybox', { kind: 'oci', raw: 'oci:/seed/busybox', path: '/seed/busybox' }],
  ['oci:/a:b/layout:v2', { kind: 'oci', raw: 'oci:/a:b/layout:v2', path: '/a:b/layout', tag: 'v2' }],
  ['registry.local:5000/library/busybox:1.36', {
    kind: 'registry',
    raw: 'registry.local:5000/library/busybox:1.36',
    registry: {
      host: 'registry.local:5000', endpoint: 'registry.local:5000', repository: 'library/busybox', tag: '1.36',
      canonical: 'registry.local:5000/library/busybox:1.36',
    },
  }],
];

for (const [raw, want] of CASES) {
  test(`parseImageReference(${raw})`, () => assert.deepEqual(parseImageReference(raw), want));
}

for (const bad of ['', 'oci-archive:relative.tar', 'oci:/x/../etc:1', 'oci:/seed/busybox:bad tag', 'oci:/']) {
  test(`parseImageReference rejects ${JSON.stringify(bad)} as ImageInvalid`, () => {
    assert.throws(() => parseImageReference(bad), (e: unknown) => e instanceof AgentError && e.reason === 'ImageInvalid');
  });
}
