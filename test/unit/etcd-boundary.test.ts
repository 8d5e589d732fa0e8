/**
 * Only control-plane/store/ talks to etcd: leases, the leader key, IPAM claims,
 * events and watches are store operations, so every leader write can be fenced in one place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../support/cluster.js';

const SOURCE_ROOTS = ['control-plane', 'agent', 'common'];
const STORE_DIR = join('control-plane', 'store');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

test('no module outside control-plane/store imports etcd3', () => {
  const files = SOURCE_ROOTS.flatMap((r) => sources(join(REPO_ROOT, r)));
  assert.ok(files.length > 100, `found the sources (${files.length})`);
  const offenders = files
    .filter((f) => !relative(REPO_ROOT, f).startsWith(STORE_DIR))
    .filter((f) => /from\s+['"]etcd3['"]|import\(\s*['"]etcd3['"]\s*\)|require\(\s*['"]etcd3['"]\s*\)/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(offenders, []);
});
