import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentMessage, ControlMessage, LogsRequest, StreamData } from '../../proto/gen/berth/v1/agent.js';
import { AgentStreams, MAX_STREAM_CHUNK_BYTES, type StreamSink } from '../../agent/streams.js';
import { ClientStream, SessionStreams, STREAM_CANCELLED } from '../../control-plane/gateway/streams.js';

function logsRequest(streamId: string, windowBytes: number): LogsRequest {
  return { streamId, namespace: 'default', task: 'web-1', containerId: 'c1', follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false, windowBytes };
}

/** sentBytes adds up the data of every StreamData message sent. */
function sentBytes(sent: AgentMessage[]): number {
  return sent.reduce((n, m) => n + (m.msg?.$case === 'streamData' ? m.msg.value.data.length : 0), 0);
}

/** settle lets pending promise callbacks run (the multiplexer's writers wake on microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

describe('agent streams: credit accounting', () => {
  it('stops sending at the granted window and resumes on each credit', async () => {
    const sent: AgentMessage[] = [];
    let sink: StreamSink | undefined;
    let done = false;
    const streams = new AgentStreams({
      logs: async (_req, s) => {
        sink = s;
        done = await s.write(1, Buffer.alloc(100_000, 0x61));
      },
    }, (m) => { sent.push(m); return true; });
    streams.open('logs', logsRequest('s1', 16_384));
    await settle();
    assert.equal(sentBytes(sent), 16_384, `expected exactly the 16384-byte window in flight, saw ${sentBytes(sent)}`);
    assert.equal(done, false, 'the write must wait for credit');
    streams.credit({ streamId: 's1', bytes: 10_000 });
    await settle();
    assert.equal(sentBytes(sent), 26_384, `expected window + credit (26384) sent, saw ${sentBytes(sent)}`);
    streams.credit({ streamId: 's1', bytes: 1_000_000 });
    await settle();
    assert.equal(sentBytes(sent), 100_000);
    assert.equal(done, true);
    for (const m of sent) if (m.msg?.$case === 'streamData') assert.ok(m.msg.value.data.length <= MAX_STREAM_CHUNK_BYTES);
    sink!.end();
    await settle();
    assert.equal(sent.at(-1)?.msg?.$case, 'streamEnd');
    assert.equal(streams.size, 0);
  });

  it('acknowledges an accepted stream with a credit message before its data', async () => {
    const sent: AgentMessage[] = [];
    const streams = new AgentStreams({ logs: async (_r, s) => { await s.write(1, Buffer.from('hi\n')); s.end(); } }, (m) => { sent.push(m); return true; });
    streams.open('logs', logsRequest('s2', 1024));
    await settle();
    assert.deepEqual(sent.map((m) => m.msg?.$case), ['streamCredit', 'streamData', 'streamEnd']);
  });

  it('ends a cancelled stream: the handler is aborted, its write answers false and nothing more is sent', async () => {
    const sent: AgentMessage[] = [];
    let sink: StreamSink | undefined;
    let wrote: boolean | undefined;
    const streams = new AgentStreams({ logs: async (_r, s) => { sink = s; wrote = await s.write(1, Buffer.alloc(4096)); } }, (m) => { sent.push(m); return true; });
    streams.open('logs', logsRequest('s3', 1024));
    await settle();
    const before = sent.length;
    streams.cancel({ streamId: 's3' });
    await settle();
    assert.equal(sink!.signal.aborted, true);
    assert.equal(wrote, false);
    sink!.end();
    await settle();
    assert.equal(sent.length, before, 'nothing is sent after a cancel, not even a StreamEnd');
  });

  it('closes every stream when the session is lost', async () => {
    const sinks: StreamSink[] = [];
    const streams = new AgentStreams({ logs: (_r, s) => { sinks.push(s); } }, () => true);
    streams.open('logs', logsRequest('a', 1));
    streams.open('logs', logsRequest('b', 1));
    streams.closeAll('session ended');
    assert.deepEqual(sinks.map((s) => s.signal.aborted), [true, true]);
    assert.equal(streams.size, 0);
  });

  it('refuses a kind it has no handler for, a duplicate id, and ends a handler that throws', async () => {
    const sent: AgentMessage[] = [];
    const streams = new AgentStreams({ logs: () => { throw new Error('boom'); } }, (m) => { sent.push(m); return true; });
    streams.open('exec', { streamId: 'x', namespace: 'default', task: 't', containerId: 'c', command: ['sh'], tty: false, stdin: false, rows: 0, cols: 0, windowBytes: 0 });
    streams.open('logs', logsRequest('y', 10));
    await settle();
    const ends = sent.flatMap((m) => (m.msg?.$case === 'streamEnd' ? [m.msg.value] : []));
    assert.deepEqual(ends.map((e) => [e.streamId, e.errorCode]), [['x', 'BERTH_ERR_STREAM_UNSUPPORTED'], ['y', 'BERTH_ERR_STREAM_FAILED']]);
    const dup = new AgentStreams({ logs: () => undefined }, (m) => { sent.push(m); return true; });
    dup.open('logs', logsRequest('z', 10));
    dup.open('logs', logsRequest('z', 10));
    const last = sent.at(-1)?.msg;
    assert.equal(last?.$case === 'streamEnd' && last.value.errorCode, 'BERTH_ERR_STREAM_DUPLICATE');
  });
});

describe('control-plane streams', () => {
  /** pair wires a SessionStreams to an AgentStreams in memory, as the session does over gRPC. */
  function pair(handler: (req: LogsRequest, s: StreamSink) => void | Promise<void>) {
    const control: ControlMessage[] = [];
    let agent: AgentStreams;
    let session: SessionStreams;
    // Messages cross on the next turn, like a network would deliver them.
    agent = new AgentStreams({ logs: handler }, (m) => {
      setImmediate(() => {
        const v = m.msg!;
        if (v.$case === 'streamData') session.data(v.value);
        else if (v.$case === 'streamEnd') session.ended(v.value);
        else if (v.$case === 'streamCredit') session.credit(v.value);
      });
      return true;
    });
    session = new SessionStreams((m) => {
      control.push(m);
      setImmediate(() => {
        const v = m.msg!;
        if (v.$case === 'logsRequest') agent.open('logs', v.value);
        else if (v.$case === 'streamCredit') agent.credit(v.value);
        else if (v.$case === 'streamCancel') agent.cancel(v.value);
      });
      return true;
    });
    return { session, control, agent: () => agent };
  }

  it('grants credit only as the consumer takes chunks: a consumer that stops reading stops the agent within one window', async () => {
    let written = 0;
    const { session } = pair(async (_r, s) => {
      for (let i = 0; i < 1000; i++) {
        if (!(await s.write(1, Buffer.alloc(1024)))) return;
        written += 1024;
      }
      s.end();
    });
    const h = session.open({ logs: { namespace: 'default', task: 't', containerId: 'c', follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } }, 8192);
    assert.deepEqual(await h.opened, { ok: true });
    await settle();
    assert.ok(written <= 8192, `expected at most one window (8192 bytes) written before anything is read, saw ${written}`);
    const it = h.chunks[Symbol.asyncIterator]();
    let read = 0;
    for (let i = 0; i < 16; i++) read += ((await it.next()).value as StreamData).data.length;
    await settle();
    assert.ok(written <= read + 8192, `expected written <= read + window (${read + 8192}), saw ${written}`);
    assert.ok(written > 8192, 'reading must let the agent go on');
    await it.return!();
    assert.equal((await h.end).errorCode, STREAM_CANCELLED);
    await settle();
    assert.equal(session.size, 0);
  });

  it('reports a refusal as the opening outcome and the end', async () => {
    const { session } = pair((_r, s) => s.end({ errorCode: 'BERTH_ERR_TASK_NOT_RUNNING', errorMessage: 'no container' }));
    const h = session.open({ logs: { namespace: 'default', task: 't', containerId: 'c', follow: false, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } });
    assert.deepEqual(await h.opened, { ok: false, code: 'BERTH_ERR_TASK_NOT_RUNNING', message: 'no container' });
    assert.equal((await h.end).errorCode, 'BERTH_ERR_TASK_NOT_RUNNING');
  });

  it('cancel tells the agent, whose handler sees its signal aborted', async () => {
    let aborted: Promise<void> | undefined;
    const { session, control } = pair((_r, s) => {
      s.ready();
      aborted = new Promise((r) => s.signal.addEventListener('abort', () => r()));
    });
    const h = session.open({ logs: { namespace: 'default', task: 't', containerId: 'c', follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } });
    await h.opened;
    h.cancel();
    await aborted;
    assert.equal(control.at(-1)?.msg?.$case, 'streamCancel');
  });

  it('fails every stream when the session closes, and a closed session opens failed streams', async () => {
    const s = new SessionStreams(() => true);
    const h = s.open({ logs: { namespace: 'default', task: 't', containerId: 'c', follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } });
    s.failAll('BERTH_ERR_NODE_UNAVAILABLE', 'gone');
    assert.equal((await h.end).errorCode, 'BERTH_ERR_NODE_UNAVAILABLE');
    const closed = new SessionStreams(() => false);
    const h2 = closed.open({ logs: { namespace: 'default', task: 't', containerId: 'c', follow: true, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } });
    assert.deepEqual(await h2.opened, { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'the agent session is closed' });
  });

  it('sends input only within the input credit the agent granted', async () => {
    const inputs: number[] = [];
    const c = new ClientStream('in1', 1024);
    c.attach({ credit: () => undefined, input: (i) => inputs.push(i.data.length), cancel: () => undefined });
    const sent = c.send({ data: Buffer.alloc(300) });
    await settle();
    assert.deepEqual(inputs, [], 'no input before any credit');
    c.onCredit({ streamId: 'in1', bytes: 100 });
    await settle();
    assert.deepEqual(inputs, [100]);
    c.onCredit({ streamId: 'in1', bytes: 500 });
    assert.equal(await sent, true);
    assert.deepEqual(inputs, [100, 200]);
  });
});
