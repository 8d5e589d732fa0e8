import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCpu, parseMemory } from '../../control-plane/objects/quantity.js';

test('parseCpu accepts cores and millicores', () => {
  const cases: [unknown, number][] = [[0.25, 0.25], [2, 2], ['250m', 0.25], ['1500m', 1.5], ['0.5', 0.5], ['3', 3], [0, 0]];
  for (const [input, want] of cases) assert.deepEqual(parseCpu(input), { ok: true, value: want }, `parseCpu(${JSON.stringify(input)})`);
});

test('parseCpu refuses negative, malformed and non-numeric values', () => {
  for (const input of [-1, 'abc', '250Mi', '', '1.5.2', true, Number.NaN, Infinity]) {
    const r = parseCpu(input);
    assert.equal(r.ok, false, `parseCpu(${String(input)}) should fail`);
  }
});

test('parseMemory accepts bytes and every suffix', () => {
  const cases: [unknown, number][] = [
    [1024, 1024], ['1024', 1024], ['64Mi', 64 * 1024 ** 2], ['1Gi', 1024 ** 3], ['2Ki', 2048],
    ['1K', 1000], ['5M', 5e6], ['1G', 1e9], ['0.5Gi', 512 * 1024 ** 2], ['1Ti', 1024 ** 4],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseMemory(input), { ok: true, value: want }, `parseMemory(${JSON.stringify(input)})`);
});

test('parseMemory refuses fractions of a byte, negatives and unknown suffixes', () => {
  for (const input of [-5, 1.5, '1.5', '64MB', '64mi', 'lots', '0.1Ki', {}]) {
    assert.equal(parseMemory(input).ok, false, `parseMemory(${JSON.stringify(input)}) should fail`);
  }
});
