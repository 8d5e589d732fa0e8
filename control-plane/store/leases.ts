/**
 * StoreLease is an etcd lease as the rest of the control plane sees it: an id to bind keys to,
 * renewed either by etcd3's background keepalive (leader election) or by explicit keepalives
 * (an agent's heartbeat drives its node lease).
 */
import type { Lease } from 'etcd3';

/** LeaseOptions: keepAlive renews in the background until revoked or released. */
export interface LeaseOptions {
  keepAlive: boolean;
}

/** StoreLease wraps one etcd3 lease without exposing etcd3's types. */
export class StoreLease {
  constructor(private readonly lease: Lease) {}

  /** grant resolves with the lease id once etcd granted it (the same id on every call). */
  async grant(): Promise<string> {
    return String(await this.lease.grant());
  }

  /** keepaliveOnce renews the lease now; rejects when it has expired. */
  async keepaliveOnce(): Promise<void> {
    await this.lease.keepaliveOnce();
  }

  /** revoke ends the lease in etcd, deleting every key bound to it. */
  async revoke(): Promise<void> {
    await this.lease.revoke();
  }

  /** release stops renewing without revoking: the keys live until the TTL runs out. */
  release(): void {
    this.lease.release();
  }

  /** onLost calls fn once when the background keepalive finds the lease gone. */
  onLost(fn: (err: Error) => void): void {
    this.lease.on('lost', fn);
  }
}
