/** The resolver's RFC 1035 codec: round trips, compression pointers, and malformed input dropped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressOf, aRecord, CLASS_IN, decodeMessage, encodeMessage, readName, RRType, type DnsMessage } from '../../agent/dns/codec.js';
import { mulberry32 } from '../support/prng.js';

const query = (name: string, type: number = RRType.A, id = 0x1234): DnsMessage => ({
  id,
  flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 },
  questions: [{ name, type, class: CLASS_IN }],
  answers: [],
  authorities: [],
  additionals: [],
});

test('a query and an answer with several records survive encode → decode', () => {
  const q = query('web.default.svc.berth');
  assert.deepEqual(decodeMessage(encodeMessage(q)), q);
  const reply: DnsMessage = {
    ...q,
    flags: { ...q.flags, qr: true, aa: true, ra: true, rcode: 3 },
    answers: [aRecord('web.default.svc.berth', '10.244.0.2', 5), aRecord('web.default.svc.berth', '10.244.1.7', 5)],
    additionals: [{ name: '', type: RRType.OPT, class: 1232, ttl: 0, rdata: new Uint8Array() }],
  };
  const back = decodeMessage(encodeMessage(reply));
  assert.deepEqual(back, reply);
  assert.deepEqual(back!.answers.map(addressOf), ['10.244.0.2', '10.244.1.7']);
});

test('answer names are compressed to a pointer at the question name', () => {
  const name = 'web.default.svc.berth';
  const reply = { ...query(name), answers: [aRecord(name, '10.0.0.1', 5), aRecord(name, '10.0.0.2', 5)] };
  const bytes = encodeMessage(reply);
  const questionBytes = name.length + 2 + 4;
  // header + question + 2 × (2-byte pointer + type, class, ttl, rdlength + 4 bytes of address)
  assert.equal(bytes.length, 12 + questionBytes + 2 * (2 + 10 + 4));
  assert.equal(bytes[12 + questionBytes], 0xc0, 'answer name starts with a pointer');
  assert.equal(bytes[12 + questionBytes + 1], 12, 'pointing at the question name');
});

test('readName follows a pointer into an earlier name and reports where the original name ends', () => {
  // "a.b" at 0, then "x" + pointer to "b" (offset 2).
  const buf = Uint8Array.from([1, 0x61, 1, 0x62, 0, 1, 0x78, 0xc0, 2]);
  assert.deepEqual(readName(buf, 0), { name: 'a.b', next: 5 });
  assert.deepEqual(readName(buf, 5), { name: 'x.b', next: 9 });
});

test('malformed names and messages are refused, not thrown', () => {
  const cases: [string, number[]][] = [
    ['pointer to itself', [0xc0, 0]],
    ['pointer forwards', [0xc0, 2, 1, 0x61, 0]],
    ['two pointers making a loop', [1, 0x61, 0xc0, 4, 0xc0, 0]],
    ['label past the end', [5, 0x61, 0x62]],
    ['missing terminator', [1, 0x61]],
    ['extended label type', [0x41, 0x61, 0]],
    ['truncated pointer', [0xc0]],
  ];
  for (const [why, bytes] of cases) assert.equal(readName(Uint8Array.from(bytes), 0), undefined, why);
  const tooLong = [...Array(5)].flatMap(() => [63, ...new Array<number>(63).fill(0x61)]).concat([0]);
  assert.equal(readName(Uint8Array.from(tooLong), 0), undefined, 'names over 255 bytes');

  const good = encodeMessage(query('web'));
  assert.equal(decodeMessage(good.subarray(0, 11)), undefined, 'short header');
  assert.equal(decodeMessage(good.subarray(0, good.length - 1)), undefined, 'question cut short');
  assert.equal(decodeMessage(Buffer.concat([good, Buffer.from([0])])), undefined, 'trailing bytes');
  const lying = Buffer.from(good);
  lying.writeUInt16BE(3, 6); // claims 3 answers it does not carry
  assert.equal(decodeMessage(lying), undefined, 'counts beyond the data');
});

test('random bytes and random corruptions never throw', () => {
  const rand = mulberry32(42);
  const base = encodeMessage({ ...query('web.default.svc.berth'), answers: [aRecord('web.default.svc.berth', '10.0.0.1', 5)] });
  for (let i = 0; i < 5_000; i++) {
    const buf = i % 2 === 0 ? Buffer.from(base) : Buffer.alloc(Math.floor(rand() * 80));
    const flips = 1 + Math.floor(rand() * 4);
    for (let f = 0; f < flips && buf.length > 0; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
    assert.doesNotThrow(() => decodeMessage(buf));
  }
});
