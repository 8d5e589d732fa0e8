/**
 * WatchCache mirrors one key prefix in memory: a list at revision R, then a watch from R+1.
 * Controllers read from it (get/list/byIndex) and subscribe to its change events. Objects it
 * hands out are frozen: callers clone before changing anything.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from '../../common/log.js';
import { ROOT_PREFIX } from './keys.js';
import { decode, Store } from './store.js';

/** CacheEvent says a key changed; object is the new value (absent on delete), previous the old one. */
export interface CacheEvent<T> {
  type: 'put' | 'delete';
  key: string;
  object?: T;
  previous?: T;
}

/** IndexFn maps an object to the index values it is found under. */
export type IndexFn<T> = (obj: T) => string[];

/** CATCH_UP_TIMEOUT_MS bounds how long a writer waits to see its own write in the mirror. */
export const CATCH_UP_TIMEOUT_MS = 5_000;
const CATCH_UP_POLL_MS = 2;

function deepFreeze<T>(o: T): T {
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
  private watcher: Watcher | undefined;
  private revision = '0';

  constructor(
    private readonly client: Etcd3,
    private readonly store: Store,
    readonly prefix: string,
    private readonly accept: (key: string) => boolean,
    private readonly log: Logger,
  ) {}

  /** addIndex registers a secondary index; call before start(). */
  addIndex(name: string, fn: IndexFn<T>): void {
    this.indexes.set(name, { fn, values: new Map() });
  }

  /** start lists the prefix and watches from the list revision; resolves once the mirror is complete. */
  async start(): Promise<void> {
    const { items, keys, revision } = await this.store.list<T>(this.prefix, this.accept);
    for (let i = 0; i < items.length; i++) this.apply(keys[i]!, deepFreeze(items[i]!));
    this.revision = revision;
    const w = this.client.watch().prefix(ROOT_PREFIX + this.prefix).withPreviousKV().startRevision(String(BigInt(revision) + 1n)).watcher();
    w.on('put', (kv: IKeyValue) => this.onPut(kv));
    w.on('delete', (kv: IKeyValue) => this.onDelete(kv));
    w.on('error', (err: Error) => this.log.warn('watch error', { prefix: this.prefix, err }));
    w.on('disconnected', () => this.log.warn('watch disconnected; resuming', { prefix: this.prefix }));
    this.watcher = w;
    await new Promise<void>((resolve, reject) => {
      w.once('connected', () => resolve());
      w.once('error', reject);
    });
  }

  /** stop cancels the watch; the mirror keeps its last contents. */
  async stop(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    this.listeners.clear();
    if (w) await w.cancel().catch(() => undefined);
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

  /** waitForRevision resolves true once the mirror has seen revision, false after timeoutMs. */
  async waitForRevision(revision: string, timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<boolean> {
    const target = BigInt(revision);
    const deadline = Date.now() + timeoutMs;
    while (BigInt(this.revision) < target) {
      if (Date.now() > deadline || !this.watcher) return false;
      await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
    }
    return true;
  }

  /** onChange subscribes to events; returns the unsubscribe function. */
  onChange(fn: (e: CacheEvent<T>) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private onPut(kv: IKeyValue): void {
    const key = kv.key.toString().slice(ROOT_PREFIX.length);
    this.revision = kv.mod_revision;
    if (!this.accept(key)) return;
    const obj = decode<T>(kv);
    if (obj === undefined) {
      this.log.warn('ignoring undecodable value', { key });
      return;
    }
    const previous = this.items.get(key);
    this.apply(key, deepFreeze(obj));
    this.emit({ type: 'put', key, object: obj, previous });
  }

  private onDelete(kv: IKeyValue): void {
    const key = kv.key.toString().slice(ROOT_PREFIX.length);
    this.revision = kv.mod_revision;
    const previous = this.items.get(key);
    if (previous === undefined) return;
    this.unindex(key, previous);
    this.items.delete(key);
    this.emit({ type: 'delete', key, previous });
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
