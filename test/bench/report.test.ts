/** Unit tests of the bench helpers that need no root: flag parsing and the density JSON shape. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { densityJson } from './density.js';
import { FlagError, parseFlags } from './report.js';

test('parseFlags reads values and value-less switches', () => {
  const flags = parseFlags(['--runs', '100', '--no-density', '--density=5'], ['runs', 'density'], ['no-density']);
  assert.deepEqual([...flags], [['runs', '100'], ['no-density', 'true'], ['density', '5']]);
});

test('parseFlags refuses a value on a switch, unknown flags and missing values', () => {
  assert.throws(() => parseFlags(['--no-density=1'], [], ['no-density']), FlagError);
  assert.throws(() => parseFlags(['--nodensity'], ['runs'], ['no-density']), FlagError);
  assert.throws(() => parseFlags(['--runs'], ['runs']), FlagError);
});

test('densityJson carries the fields issue 3 names, in MiB, KiB and seconds', () => {
  const json = densityJson({
    containers: 300, secondsToRunning: 7.4581, secondsToGone: 16.6584, secondsToTasksGone: 16.646,
    shimCount: 300, shimRssKbTotal: 300 * 828.7, shimPssKbTotal: 39_209, agentRssKb: 100_485, agentRssPeakKb: 101_898,
  });
  assert.equal(json.containers, 300);
  assert.equal(json.seconds_to_running, 7.458);
  assert.equal(json.seconds_to_gone, 16.658);
  assert.equal(json.shim_rss_kb_avg, 828.7);
  assert.equal(json.shim_rss_mb_total, 242.78);
  assert.equal(json.shim_pss_mb_total, 38.29);
  assert.equal(json.agent_rss_mb, 98.13);
});

test('densityJson reports PSS as null when smaps_rollup was unreadable', () => {
  const json = densityJson({
    containers: 1, secondsToRunning: 1, secondsToGone: 1, secondsToTasksGone: 1,
    shimCount: 0, shimRssKbTotal: 0, shimPssKbTotal: undefined, agentRssKb: 1024, agentRssPeakKb: 1024,
  });
  assert.equal(json.shim_pss_mb_total, null);
  assert.equal(json.shim_rss_kb_avg, 0);
});
