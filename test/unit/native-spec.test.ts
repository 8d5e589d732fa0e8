import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeShimSpec } from '../../agent/runtime/shim-spec.js';

describe('shim spec wire format', () => {
  const opts = { cgroupParent: 'berth/node-1', cgroupRoot: '/sys/fs/cgroup', cgroupVersion: 'v1' as const, logMaxBytes: 1024 };

  it('repeats list keys, escapes newlines and backslashes, converts cores to millicores', () => {
    const text = encodeShimSpec(
      {
        id: 'c1',
        hostname: 'web-1',
        lowerDirs: ['/l/top', '/l/base'],
        args: ['sh', '-c', 'echo a\nprintf "\\n"'],
        env: ['PATH=/bin', 'X=1'],
        cwd: '/',
        uid: 1000,
        gid: 1000,
        limits: { memoryBytes: 64 * 1024 * 1024, cpuCores: 0.25, pids: 32 },
        labels: { app: 'web' },
      },
      opts,
    );
    assert.deepEqual(text.trimEnd().split('\n'), [
      'id=c1',
      'hostname=web-1',
      'lower=/l/top',
      'lower=/l/base',
      'arg=sh',
      'arg=-c',
      'arg=echo a\\nprintf "\\\\n"',
      'env=PATH=/bin',
      'env=X=1',
      'cwd=/',
      'uid=1000',
      'gid=1000',
      'memory=67108864',
      'cpuMillis=250',
      'pids=32',
      'cgroupParent=berth/node-1',
      'cgroupRoot=/sys/fs/cgroup',
      'cgroupVersion=v1',
      'logMaxBytes=1024',
    ]);
  });

  it('omits unset limits (unlimited)', () => {
    const text = encodeShimSpec(
      { id: 'c2', hostname: 'h', lowerDirs: ['/l'], args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {} },
      opts,
    );
    assert.doesNotMatch(text, /^(memory|cpuMillis|pids)=/m);
  });
});
