import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, INGEST_MAX_AGE_MS } from '../../agent/images/registry/content-store.js';

test('ContentStore.init keeps recent partial downloads for resuming and removes abandoned ones', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-content-'));
  try {
    const store = new ContentStore(root);
    await store.init();
    const now = Date.now();
    await writeFile(join(store.ingestDir, 'a'.repeat(64)), 'recent');
    await writeFile(join(store.ingestDir, 'b'.repeat(64)), 'abandoned');
    const old = (now - INGEST_MAX_AGE_MS - 60_000) / 1000;
    await utimes(join(store.ingestDir, 'b'.repeat(64)), old, old);
    await new ContentStore(root).init(now);
    assert.deepEqual(await readdir(store.ingestDir), ['a'.repeat(64)]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
