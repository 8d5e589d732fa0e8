import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRegistryReference } from '../../agent/images/reference.js';
import { AgentError } from '../../agent/errors.js';

const D = `sha256:${'a'.repeat(64)}`;
const CASES: [string, Record<string, string>][] = [
  ['busybox', { host: 'docker.io', endpoint: 'registry-1.docker.io', repository: 'library/busybox', tag: 'latest', canonical: 'docker.io/library/busybox:latest' }],
  ['busybox:1.36', { host: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
  ['user/app', { host: 'docker.io', repository: 'user/app', tag: 'latest' }],
  ['index.docker.io/library/redis:7', { host: 'docker.io', repository: 'library/redis', tag: '7' }],
  ['localhost/app', { host: 'localhost', endpoint: 'localhost', repository: 'app', tag: 'latest' }],
  ['localhost:5000/team/app:v1', { host: 'localhost:5000', repository: 'team/app', tag: 'v1' }],
  ['127.0.0.1:5000/berth/busybox:1.36', { host: '127.0.0.1:5000', repository: 'berth/busybox', tag: '1.36', canonical: '127.0.0.1:5000/berth/busybox:1.36' }],
  ['ghcr.io/org/sub/img', { host: 'ghcr.io', endpoint: 'ghcr.io', repository: 'org/sub/img', tag: 'latest' }],
  [`quay.io/a/b@${D}`, { host: 'quay.io', repository: 'a/b', digest: D, canonical: `quay.io/a/b@${D}` }],
  [`quay.io/a/b:v2@${D}`, { repository: 'a/b', tag: 'v2', digest: D, canonical: `quay.io/a/b@${D}` }],
  ['[::1]:5000/app:x', { host: '[::1]:5000', repository: 'app', tag: 'x' }],
  ['my_org/some-app.v2__x:tag', { host: 'docker.io', repository: 'my_org/some-app.v2__x', tag: 'tag' }],
];

for (const [raw, want] of CASES) {
  test(`parseRegistryReference(${raw}) normalises with Docker Hub defaults`, () => {
    const got = parseRegistryReference(raw) as unknown as Record<string, string>;
    for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${raw}: ${k}`);
    if (!want.tag && !raw.includes(':')) assert.equal(got.tag, 'latest');
  });
}

const BAD: [string, RegExp][] = [
  ['Busybox', /invalid repository component "Busybox"/],
  ['reg.io/app:', /invalid tag ""/],
  ['reg.io/app:bad tag', /invalid tag/],
  ['reg.io/app@sha256:abc', /invalid digest/],
  ['reg.io/app@md5:' + 'a'.repeat(32), /invalid digest/],
  ['reg.io/', /repository name is empty/],
  ['reg.io//app', /invalid repository component ""/],
  ['reg.io/a--/b', /invalid repository component "a--"/],
  ['bad_host.io:x/app', /invalid registry host/],
  [`reg.io/${'a'.repeat(256)}`, /longer than 255/],
];
for (const [raw, pattern] of BAD) {
  test(`parseRegistryReference rejects ${JSON.stringify(raw)} clearly`, () => {
    assert.throws(() => parseRegistryReference(raw), (e: unknown) => {
      assert.ok(e instanceof AgentError && e.code === 'BERTH_ERR_IMAGE_INVALID');
      assert.match(e.message, pattern);
      assert.ok(e.message.startsWith(`image ${raw}: `), e.message);
      return true;
    });
  });
}
