import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backoffMs, BACKOFF_MAX_MS, hostPlatform, MANIFEST_ACCEPT, MEDIA_TYPES, parseChallenge, selectPlatform, TokenCache, withRetries, RetryableError,
} from '../../agent/images/registry/index.js';
import { manifestMediaType } from '../../agent/images/registry/manifest.js';
import { parseAgentConfig, ConfigError, DEFAULT_INSECURE_REGISTRIES } from '../../agent/config.js';
import { AgentError } from '../../agent/errors.js';
import type { Descriptor } from '../../agent/images/oci-source.js';

const desc = (architecture: string, variant?: string, os = 'linux'): Descriptor => ({
  mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${architecture}${variant ?? ''}`, size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) } as Descriptor['platform'],
});

test('the manifest Accept header lists the four manifest kinds containerd asks for', () => {
  for (const t of Object.values(MEDIA_TYPES)) assert.ok(MANIFEST_ACCEPT.includes(t), t);
});

test('hostPlatform maps node arches to OCI names with arm variants', () => {
  assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(hostPlatform('arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(hostPlatform('arm', '6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
});

const PLATFORM_CASES: [string, Descriptor[], Parameters<typeof selectPlatform>[1], string][] = [
  ['exact os/arch', [desc('arm64'), desc('amd64')], { os: 'linux', architecture: 'amd64' }, 'sha256:amd64'],
  ['exact variant beats a missing one', [desc('arm64'), desc('arm64', 'v8')], { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'sha256:arm64v8'],
  ['a missing variant is the default', [desc('arm64')], { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'sha256:arm64'],
  ['arm v7 over v6', [desc('arm', 'v6'), desc('arm', 'v7')], { os: 'linux', architecture: 'arm', variant: 'v7' }, 'sha256:armv7'],
  ['windows entries are skipped', [desc('amd64', undefined, 'windows'), desc('amd64')], { os: 'linux', architecture: 'amd64' }, 'sha256:amd64'],
];
for (const [name, list, want, digest] of PLATFORM_CASES) {
  test(`selectPlatform: ${name}`, () => assert.equal(selectPlatform(list, want, 'img').digest, digest));
}

test('selectPlatform without a match lists every platform offered', () => {
  assert.throws(() => selectPlatform([desc('arm', 'v6'), desc('amd64', undefined, 'windows')], { os: 'linux', architecture: 'arm', variant: 'v7' }, 'image x'),
    (e: unknown) => e instanceof AgentError && e.code === 'BERTH_ERR_IMAGE_NOT_FOUND'
      && e.message === 'image x: no image for platform linux/arm/v7; the index offers linux/arm/v6, windows/amd64');
});

test('manifestMediaType: body mediaType, then Content-Type, then shape', () => {
  assert.equal(manifestMediaType({ mediaType: MEDIA_TYPES.dockerList }, MEDIA_TYPES.ociIndex), MEDIA_TYPES.dockerList);
  assert.equal(manifestMediaType({}, `${MEDIA_TYPES.dockerManifest}; charset=utf-8`), MEDIA_TYPES.dockerManifest);
  assert.equal(manifestMediaType({ manifests: [] }, 'application/json'), MEDIA_TYPES.ociIndex);
  assert.equal(manifestMediaType({ layers: [] }, undefined), MEDIA_TYPES.ociManifest);
});

test('parseChallenge reads bearer and basic challenges, quoted and bare', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="berth test"'), { scheme: 'basic', params: { realm: 'berth test' } });
  assert.deepEqual(parseChallenge('bearer realm=http://x/t, service=svc'), { scheme: 'bearer', params: { realm: 'http://x/t', service: 'svc' } });
  assert.equal(parseChallenge('Negotiate abc').scheme, 'other');
});

test('TokenCache keeps a token per (host, scope) until expires_in (60 s when unsaid)', () => {
  let now = 1_000_000;
  const cache = new TokenCache(() => now);
  cache.set('r:5000', 'repository:a:pull', 'tok', 10);
  cache.set('r:5000', 'repository:b:pull', 'def');
  assert.equal(cache.get('r:5000', 'repository:a:pull'), 'tok');
  assert.equal(cache.get('other:5000', 'repository:a:pull'), undefined);
  now += 10_000;
  assert.equal(cache.get('r:5000', 'repository:a:pull'), undefined, 'expired');
  assert.equal(cache.get('r:5000', 'repository:b:pull'), 'def');
  now += 50_000;
  assert.equal(cache.get('r:5000', 'repository:b:pull'), undefined, 'default lifetime is 60 s');
});

test('backoff doubles up to its cap', () => {
  assert.equal(backoffMs(1, () => 0), 100);
  assert.equal(backoffMs(3, () => 0), 400);
  assert.equal(backoffMs(20, () => 0), BACKOFF_MAX_MS);
});

test('withRetries retries only retryable failures and then names what failed', async () => {
  let calls = 0;
  await assert.rejects(withRetries('blob x', async () => { calls++; throw new RetryableError('503'); }, undefined, 2),
    (e: unknown) => e instanceof AgentError && e.code === 'BERTH_ERR_IMAGE_PULL_FAILED' && /^blob x: failed after 2 attempts: 503$/.test(e.message));
  assert.equal(calls, 2);
  calls = 0;
  await assert.rejects(withRetries('m', async () => { calls++; throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', '404'); }), { message: '404' });
  assert.equal(calls, 1, 'verdicts are not retried');
});

test('parseAgentConfig: defaults, registries and clear errors naming the field', () => {
  assert.deepEqual(parseAgentConfig(undefined), { registries: {}, insecureRegistries: DEFAULT_INSECURE_REGISTRIES, images: {} });
  const c = parseAgentConfig({ registries: { 'reg.local:5000': { insecure: true, username: 'u', password: 'p', caFile: '/ca.pem' } }, insecureRegistries: ['10.0.0.5'] });
  assert.deepEqual(c.registries['reg.local:5000'], { insecure: true, username: 'u', password: 'p', caFile: '/ca.pem' });
  assert.deepEqual(c.insecureRegistries, ['10.0.0.5']);
  const bad: [unknown, RegExp][] = [
    [{ registry: {} }, /unknown field "registry"/],
    [{ registries: { r: { user: 'x' } } }, /registries\.r: unknown field "user"/],
    [{ registries: { r: { username: 'x' } } }, /username and password go together/],
    [{ registries: { r: { insecure: 'yes' } } }, /registries\.r\.insecure must be true or false/],
    [{ registries: { r: { caFile: 'rel.pem' } } }, /caFile must be an absolute path/],
    [{ insecureRegistries: 'x' }, /insecureRegistries must be a list/],
  ];
  for (const [doc, pattern] of bad) assert.throws(() => parseAgentConfig(doc, 'agent.yaml'), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
});

test('parseAgentConfig: image store settings are validated and named in errors', () => {
  const c = parseAgentConfig({ images: { allowSetuid: false, maxLayerBytes: 1024, gcAfterSeconds: 60, storeBudgetBytes: 4096 } });
  assert.deepEqual(c.images, { allowSetuid: false, maxLayerBytes: 1024, gcAfterSeconds: 60, storeBudgetBytes: 4096 });
  const bad: [unknown, RegExp][] = [
    [{ images: [] }, /agent\.yaml: images must be a mapping/],
    [{ images: { gcAfter: 1 } }, /images: unknown field "gcAfter"/],
    [{ images: { allowSetuid: 'no' } }, /images\.allowSetuid must be true or false/],
    [{ images: { maxLayerBytes: -1 } }, /images\.maxLayerBytes must be a positive integer/],
    [{ images: { storeBudgetBytes: 1.5 } }, /images\.storeBudgetBytes must be a positive integer/],
  ];
  for (const [doc, pattern] of bad) assert.throws(() => parseAgentConfig(doc, 'agent.yaml'), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
});
