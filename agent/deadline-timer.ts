/**
 * DeadlineTimer calls back once a deadline has passed. Timers may fire a millisecond before
 * Date.now() reaches their deadline; `pending()` then re-arms the wait instead of losing it.
 */
export class DeadlineTimer {
  private at: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onDue: () => void) {}

  /** set arms the deadline `delayMs` from now, replacing any earlier one. */
  set(delayMs: number): void {
    this.at = Date.now() + delayMs;
    this.arm(delayMs);
  }

  /** armed is true while a deadline is set, passed or not. */
  armed(): boolean {
    return this.at !== undefined;
  }

  /** pending is true while the deadline lies ahead; it keeps the callback armed until then. */
  pending(): boolean {
    if (this.at === undefined || Date.now() >= this.at) return false;
    if (!this.timer) this.arm(this.at - Date.now());
    return true;
  }

  /** clear forgets the deadline and its timer. */
  clear(): void {
    this.at = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = undefined; this.onDue(); }, delayMs);
    this.timer.unref();
  }
}
