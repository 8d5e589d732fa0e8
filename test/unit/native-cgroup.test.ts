import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CgroupV1Reader } from '../../agent/runtime/cgroup-v1.js';
import { CgroupV2Reader, sharesFromWeight } from '../../agent/runtime/cgroup-v2.js';
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
      'berth/node-1/c1/cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 10\nthrottled_usec 750000\n',
      'berth/node-1/c1/cpu.max': '50000 100000\n',
      'berth/node-1/c1/cpu.weight': '20\n',
      'berth/node-1/c1/memory.swap.max': '0\n',
      'berth/node-1/c1/memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n',
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
      cpuUserSeconds: 2,
      cpuSystemSeconds: 0.5,
      cfsPeriods: 40,
      cfsThrottledPeriods: 10,
      cfsThrottledSeconds: 0.75,
      memoryRssBytes: 600000,
      memoryCacheBytes: 400000,
      memorySwapLimitBytes: 67108864,
      oomKills: 1,
      cpuQuotaUs: 50000,
      cpuPeriodUs: 100000,
      cpuShares: sharesFromWeight(20),
    });
    const unlimited = await reader.stats('berth/node-1/c2');
    assert.equal(unlimited?.memoryLimitBytes, 0, '"max" means unlimited, reported as 0');
    assert.equal(unlimited?.memoryWorkingSetBytes, 0, 'working set never goes negative');
    assert.equal(unlimited?.cpuQuotaUs, 0, 'no cpu.max file: no quota');
    assert.equal(unlimited?.memorySwapLimitBytes, 0, 'unlimited memory: unlimited memory+swap');
    assert.equal(unlimited?.oomKills, 0);
    assert.equal(await reader.stats('berth/node-1/gone'), undefined, 'a missing cgroup has no stats');
    assert.deepEqual(reader.dirs('berth/c1'), [join(v2, 'berth/c1')]);
  });

  it('v1 reads one directory per controller and treats a huge limit as unlimited', async () => {
    const v1 = join(root, 'v1');
    await writeTree(v1, {
      'cpuacct/berth/c1/cpuacct.usage': '1500000000\n',
      'cpuacct/berth/c1/cpuacct.stat': 'user 120\nsystem 30\n',
      'cpu/berth/c1/cpu.stat': 'nr_periods 50\nnr_throttled 5\nthrottled_time 250000000\n',
      'cpu/berth/c1/cpu.cfs_quota_us': '-1\n',
      'cpu/berth/c1/cpu.cfs_period_us': '100000\n',
      'cpu/berth/c1/cpu.shares': '1024\n',
      'memory/berth/c1/memory.usage_in_bytes': '2000000\n',
      'memory/berth/c1/memory.stat': 'cache 10\nrss 20\ntotal_cache 700000\ntotal_rss 800000\ntotal_inactive_file 500000\n',
      'memory/berth/c1/memory.memsw.limit_in_bytes': '9223372036854771712\n',
      'memory/berth/c1/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
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
      cpuUserSeconds: 1.2,
      cpuSystemSeconds: 0.3,
      cfsPeriods: 50,
      cfsThrottledPeriods: 5,
      cfsThrottledSeconds: 0.25,
      memoryRssBytes: 800000,
      memoryCacheBytes: 700000,
      memorySwapLimitBytes: 0,
      oomKills: 2,
      cpuQuotaUs: 0,
      cpuPeriodUs: 100000,
      cpuShares: 1024,
    });
    assert.deepEqual(reader.dirs('berth/c1'), ['memory', 'cpu', 'cpuacct', 'pids', 'devices', 'cpuset'].map((c) => join(v1, c, 'berth/c1')));
  });

  it('detects v1 for a root that is not a cgroup2 mount', () => {
    assert.equal(detectCgroupVersion(root), 'v1');
  });

  it('detects the hybrid layout as v1 and a cgroup2 mount as v2', { skip: !existsSync('/sys/fs/cgroup/memory') && 'not a hybrid host' }, () => {
    assert.equal(detectCgroupVersion('/sys/fs/cgroup'), 'v1', 'a tmpfs of v1 controllers (+ unified/) is v1');
    if (existsSync('/sys/fs/cgroup/unified/cgroup.procs')) assert.equal(detectCgroupVersion('/sys/fs/cgroup/unified'), 'v2');
  });

  it('maps cpu.weight back onto the shares scale at both ends', () => {
    for (const [weight, shares] of [[1, 2], [10000, 262144]] as const) assert.equal(sharesFromWeight(weight), shares);
  });
});
