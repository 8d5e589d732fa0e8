/**
 * Interactive exec without containers: the WebSocket frames, the route's query and its pipe to
 * an agent stream (a loopback WebSocket, a ClientStream as the agent), and the agent's handler
 * over a fake runtime with the real stream multiplexer — credit both ways, refusals, hang-up.
 */
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import Fastify from 'fastify';
import { WebSocket } from 'ws';

import { createExecStreamHandler, STDIN_WINDOW_BYTES } from '../../agent/exec-stream.js';
import type { ContainerState, ExecStream, ExecStreamExit, ExecStreamRequest } from '../../agent/runtime/runtime.js';
import { AgentStreams } from '../../agent/streams.js';
import { decodeFrame, EXEC_CHANNEL, frame } from '../../control-plane/api/exec-channels.js';
import { parseExecStreamQuery, registerExecStreamRoutes } from '../../control-plane/api/routes-exec-stream.js';
import { errorOfBody, execStreamUrl } from '../../control-plane/cli/exec-stream.js';
import { ClientStream, type StreamOpen } from '../../control-plane/gateway/streams.js';
import type { AgentMessage, ExecInput, ExecStart } from '../../proto/gen/berth/v1/agent.js';
import { waitFor } from '../support/cluster.js';
import { MemoryStore } from '../support/memory-store.js';

const WAIT_MS = 5_000;

describe('exec WebSocket frames', () => {
  const cases: Array<[string, Buffer, unknown]> = [
    ['stdin bytes', frame(0, 'hi'), { channel: 0, data: Buffer.from('hi') }],
    ['stdin EOF is an empty stdin frame', frame(0), { channel: 0, data: Buffer.alloc(0) }],
    ['status exit code', frame(3, '{"exitCode":7}'), { channel: 3, status: { exitCode: 7 } }],
    ['status error', frame(3, '{"error":{"code":"X","message":"m"}}'), { channel: 3, status: { error: { code: 'X', message: 'm' } } }],
    ['resize', frame(4, '{"rows":50,"cols":132}'), { channel: 4, rows: 50, cols: 132 }],
    ['signal', frame(5, 'SIGINT'), { channel: 5, signal: 'SIGINT' }],
  ];
  for (const [name, raw, want] of cases) {
    it(`decodes ${name}`, () => assert.deepEqual(decodeFrame(raw), want));
  }
  const bad: Array<[string, Buffer]> = [
    ['an empty frame', Buffer.alloc(0)], ['an unknown channel', frame(9, 'x')], ['a resize of 0 rows', frame(4, '{"rows":0,"cols":80}')],
    ['a resize that is not JSON', frame(4, '50x132')], ['a signal with spaces', frame(5, 'SIG INT')], ['a status without exit or error', frame(3, '{}')],
  ];
  for (const [name, raw] of bad) {
    it(`refuses ${name} with a reason`, () => assert.equal(typeof decodeFrame(raw), 'string'));
  }
});

describe('exec route query', () => {
  it('reads repeated command arguments, flags and the window', () => {
    assert.deepEqual(parseExecStreamQuery({ command: ['sh', '-c', 'echo a b'], stdin: '1', tty: 'true', rows: '40', cols: '120' }),
      { command: ['sh', '-c', 'echo a b'], stdin: true, tty: true, rows: 40, cols: 120 });
    assert.deepEqual(parseExecStreamQuery({ command: 'tty' }), { command: ['tty'], stdin: false, tty: false, rows: 0, cols: 0 });
  });
  const bad: Array<[string, Record<string, string | string[]>, string]> = [
    ['no command', {}, 'query.command'],
    ['an empty command', { command: '' }, 'query.command'],
    ['a flag that is not a boolean', { command: 'sh', tty: 'yes' }, 'query.tty'],
    ['rows past 16 bits', { command: 'sh', rows: '70000', cols: '80' }, 'query.rows'],
    ['rows without cols', { command: 'sh', rows: '40' }, 'query.cols'],
    ['a flag given twice', { command: 'sh', stdin: ['1', '0'] }, 'query.stdin'],
  ];
  for (const [name, q, field] of bad) {
    it(`refuses ${name}, naming ${field}`, () => {
      const r = parseExecStreamQuery(q);
      assert.ok('code' in r && r.code === 'BERTH_ERR_VALIDATION' && r.field === field, `expected a 400 on ${field}, saw ${JSON.stringify(r)}`);
    });
  }
});

describe('exec CLI helpers', () => {
  it('builds the wss URL with every argument in order', () => {
    const url = new URL(execStreamUrl('https://cp:7480', 'team a', 't1', ['sh', '-c', 'a&b'], { stdin: true, tty: true, rows: 24, cols: 80 }));
    assert.equal(url.protocol, 'wss:');
    assert.equal(url.pathname, '/v1/namespaces/team%20a/tasks/t1/exec');
    assert.deepEqual(url.searchParams.getAll('command'), ['sh', '-c', 'a&b']);
    assert.equal(url.searchParams.get('rows'), '24');
  });
  it('reads the server\'s error body of a refused upgrade', () => {
    assert.equal(errorOfBody(409, '{"error":{"code":"BERTH_ERR_TASK_NOT_RUNNING","message":"task a/b is failed"}}'), 'task a/b is failed (BERTH_ERR_TASK_NOT_RUNNING)');
    assert.equal(errorOfBody(502, 'Bad Gateway'), 'the server answered HTTP 502: Bad Gateway');
  });
});

/** routeWith serves the exec route over a store holding one running task and a gateway that hands out agent streams. */
async function routeWith(t: TestContext, phase = 'running') {
  const store = new MemoryStore();
  store.objects.set('tasks/default/web/t1', {
    kind: 'Task', metadata: { name: 't1', namespace: 'default' }, spec: { service: 'web', nodeName: 'n1' },
    status: { phase, containerId: 'c1' },
  } as never);
  const opened: Array<{ open: StreamOpen; stream: ClientStream; credits: number[]; inputs: ExecInput[]; cancelled: boolean }> = [];
  const gateway = {
    openStream(_node: string, open: StreamOpen) {
      const stream = new ClientStream(`s${opened.length}`, 64 * 1024);
      const rec = { open, stream, credits: [] as number[], inputs: [] as ExecInput[], cancelled: false };
      stream.attach({ credit: (b) => rec.credits.push(b), input: (i) => rec.inputs.push(i), cancel: () => { rec.cancelled = true; } });
      opened.push(rec);
      return stream;
    },
  };
  const app = Fastify();
  registerExecStreamRoutes(app, store.asStore(), gateway);
  t.after(() => app.close());
  // A real socket on loopback: fastify's injectWS sends a version header today's ws refuses.
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws');
  const connect = (path: string): Promise<WebSocket> => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${path}`);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`Unexpected server response: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return { app, opened, connect };
}

describe('exec route', () => {
  it('answers a task that is not running with a plain HTTP 409 before any upgrade', async (t) => {
    const { opened, connect } = await routeWith(t, 'failed');
    await assert.rejects(connect('/v1/namespaces/default/tasks/t1/exec?command=sh'), /409/);
    assert.equal(opened.length, 0, 'no stream was opened');
  });

  it('opens the agent stream with the query, relays frames both ways and ends with the status', async (t) => {
    const { opened, connect } = await routeWith(t);
    const pending = connect('/v1/namespaces/default/tasks/t1/exec?command=sh&command=-i&stdin=1&tty=1&rows=24&cols=80');
    await waitFor(() => opened[0], WAIT_MS, () => 'the stream to be opened', 5);
    const rec = opened[0]!;
    assert.deepEqual((rec.open as { exec: ExecStart }).exec, { namespace: 'default', task: 't1', containerId: 'c1', command: ['sh', '-i'], tty: true, stdin: true, rows: 24, cols: 80 });
    rec.stream.onCredit({ streamId: rec.stream.id, bytes: 1024 });
    const ws = await pending;
    const got: unknown[] = [];
    ws.on('message', (raw: Buffer) => got.push(decodeFrame(raw)));
    ws.send(frame(EXEC_CHANNEL.stdin, 'ls\n'));
    ws.send(frame(EXEC_CHANNEL.resize, '{"rows":30,"cols":100}'));
    ws.send(frame(EXEC_CHANNEL.signal, 'SIGINT'));
    ws.send(frame(EXEC_CHANNEL.stdin));
    await waitFor(() => (rec.inputs.length >= 4 ? true : undefined), WAIT_MS, () => `4 inputs, saw ${JSON.stringify(rec.inputs)}`, 5);
    assert.equal(Buffer.from(rec.inputs[0]!.data).toString(), 'ls\n');
    assert.deepEqual([rec.inputs[1]!.rows, rec.inputs[1]!.cols], [30, 100]);
    assert.equal(rec.inputs[2]!.signal, 'SIGINT');
    assert.equal(rec.inputs[3]!.eof, true);
    rec.stream.onData({ streamId: rec.stream.id, channel: 1, data: Buffer.from('out') });
    rec.stream.onEnd({ streamId: rec.stream.id, hasExitCode: true, exitCode: 7, errorCode: '', errorMessage: '' });
    await waitFor(() => (got.length >= 2 ? true : undefined), WAIT_MS, () => `2 frames, saw ${JSON.stringify(got)}`, 5);
    assert.deepEqual(got, [{ channel: 1, data: Buffer.from('out') }, { channel: 3, status: { exitCode: 7 } }]);
  });

  it('a plain GET without an upgrade is told to use a WebSocket (400), opening nothing', async (t) => {
    const { app, opened } = await routeWith(t);
    const r = await app.inject({ method: 'GET', url: '/v1/namespaces/default/tasks/t1/exec?command=sh' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json<{ error: { message: string } }>().error.message, /WebSocket/);
    assert.equal(opened.length, 0);
  });

  it('the client leaving cancels the agent stream', async (t) => {
    const { opened, connect } = await routeWith(t);
    const pending = connect('/v1/namespaces/default/tasks/t1/exec?command=sh');
    await waitFor(() => opened[0], WAIT_MS, () => 'the stream to be opened', 5);
    opened[0]!.stream.onCredit({ streamId: opened[0]!.stream.id, bytes: 0 });
    const ws = await pending;
    ws.terminate();
    await waitFor(() => (opened[0]!.cancelled ? true : undefined), WAIT_MS, () => 'the stream to be cancelled', 5);
  });
});

/** FakeExec is an ExecStream whose output the test writes and whose input it reads. */
function fakeExec(tty: boolean) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdinSeen: Buffer[] = [];
  let release: (() => void) | undefined;
  const stdin = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      stdinSeen.push(chunk);
      // Held until the test lets the "command" read it: credit must wait for this.
      release = cb;
    },
  });
  let settle!: (e: ExecStreamExit) => void;
  const calls: string[] = [];
  const s: ExecStream = {
    stdin, stdout, ...(tty ? {} : { stderr }),
    resize: (r, c) => calls.push(`resize ${r} ${c}`),
    signal: (sig) => { calls.push(`signal ${sig}`); },
    hangUp: () => calls.push('hangUp'),
    kill: () => calls.push('kill'),
    exit: new Promise((r) => { settle = r; }),
  };
  return { s, stdout, stderr, stdinSeen, calls, settle: (e: ExecStreamExit) => settle(e), releaseStdin: () => release?.() };
}

function agentWith(state: Partial<ContainerState> | undefined, exec: ReturnType<typeof fakeExec>) {
  const sent: AgentMessage[] = [];
  const requests: ExecStreamRequest[] = [];
  const runtime = {
    state: async () => (state ? { id: 'c1', status: 'running', pid: 1, shimPid: 1, startedAt: '', logPath: '', labels: {}, ...state } as ContainerState : undefined),
    execStream: async (_id: string, req: ExecStreamRequest) => { requests.push(req); return exec.s; },
  };
  const streams = new AgentStreams({ exec: createExecStreamHandler(runtime) }, (m) => { sent.push(m); return true; });
  const start: ExecStart = { streamId: 'x', namespace: 'default', task: 't1', containerId: 'c1', command: ['sh'], tty: false, stdin: true, rows: 0, cols: 0, windowBytes: 8 * 1024 };
  return { sent, requests, streams, start };
}

const TASK_LABELS = { 'berth.task': 't1', 'berth.namespace': 'default' };

describe('agent exec stream handler', () => {
  it('refuses a container that is not the task\'s before accepting the stream', async () => {
    const exec = fakeExec(false);
    const a = agentWith({ labels: { 'berth.task': 'other', 'berth.namespace': 'default' } }, exec);
    a.streams.open('exec', a.start);
    const end = await waitFor(() => a.sent.find((m) => m.msg?.$case === 'streamEnd'), WAIT_MS, () => 'a StreamEnd', 5);
    assert.equal(end.msg?.$case === 'streamEnd' && end.msg.value.errorCode, 'BERTH_ERR_TASK_NOT_RUNNING');
    assert.equal(a.requests.length, 0, 'nothing was started');
  });

  it('sends no more output than the window until credit comes, then the rest and the exit code', async () => {
    const exec = fakeExec(false);
    const a = agentWith({ labels: TASK_LABELS }, exec);
    a.streams.open('exec', a.start);
    await waitFor(() => (a.requests.length > 0 ? true : undefined), WAIT_MS, () => 'execStream called', 5);
    const big = Buffer.alloc(64 * 1024, 'x');
    exec.stdout.end(big);
    exec.stderr.end();
    exec.settle({ exitCode: 3 });
    const outBytes = (): number => a.sent.reduce((n, m) => n + (m.msg?.$case === 'streamData' ? m.msg.value.data.length : 0), 0);
    await waitFor(() => (outBytes() === 8 * 1024 ? true : undefined), WAIT_MS, () => `one window (8192) sent, saw ${outBytes()}`, 5);
    assert.ok(!a.sent.some((m) => m.msg?.$case === 'streamEnd'), 'no end while output is held back');
    a.streams.credit({ streamId: 'x', bytes: 64 * 1024 });
    const end = await waitFor(() => a.sent.find((m) => m.msg?.$case === 'streamEnd'), WAIT_MS, () => 'a StreamEnd', 5);
    assert.equal(outBytes(), big.length);
    assert.deepEqual(end.msg?.$case === 'streamEnd' && [end.msg.value.hasExitCode, end.msg.value.exitCode], [true, 3]);
  });

  it('grants stdin credit only once the command took the bytes, and applies resize, signal and eof', async () => {
    const exec = fakeExec(true);
    const a = agentWith({ labels: TASK_LABELS }, exec);
    a.streams.open('exec', { ...a.start, tty: true });
    const firstCredit = await waitFor(() => a.sent.find((m) => m.msg?.$case === 'streamCredit'), WAIT_MS, () => 'the acceptance', 5);
    assert.equal(firstCredit.msg?.$case === 'streamCredit' && firstCredit.msg.value.bytes, STDIN_WINDOW_BYTES);
    a.streams.input({ streamId: 'x', data: Buffer.from('abc'), eof: false, rows: 40, cols: 100, signal: 'SIGINT' });
    await waitFor(() => (exec.stdinSeen.length === 1 ? true : undefined), WAIT_MS, () => 'stdin written', 5);
    const credits = (): number => a.sent.filter((m) => m.msg?.$case === 'streamCredit').length;
    assert.equal(credits(), 1, 'no credit before the command read');
    exec.releaseStdin();
    await waitFor(() => (credits() === 2 ? true : undefined), WAIT_MS, () => 'credit after the read', 5);
    assert.deepEqual(exec.calls, ['resize 40 100', 'signal SIGINT']);
    exec.stdout.end();
    exec.settle({ exitCode: 0 });
    await waitFor(() => a.sent.find((m) => m.msg?.$case === 'streamEnd'), WAIT_MS, () => 'a StreamEnd', 5);
  });

  it('a cancelled stream hangs the command up', async () => {
    const exec = fakeExec(true);
    const a = agentWith({ labels: TASK_LABELS }, exec);
    a.streams.open('exec', { ...a.start, tty: true });
    await waitFor(() => a.sent.find((m) => m.msg?.$case === 'streamCredit'), WAIT_MS, () => 'the acceptance', 5);
    a.streams.cancel({ streamId: 'x' });
    await waitFor(() => (exec.calls.includes('hangUp') ? true : undefined), WAIT_MS, () => `hangUp, saw ${exec.calls}`, 5);
    exec.stdout.end();
    exec.settle({ exitCode: 129 });
  });
});
