/**
 * Registry authentication against real servers: docker-registry with htpasswd basic auth, and the
 * bearer-token flow. For bearer, a proxy written here demands tokens from its own /token endpoint
 * and forwards to an open docker-registry: berth's side of the flow (challenge parsing, token
 * request with basic credentials and scope, caching, retry) is exercised fully, without making
 * the test sign JWTs for the registry's `auth: token` mode, which only checks the signature.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../agent/images/index.js';
import { AgentError } from '../../agent/errors.js';
import type { RegistryHostConfig } from '../../agent/config.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { startProxy, startRegistry, type RegistryProxy, type TestRegistry } from '../support/registry.js';

const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/docker-registry') && existsSync('/usr/bin/skopeo') && existsSync('/usr/bin/htpasswd');
const USER = { username: 'puller', password: 'right-password' };

describe('registry auth', { skip: !canRun && 'needs root, docker-registry, skopeo and htpasswd (apache2-utils)' }, () => {
  let work: string;
  let basic: TestRegistry;
  let open: TestRegistry;
  const proxies: RegistryProxy[] = [];
  let n = 0;

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-regauth-'));
    basic = await startRegistry({ auth: USER });
    basic.push(`oci-archive:${SEED_ARCHIVE}`, 'berth/busybox:1.36');
    open = await startRegistry();
    open.push(`oci-archive:${SEED_ARCHIVE}`, 'berth/busybox:1.36');
  });

  after(async () => {
    for (const p of proxies) await p.close();
    await basic?.stop();
    await open?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const storeWith = async (registries: Record<string, RegistryHostConfig>): Promise<ImageStore> => {
    const store = new ImageStore({ root: join(work, `s${n++}`), registries: { registries, insecureRegistries: ['127.0.0.1'] } });
    await store.init();
    return store;
  };
  const rejectsUnauthorized = async (p: Promise<unknown>, pattern: RegExp): Promise<void> => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof AgentError, `AgentError expected, saw ${String(err)}`);
      assert.equal(err.code, 'BERTH_ERR_IMAGE_UNAUTHORIZED', err.message);
      assert.match(err.message, pattern);
      return true;
    });
  };

  it('basic auth: configured credentials pull the image', async () => {
    const store = await storeWith({ [basic.host]: USER });
    const image = await store.resolve(`${basic.host}/berth/busybox:1.36`);
    assert.equal(image.lowerDirs.length, 1);
  });

  it('basic auth: a wrong password is a clear 401 naming the registry; none configured says so', async () => {
    await rejectsUnauthorized((await storeWith({ [basic.host]: { ...USER, password: 'wrong' } })).resolve(`${basic.host}/berth/busybox:1.36`),
      new RegExp(`^registry ${basic.host}: manifest 1\\.36: 401 Unauthorized \\(credentials rejected\\)`));
    await rejectsUnauthorized((await storeWith({})).resolve(`${basic.host}/berth/busybox:1.36`),
      new RegExp(`^registry ${basic.host}: .*401 Unauthorized \\(no credentials configured for this registry\\)`));
  });

  it('bearer: the challenge is answered with a token fetched once per scope and reused for every request', async () => {
    const proxy = await startProxy(open.host, { bearer: USER });
    proxies.push(proxy);
    const store = await storeWith({ [proxy.host]: USER });
    await store.resolve(`${proxy.host}/berth/busybox:1.36`);
    assert.deepEqual(proxy.tokenRequests, ['repository:berth/busybox:pull'], 'one token request, for the pull scope');
    const gets = proxy.requests.filter((r) => r.startsWith('GET '));
    assert.ok(gets.length >= 3, `manifest, config and layer fetched, saw ${gets.join(', ')}`);
    assert.ok(proxy.authorizations.slice(1).every((a) => a?.startsWith('Bearer ')), 'every request after the challenge carries the token');
  });

  it('bearer: wrong credentials at the token server are a clear 401 naming the registry and the token server', async () => {
    const proxy = await startProxy(open.host, { bearer: USER });
    proxies.push(proxy);
    const store = await storeWith({ [proxy.host]: { ...USER, password: 'nope' } });
    await rejectsUnauthorized(store.resolve(`${proxy.host}/berth/busybox:1.36`),
      new RegExp(`^registry ${proxy.host}: token server http://${proxy.host}/token answered 401: UNAUTHORIZED: bad credentials \\(credentials rejected\\)`));
  });

  it('redirects: blob GETs follow a redirect to another origin without our Authorization', async () => {
    const storage = await startProxy(open.host);
    const front = await startProxy(open.host, { bearer: USER, redirectBlobsTo: `http://${storage.host}` });
    proxies.push(storage, front);
    const store = await storeWith({ [front.host]: USER });
    await store.resolve(`${front.host}/berth/busybox:1.36`);
    assert.ok(storage.requests.length >= 2, `config and layer fetched from the storage origin, saw ${storage.requests.join(', ')}`);
    assert.deepEqual(storage.authorizations.filter((a) => a !== undefined), [], 'no Authorization crossed to the other origin');
  });
});
