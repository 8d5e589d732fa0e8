/**
 * The replica certificate: each control-plane replica signs itself a client certificate with the
 * cluster CA (O = berth:control-plane) to call other replicas' relay (gateway/replica-relay*.ts),
 * and re-issues it at two thirds of its life. It is kept in memory only: a restarted replica
 * signs a new one.
 */
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from '../../common/log.js';
import { peerSubject } from '../../common/x509.js';
import { REPLICA_ORGANIZATION, type ClusterCa, type IssuedCertificate } from './pki.js';

/** REPLICA_CERT_VALIDITY_MS is a replica certificate's lifetime. */
export const REPLICA_CERT_VALIDITY_MS = 7 * 24 * 3600_000;
const RETRY_ISSUE_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** isReplicaPeer tells whether a verified peer certificate is a replica certificate. */
export function isReplicaPeer(peer: PeerCertificate | undefined): boolean {
  if (!peer?.raw) return false;
  const { commonName, organizations } = peerSubject(peer);
  return !!commonName && organizations.includes(REPLICA_ORGANIZATION);
}

/** ReplicaCertificate holds the replica's current client certificate and its channel credentials. */
export class ReplicaCertificate {
  private current: IssuedCertificate;
  private creds: ChannelCredentials;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly ca: ClusterCa, readonly name: string, first: IssuedCertificate, private readonly log: Logger) {
    this.current = first;
    this.creds = this.build();
  }

  /** issue signs the first certificate for replica name and schedules its renewals. */
  static async issue(ca: ClusterCa, name: string, log: Logger): Promise<ReplicaCertificate> {
    const r = new ReplicaCertificate(ca, name, await ca.issueReplica(name, REPLICA_CERT_VALIDITY_MS), log);
    r.schedule(REPLICA_CERT_VALIDITY_MS * 2 / 3);
    return r;
  }

  /** credentials are the mTLS credentials of a relay call (the CA, this certificate and its key). */
  get credentials(): ChannelCredentials {
    return this.creds;
  }

  /** stop cancels renewals. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private build(): ChannelCredentials {
    return credentials.createSsl(Buffer.from(this.ca.certificatePem), Buffer.from(this.current.privateKeyPem!), Buffer.from(this.current.certificatePem));
  }

  private schedule(inMs: number): void {
    this.timer = setTimeout(() => {
      this.ca.issueReplica(this.name, REPLICA_CERT_VALIDITY_MS).then((c) => {
        this.current = c;
        this.creds = this.build();
        this.schedule(REPLICA_CERT_VALIDITY_MS * 2 / 3);
      }, (err: unknown) => {
        this.log.warn('replica certificate not re-issued; retrying', { error: (err as Error).message });
        this.schedule(RETRY_ISSUE_MS);
      });
    }, Math.min(Math.max(inMs, 0), MAX_TIMER_MS));
    this.timer.unref();
  }
}
