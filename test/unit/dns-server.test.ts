/**
 * The node resolver over real sockets on loopback: UDP and TCP answers, truncation over UDP,
 * forwarding to an upstream (and SERVFAIL when it stays silent), malformed packets dropped,
 * the per-rcode counter, and the source address picking the namespace for bare names.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { DnsServer } from '../../agent/dns/server.js';
import { namespaceIndex } from '../../agent/dns/sources.js';
import { addressOf, CLASS_IN, decodeMessage, encodeMessage, Rcode, RRType, type DnsMessage } from '../../agent/dns/codec.js';

const LOOPBACK = '127.0.0.1';
const REPLY_WAIT_MS = 3_000;
const toClose: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of toClose.reverse()) await c();
});

const query = (name: string, id: number, type: number = RRType.A): Buffer => encodeMessage({
  id,
  flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 },
  questions: [{ name, type, class: CLASS_IN }],
  answers: [],
  authorities: [],
  additionals: [],
});

async function client(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, LOOPBACK, resolve));
  toClose.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return s;
}

/** ask sends one packet over UDP and waits for the reply (undefined: none within the wait). */
async function ask(port: number, packet: Buffer): Promise<DnsMessage | undefined> {
  const s = await client();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), REPLY_WAIT_MS);
    s.once('message', (msg) => {
      clearTimeout(timer);
      resolve(decodeMessage(msg));
    });
    s.send(packet, port, LOOPBACK);
  });
}

/** askTcp sends one length-prefixed query over TCP and reads one reply. */
function askTcp(port: number, packet: Buffer): Promise<DnsMessage | undefined> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, LOOPBACK);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(undefined);
    }, REPLY_WAIT_MS);
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(packet.length);
      sock.write(Buffer.concat([len, packet]));
    });
    sock.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(decodeMessage(got.subarray(2, 2 + got.readUInt16BE(0))));
      }
    });
    sock.on('error', reject);
  });
}

async function startServer(opts: ConstructorParameters<typeof DnsServer>[0] = {}): Promise<DnsServer> {
  const server = new DnsServer({ port: 0, ...opts });
  await server.listen(LOOPBACK);
  toClose.push(() => server.close());
  return server;
}

const many = Array.from({ length: 40 }, (_, i) => `10.244.0.${i + 2}`);

test('answers a service name over UDP and TCP; a long answer is truncated over UDP only', async () => {
  const server = await startServer();
  server.setEndpoints([
    { namespace: 'default', service: 'web', ips: ['10.244.0.2', '10.244.1.3'], ports: [] },
    { namespace: 'default', service: 'big', ips: many, ports: [] },
  ]);
  const udp = await ask(server.port, query('web.default.svc.berth', 1));
  assert.equal(udp?.flags.rcode, Rcode.NOERROR);
  assert.deepEqual(udp?.answers.map(addressOf).sort(), ['10.244.0.2', '10.244.1.3']);
  const tcp = await askTcp(server.port, query('web.default.svc.berth', 2));
  assert.deepEqual(tcp?.answers.map(addressOf).sort(), ['10.244.0.2', '10.244.1.3']);

  const cut = await ask(server.port, query('big.default.svc.berth', 3));
  assert.ok(cut?.flags.tc, 'TC set on a UDP answer over 512 bytes');
  assert.equal(cut?.answers.length, 0);
  const full = await askTcp(server.port, query('big.default.svc.berth', 4));
  assert.equal(full?.flags.tc, false);
  assert.equal(full?.answers.length, many.length, 'TCP carries every address');
});

test('a new endpoints set replaces the old one (a replica turning unready drops out)', async () => {
  const server = await startServer();
  server.setEndpoints([{ namespace: 'default', service: 'web', ips: ['10.244.0.2', '10.244.1.3'], ports: [] }]);
  server.setEndpoints([{ namespace: 'default', service: 'web', ips: ['10.244.1.3'], ports: [] }]);
  const r = await ask(server.port, query('web.default.svc.berth', 5));
  assert.deepEqual(r?.answers.map(addressOf), ['10.244.1.3']);
  server.setEndpoints([]);
  const gone = await ask(server.port, query('web.default.svc.berth', 6));
  assert.equal(gone?.flags.rcode, Rcode.NXDOMAIN);
});

test('a bare name resolves in the namespace of the container at the source address', async () => {
  const statuses = [{ namespace: 'shop', name: 't1', uid: 'u1', phase: 'running' as const, restarts: 0, ip: LOOPBACK }];
  const server = await startServer({ namespaceOf: namespaceIndex(() => statuses) });
  server.setEndpoints([
    { namespace: 'default', service: 'web', ips: ['10.244.0.2'], ports: [] },
    { namespace: 'shop', service: 'web', ips: ['10.244.2.9'], ports: [] },
  ]);
  const r = await ask(server.port, query('web', 7));
  assert.deepEqual(r?.answers.map(addressOf), ['10.244.2.9']);
});

test('foreign names go to the upstream and its reply is relayed; a silent upstream gives SERVFAIL', async () => {
  const upstream = await client();
  const upstreamPort = upstream.address().port;
  upstream.on('message', (msg, rinfo) => {
    const q = decodeMessage(msg)!;
    const reply = encodeMessage({ ...q, flags: { ...q.flags, qr: true, ra: true }, answers: [{ name: q.questions[0]!.name, type: RRType.A, class: CLASS_IN, ttl: 60, rdata: Uint8Array.from([192, 0, 2, 1]) }] });
    upstream.send(reply, rinfo.port, rinfo.address);
  });
  const registry = new Registry();
  const server = await startServer({ upstreams: [{ host: LOOPBACK, port: upstreamPort }], registry });
  const r = await ask(server.port, query('example.org', 8));
  assert.equal(r?.id, 8);
  assert.deepEqual(r?.answers.map(addressOf), ['192.0.2.1']);

  const silent = await client();
  const mute = await startServer({ upstreams: [{ host: LOOPBACK, port: silent.address().port }] });
  const s = await ask(mute.port, query('example.org', 9));
  assert.equal(s?.flags.rcode, Rcode.SERVFAIL);

  const text = await registry.metrics();
  assert.match(text, /berth_agent_dns_queries_total\{rcode="NOERROR"\} 1/);
});

test('malformed packets are dropped, counted, and the server keeps answering', async () => {
  const registry = new Registry();
  const server = await startServer({ registry });
  server.setEndpoints([{ namespace: 'default', service: 'web', ips: ['10.244.0.2'], ports: [] }]);
  for (const junk of [Buffer.from([1, 2, 3]), Buffer.concat([query('web.default.svc.berth', 10).subarray(0, 14), Buffer.from([0xc0, 0x0c])])]) {
    assert.equal(await ask(server.port, junk), undefined, 'no reply to junk');
  }
  const ok = await ask(server.port, query('web.default.svc.berth', 11));
  assert.deepEqual(ok?.answers.map(addressOf), ['10.244.0.2']);
  const unknown = await ask(server.port, query('nosuch.default.svc.berth', 12));
  assert.equal(unknown?.flags.rcode, Rcode.NXDOMAIN);
  const text = await registry.metrics();
  assert.match(text, /berth_agent_dns_queries_total\{rcode="dropped"\} 2/);
  assert.match(text, /berth_agent_dns_queries_total\{rcode="NXDOMAIN"\} 1/);
});

test('listen on a new address moves the server; close frees the port', async () => {
  const server = new DnsServer({ port: 0 });
  toClose.push(() => server.close());
  await server.listen(LOOPBACK);
  const first = server.port;
  await server.listen('127.0.0.2');
  assert.ok(server.port > 0);
  server.setEndpoints([{ namespace: 'default', service: 'web', ips: ['10.244.0.2'], ports: [] }]);
  const s = await client();
  const reply = await new Promise<DnsMessage | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), REPLY_WAIT_MS);
    s.once('message', (msg) => { clearTimeout(timer); resolve(decodeMessage(msg)); });
    s.send(query('web.default.svc.berth', 13), server.port, '127.0.0.2');
  });
  assert.deepEqual(reply?.answers.map(addressOf), ['10.244.0.2']);
  await server.close();
  // The old port is free again: binding it must work.
  const probe = createSocket('udp4');
  await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.bind(first, LOOPBACK, () => resolve()); });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});
