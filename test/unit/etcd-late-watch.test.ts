/**
 * etcd may still send events for a watch the client just cancelled; etcd3 threw from its stream
 * handler when one arrived, and the control plane exited (chaos suite, scenario control-plane,
 * seed 1002). The store's client drops such responses and still dispatches the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatchManager } from 'etcd3/lib/watch.js';
import '../../control-plane/store/etcd.js';

interface Dispatcher { handleResponse(res: unknown): void }

test('a watch response for a watcher the client no longer has is dropped, not thrown', () => {
  const manager = { watchers: [] as { id: string | null }[], initialBackoff: { next: () => undefined }, backoff: undefined };
  const dispatch = (WatchManager.prototype as unknown as Dispatcher).handleResponse;
  assert.doesNotThrow(() => dispatch.call(manager, { watch_id: '7', canceled: false, events: [], header: { revision: '9' } }));
});

test('a response for a live watcher still reaches it', () => {
  const seen: unknown[] = [];
  const watcher = { id: '3', emit: (...args: unknown[]) => { seen.push(args[0]); return true; } };
  const manager = { watchers: [watcher], initialBackoff: { next: () => undefined }, backoff: undefined, handleUpdateResponse: (w: typeof watcher, res: unknown) => w.emit('data', res) };
  const dispatch = (WatchManager.prototype as unknown as Dispatcher).handleResponse;
  dispatch.call(manager, { watch_id: '3', canceled: false, events: [], header: { revision: '9' } });
  assert.deepEqual(seen, ['data']);
});
