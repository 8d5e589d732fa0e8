import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetDev, readContainerInterfaces } from '../../agent/metrics/network-metrics.js';

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0: 1234567     890    3    4    0     0          0         0   765432     321    5    6    0     0       0          0
  eth1:bad line
 tun0:       1       2    0    0    0     0          0         0        3       4    0    0    0     0       0          0
`;

test('parseNetDev reads receive and transmit counters per interface and skips loopback and junk', () => {
  assert.deepEqual(parseNetDev(SAMPLE), [
    { interface: 'eth0', receiveBytes: 1234567, receivePackets: 890, receiveErrors: 3, receiveDropped: 4, transmitBytes: 765432, transmitPackets: 321, transmitErrors: 5, transmitDropped: 6 },
    { interface: 'tun0', receiveBytes: 1, receivePackets: 2, receiveErrors: 0, receiveDropped: 0, transmitBytes: 3, transmitPackets: 4, transmitErrors: 0, transmitDropped: 0 },
  ]);
  assert.deepEqual(parseNetDev(''), []);
});

test('readContainerInterfaces is empty for a process that does not exist', async () => {
  assert.deepEqual(await readContainerInterfaces(2 ** 22 + 1), []);
  const own = await readContainerInterfaces(process.pid);
  assert.ok(own.every((i) => i.interface !== 'lo'));
});
