/**
 * PrefixWatch is an etcd watch of one key prefix from a given revision, delivering decoded
 * changes with keys relative to ROOT_PREFIX. It is the one way the rest of the control plane
 * follows etcd (watch caches, watch streams of the API).
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { ROOT_PREFIX } from './keys.js';
import { decode } from './codec.js';

/** WatchChange is one put or delete; value and previous are the decoded JSON (undefined if not JSON). */
export interface WatchChange {
  type: 'put' | 'delete';
  /** key is relative to ROOT_PREFIX. */
  key: string;
  /** revision is the etcd revision of the change (the key's mod_revision). */
  revision: string;
  /** value is the new object on put (resourceVersion stamped). */
  value?: unknown;
  /** previous is the object before the change, when the watch asked for it and there was one. */
  previous?: unknown;
}

/** WatchHandlers receive a watch's changes and its end. */
export interface WatchHandlers {
  change(c: WatchChange): void;
  /** ended: etcd cancelled the watch (compaction) or the stream failed; no more changes come. */
  ended(err: Error): void;
  /** disconnected: the stream dropped and etcd3 is resuming it from the last revision seen. */
  disconnected?(err: Error): void;
}

/** WatchOptions: withPrevious asks etcd for each change's previous value. */
export interface WatchOptions {
  withPrevious?: boolean;
}

/** PrefixWatch is a running watch; cancel() stops it. */
export class PrefixWatch {
  private active = true;

  private constructor(private readonly watcher: Watcher) {}

  /**
   * open starts watching ROOT_PREFIX + prefix from fromRevision and resolves once etcd
   * confirmed the watch; it rejects when etcd refuses it (e.g. the revision is compacted).
   */
  static async open(client: Etcd3, prefix: string, fromRevision: string, handlers: WatchHandlers, opts: WatchOptions = {}): Promise<PrefixWatch> {
    let builder = client.watch().prefix(ROOT_PREFIX + prefix).startRevision(fromRevision);
    if (opts.withPrevious) builder = builder.withPreviousKV();
    const w = builder.watcher();
    const watch = new PrefixWatch(w);
    const relative = (kv: IKeyValue): string => kv.key.toString().slice(ROOT_PREFIX.length);
    w.on('put', (kv: IKeyValue, previous?: IKeyValue) => {
      if (!watch.active) return;
      handlers.change({ type: 'put', key: relative(kv), revision: String(kv.mod_revision), value: decode(kv), previous: previous ? decode(previous) : undefined });
    });
    w.on('delete', (kv: IKeyValue, previous?: IKeyValue) => {
      if (!watch.active) return;
      handlers.change({ type: 'delete', key: relative(kv), revision: String(kv.mod_revision), previous: previous ? decode(previous) : undefined });
    });
    w.on('disconnected', (err: Error) => { if (watch.active) handlers.disconnected?.(err); });
    try {
      await new Promise<void>((resolve, reject) => {
        w.once('connected', () => resolve());
        w.once('error', reject);
      });
    } catch (err) {
      watch.active = false;
      void w.cancel().catch(() => undefined);
      throw err;
    }
    // From here on an error means the watch is over (etcd3 drops a cancelled watcher).
    w.on('error', (err: Error) => {
      if (!watch.active) return;
      watch.active = false;
      handlers.ended(err);
    });
    return watch;
  }

  /**
   * cancel stops delivering changes at once and asks etcd to end the watch. Callers need not
   * await it: etcd3 never settles the cancel of a watch etcd itself already cancelled.
   */
  cancel(): Promise<void> {
    this.active = false;
    return this.watcher.cancel().catch(() => undefined);
  }
}
