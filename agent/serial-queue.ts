/**
 * SerialQueue runs work per key, never two runs for one key at once: a kick while a run is in
 * progress marks the key dirty and the run repeats, so the last kick is always honoured. A run
 * that throws is retried after a delay.
 */
import type { Logger } from '../common/log.js';
import { messageOf } from './errors.js';

interface KeyState {
  busy: boolean;
  dirty: boolean;
  retry?: NodeJS.Timeout;
}

/** SerialQueue serialises `run(key)` per key. */
export class SerialQueue {
  private readonly keys = new Map<string, KeyState>();
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly run: (key: string) => Promise<void>, private readonly log: Logger, private readonly retryMs: number) {}

  /** kick queues a run for key. */
  kick(key: string): void {
    if (this.closed) return;
    let st = this.keys.get(key);
    if (!st) this.keys.set(key, (st = { busy: false, dirty: false }));
    if (st.busy) {
      st.dirty = true;
      return;
    }
    st.busy = true;
    const state = st;
    const work = (async () => {
      try {
        do {
          state.dirty = false;
          await this.run(key);
        } while (state.dirty && !this.closed);
      } catch (err) {
        this.log.error('sync failed; will retry', { id: key, error: messageOf(err), retryMs: this.retryMs });
        if (!this.closed && !state.retry) {
          state.retry = setTimeout(() => { state.retry = undefined; this.kick(key); }, this.retryMs);
          state.retry.unref();
        }
      } finally {
        state.busy = false;
        if (!state.retry && !state.dirty) this.keys.delete(key);
      }
    })();
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work));
  }

  /** busy is true while a run for key is in progress. */
  busy(key: string): boolean {
    return this.keys.get(key)?.busy === true;
  }

  /** idle resolves once no run is queued or in progress. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** close stops retries and new runs, then waits for runs in progress. */
  async close(): Promise<void> {
    this.closed = true;
    for (const st of this.keys.values()) if (st.retry) clearTimeout(st.retry);
    await this.idle();
  }
}
