import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planGc, type GcInput } from '../../agent/images/index.js';

const H = 3_600_000;
const NOW = 100 * H;
const base = (over: Partial<GcInput>): GcInput => ({
  images: [], layerBytes: new Map(), inUseDigests: new Set(), inUseLayers: new Set(),
  nowMs: NOW, maxIdleMs: H, budgetBytes: 1_000, graceMs: 60_000, ...over,
});
const img = (digest: string, chainIds: string[], idleMs: number) => ({ digest, chainIds, lastUsedMs: NOW - idleMs });

const CASES: { name: string; input: GcInput; images: string[]; layers: string[] }[] = [
  {
    name: 'an image idle longer than maxIdle goes with its own layers; a shared layer stays',
    input: base({ images: [img('old', ['l1', 'l2'], 2 * H), img('new', ['l1', 'l3'], 10 * 60_000)], layerBytes: new Map([['l1', 1], ['l2', 1], ['l3', 1]]) }),
    images: ['old'], layers: ['l2'],
  },
  {
    name: 'an image in use never goes, however old',
    input: base({ images: [img('old', ['l1'], 50 * H)], layerBytes: new Map([['l1', 1]]), inUseDigests: new Set(['old']) }),
    images: [], layers: [],
  },
  {
    name: 'over budget: least recently used first, only until under budget',
    input: base({
      images: [img('a', ['la'], 30 * 60_000), img('b', ['lb'], 20 * 60_000), img('c', ['lc'], 10 * 60_000)],
      layerBytes: new Map([['la', 600], ['lb', 600], ['lc', 300]]), budgetBytes: 1_000,
    }),
    images: ['a'], layers: ['la'],
  },
  {
    name: 'over budget but everything in use or just resolved: nothing goes',
    input: base({
      images: [img('a', ['la'], 30 * 60_000), img('b', ['lb'], 1_000)],
      layerBytes: new Map([['la', 900], ['lb', 900]]), inUseDigests: new Set(['a']), budgetBytes: 100,
    }),
    images: [], layers: [],
  },
  {
    name: 'orphan layers go unless a container or a pull in flight holds them',
    input: base({ layerBytes: new Map([['orphan', 5], ['pulling', 5], ['mounted', 5]]), inUseLayers: new Set(['pulling', 'mounted']) }),
    images: [], layers: ['orphan'],
  },
];

for (const c of CASES) {
  test(`planGc: ${c.name}`, () => {
    const plan = planGc(c.input);
    assert.deepEqual([plan.images, plan.layers], [c.images, c.layers]);
  });
}
