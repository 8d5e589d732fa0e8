/** What the node resolver answers, case by case (a table), as a pure function of query and endpoints. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, ANSWER_TTL_S, serviceTable, type AnswerContext } from '../../agent/dns/answer.js';
import { addressOf, CLASS_IN, Rcode, RRType, type DnsMessage } from '../../agent/dns/codec.js';

const table = serviceTable([
  { namespace: 'default', service: 'web', ips: ['10.244.0.2', '10.244.1.3'], ports: [] },
  { namespace: 'default', service: 'idle', ips: [], ports: [] },
  { namespace: 'shop', service: 'web', ips: ['10.244.2.9'], ports: [] },
]);

const query = (name: string, type: number = RRType.A, over: Partial<DnsMessage['flags']> = {}): DnsMessage => ({
  id: 7,
  flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0, ...over },
  questions: [{ name, type, class: CLASS_IN }],
  answers: [],
  authorities: [],
  additionals: [],
});

interface Case {
  why: string;
  name: string;
  type?: number;
  namespace?: string;
  canForward?: boolean;
  flags?: Partial<DnsMessage['flags']>;
  want: { forward: true } | { rcode: number; ips?: string[] };
}

const cases: Case[] = [
  { why: 'FQDN of a service → its ready IPs', name: 'web.default.svc.berth', want: { rcode: Rcode.NOERROR, ips: ['10.244.0.2', '10.244.1.3'] } },
  { why: 'FQDN is case-insensitive and may end in a dot', name: 'WEB.Default.svc.berth.', want: { rcode: Rcode.NOERROR, ips: ['10.244.0.2', '10.244.1.3'] } },
  { why: 'another namespace by FQDN', name: 'web.shop.svc.berth', namespace: 'default', want: { rcode: Rcode.NOERROR, ips: ['10.244.2.9'] } },
  { why: 'bare name in the asking container\'s namespace', name: 'web', namespace: 'shop', want: { rcode: Rcode.NOERROR, ips: ['10.244.2.9'] } },
  { why: 'bare unknown name from a container → NXDOMAIN', name: 'nosuch', namespace: 'default', want: { rcode: Rcode.NXDOMAIN } },
  { why: 'bare name from an unknown source is not ours → SERVFAIL without upstreams', name: 'web', want: { rcode: Rcode.SERVFAIL } },
  { why: 'service with no ready replica → NOERROR, no answers', name: 'idle.default.svc.berth', want: { rcode: Rcode.NOERROR, ips: [] } },
  { why: 'AAAA for a known name → NOERROR, no answers', name: 'web.default.svc.berth', type: RRType.AAAA, want: { rcode: Rcode.NOERROR, ips: [] } },
  { why: 'unknown service in svc.berth → NXDOMAIN', name: 'nosuch.default.svc.berth', want: { rcode: Rcode.NXDOMAIN } },
  { why: 'unknown namespace → NXDOMAIN', name: 'web.nosuch.svc.berth', want: { rcode: Rcode.NXDOMAIN } },
  { why: 'too many labels in svc.berth → NXDOMAIN', name: 'a.web.default.svc.berth', want: { rcode: Rcode.NXDOMAIN } },
  { why: 'search-list miss (NAME.NS.NS.svc.berth) → NXDOMAIN', name: 'web.default.default.svc.berth', want: { rcode: Rcode.NXDOMAIN } },
  { why: 'foreign name without upstreams → SERVFAIL', name: 'example.org', namespace: 'default', want: { rcode: Rcode.SERVFAIL } },
  { why: 'foreign name with upstreams → forwarded', name: 'example.org', namespace: 'default', canForward: true, want: { forward: true } },
  { why: 'NAME.NAMESPACE is left to the search list (foreign)', name: 'web.default', namespace: 'default', canForward: true, want: { forward: true } },
  { why: 'a response sent as a query → FORMERR', name: 'web.default.svc.berth', flags: { qr: true }, want: { rcode: Rcode.FORMERR } },
  { why: 'an opcode other than QUERY → NOTIMP', name: 'web.default.svc.berth', flags: { opcode: 2 }, want: { rcode: Rcode.NOTIMP } },
];

for (const c of cases) {
  test(`answer: ${c.why}`, () => {
    const ctx: AnswerContext = { table, namespace: c.namespace, canForward: c.canForward ?? false, shuffle: (xs) => xs };
    const q = query(c.name, c.type, c.flags);
    const d = answer(q, ctx);
    if ('forward' in c.want) {
      assert.equal(d.kind, 'forward');
      return;
    }
    assert.equal(d.kind, 'reply');
    if (d.kind !== 'reply') return;
    const m = d.message;
    assert.equal(m.flags.rcode, c.want.rcode, `rcode for ${c.name}`);
    assert.equal(m.id, q.id);
    assert.ok(m.flags.qr);
    assert.deepEqual(m.questions, q.questions, 'the question is echoed as asked');
    if (c.want.ips) {
      assert.deepEqual(m.answers.map(addressOf), c.want.ips);
      for (const r of m.answers) {
        assert.equal(r.ttl, ANSWER_TTL_S);
        assert.equal(r.name, c.name, 'answers carry the name as asked');
      }
    }
  });
}

test('answer: replies for berth names are authoritative; RA says whether recursion is offered', () => {
  const d = answer(query('web.default.svc.berth'), { table, namespace: undefined, canForward: true });
  assert.ok(d.kind === 'reply' && d.message.flags.aa && d.message.flags.ra);
  const e = answer(query('web.default.svc.berth'), { table, namespace: undefined, canForward: false });
  assert.ok(e.kind === 'reply' && !e.message.flags.ra);
});

test('answer: the default shuffle returns the same addresses in some order', () => {
  for (let i = 0; i < 20; i++) {
    const d = answer(query('web.default.svc.berth'), { table, namespace: undefined, canForward: false });
    assert.ok(d.kind === 'reply');
    assert.deepEqual(d.message.answers.map(addressOf).sort(), ['10.244.0.2', '10.244.1.3']);
  }
});
