/**
 * Leader election on etcd: every replica campaigns for ROOT_PREFIX + LEADER_KEY by creating it
 * bound to its own lease (txn: create only if absent). The winner's fencing token is the key's
 * create_revision: controllers write through a store guarded by it, so once the key expires and
 * another replica re-creates it, every write of the old leader fails (store.ts Guard).
 * Leadership is given up at once when the lease is lost, the key is no longer ours, or we have
 * not confirmed ownership for a whole TTL (etcd unreachable).
 */
import { hostname } from 'node:os';
import type { Logger } from '../common/log.js';
import type { StoreLease } from './store/leases.js';
import type { Guard, Store } from './store/store.js';

/** LEADER_KEY is the election key, relative to ROOT_PREFIX (DESIGN.md data model). */
export const LEADER_KEY = 'election/leader';
/** DEFAULT_LEADER_LEASE_TTL_S keeps takeover after a leader's death well under 5 s. */
export const DEFAULT_LEADER_LEASE_TTL_S = 2;
/** ELECTION_POLL_INTERVAL_MS is how often a follower retries and a leader re-confirms its key. */
export const ELECTION_POLL_INTERVAL_MS = 250;
/** ELECTION_RPC_TIMEOUT_MS bounds each election call so a dead etcd cannot stall the loop. */
export const ELECTION_RPC_TIMEOUT_MS = 1_000;

/** LeaderRecord is the value stored at the leader key, for people and tests. */
export interface LeaderRecord {
  identity: string;
  apiUrl?: string;
  since: string;
}

/** ElectionOptions configures one campaigner. */
export interface ElectionOptions {
  /** store is unguarded: campaigning is how a guard is won. */
  store: Store;
  ttlSeconds: number;
  /** identity names this replica in the leader record; defaults to host:pid. */
  identity?: string;
  apiUrl?: string;
  log: Logger;
  /** onElected runs when this replica becomes leader; guard fences its writes. */
  onElected(guard: Guard): Promise<void> | void;
  /** onDeposed runs when leadership ends (also at stop()); it must stop acting at once. */
  onDeposed(): Promise<void> | void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Election is one replica's campaign; start() runs it in the background, stop() resigns. */
export class Election {
  readonly identity: string;
  private lease: StoreLease | undefined;
  private guard: Guard | undefined;
  private confirmedAt = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private transitions: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ElectionOptions) {
    this.identity = opts.identity ?? `${hostname()}:${process.pid}`;
  }

  /** isLeader tells whether this replica currently leads. */
  isLeader(): boolean {
    return this.guard !== undefined;
  }

  /** start begins campaigning; it never throws (etcd errors are retried). */
  start(): void {
    this.loop ??= this.run();
  }

  /** stop resigns (deleting the key if still ours, so a successor need not wait a TTL) and ends the loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    const guard = this.guard;
    await this.depose('stopping');
    await this.transitions;
    if (guard) await this.opts.store.removeIfCreatedAt(guard.key, guard.createRevision).catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
    this.lease = undefined;
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      try {
        await this.tick();
      } catch (err) {
        this.opts.log.warn('election step failed', { err: (err as Error).message });
      }
      // Leadership not re-confirmed for a whole TTL: a successor may already lead.
      if (this.guard && Date.now() - this.confirmedAt > this.opts.ttlSeconds * 1000) await this.depose('leadership not confirmed for a lease TTL');
      await new Promise<void>((r) => {
        const t = setTimeout(r, ELECTION_POLL_INTERVAL_MS);
        this.wake = () => { clearTimeout(t); r(); };
      });
    }
  }

  private async tick(): Promise<void> {
    const { store } = this.opts;
    if (!this.lease) {
      const lease = store.lease(this.opts.ttlSeconds, { keepAlive: true });
      lease.onLost((err) => {
        if (this.lease !== lease) return;
        this.lease = undefined;
        void this.depose(`lease lost: ${err.message}`);
      });
      this.lease = lease;
      await Promise.race([lease.grant(), sleep(ELECTION_RPC_TIMEOUT_MS).then(() => { throw new Error('lease grant timed out'); })])
        .catch((err: unknown) => {
          if (this.lease === lease) this.lease = undefined;
          lease.release();
          throw err;
        });
    }
    const leaseId = await this.lease.grant();
    const started = Date.now();
    const record: LeaderRecord = { identity: this.identity, apiUrl: this.opts.apiUrl, since: new Date().toISOString() };
    const claim = await store.claimLeased(LEADER_KEY, record, leaseId, ELECTION_RPC_TIMEOUT_MS);
    if (claim.claimed) {
      // Our old key vanished (deleted, or expired while we were partitioned): that term is over.
      if (this.guard) await this.depose('the leader key was removed');
      await this.elect({ key: LEADER_KEY, createRevision: claim.createRevision }, started);
      return;
    }
    const holder = claim.holder;
    if (this.guard && holder && holder.createRevision === this.guard.createRevision && holder.leaseId === leaseId) {
      this.confirmedAt = started;
    } else if (this.guard) {
      await this.depose('the leader key is no longer ours');
    } else if (holder && holder.leaseId === leaseId) {
      // Deposed for want of confirmation while the key stayed ours (our lease kept it alive): no
      // one else can have led since, so the same fence is still the right one. Without this the
      // key would block every replica, this one included, for as long as the lease lives.
      await this.elect({ key: LEADER_KEY, createRevision: holder.createRevision }, started);
    }
  }

  private async elect(guard: Guard, at: number): Promise<void> {
    if (this.stopped) return;
    this.guard = guard;
    this.confirmedAt = at;
    this.opts.log.info('elected leader', { identity: this.identity, fence: guard.createRevision });
    this.transitions = this.transitions.then(async () => {
      if (this.guard === guard) await this.opts.onElected(guard);
    }).catch((err) => this.opts.log.error('starting leader duties failed', { err }));
    await this.transitions;
  }

  private async depose(why: string): Promise<void> {
    if (!this.guard) return;
    this.guard = undefined;
    this.opts.log.warn('no longer leader', { identity: this.identity, why });
    this.transitions = this.transitions.then(() => this.opts.onDeposed())
      .catch((err) => this.opts.log.error('stopping leader duties failed', { err }));
    await this.transitions;
  }
}
