/**
 * The store is the only etcd user. Objects are JSON under ROOT_PREFIX; resourceVersion is the
 * key's mod_revision; every write is a compare-and-swap txn. Not found, conflict and already
 * exists are values; only transport failures throw. Leases, the leader key, IPAM claims and
 * watches are store operations too, so no other module holds an etcd client; a guarded store
 * (the leader's) fences every write it makes.
 */
import type { Etcd3, IRequestOp, ICompare } from 'etcd3';
import type { BerthObject } from '../objects/types.js';
import { decode } from './codec.js';
import { connectEtcd } from './etcd.js';
import { ROOT_PREFIX, prefixEnd } from './keys.js';
import { StoreLease, type LeaseOptions } from './leases.js';
import { MAX_TXN_BYTES, txnBatches, txnOpBytes } from './txn-batches.js';
import { PrefixWatch, type WatchHandlers, type WatchOptions } from './watch.js';

export { decode } from './codec.js';

/** WriteFailure is an expected reason a write did not happen; Fenced: the store's guard no longer holds. */
export type WriteFailure = 'NotFound' | 'Conflict' | 'AlreadyExists' | 'Fenced';

/**
 * Guard fences writes (leader election): a guarded store's txns also compare that key still has
 * createRevision, so a deposed leader's writes fail instead of racing the new leader's.
 */
export interface Guard {
  /** key is relative to ROOT_PREFIX, e.g. "election/leader". */
  key: string;
  createRevision: string;
}

/** WriteResult is the outcome of one CAS write: the stored object (with resourceVersion) or why not. */
export type WriteResult<T> = { ok: true; object: T } | { ok: false; reason: WriteFailure };

/** LeasedClaim is claimLeased's outcome: ours at createRevision, or who holds the key. */
export type LeasedClaim =
  | { claimed: true; createRevision: string }
  | { claimed: false; holder?: { createRevision: string; leaseId: string } };

/** BatchResult is the outcome of one op in a batch: the revision it was written at, or why not. */
export type BatchResult = { ok: true; revision: string } | { ok: false; reason: WriteFailure };

/** Unchanged names another key that must still have revision for a write to apply (a node a task is placed on). */
export interface Unchanged {
  key: string;
  revision: string;
}

/** WriteOp is one write in a batch; expectedRevision is the mod_revision the key must still have. */
export type WriteOp =
  | { type: 'create'; key: string; object: BerthObject }
  | { type: 'update'; key: string; object: BerthObject; expectedRevision: string; unchanged?: Unchanged }
  | { type: 'delete'; key: string; expectedRevision: string };

/** MAX_OPS_PER_TXN stays under etcd's default --max-txn-ops (128). */
export const MAX_OPS_PER_TXN = 128;

/** MUTATE_ATTEMPTS bounds read-modify-write retries on conflict. */
export const MUTATE_ATTEMPTS = 8;

const abs = (key: string): Buffer => Buffer.from(ROOT_PREFIX + key);

function encode(obj: BerthObject): Buffer {
  const { resourceVersion: _drop, ...metadata } = obj.metadata;
  // A task that refers to a stored template is stored without its copy (task-templates.ts).
  if (obj.kind === 'Task' && obj.spec.templateRef !== undefined) {
    const { template: _template, ...spec } = obj.spec;
    return Buffer.from(JSON.stringify({ ...obj, metadata, spec }));
  }
  return Buffer.from(JSON.stringify({ ...obj, metadata }));
}

/** PreparedOp is one write encoded once for however many txns it takes part in, with its size. */
interface PreparedOp {
  op: WriteOp;
  compare: ICompare[];
  request: IRequestOp;
  bytes: number;
}

function prepare(op: WriteOp): PreparedOp {
  const key = abs(op.key);
  if (op.type === 'delete') {
    return {
      op,
      compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: op.expectedRevision }],
      request: { request_delete_range: { key } },
      bytes: txnOpBytes(key.length, 0),
    };
  }
  const value = encode(op.object);
  const compare: ICompare[] = op.type === 'create'
    ? [{ key, target: 'Create', result: 'Equal', create_revision: 0 }]
    : [{ key, target: 'Mod', result: 'Equal', mod_revision: op.expectedRevision }];
  let bytes = txnOpBytes(key.length, value.length);
  if (op.type === 'update' && op.unchanged) {
    const other = abs(op.unchanged.key);
    compare.push({ key: other, target: 'Mod', result: 'Equal', mod_revision: op.unchanged.revision });
    bytes += txnOpBytes(other.length, 0);
  }
  return { op, compare, request: { request_put: { key, value } }, bytes };
}

function withVersion<T extends BerthObject>(obj: T, revision: string): T {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: revision } };
}

/** Store wraps an etcd3 client with berth's key layout and CAS discipline. */
export class Store {
  constructor(private readonly client: Etcd3, readonly guard?: Guard) {}

  /** connect makes a store on a new etcd client for endpoints. */
  static connect(endpoints: readonly string[]): Store {
    return new Store(connectEtcd(endpoints));
  }

  /** close ends the etcd client (every store made from it by withGuard too). */
  close(): void {
    this.client.close();
  }

  /** withGuard returns a store on the same client whose every write is also fenced by guard. */
  withGuard(guard: Guard): Store {
    return new Store(this.client, guard);
  }

  /** ping reads one key within timeoutMs; it throws when etcd does not answer (health checks). */
  async ping(timeoutMs: number): Promise<void> {
    await this.client.kv.range({ key: abs('health') }, { deadline: Date.now() + timeoutMs });
  }

  /** revision is etcd's current revision (a linearizable read): a mirror caught up to it has seen every write so far. */
  async revision(): Promise<string> {
    return (await this.client.kv.range({ key: abs('health'), count_only: true })).header.revision;
  }

  /** touch writes a marker value at key (no CAS, not an object) and returns the revision it was written at. */
  async touch(key: string): Promise<string> {
    return (await this.client.kv.put({ key: abs(key), value: Buffer.from(new Date().toISOString()) })).header.revision;
  }

  /** watch follows the keys under prefix from revision fromRevision on (see watch.ts). */
  watch(prefix: string, fromRevision: string, handlers: WatchHandlers, opts?: WatchOptions): Promise<PrefixWatch> {
    return PrefixWatch.open(this.client, prefix, fromRevision, handlers, opts);
  }

  /** lease makes (but does not yet grant) a lease of ttlSeconds. */
  lease(ttlSeconds: number, opts: LeaseOptions): StoreLease {
    return new StoreLease(this.client.lease(ttlSeconds, { autoKeepAlive: opts.keepAlive }));
  }

  /** grantLease grants a lease nobody renews (it simply expires) and returns its id. */
  async grantLease(ttlSeconds: number): Promise<string> {
    return String((await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID);
  }

  private guardCompare(): ICompare[] {
    return this.guard ? [{ key: abs(this.guard.key), target: 'Create', result: 'Equal', create_revision: this.guard.createRevision }] : [];
  }

  /** guardHolds tells whether the guard key still has the guard's create_revision (true when unguarded). */
  async guardHolds(): Promise<boolean> {
    if (!this.guard) return true;
    const kv = (await this.client.kv.range({ key: abs(this.guard.key) })).kvs[0];
    return kv !== undefined && String(kv.create_revision) === this.guard.createRevision;
  }

  /** get reads one object (linearizable); undefined when absent. */
  async get<T extends BerthObject>(key: string): Promise<T | undefined> {
    const res = await this.client.kv.range({ key: abs(key) });
    const kv = res.kvs[0];
    return kv ? decode<T>(kv) : undefined;
  }

  /** list reads every object under prefix whose relative key passes accept, with the read revision. */
  async list<T>(prefix: string, accept: (key: string) => boolean = () => true): Promise<{ items: T[]; keys: string[]; revision: string }> {
    const start = abs(prefix);
    const res = await this.client.kv.range({ key: start, range_end: prefixEnd(start) });
    const items: T[] = [];
    const keys: string[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString().slice(ROOT_PREFIX.length);
      if (!accept(key)) continue;
      const obj = decode<T>(kv);
      if (obj !== undefined) {
        items.push(obj);
        keys.push(key);
      }
    }
    return { items, keys, revision: res.header.revision };
  }

  /** create writes obj at key only if the key does not exist. */
  async create<T extends BerthObject>(key: string, obj: T): Promise<WriteResult<T>> {
    const [r] = await this.commit([{ type: 'create', key, object: obj }]);
    return r!.ok ? { ok: true, object: withVersion(obj, r!.revision) } : r!;
  }

  /** update replaces obj at key only if its mod_revision is still expectedRevision. */
  async update<T extends BerthObject>(key: string, obj: T, expectedRevision: string): Promise<WriteResult<T>> {
    const [r] = await this.commit([{ type: 'update', key, object: obj, expectedRevision }]);
    return r!.ok ? { ok: true, object: withVersion(obj, r!.revision) } : r!;
  }

  /** remove deletes key if it exists (and, with expectedRevision, is unchanged); returns what was deleted. */
  async remove<T extends BerthObject>(key: string, expectedRevision?: string): Promise<WriteResult<T>> {
    const compare: ICompare[] = expectedRevision
      ? [{ key: abs(key), target: 'Mod', result: 'Equal', mod_revision: expectedRevision }]
      : [{ key: abs(key), target: 'Create', result: 'Greater', create_revision: 0 }];
    const res = await this.client.kv.txn({
      compare: [...compare, ...this.guardCompare()],
      success: [{ request_delete_range: { key: abs(key), prev_kv: true } }],
      failure: [{ request_range: { key: abs(key) } }],
    });
    if (!res.succeeded) {
      if (!(await this.guardHolds())) return { ok: false, reason: 'Fenced' };
      const exists = (res.responses[0]?.response_range.kvs.length ?? 0) > 0;
      return { ok: false, reason: exists ? 'Conflict' : 'NotFound' };
    }
    const prev = res.responses[0]?.response_delete_range.prev_kvs[0];
    const obj = prev ? decode<T>(prev) : undefined;
    return obj ? { ok: true, object: obj } : { ok: false, reason: 'NotFound' };
  }

  /** removePrefix deletes every key under prefix (an object's children); false when fenced. */
  async removePrefix(prefix: string): Promise<boolean> {
    const start = abs(prefix);
    const res = await this.client.kv.txn({ compare: this.guardCompare(), success: [{ request_delete_range: { key: start, range_end: prefixEnd(start) } }], failure: [] });
    return res.succeeded;
  }

  /**
   * commit applies ops in txns of at most MAX_OPS_PER_TXN ops and MAX_TXN_BYTES bytes (see
   * txn-batches.ts), all-or-nothing per txn; when a txn's compares fail, its ops are retried one
   * by one so each op gets its own outcome.
   */
  async commit(ops: WriteOp[]): Promise<BatchResult[]> {
    const results: BatchResult[] = [];
    const prepared = ops.map(prepare);
    // etcd bounds compares like ops: the guard takes one, and ops that also pin another key take two each.
    const comparesPerOp = Math.max(1, ...prepared.map((p) => p.compare.length));
    const perTxn = Math.floor((this.guard ? MAX_OPS_PER_TXN - 1 : MAX_OPS_PER_TXN) / comparesPerOp);
    for (const { start, end } of txnBatches(prepared.map((p) => p.bytes), perTxn, MAX_TXN_BYTES)) {
      const chunk = prepared.slice(start, end);
      const batch = await this.txn(chunk);
      if (batch) {
        results.push(...batch);
        continue;
      }
      if (!(await this.guardHolds())) {
        // Fenced: nothing more from this writer can apply; say so for every remaining op.
        for (let j = start; j < ops.length; j++) results.push({ ok: false, reason: 'Fenced' });
        return results;
      }
      if (chunk.length === 1) {
        results.push(await this.failureOf(chunk[0]!.op));
        continue;
      }
      for (const p of chunk) results.push(...((await this.txn([p])) ?? [await this.failureOf(p.op)]));
    }
    return results;
  }

  /**
   * mutate is read-modify-CAS with bounded retries: fn gets a private copy of the current object
   * and returns the new one, or undefined for "no change". NotFound when the key is absent.
   */
  async mutate<T extends BerthObject>(key: string, fn: (current: T) => T | undefined, first?: T): Promise<WriteResult<T> | { ok: true; object: T; unchanged: true }> {
    let current = first ? structuredClone(first) : await this.get<T>(key);
    for (let attempt = 0; attempt < MUTATE_ATTEMPTS; attempt++) {
      if (!current) return { ok: false, reason: 'NotFound' };
      const rev = current.metadata.resourceVersion!;
      const next = fn(structuredClone(current));
      if (next === undefined) return { ok: true, object: current, unchanged: true };
      const r = await this.update(key, next, rev);
      if (r.ok || r.reason !== 'Conflict') return r;
      current = await this.get<T>(key);
    }
    return { ok: false, reason: 'Conflict' };
  }

  /** putLeased writes a plain JSON value bound to an etcd lease (no CAS: the lease owner is the writer). */
  async putLeased(key: string, value: unknown, leaseId: string): Promise<void> {
    await this.putLeasedAll([{ key, value }], leaseId);
  }

  /** putLeasedAll writes JSON values bound to one lease in one txn (no CAS); false when fenced. */
  async putLeasedAll(entries: readonly { key: string; value: unknown }[], leaseId: string): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: this.guardCompare(),
      success: entries.map(({ key, value }) => ({ request_put: { key: abs(key), value: Buffer.from(JSON.stringify(value)), lease: leaseId } })),
      failure: [],
    });
    return res.succeeded;
  }

  /**
   * claimLeased creates key bound to leaseId only if it does not exist (a leader key); otherwise
   * it reports the holder's create_revision and lease. Bounded by timeoutMs.
   */
  async claimLeased(key: string, value: unknown, leaseId: string, timeoutMs: number): Promise<LeasedClaim> {
    const k = abs(key);
    const res = await this.client.kv.txn({
      compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: k, value: Buffer.from(JSON.stringify(value)), lease: leaseId } }],
      failure: [{ request_range: { key: k } }],
    }, { deadline: Date.now() + timeoutMs });
    if (res.succeeded) return { claimed: true, createRevision: String(res.header.revision) };
    const kv = res.responses[0]?.response_range.kvs[0];
    return { claimed: false, holder: kv ? { createRevision: String(kv.create_revision), leaseId: String(kv.lease) } : undefined };
  }

  /** removeIfCreatedAt deletes key only if it is still the one created at createRevision (resigning a claim). */
  async removeIfCreatedAt(key: string, createRevision: string): Promise<boolean> {
    const k = abs(key);
    const res = await this.client.kv.txn({
      compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: createRevision }],
      success: [{ request_delete_range: { key: k } }],
      failure: [],
    });
    return res.succeeded;
  }

  /** getValue reads a plain string value (not an object), undefined when absent. */
  async getValue(key: string): Promise<string | undefined> {
    const kv = (await this.client.kv.range({ key: abs(key) })).kvs[0];
    return kv ? kv.value.toString() : undefined;
  }

  /** listValues reads every plain string value under prefix, by relative key. */
  async listValues(prefix: string): Promise<Map<string, string>> {
    const start = abs(prefix);
    const res = await this.client.kv.range({ key: start, range_end: prefixEnd(start) });
    return new Map(res.kvs.map((kv) => [kv.key.toString().slice(ROOT_PREFIX.length), kv.value.toString()]));
  }

  /** createValues writes every plain value only if none of the keys exists, in one txn; false otherwise. */
  async createValues(entries: Readonly<Record<string, string>>): Promise<boolean> {
    const keys = Object.keys(entries);
    const res = await this.client.kv.txn({
      compare: [...keys.map((k): ICompare => ({ key: abs(k), target: 'Create', result: 'Equal', create_revision: 0 })), ...this.guardCompare()],
      success: keys.map((k) => ({ request_put: { key: abs(k), value: Buffer.from(entries[k]!) } })),
      failure: [],
    });
    return res.succeeded;
  }

  /** removeValuesIf deletes key and also, in one txn, only while key still holds expected. */
  async removeValuesIf(key: string, expected: string, also: readonly string[]): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: [{ key: abs(key), target: 'Value', result: 'Equal', value: Buffer.from(expected) }, ...this.guardCompare()],
      success: [key, ...also].map((k) => ({ request_delete_range: { key: abs(k) } })),
      failure: [],
    });
    return res.succeeded;
  }

  private async txn(ops: PreparedOp[]): Promise<BatchResult[] | undefined> {
    const compare = [...ops.flatMap((p) => p.compare), ...this.guardCompare()];
    const res = await this.client.kv.txn({ compare, success: ops.map((p) => p.request), failure: [] });
    if (!res.succeeded) return undefined;
    const revision = res.header.revision;
    return ops.map(() => ({ ok: true, revision }));
  }

  private async failureOf(op: WriteOp): Promise<BatchResult> {
    const exists = (await this.client.kv.range({ key: abs(op.key), count_only: true })).count !== '0';
    if (op.type === 'create') return { ok: false, reason: exists ? 'AlreadyExists' : 'Conflict' };
    return { ok: false, reason: exists ? 'Conflict' : 'NotFound' };
  }
}
