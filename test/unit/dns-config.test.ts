/** The agent config's dns section: upstreams as ip or ip:port, refused with a message naming the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseAgentConfig } from '../../agent/config.js';
import { parseUpstream } from '../../agent/dns/upstream.js';

test('dns.upstreams: ip, ip:port and [ipv6]:port, port 53 by default', () => {
  assert.equal(parseAgentConfig({}).dns, undefined, 'no dns section: no upstreams');
  assert.deepEqual(parseAgentConfig({ dns: { upstreams: ['10.0.0.2', '10.0.0.3:5353', '[fd00::1]:53', 'fd00::2'] } }).dns, {
    upstreams: [{ host: '10.0.0.2', port: 53 }, { host: '10.0.0.3', port: 5353 }, { host: 'fd00::1', port: 53 }, { host: 'fd00::2', port: 53 }],
  });
});

test('dns config errors name the field', () => {
  const bad: [unknown, RegExp][] = [
    [{ dns: [] }, /dns must be a mapping/],
    [{ dns: { upstream: [] } }, /dns: unknown field "upstream"/],
    [{ dns: { upstreams: '10.0.0.2' } }, /dns\.upstreams must be a list/],
    [{ dns: { upstreams: ['dns.google'] } }, /"dns\.google" is not an ip or ip:port/],
    [{ dns: { upstreams: ['10.0.0.2:0'] } }, /is not an ip or ip:port/],
    [{ dns: { upstreams: ['10..0.2'] } }, /is not an ip or ip:port/],
    [{ dns: { upstreams: [53] } }, /53 is not an ip or ip:port/],
  ];
  for (const [doc, pattern] of bad) assert.throws(() => parseAgentConfig(doc, 'agent.yaml'), (e: unknown) => e instanceof ConfigError && pattern.test(e.message), JSON.stringify(doc));
  assert.equal(parseUpstream('1.2.3.4:70000'), undefined);
});
