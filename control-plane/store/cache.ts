/**
 * WatchCache mirrors one key prefix in memory: a list at revision R, then a watch from R+1.
 * Controllers read from it (get/list/byIndex) and subscribe to its change events. Objects it
 * hands out are frozen: callers clone before changing anything.
 *
 * Like the Kubernetes reflector it never trusts a watch that ended: when etcd cancels the watch
 * (its start revision was compacted while the connection was cut) or the stream fails, it lists
 * again, emits the differences as events (so controllers converge on what they missed) and
 * watches from the new list's revision. A periodic relist is the backstop for anything else.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../common/log.js';
import type { Store } from './store.js';
import type { PrefixWatch, WatchChange } from './watch.js';

/** CacheEvent says a key changed; object is the new value (absent on delete), previous the old one. */
export interface CacheEvent<T> {
  type: 'put' | 'delete';
  key: string;
  object?: T;
  previous?: T;
}

/**
 * CacheJoin lets a cache follow companion keys under its prefix (task templates beside tasks)
 * and complete its objects from them. resolve returns undefined while what an object needs has
 * not been seen; the object is held back until it has.
 */
export interface CacheJoin<T> {
  accept(key: string): boolean;
  /** observe takes a companion key's value (undefined: deleted); reset comes before a full list. */
  observe(key: string, value: unknown): void;
  reset(): void;
  resolve(obj: T): T | undefined;
}

/** IndexFn maps an object to the index values it is found under. */
export type IndexFn<T> = (obj: T) => string[];

/** CATCH_UP_TIMEOUT_MS bounds how long a writer waits to see its own write in the mirror. */
export const CATCH_UP_TIMEOUT_MS = 5_000;
/** RESYNC_INTERVAL_MS is how often the mirror is compared with a fresh list, whatever the watch says. */
export const RESYNC_INTERVAL_MS = 5 * 60_000;
/** RELIST_BACKOFF_MS is the first wait after a failed relist; it doubles up to RELIST_BACKOFF_MAX_MS. */
export const RELIST_BACKOFF_MS = 100;
/** RELIST_BACKOFF_MAX_MS caps the wait between relist attempts while etcd is unreachable. */
export const RELIST_BACKOFF_MAX_MS = 5_000;
const CATCH_UP_POLL_MS = 2;
/** SYNC_MARKER is catchUp's key under a cache's prefix: two segments, so no object key matcher admits it. */
export const SYNC_MARKER = '~sync/marker';

/** versionOf is an object's resourceVersion (its etcd mod_revision), if it has metadata. */
function versionOf(o: unknown): string | undefined {
  return (o as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
}

/** sameVersion compares by resourceVersion, or by value for plain values without metadata (leases). */
function sameVersion(a: unknown, b: unknown): boolean {
  const va = versionOf(a);
  return va !== undefined ? va === versionOf(b) : isDeepStrictEqual(a, b);
}

/** deepFreeze freezes o and everything it holds. */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** WatchCache is a list+watch mirror of the keys under prefix that accept() admits. */
export class WatchCache<T> {
  private readonly items = new Map<string, T>();
  private readonly listeners = new Set<(e: CacheEvent<T>) => void>();
  private readonly indexes = new Map<string, { fn: IndexFn<T>; values: Map<string, Set<string>> }>();
  private watcher: PrefixWatch | undefined;
  private revision = '0';
  private stopped = false;
  private relisting: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private relistCount = 0;
  private join: CacheJoin<T> | undefined;
  /** unresolved holds objects the join could not complete yet, by key. */
  private readonly unresolved = new Map<string, T>();

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly accept: (key: string) => boolean,
    private readonly log: Logger,
    private readonly resyncIntervalMs = RESYNC_INTERVAL_MS,
  ) {}

  /** addIndex registers a secondary index; call before start(). */
  addIndex(name: string, fn: IndexFn<T>): void {
    this.indexes.set(name, { fn, values: new Map() });
  }

  /** setJoin makes the cache follow companion keys and complete objects from them; call before start(). */
  setJoin(join: CacheJoin<T>): void {
    this.join = join;
  }

  /** relists counts the lists after the first (watch lost, or periodic resync). */
  get relists(): number {
    return this.relistCount;
  }

  /** start lists the prefix and watches from the list revision; resolves once the mirror is complete. */
  async start(): Promise<void> {
    const { items, keys, revision } = this.joined(await this.store.list<T>(this.prefix, (k) => this.accept(k) || this.join?.accept(k) === true));
    for (let i = 0; i < items.length; i++) this.apply(keys[i]!, deepFreeze(items[i]!));
    this.revision = revision;
    await this.watchFrom(revision);
    this.resyncTimer = setInterval(() => void this.relist('periodic resync'), this.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  /** watchFrom watches the prefix from revision + 1; a watch that ends is replaced by a relist. */
  private async watchFrom(revision: string): Promise<void> {
    // A cancelled PrefixWatch delivers nothing more, so a replaced watch cannot touch the mirror.
    this.watcher = await this.store.watch(this.prefix, String(BigInt(revision) + 1n), {
      change: (c) => this.applyChange(c),
      disconnected: () => this.log.warn('watch disconnected; resuming', { prefix: this.prefix }),
      ended: (err) => {
        this.log.warn('watch ended; relisting', { prefix: this.prefix, err: err.message });
        void this.relist(`watch ended: ${err.message}`);
      },
    });
  }

  /**
   * relist replaces the watch with a fresh list and a watch from its revision, emitting what
   * changed meanwhile; concurrent calls share one run, and it retries with backoff until it
   * succeeds or the cache stops.
   */
  relist(why: string): Promise<void> {
    this.relisting ??= this.runRelist(why).finally(() => { this.relisting = undefined; });
    return this.relisting;
  }

  private async runRelist(why: string): Promise<void> {
    for (let delay = RELIST_BACKOFF_MS; !this.stopped; delay = Math.min(delay * 2, RELIST_BACKOFF_MAX_MS)) {
      const old = this.watcher;
      this.watcher = undefined;
      // Not awaited: etcd3 never settles the cancel of a watch etcd already cancelled.
      if (old) void old.cancel();
      try {
        const { items, keys, revision } = this.joined(await this.store.list<T>(this.prefix, (k) => this.accept(k) || this.join?.accept(k) === true));
        if (this.stopped) return;
        // A list older than the mirror means etcd went back in time (restored from a snapshot):
        // revisions are reused then, so compare values, not versions.
        const wentBack = BigInt(revision) < BigInt(this.revision);
        if (wentBack) this.log.warn('etcd is behind the mirror (restored?); comparing every object', { prefix: this.prefix, etcd: revision, mirror: this.revision });
        const changed = this.replaceAll(keys, items, wentBack);
        this.revision = revision;
        this.relistCount++;
        this.log.info('relisted', { prefix: this.prefix, why, revision, changed });
        await this.watchFrom(revision);
        return;
      } catch (err) {
        this.log.warn('relist failed; retrying', { prefix: this.prefix, err: (err as Error).message, delayMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * joined feeds a list's companion keys to the join (first: a task's template sorts after it)
   * and returns the objects completed, holding back those that cannot be yet.
   */
  private joined(list: { items: T[]; keys: string[]; revision: string }): { items: T[]; keys: string[]; revision: string } {
    if (!this.join) return list;
    const join = this.join;
    join.reset();
    this.unresolved.clear();
    list.keys.forEach((k, i) => { if (join.accept(k)) join.observe(k, list.items[i]); });
    const items: T[] = [];
    const keys: string[] = [];
    list.keys.forEach((k, i) => {
      if (join.accept(k)) return;
      const obj = join.resolve(list.items[i]!);
      if (obj === undefined) {
        this.unresolved.set(k, list.items[i]!);
        return;
      }
      items.push(obj);
      keys.push(k);
    });
    if (this.unresolved.size > 0) this.log.warn('objects held back: what they refer to is missing', { prefix: this.prefix, count: this.unresolved.size, first: [...this.unresolved.keys()][0] });
    return { items, keys, revision: list.revision };
  }

  /** replaceAll makes the mirror equal to a fresh list, emitting an event per difference; returns how many. */
  private replaceAll(keys: string[], items: T[], byValue: boolean): number {
    let changed = 0;
    const seen = new Set<string>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      seen.add(key);
      const previous = this.items.get(key);
      const obj = items[i]!;
      if (previous !== undefined && (byValue ? isDeepStrictEqual(previous, obj) : sameVersion(previous, obj))) continue;
      this.apply(key, deepFreeze(obj));
      this.emit({ type: 'put', key, object: obj, previous });
      changed++;
    }
    for (const [key, previous] of [...this.items]) {
      if (seen.has(key)) continue;
      this.unindex(key, previous);
      this.items.delete(key);
      this.emit({ type: 'delete', key, previous });
      changed++;
    }
    return changed;
  }

  /** stop cancels the watch; the mirror keeps its last contents. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    const w = this.watcher;
    this.watcher = undefined;
    this.listeners.clear();
    if (w) await w.cancel();
  }

  /** get returns the cached object at key (frozen). */
  get(key: string): T | undefined {
    return this.items.get(key);
  }

  /** list returns every cached object (frozen). */
  list(): T[] {
    return [...this.items.values()];
  }

  /** entries returns every [key, object] pair. */
  entries(): [string, T][] {
    return [...this.items.entries()];
  }

  /** byIndex returns the objects filed under value in index name. */
  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.values.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.items.get(k)!).filter((o) => o !== undefined);
  }

  /** lastRevision is the etcd revision the mirror has caught up to. */
  lastRevision(): string {
    return this.revision;
  }

  /**
   * catchUp resolves true once the mirror has seen every write made before the call. A watch
   * only reports its own prefix, so a marker written under the prefix (a key no accept() admits)
   * gives a revision the mirror is sure to reach; false after timeoutMs or when etcd is unreachable.
   */
  async catchUp(timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<boolean> {
    let revision: string;
    try {
      revision = await this.store.touch(`${this.prefix}${SYNC_MARKER}`);
    } catch (err) {
      this.log.warn('cannot catch up: marker write failed', { prefix: this.prefix, err: (err as Error).message });
      return false;
    }
    if (BigInt(revision) < BigInt(this.revision)) {
      // etcd is behind what the mirror saw: the store was restored, and the watch waits for
      // revisions that mean something else now. Start over from a list.
      await this.relist('etcd revision went backwards');
      return !this.stopped;
    }
    return this.waitForRevision(revision, timeoutMs);
  }

  /** waitForRevision resolves true once the mirror has seen revision, false after timeoutMs. */
  async waitForRevision(revision: string, timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<boolean> {
    const target = BigInt(revision);
    const deadline = Date.now() + timeoutMs;
    while (BigInt(this.revision) < target) {
      // A relist in progress will bring the mirror past any revision written before it began.
      if (Date.now() > deadline || this.stopped) return false;
      await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
    }
    return true;
  }

  /** onChange subscribes to events; returns the unsubscribe function. */
  onChange(fn: (e: CacheEvent<T>) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private applyChange(c: WatchChange): void {
    this.revision = c.revision;
    if (this.join?.accept(c.key)) {
      this.join.observe(c.key, c.type === 'put' ? c.value : undefined);
      if (c.type === 'put') this.retryUnresolved();
      return;
    }
    if (c.type === 'put') {
      if (!this.accept(c.key)) return;
      if (c.value === undefined) {
        this.log.warn('ignoring undecodable value', { key: c.key });
        return;
      }
      const obj = this.join ? this.join.resolve(c.value as T) : c.value as T;
      if (obj === undefined) {
        this.unresolved.set(c.key, c.value as T);
        this.log.warn('object held back: what it refers to is missing', { key: c.key });
        return;
      }
      this.unresolved.delete(c.key);
      const previous = this.items.get(c.key);
      this.apply(c.key, deepFreeze(obj));
      this.emit({ type: 'put', key: c.key, object: obj, previous });
      return;
    }
    this.unresolved.delete(c.key);
    const previous = this.items.get(c.key);
    if (previous === undefined) return;
    this.unindex(c.key, previous);
    this.items.delete(c.key);
    this.emit({ type: 'delete', key: c.key, previous });
  }

  /** retryUnresolved applies held-back objects the join can now complete. */
  private retryUnresolved(): void {
    for (const [key, raw] of [...this.unresolved]) {
      const obj = this.join!.resolve(raw);
      if (obj === undefined) continue;
      this.unresolved.delete(key);
      const previous = this.items.get(key);
      this.apply(key, deepFreeze(obj));
      this.emit({ type: 'put', key, object: obj, previous });
    }
  }

  private apply(key: string, obj: T): void {
    const prev = this.items.get(key);
    if (prev !== undefined) this.unindex(key, prev);
    this.items.set(key, obj);
    for (const { fn, values } of this.indexes.values()) {
      for (const v of fn(obj)) {
        let set = values.get(v);
        if (!set) values.set(v, (set = new Set()));
        set.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const { fn, values } of this.indexes.values()) {
      for (const v of fn(obj)) {
        const set = values.get(v);
        set?.delete(key);
        if (set?.size === 0) values.delete(v);
      }
    }
  }

  private emit(e: CacheEvent<T>): void {
    for (const fn of [...this.listeners]) {
      try {
        fn(e);
      } catch (err) {
        this.log.error('cache listener failed', { prefix: this.prefix, err });
      }
    }
  }
}
