/**
 * Every write a deposed leader makes through its guarded store fails: object writes, events,
 * children removal and plain values alike (the event recorder once wrote with an unfenced txn).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { EventRecorder, type EventInput } from '../../control-plane/controllers/events.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { Store, type Guard } from '../../control-plane/store/store.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-fencing-test-'));
let etcd: EmbeddedEtcd;
let store: Store;

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23911, peerPort: 23912, log: silentLogger });
  store = Store.connect([etcd.endpoint]);
});

after(async () => {
  store?.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function leaderGuard(key: string): Promise<{ guard: Guard; leaseId: string }> {
  const leaseId = await store.grantLease(30);
  const claim = await store.claimLeased(key, { identity: 'test' }, leaseId, 2_000);
  assert.ok(claim.claimed, 'the key was free');
  return { guard: { key, createRevision: claim.createRevision }, leaseId };
}

const eventInput: EventInput = { object: { kind: 'Service', name: 'web', namespace: 'default' }, reason: 'Probe', message: 'fenced?', source: 'test' };

test('a claim is won once; the loser learns the holder and its lease', async () => {
  const { guard, leaseId } = await leaderGuard('fence-test/claim');
  const other = await store.claimLeased('fence-test/claim', { identity: 'other' }, await store.grantLease(30), 2_000);
  assert.deepEqual(other, { claimed: false, holder: { createRevision: guard.createRevision, leaseId } });
  assert.equal(await store.removeIfCreatedAt('fence-test/claim', '1'), false, 'a stale claim cannot resign the current one');
  assert.equal(await store.removeIfCreatedAt('fence-test/claim', guard.createRevision), true);
});

test('while the guard holds, the leader writes events, values and removals', async () => {
  const { guard } = await leaderGuard('fence-test/live');
  const leader = store.withGuard(guard);
  const recorder = new EventRecorder(leader, silentLogger);
  await recorder.record(eventInput);
  assert.equal(recorder.fenced, 0);
  assert.equal((await store.list('events/default/')).items.length, 1, 'the event was written');
  assert.equal(await leader.createValues({ 'fence-test/values/a': '1' }), true);
  assert.equal(await leader.removePrefix('fence-test/values/'), true);
  assert.equal(await store.getValue('fence-test/values/a'), undefined);
  await store.removeIfCreatedAt(guard.key, guard.createRevision);
  await store.removePrefix('events/');
});

test('once the leader key is gone, none of the old leader\'s writes land', async () => {
  const { guard, leaseId } = await leaderGuard('fence-test/deposed');
  const leader = store.withGuard(guard);
  await store.createValues({ 'fence-test/kept/a': '1' });
  // Deposed: the key expired or was deleted, and maybe re-created by a successor.
  assert.equal(await store.removeIfCreatedAt(guard.key, guard.createRevision), true);
  const successor = await store.claimLeased(guard.key, { identity: 'successor' }, leaseId, 2_000);
  assert.ok(successor.claimed);

  const recorder = new EventRecorder(leader, silentLogger);
  await recorder.record(eventInput);
  assert.equal(recorder.fenced, 1, 'the recorder saw its batch fenced');
  assert.deepEqual((await store.list('events/')).items, [], 'no event from the deposed leader');
  assert.equal(await leader.putLeasedAll([{ key: 'fence-test/leased', value: 1 }], leaseId), false);
  assert.equal(await store.getValue('fence-test/leased'), undefined);
  assert.equal(await leader.createValues({ 'fence-test/values/b': '1' }), false);
  assert.equal(await store.getValue('fence-test/values/b'), undefined);
  assert.equal(await leader.removePrefix('fence-test/kept/'), false);
  assert.equal(await store.getValue('fence-test/kept/a'), '1', 'children survive a fenced removal');
  assert.equal(await leader.removeValuesIf('fence-test/kept/a', '1', []), false);
  const created = await leader.create('fence-test/object', { kind: 'Probe', metadata: { name: 'x' } } as never);
  assert.deepEqual(created, { ok: false, reason: 'Fenced' });
});
