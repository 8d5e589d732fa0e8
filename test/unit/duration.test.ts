import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSince } from '../../common/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test('parseDuration reads one or more number-unit parts into milliseconds', () => {
  const cases: [string, number][] = [
    ['90s', 90 * S], ['10m', 10 * M], ['2h', 2 * H], ['7d', 7 * D], ['500ms', 500], ['0s', 0],
    ['1h30m', H + 30 * M], ['1d12h', D + 12 * H], ['1.5h', 1.5 * H], ['2m500ms', 2 * M + 500],
  ];
  for (const [input, want] of cases) assert.equal(parseDuration(input), want, `parseDuration(${JSON.stringify(input)})`);
});

test('parseDuration refuses text without a unit, signs, spaces and unknown units', () => {
  for (const input of ['', '10', 'm', '-5m', '+5m', '5 m', ' 5m', '5M', '5w', '5y', '1h 30m', '.5h', '5.h', 'abc', '1e3s']) {
    assert.equal(parseDuration(input), undefined, `parseDuration(${JSON.stringify(input)}) should be undefined`);
  }
});

test('parseSince takes a duration back from now, or an RFC 3339 time as it is', () => {
  const now = Date.parse('2025-06-01T12:00:00.000Z');
  assert.equal(parseSince('10m', now)?.toISOString(), '2025-06-01T11:50:00.000Z');
  assert.equal(parseSince('2025-01-01T00:00:00Z', now)?.toISOString(), '2025-01-01T00:00:00.000Z');
  assert.equal(parseSince('2025-01-01T02:00:00.250+02:00', now)?.toISOString(), '2025-01-01T00:00:00.250Z');
});

test('parseSince refuses dates without a time or zone, and garbage', () => {
  const now = Date.now();
  for (const input of ['2025-01-01', '2025-01-01T00:00:00', 'yesterday', '2025-13-01T00:00:00Z', '10', '']) {
    assert.equal(parseSince(input, now), undefined, `parseSince(${JSON.stringify(input)}) should be undefined`);
  }
});
