/** Cutting a batch of writes into etcd txns bounded by op count and by request bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ETCD_MAX_REQUEST_BYTES, MAX_TXN_BYTES, txnBatches, txnOpBytes, type TxnBatch } from '../../control-plane/store/txn-batches.js';
import { MAX_OPS_PER_TXN } from '../../control-plane/store/store.js';

const b = (start: number, end: number): TxnBatch => ({ start, end });

test('txnBatches cuts by count and by bytes, in order, never leaving an op out', () => {
  const cases: { name: string; sizes: number[]; maxOps: number; maxBytes: number; want: TxnBatch[] }[] = [
    { name: 'nothing to write', sizes: [], maxOps: 3, maxBytes: 100, want: [] },
    { name: 'all in one', sizes: [10, 10, 10], maxOps: 3, maxBytes: 100, want: [b(0, 3)] },
    { name: 'count limit', sizes: [1, 1, 1, 1, 1, 1, 1], maxOps: 3, maxBytes: 100, want: [b(0, 3), b(3, 6), b(6, 7)] },
    { name: 'byte limit', sizes: [40, 40, 40, 40], maxOps: 10, maxBytes: 100, want: [b(0, 2), b(2, 4)] },
    { name: 'exactly at the byte limit stays together', sizes: [50, 50, 1], maxOps: 10, maxBytes: 100, want: [b(0, 2), b(2, 3)] },
    { name: 'an op over the limit goes alone', sizes: [10, 250, 10], maxOps: 10, maxBytes: 100, want: [b(0, 1), b(1, 2), b(2, 3)] },
    { name: 'an oversized first op', sizes: [250, 10, 10], maxOps: 10, maxBytes: 100, want: [b(0, 1), b(1, 3)] },
    { name: 'both limits', sizes: [30, 30, 30, 30, 5, 5, 5], maxOps: 2, maxBytes: 70, want: [b(0, 2), b(2, 4), b(4, 6), b(6, 7)] },
  ];
  for (const c of cases) {
    assert.deepEqual(txnBatches(c.sizes, c.maxOps, c.maxBytes), c.want, c.name);
  }
});

test('txnBatches keeps every multi-op batch within both limits (property over seeded sizes)', () => {
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let run = 0; run < 200; run++) {
    const sizes = Array.from({ length: rand(300) }, () => 1 + rand(rand(2) === 0 ? 50 : 400));
    const maxOps = 1 + rand(20);
    const maxBytes = 100 + rand(900);
    const batches = txnBatches(sizes, maxOps, maxBytes);
    let next = 0;
    for (const { start, end } of batches) {
      assert.equal(start, next, `run ${run}: batches must be contiguous`);
      assert.ok(end > start, `run ${run}: an empty batch`);
      assert.ok(end - start <= maxOps, `run ${run}: ${end - start} ops > ${maxOps}`);
      const bytes = sizes.slice(start, end).reduce((a, x) => a + x, 0);
      if (end - start > 1) assert.ok(bytes <= maxBytes, `run ${run}: ${bytes} bytes > ${maxBytes}`);
      next = end;
    }
    assert.equal(next, sizes.length, `run ${run}: every op must be in a batch`);
  }
});

test('100 tasks of 20 KiB, one txn by count, are cut into txns etcd accepts', () => {
  const keyBytes = '/berth/v1/tasks/default/big/big-abcde'.length;
  const taskBytes = 20 * 1024 + 600; // env plus the rest of the task object
  const sizes = Array.from({ length: 100 }, () => txnOpBytes(keyBytes, taskBytes));
  assert.ok(sizes.length <= MAX_OPS_PER_TXN, 'the count alone would put them in one txn');
  assert.ok(sizes.reduce((a, x) => a + x, 0) > ETCD_MAX_REQUEST_BYTES, 'together they are over etcd\'s request limit');
  const batches = txnBatches(sizes, MAX_OPS_PER_TXN, MAX_TXN_BYTES);
  assert.equal(batches.length, 3, JSON.stringify(batches));
  for (const { start, end } of batches) {
    const bytes = sizes.slice(start, end).reduce((a, x) => a + x, 0);
    assert.ok(bytes <= MAX_TXN_BYTES && MAX_TXN_BYTES < ETCD_MAX_REQUEST_BYTES, `${bytes} bytes in [${start}, ${end})`);
  }
});

test('txnBatches refuses a count limit below one', () => {
  assert.throws(() => txnBatches([1], 0, 100), RangeError);
});
