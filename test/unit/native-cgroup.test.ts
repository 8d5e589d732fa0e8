import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CgroupV1Reader } from '../../agent/runtime/cgroup-v1.js';
import { CgroupV2Reader } from '../../agent/runtime/cgroup-v2.js';
import { detectCgroupVersion } from '../../agent/runtime/cgroup.js';

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
  }
}

describe('cgroup stats readers against a fake cgroupfs', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-cgroup-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('v2 converts usage_usec to seconds and subtracts inactive_file for the working set', async () => {
    const v2 = join(root, 'v2');
    await writeTree(v2, {
      'berth/node-1/c1/cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n',
      'berth/node-1/c1/memory.current': '1000000\n',
      'berth/node-1/c1/memory.stat': 'anon 600000\nfile 400000\ninactive_file 300000\nactive_file 100000\n',
      'berth/node-1/c1/memory.max': '67108864\n',
      'berth/node-1/c1/pids.current': '3\n',
      'berth/node-1/c2/cpu.stat': 'usage_usec 0\n',
      'berth/node-1/c2/memory.current': '100\n',
      'berth/node-1/c2/memory.stat': 'inactive_file 500\n',
      'berth/node-1/c2/memory.max': 'max\n',
      'berth/node-1/c2/pids.current': '1\n',
    });
    const reader = new CgroupV2Reader(v2);
    assert.deepEqual(await reader.stats('berth/node-1/c1'), {
      cpuUsageSeconds: 2.5,
      memoryUsageBytes: 1000000,
      memoryWorkingSetBytes: 700000,
      memoryLimitBytes: 67108864,
      pids: 3,
    });
    const unlimited = await reader.stats('berth/node-1/c2');
    assert.equal(unlimited?.memoryLimitBytes, 0, '"max" means unlimited, reported as 0');
    assert.equal(unlimited?.memoryWorkingSetBytes, 0, 'working set never goes negative');
    assert.equal(await reader.stats('berth/node-1/gone'), undefined, 'a missing cgroup has no stats');
    assert.deepEqual(reader.dirs('berth/c1'), [join(v2, 'berth/c1')]);
  });

  it('v1 reads one directory per controller and treats a huge limit as unlimited', async () => {
    const v1 = join(root, 'v1');
    await writeTree(v1, {
      'cpuacct/berth/c1/cpuacct.usage': '1500000000\n',
      'memory/berth/c1/memory.usage_in_bytes': '2000000\n',
      'memory/berth/c1/memory.stat': 'cache 10\ntotal_inactive_file 500000\n',
      'memory/berth/c1/memory.limit_in_bytes': '9223372036854771712\n',
      'pids/berth/c1/pids.current': '2\n',
    });
    const reader = new CgroupV1Reader(v1);
    assert.deepEqual(await reader.stats('berth/c1'), {
      cpuUsageSeconds: 1.5,
      memoryUsageBytes: 2000000,
      memoryWorkingSetBytes: 1500000,
      memoryLimitBytes: 0,
      pids: 2,
    });
    assert.deepEqual(reader.dirs('berth/c1'), ['memory', 'cpu', 'cpuacct', 'pids'].map((c) => join(v1, c, 'berth/c1')));
  });

  it('detects v1 for a root that is not a cgroup2 mount', () => {
    assert.equal(detectCgroupVersion(root), 'v1');
  });
});
