/**
 * An in-memory stand-in for the etcd-backed Store, for unit tests of code that keeps a few
 * objects in it (the cluster CA, tokens). It keeps the Store's contract that matters to them:
 * not found and already exists are values, and objects are copied in and out, so a caller that
 * mutates what it read does not change what is stored.
 */
import type { BerthObject } from '../../control-plane/objects/types.js';
import type { Store, WriteResult } from '../../control-plane/store/store.js';

/** MemoryStore implements get, create, remove and list of Store over a Map; it has no revisions, guards or watches. */
export class MemoryStore {
  /** objects is the stored state by key; tests may read it or seed it directly. */
  readonly objects = new Map<string, BerthObject>();

  /** get returns a copy of the object at key, or undefined. */
  async get<T extends BerthObject>(key: string): Promise<T | undefined> {
    const o = this.objects.get(key);
    return o === undefined ? undefined : structuredClone(o) as T;
  }

  /** create stores a copy of obj at key unless something is there (AlreadyExists). */
  async create<T extends BerthObject>(key: string, obj: T): Promise<WriteResult<T>> {
    if (this.objects.has(key)) return { ok: false, reason: 'AlreadyExists' };
    this.objects.set(key, structuredClone(obj));
    return { ok: true, object: obj };
  }

  /** remove deletes the object at key and returns it, or NotFound. */
  async remove<T extends BerthObject>(key: string): Promise<WriteResult<T>> {
    const o = this.objects.get(key);
    if (o === undefined) return { ok: false, reason: 'NotFound' };
    this.objects.delete(key);
    return { ok: true, object: o as T };
  }

  /** list returns copies of the objects whose keys start with prefix (and pass accept), in key order. */
  async list<T>(prefix: string, accept: (key: string) => boolean = () => true): Promise<{ items: T[]; keys: string[]; revision: string }> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && accept(k)).sort();
    return { items: keys.map((k) => structuredClone(this.objects.get(k)) as T), keys, revision: '1' };
  }

  /** asStore hands this to code typed against Store; a call to any other Store method fails as not a function. */
  asStore(): Store {
    return this as unknown as Store;
  }
}
