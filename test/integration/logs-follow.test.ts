import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { AgentMessage, StreamEnd } from '../../proto/gen/berth/v1/agent.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import { createLogsHandler } from '../../agent/logs/handler.js';
import { AgentStreams } from '../../agent/streams.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { addBusybox, removeContainers } from '../support/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);
const LOG_MAX_BYTES = 4096;
const LINES = 300;

describe('the agent log reader with a real container', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-logs-test-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  const started = new Set<string>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-logs-'));
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await addBusybox(rootfs, ['sh', 'sleep', 'echo', 'seq']);
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent, logMaxBytes: LOG_MAX_BYTES });
  });

  after(async () => {
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('follows the log from its first line across several rotations until the container exits, losing and repeating nothing', async () => {
    // About 40 bytes a record: the 4 KiB cap rotates every ~100 lines, three times or more in all.
    const script = `i=0; while [ $i -lt ${LINES} ]; do echo line-$i; i=$((i+1)); sleep 0.01; done; echo done >&2`;
    const st = await rt.run({
      id: 'writer', hostname: 'writer', lowerDirs: [rootfs], args: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0,
      limits: { pids: 16 }, labels: { 'berth.task': 'writer-1', 'berth.namespace': 'default' },
    });
    started.add(st.id);
    const handler = createLogsHandler({ runtime: rt, stateDir: join(work, 'state') });
    const out: string[] = [];
    const err: string[] = [];
    let rotationsSeen = 0;
    let done!: (e: StreamEnd) => void;
    const ended = new Promise<StreamEnd>((r) => { done = r; });
    const streams = new AgentStreams({ logs: handler }, (m: AgentMessage) => {
      if (m.msg?.$case === 'streamData') (m.msg.value.channel === 1 ? out : err).push(Buffer.from(m.msg.value.data).toString());
      if (m.msg?.$case === 'streamEnd') done(m.msg.value);
      return true;
    });
    // A small window, granted back as data arrives, so credit pauses the reader too.
    streams.open('logs', { streamId: 'f', namespace: 'default', task: 'writer-1', containerId: st.id, follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false, windowBytes: 2048 });
    const grant = setInterval(() => streams.credit({ streamId: 'f', bytes: 2048 }), 5);
    const watchRotation = setInterval(() => void readdir(join(work, 'state', 'containers', st.id)).then((f) => { if (f.includes('container.log.1')) rotationsSeen++; }, () => undefined), 50);
    const end = await ended.finally(() => { clearInterval(grant); clearInterval(watchRotation); });
    assert.equal(end.errorCode, '', `expected a normal end, saw ${end.errorCode}: ${end.errorMessage}`);
    const lines = out.join('').split('\n').filter(Boolean);
    const expected = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    const missing = expected.filter((l) => !lines.includes(l));
    assert.deepEqual(missing, [], `lines lost across rotation: ${missing.slice(0, 10).join(', ')}`);
    assert.deepEqual(lines, expected, 'every line once, in order');
    assert.equal(err.join(''), 'done\n', 'stderr lines on channel 2');
    assert.ok(rotationsSeen > 0, 'the log rotated while it was followed');
  });
});
