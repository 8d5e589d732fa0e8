import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentMessage, LogsRequest, StreamEnd } from '../../proto/gen/berth/v1/agent.js';
import { CriJoiner, parseCriRecord, parseCriText, selectLines } from '../../agent/logs/cri.js';
import { LogCursor } from '../../agent/logs/cursor.js';
import { createLogsHandler } from '../../agent/logs/handler.js';
import { keepPreviousLog, previousLogPath, sweepPreviousLogs } from '../../agent/logs/previous.js';
import { AgentStreams } from '../../agent/streams.js';
import type { ContainerState } from '../../agent/runtime/runtime.js';
import { bodyOf, parseDurationMs, parseLogsQuery } from '../../control-plane/api/routes-logs.js';
import { ClientStream } from '../../control-plane/gateway/streams.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.parse('2026-12-03T10:00:00Z');
/** rec writes one CRI record at T0 + s seconds. */
function rec(s: number, stream: 'stdout' | 'stderr', tag: 'F' | 'P', text: string): string {
  return `${new Date(T0 + s * 1000).toISOString().replace('Z', '123456Z')} ${stream} ${tag} ${text}\n`;
}

describe('CRI parsing', () => {
  it('reads time, stream, tag and text (text may contain spaces or be empty)', () => {
    assert.deepEqual(parseCriRecord('2026-12-03T10:00:00.123456789Z stdout F hello  world'),
      { time: '2026-12-03T10:00:00.123456789Z', timeMs: Date.parse('2026-12-03T10:00:00.123Z'), stream: 'stdout', partial: false, text: 'hello  world' });
    assert.equal(parseCriRecord('2026-12-03T10:00:00Z stderr F')?.text, '');
    for (const bad of ['', 'garbage', '2026-12-03T10:00:00Z stdin F x', '2026-12-03T10:00:00Z stdout X x', 'notatime stdout F x']) {
      assert.equal(parseCriRecord(bad), undefined, `expected "${bad}" refused`);
    }
  });

  it('joins P records of each stream into one line, even when the other stream interleaves', () => {
    const text = rec(0, 'stdout', 'P', 'abc') + rec(1, 'stderr', 'F', 'err line') + rec(2, 'stdout', 'P', 'def') + rec(3, 'stdout', 'F', 'ghi') + rec(4, 'stdout', 'F', 'next');
    const lines = parseCriText(text);
    assert.deepEqual(lines.map((l) => [l.stream, l.text]), [['stderr', 'err line'], ['stdout', 'abcdefghi'], ['stdout', 'next']]);
    assert.equal(lines[1]!.timeMs, T0, 'a joined line keeps the time of its first piece');
    const j = new CriJoiner();
    j.push(parseCriRecord(rec(0, 'stdout', 'P', 'cut off').trimEnd())!);
    assert.deepEqual(j.flush().map((l) => l.text), ['cut off'], 'a line the log ended inside still comes out');
  });

  it('selects the last N lines after since', () => {
    const lines = parseCriText([0, 1, 2, 3, 4].map((s) => rec(s, 'stdout', 'F', `l${s}`)).join(''));
    const texts = (f: { sinceMs: number; tail: number }) => selectLines(lines, f).map((l) => l.text);
    assert.deepEqual(texts({ sinceMs: 0, tail: -1 }), ['l0', 'l1', 'l2', 'l3', 'l4']);
    assert.deepEqual(texts({ sinceMs: 0, tail: 2 }), ['l3', 'l4']);
    assert.deepEqual(texts({ sinceMs: 0, tail: 0 }), []);
    assert.deepEqual(texts({ sinceMs: T0 + 2000, tail: -1 }), ['l2', 'l3', 'l4']);
    assert.deepEqual(texts({ sinceMs: T0 + 2000, tail: 1 }), ['l4']);
  });
});

describe('LogCursor', () => {
  it('reads the rotated generation first, then follows the file across a rotation without losing or repeating a line', async () => {
    const d = join(dir, 'cursor');
    mkdirSync(d);
    const path = join(d, 'container.log');
    writeFileSync(`${path}.1`, 'old-1\nold-2\n');
    writeFileSync(path, 'a\nb\npart');
    const c = new LogCursor(path);
    assert.deepEqual(await c.start(), ['old-1', 'old-2', 'a', 'b']);
    appendFileSync(path, 'ial\nc\n');
    assert.deepEqual(await c.next(), ['partial', 'c']);
    appendFileSync(path, 'd\n');
    renameSync(path, `${path}.1`); // the shim rotates: rename, then a new file
    writeFileSync(path, 'e\n');
    assert.deepEqual(await c.next(), ['d', 'e']);
    appendFileSync(path, 'f\n');
    assert.deepEqual(await c.next(), ['f']);
    writeFileSync(path, 'x\n'); // shrunk under the same inode (truncated): read again from the start
    assert.deepEqual(await c.next(), ['x']);
    await c.close();
  });

  it('waits for a log that does not exist yet', async () => {
    const path = join(dir, 'later.log');
    const c = new LogCursor(path);
    assert.deepEqual(await c.start(), []);
    writeFileSync(path, 'first\n');
    assert.deepEqual(await c.next(), ['first']);
    await c.close();
  });
});

/** runLogs serves req through the handler and returns the text per channel and the end. */
async function runLogs(handler: ReturnType<typeof createLogsHandler>, req: Partial<LogsRequest>, during?: () => void): Promise<{ out: string; err: string; end: StreamEnd }> {
  const msgs: AgentMessage[] = [];
  let done!: (e: StreamEnd) => void;
  const ended = new Promise<StreamEnd>((r) => { done = r; });
  const streams = new AgentStreams({ logs: handler }, (m) => {
    msgs.push(m);
    if (m.msg?.$case === 'streamData' && during) setImmediate(during);
    if (m.msg?.$case === 'streamEnd') done(m.msg.value);
    return true;
  });
  streams.open('logs', { streamId: 's', namespace: 'default', task: 'web-1', containerId: 'c1', follow: false, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false, windowBytes: 1 << 20, ...req });
  const end = await ended;
  const text = (ch: number) => msgs.flatMap((m) => (m.msg?.$case === 'streamData' && m.msg.value.channel === ch ? [Buffer.from(m.msg.value.data).toString()] : [])).join('');
  return { out: text(1), err: text(2), end };
}

describe('logs handler', () => {
  const cdir = join(dir, 'containers', 'c1');
  mkdirSync(cdir, { recursive: true });
  const logPath = join(cdir, 'container.log');
  let status: 'running' | 'exited' = 'exited';
  let exit: () => void = () => undefined;
  const state = (): ContainerState => ({ id: 'c1', status, pid: 1, shimPid: 1, startedAt: '', labels: { 'berth.task': 'web-1', 'berth.namespace': 'default' }, logPath });
  const runtime = {
    state: async (id: string) => (id === 'c1' ? state() : undefined),
    wait: (_id: string) => new Promise<ContainerState | undefined>((r) => { exit = () => { status = 'exited'; r(state()); }; }),
  };
  const handler = createLogsHandler({ runtime, stateDir: dir, pollMs: 20 });

  it('sends whole lines split by stream, with --tail, --since and --timestamps', async () => {
    writeFileSync(logPath, rec(0, 'stdout', 'F', 'one') + rec(1, 'stderr', 'F', 'two') + rec(2, 'stdout', 'P', 'thr') + rec(3, 'stdout', 'F', 'ee'));
    const all = await runLogs(handler, {});
    assert.equal(all.out, 'one\nthree\n');
    assert.equal(all.err, 'two\n');
    assert.equal(all.end.errorCode, '');
    assert.equal((await runLogs(handler, { tailLines: 1 })).out, 'three\n');
    const since = await runLogs(handler, { sinceUnixMs: T0 + 1000, timestamps: true });
    assert.equal(since.err, `${new Date(T0 + 1000).toISOString().replace('Z', '123456Z')} two\n`);
  });

  it('refuses a container that is not the task\'s, and --previous without a previous run', async () => {
    assert.equal((await runLogs(handler, { task: 'other' })).end.errorCode, 'BERTH_ERR_TASK_NOT_RUNNING');
    assert.equal((await runLogs(handler, { containerId: 'nope' })).end.errorCode, 'BERTH_ERR_TASK_NOT_RUNNING');
    assert.equal((await runLogs(handler, { previous: true })).end.errorCode, 'BERTH_ERR_NO_PREVIOUS_CONTAINER');
  });

  it('serves the previous run kept before a restart (both generations, older first)', async () => {
    writeFileSync(`${logPath}.1`, rec(0, 'stdout', 'F', 'gen-1'));
    writeFileSync(logPath, rec(1, 'stdout', 'F', 'gen-2'));
    await keepPreviousLog(dir, 'c1', logPath);
    rmSync(`${logPath}.1`);
    writeFileSync(logPath, rec(2, 'stdout', 'F', 'new run'));
    assert.equal((await runLogs(handler, { previous: true })).out, 'gen-1\ngen-2\n');
    assert.equal((await runLogs(handler, {})).out, 'new run\n');
  });

  it('sweeps kept logs of containers that are gone, and only those', async () => {
    await keepPreviousLog(dir, 'gone', logPath);
    assert.deepEqual(await sweepPreviousLogs(dir, ['c1']), ['gone.previous.log']);
    assert.equal(existsSync(previousLogPath(dir, 'c1')), true);
    assert.equal(existsSync(previousLogPath(dir, 'gone')), false);
  });

  it('follows what is written, across a rotation, until the container exits', async () => {
    status = 'running';
    writeFileSync(logPath, rec(0, 'stdout', 'F', 'before'));
    let step = 0;
    const r = await runLogs(handler, { follow: true }, () => {
      // Each step runs after data went out: write, rotate, write, exit.
      step++;
      if (step === 1) appendFileSync(logPath, rec(1, 'stdout', 'F', 'after'));
      if (step === 2) {
        renameSync(logPath, `${logPath}.1`);
        writeFileSync(logPath, rec(2, 'stdout', 'F', 'rotated'));
      }
      if (step === 3) {
        appendFileSync(logPath, rec(3, 'stdout', 'F', 'last'));
        exit();
      }
    });
    assert.equal(r.out, 'before\nafter\nrotated\nlast\n');
    assert.equal(r.end.errorCode, '');
  });
});

describe('logs query', () => {
  it('reads durations', () => {
    assert.equal(parseDurationMs('90'), 90_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('500ms'), 500);
    for (const bad of ['', 'h', '5x', '1h 2m', '-5s']) assert.equal(parseDurationMs(bad), undefined, `expected "${bad}" refused`);
  });

  it('parses the query and names the bad parameter', () => {
    assert.deepEqual(parseLogsQuery({ follow: 'true', tail: '10', since: '5m', timestamps: '1' }),
      { follow: true, tail: 10, sinceMs: 300_000, timestamps: true, previous: false });
    assert.deepEqual(parseLogsQuery({}), { follow: false, tail: -1, sinceMs: 0, timestamps: false, previous: false });
    for (const [q, field] of [[{ tail: 'x' }, 'query.tail'], [{ since: 'soon' }, 'query.since'], [{ follow: 'maybe' }, 'query.follow'], [{ lines: '3' }, 'query.lines']] as const) {
      const r = parseLogsQuery(q as Record<string, string>);
      assert.ok('code' in r && r.field === field, `expected a 400 naming ${field}, saw ${JSON.stringify(r)}`);
    }
  });
});

describe('logs response body', () => {
  it('pulls one chunk per read, grants credit only for what was taken, and cancels the stream when the client goes away', async () => {
    const credits: number[] = [];
    let cancelled = 0;
    const h = new ClientStream('b1', 8);
    h.attach({ credit: (n) => credits.push(n), input: () => undefined, cancel: () => { cancelled++; } });
    for (let i = 0; i < 4; i++) h.onData({ streamId: 'b1', channel: 1, data: Buffer.from(`l${i}\n`) });
    const body = bodyOf(h);
    const first = await new Promise<Buffer>((r) => body.once('data', r));
    body.pause();
    assert.equal(first.toString(), 'l0\n');
    assert.ok(credits.reduce((a, b) => a + b, 0) <= 6, `credit only for chunks taken, saw ${credits}`);
    body.destroy();
    await new Promise((r) => body.once('close', r));
    assert.equal(cancelled, 1, 'the client going away cancels the agent stream');
  });
});
