import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCidr, parseCidr } from '../../common/cidr.js';
import { AddressBook, gatewayOf, nextFreeAddress } from '../../agent/network/ipam.js';
import { hostVethName } from '../../agent/network/links.js';
import { firstFreeSubnet } from '../../control-plane/network/subnets.js';

describe('cidr parsing', () => {
  const cases: [string, string | undefined][] = [
    ['10.244.0.0/16', '10.244.0.0/16'],
    ['10.244.3.7/24', '10.244.3.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.244.0.0', undefined],
    ['10.244.0.0/33', undefined],
    ['10.256.0.0/16', undefined],
    ['a.b.c.d/8', undefined],
  ];
  for (const [input, want] of cases) {
    it(`parses ${input} as ${want ?? 'invalid'}`, () => {
      const c = parseCidr(input);
      assert.equal(c === undefined ? undefined : formatCidr(c), want);
    });
  }
});

describe('node subnets over the cluster CIDR', () => {
  const cluster = parseCidr('10.244.0.0/16')!;
  it('hands out the lowest free /24', () => {
    assert.equal(firstFreeSubnet(cluster, 24, new Set()), '10.244.0.0/24');
    assert.equal(firstFreeSubnet(cluster, 24, new Set(['10.244.0.0/24', '10.244.2.0/24'])), '10.244.1.0/24');
  });
  it('gives 256 distinct subnets, then none', () => {
    const used = new Set<string>();
    for (let i = 0; i < 256; i++) {
      const s = firstFreeSubnet(cluster, 24, used);
      assert.ok(s, `subnet ${i} expected`);
      assert.ok(!used.has(s), `${s} handed out twice`);
      used.add(s);
    }
    assert.equal(firstFreeSubnet(cluster, 24, used), undefined);
  });
  it('refuses a node prefix wider than the cluster', () => {
    assert.equal(firstFreeSubnet(parseCidr('10.244.0.0/24')!, 16, new Set()), undefined);
  });
});

describe('container addresses', () => {
  const subnet = '10.244.7.0/24';
  const net = parseCidr(subnet)!;
  const dirs: string[] = [];
  after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });
  const book = async (): Promise<{ b: AddressBook; dir: string }> => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ipam-'));
    dirs.push(dir);
    return { b: new AddressBook(dir), dir };
  };

  it('never hands out the network, gateway or broadcast address', () => {
    assert.equal(gatewayOf(net), '10.244.7.1');
    assert.equal(nextFreeAddress(net, new Set()), '10.244.7.2');
    assert.equal(nextFreeAddress(net, new Set(), '10.244.7.254'), '10.244.7.2');
    const all = new Set(Array.from({ length: 253 }, (_, i) => `10.244.7.${i + 2}`));
    assert.equal(nextFreeAddress(net, all), undefined);
  });

  it('hands out no address twice over 200 allocate/release cycles', async () => {
    const { b, dir } = await book();
    const live = new Map<string, string>(); // id → ip
    let n = 0;
    for (let cycle = 0; cycle < 200; cycle++) {
      const id = `c${n++}`;
      const ip = await b.allocate(id, subnet);
      assert.ok(ip, `cycle ${cycle}: an address expected`);
      assert.ok(![...live.values()].includes(ip), `cycle ${cycle}: ${ip} is already held`);
      live.set(id, ip);
      // Keep a varying set alive: release every other one, and the oldest when many are held.
      if (cycle % 2 === 1 || live.size > 40) {
        const victim = [...live.keys()][cycle % live.size]!;
        await b.release(victim);
        live.delete(victim);
      }
    }
    assert.deepEqual((await readdir(dir)).sort(), [...live.values()].sort(), 'files on disk are exactly the held addresses');
    for (const id of [...live.keys()]) await b.release(id);
    assert.deepEqual(await readdir(dir), [], 'every address released');
  });

  it('gives a container the same address again', async () => {
    const { b } = await book();
    const a = await b.allocate('x', subnet);
    assert.equal(await b.allocate('x', subnet), a);
  });

  it('runs out cleanly when the subnet is full', async () => {
    const { b } = await book();
    const small = '10.244.9.0/29'; // 6 hosts, one is the gateway
    for (let i = 0; i < 5; i++) assert.ok(await b.allocate(`c${i}`, small));
    assert.equal(await b.allocate('c5', small), undefined);
  });

  it('recovers after a restart: keeps live containers, frees the rest', async () => {
    const { b, dir } = await book();
    const ips = new Map<string, string>();
    for (const id of ['a', 'b', 'c', 'd']) ips.set(id, (await b.allocate(id, subnet))!);
    const restarted = new AddressBook(dir);
    const gone = await restarted.recover(['a', 'c']);
    assert.deepEqual(gone.sort(), ['b', 'd']);
    assert.equal(restarted.addressOf('a'), ips.get('a'));
    assert.equal(restarted.addressOf('c'), ips.get('c'));
    assert.equal(restarted.addressOf('b'), undefined);
    assert.deepEqual(restarted.inUse().sort(), [ips.get('a'), ips.get('c')].sort());
    const next = await restarted.allocate('e', subnet);
    assert.ok(next && next !== ips.get('a') && next !== ips.get('c'), `a fresh address expected, got ${next}`);
  });

  it('two books on one directory never share an address', async () => {
    const { b, dir } = await book();
    const other = new AddressBook(dir);
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? b : other).allocate(`k${i}`, subnet)));
    assert.equal(new Set(got).size, 20, `duplicates in ${got.join(',')}`);
  });

  it('names host veths within IFNAMSIZ, stably per container', () => {
    const n = hostVethName('default-web-1');
    assert.ok(n.length <= 15, n);
    assert.equal(n, hostVethName('default-web-1'));
    assert.notEqual(n, hostVethName('default-web-2'));
  });
});
