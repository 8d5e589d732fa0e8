import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { securityFrom } from '../../agent/convert.js';
import { encodeShimSpec } from '../../agent/runtime/shim-spec.js';
import type { ContainerSpec } from '../../agent/runtime/runtime.js';

const OPTS = { cgroupParent: 'berth', cgroupRoot: '/sys/fs/cgroup', cgroupVersion: 'v1' as const, logMaxBytes: 1024 };
const BASE: ContainerSpec = { id: 'c1', hostname: 'h', lowerDirs: ['/l'], args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {} };

describe('isolation keys of the shim spec', () => {
  it('leaves every default out', () => {
    assert.doesNotMatch(encodeShimSpec(BASE, OPTS), /^(capAdd|capDrop|readOnlyRootfs|seccomp|userNamespace|group|rlimit|mount|hosts|resolvConf)=/m);
  });

  it('encodes capabilities, rootfs, seccomp, user namespace, groups, rlimits, mounts and etc files', () => {
    const text = encodeShimSpec({
      ...BASE,
      security: { capAdd: ['NET_ADMIN'], capDrop: ['ALL'], readOnlyRootfs: true, seccomp: 'unconfined', userNamespace: { uidBase: 200000, gidBase: 300000, size: 1000 } },
      groups: [10, 20],
      rlimits: [{ name: 'NOFILE', soft: 1024, hard: 'unlimited' }],
      mounts: [{ source: '/host/a', target: '/data', readonly: true }],
      etcHosts: '127.0.0.1\tlocalhost\n',
      resolvConf: 'nameserver 10.0.0.1\n',
    }, OPTS);
    const lines = text.trimEnd().split('\n');
    for (const want of ['capAdd=NET_ADMIN', 'capDrop=ALL', 'readOnlyRootfs=1', 'seccomp=unconfined', 'userNamespace=1', 'uidMapBase=200000',
      'gidMapBase=300000', 'idMapSize=1000', 'group=10', 'group=20', 'rlimit=NOFILE:1024:unlimited', 'mount=/host/a\t/data\tro',
      'hosts=127.0.0.1\tlocalhost\\n', 'resolvConf=nameserver 10.0.0.1\\n']) {
      assert.ok(lines.includes(want), `expected line ${JSON.stringify(want)} in ${JSON.stringify(lines)}`);
    }
  });
});

describe('securityFrom (template.security → ContainerSecurity)', () => {
  const cases: [string, Parameters<typeof securityFrom>[0], ReturnType<typeof securityFrom>][] = [
    ['absent', undefined, undefined],
    ['all defaults', { readOnlyRootfs: false, capAdd: [], capDrop: [], userNamespace: false, seccomp: '' }, undefined],
    ['every field', { readOnlyRootfs: true, capAdd: ['SYS_ADMIN'], capDrop: ['CHOWN'], userNamespace: true, seccomp: 'unconfined' },
      { readOnlyRootfs: true, capAdd: ['SYS_ADMIN'], capDrop: ['CHOWN'], userNamespace: true, seccomp: 'unconfined' }],
    ['seccomp default is not a change', { readOnlyRootfs: false, capAdd: [], capDrop: [], userNamespace: false, seccomp: 'default' }, undefined],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(securityFrom(input), want));
});
