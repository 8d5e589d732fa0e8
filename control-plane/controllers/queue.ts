/**
 * WorkQueue is the controllers' de-duplicated queue of keys: a key is queued at most once, a key
 * being synced is re-queued when added meanwhile, and a failed or "retry" sync is re-queued with
 * per-key exponential backoff. One key is never synced twice concurrently.
 */
import type { Logger } from '../../common/log.js';

/** SyncResult lets a sync ask to be run again later without raising an error. */
export type SyncResult = void | 'retry';

/** BACKOFF_BASE_MS is the first retry delay; it doubles per consecutive failure. */
export const BACKOFF_BASE_MS = 50;
/** BACKOFF_MAX_MS caps the retry delay. */
export const BACKOFF_MAX_MS = 30_000;

/** WorkQueue runs sync(key) for queued keys with bounded concurrency. */
export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly order: string[] = [];
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = 0;
  private stopped = false;
  private idle: (() => void) | undefined;

  constructor(
    readonly name: string,
    private readonly sync: (key: string) => Promise<SyncResult>,
    private readonly log: Logger,
    private readonly concurrency = 1,
  ) {}

  /** add queues key unless it is already queued. */
  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.pump();
  }

  /** addAfter queues key after delayMs (used for backoff and batching bursts). */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.add(key);
    }, delayMs);
    this.timers.add(t);
  }

  /** stop drops queued keys and timers and waits for syncs in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queued.clear();
    this.order.length = 0;
    if (this.running > 0) await new Promise<void>((r) => (this.idle = r));
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.order.length > 0) {
      const key = this.order.shift()!;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    let retry = false;
    try {
      retry = (await this.sync(key)) === 'retry';
    } catch (err) {
      retry = true;
      this.log.warn('sync failed', { queue: this.name, key, err });
    }
    this.active.delete(key);
    this.running--;
    if (retry) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      this.addAfter(key, Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (n - 1)));
    } else {
      this.failures.delete(key);
    }
    if (this.dirty.delete(key)) this.add(key);
    if (this.running === 0 && this.idle) this.idle();
    this.pump();
  }
}
