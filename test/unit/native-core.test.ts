/**
 * Runs the native core's own C++ unit tests (native/test, built as berth-core-tests by
 * node-gyp) and fails with their output when any of them fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { REPO_ROOT } from '../support/cluster.js';

/** CORE_TESTS is the C++ test binary node-gyp builds next to the addon. */
const CORE_TESTS = join(REPO_ROOT, 'native', 'build', 'Release', 'berth-core-tests');
/** CORE_TESTS_TIMEOUT_MS bounds the whole C++ suite; it does no I/O beyond a temp dir. */
const CORE_TESTS_TIMEOUT_MS = 60_000;

describe('native core C++ unit tests', () => {
  it('berth-core-tests passes (spec parsing, OCI config, cgroup paths, CLI helpers)', () => {
    assert.ok(existsSync(CORE_TESTS), `${CORE_TESTS} is missing: run npx node-gyp rebuild --directory native`);
    const r = spawnSync(CORE_TESTS, [], { encoding: 'utf8', timeout: CORE_TESTS_TIMEOUT_MS });
    assert.equal(r.error, undefined, `could not run ${CORE_TESTS}: ${String(r.error)}`);
    assert.equal(r.status, 0, `berth-core-tests failed:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /\d+ tests, 0 failed/);
  });
});
