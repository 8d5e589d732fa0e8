/**
 * The agent's identity: its own ECDSA key (made here, never sent anywhere), the node certificate
 * the cluster CA signed for it, and the CA it trusts, kept in <state-dir>/pki (0700, files 0600).
 * Joining: fetch the CA from any gateway, accept it only if its digest equals the one the join
 * token pins, then send the token and a certificate request over a connection that trusts only it.
 */
import { credentials, Metadata, type CallOptions, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificateFacts, createCsr, distinguishedName, generateKeyPair, importKeyPair, issuedBy, NODE_ORGANIZATION } from '../common/x509.js';
import { AgentGatewayClient, type ClusterInfoResponse, type JoinResponse } from '../proto/gen/berth/v1/agent.js';
import type { Logger } from '../common/log.js';
import { messageOf } from './errors.js';
import { GATEWAY_TLS_NAME } from '../common/grpc-limits.js';

/** JOIN_CALL_TIMEOUT_MS bounds each ClusterInfo and Join call. */
export const JOIN_CALL_TIMEOUT_MS = 10_000;
/** RENEW_AT_FRACTION of a certificate's lifetime passes before the agent asks for a new one. */
export const RENEW_AT_FRACTION = 2 / 3;

/** JoinToken is the client's view of a join token: the CA digest it pins. */
export interface JoinToken {
  text: string;
  caSha256: string;
}

/** parseJoinToken checks a join token's shape; it throws a message a person can act on. */
export function parseJoinToken(text: string): JoinToken {
  const t = text.trim();
  const m = /^btjoin1\.([0-9a-f]{64})\.[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/.exec(t);
  if (!m) throw new Error('the join token is malformed (expected btjoin1.<ca digest>.<id>.<secret>, as printed by `berth token create --role agent`)');
  return { text: t, caSha256: m[1]! };
}

/** NodePki is the agent's key, certificate and trusted CA. */
export interface NodePki {
  caPem: string;
  keyPem: string;
  certPem: string;
}

function writePrivate(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** NodeIdentity loads, joins for, renews and forgets the node's certificate. */
export class NodeIdentity {
  private readonly dir: string;
  private pki: NodePki | undefined;
  /** receivedAtMs is when the current certificate arrived (node.crt's mtime after a restart). */
  private receivedAtMs = 0;

  constructor(private readonly o: { stateDir: string; nodeName: string; joinToken?: string; log: Logger }) {
    this.dir = join(o.stateDir, 'pki');
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  /** load reads pki/ if it holds a certificate for this node that is still valid; undefined otherwise. */
  load(): NodePki | undefined {
    if (!existsSync(this.path('node.crt'))) return undefined;
    try {
      const pki = { caPem: readFileSync(this.path('ca.crt'), 'utf8'), keyPem: readFileSync(this.path('node.key'), 'utf8'), certPem: readFileSync(this.path('node.crt'), 'utf8') };
      const facts = certificateFacts(pki.certPem);
      if (facts.commonName !== this.o.nodeName) {
        this.o.log.warn('the stored node certificate names another node; ignoring it', { stored: facts.commonName, node: this.o.nodeName });
        return undefined;
      }
      if (facts.notAfter.getTime() <= Date.now()) {
        this.o.log.warn('the stored node certificate expired', { notAfter: facts.notAfter.toISOString() });
        return undefined;
      }
      if (!issuedBy(pki.certPem, pki.caPem)) return undefined;
      this.receivedAtMs = Math.min(statSync(this.path('node.crt')).mtimeMs, Date.now());
      return pki;
    } catch (err) {
      this.o.log.warn('cannot read the stored node certificate', { dir: this.dir, error: messageOf(err) });
      return undefined;
    }
  }

  /** current is the loaded identity, joining through servers with the join token when there is none. */
  async current(servers: string[]): Promise<NodePki> {
    this.pki ??= this.load();
    if (this.pki) return this.pki;
    if (!this.o.joinToken) {
      throw new Error(`no valid node certificate in ${this.dir}: start the agent with --join-token (make one with \`berth token create --role agent\`)`);
    }
    const token = parseJoinToken(this.o.joinToken);
    let lastError = '';
    for (const server of servers) {
      try {
        this.pki = await this.join(server, token);
        return this.pki;
      } catch (err) {
        lastError = `${server}: ${messageOf(err)}`;
        this.o.log.warn('join failed', { server, error: messageOf(err) });
      }
    }
    throw new Error(`cannot join the cluster (${lastError})`);
  }

  /** channel is the mTLS credentials of the current identity. */
  async channel(servers: string[]): Promise<ChannelCredentials> {
    const pki = await this.current(servers);
    return credentials.createSsl(Buffer.from(pki.caPem), Buffer.from(pki.keyPem), Buffer.from(pki.certPem));
  }

  /**
   * renewDueInMs is the time left until RENEW_AT_FRACTION of the certificate's life has passed
   * (<= 0: due). Its life is counted from when this node received it, not from notBefore, which
   * the CA back-dates for clock skew: counted from there, a short-lived certificate would be due
   * again the moment it arrived.
   */
  renewDueInMs(): number {
    if (!this.pki) return Number.POSITIVE_INFINITY;
    const notAfter = certificateFacts(this.pki.certPem).notAfter.getTime();
    return this.receivedAtMs + (notAfter - this.receivedAtMs) * RENEW_AT_FRACTION - Date.now();
  }

  /** renewalRequest is a certificate request signed by the node's existing key. */
  async renewalRequest(): Promise<string> {
    if (!this.pki) throw new Error('no node certificate to renew');
    const key = await importKeyPair(this.pki.keyPem);
    return createCsr(key.keys, distinguishedName(this.o.nodeName, [NODE_ORGANIZATION]));
  }

  /** renewed stores a certificate the gateway signed for the existing key; later connections use it. */
  renewed(certPem: string): void {
    if (!this.pki) return;
    if (!issuedBy(certPem, this.pki.caPem) || certificateFacts(certPem).commonName !== this.o.nodeName) {
      throw new Error('the renewed certificate is not this node\'s or not signed by the cluster CA');
    }
    writePrivate(this.path('node.crt'), certPem);
    this.pki = { ...this.pki, certPem };
    this.receivedAtMs = Date.now();
    this.o.log.info('node certificate renewed', { notAfter: certificateFacts(certPem).notAfter.toISOString() });
  }

  /** forget drops the certificate (revoked or expired); the next connection joins again if a token is configured. */
  forget(): void {
    this.pki = undefined;
    rmSync(this.path('node.crt'), { force: true });
  }

  private async join(server: string, token: JoinToken): Promise<NodePki> {
    // First contact trusts nothing: the CA is taken only if it is the one the token pins, and the
    // token itself is sent only over a connection verified against that CA.
    const open = credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
    const info = new AgentGatewayClient(server, open, { 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
    const caPem = (await unary<ClusterInfoResponse>(info, (o, cb) => info.clusterInfo({}, new Metadata(), o, cb))).caCertificate;
    const digest = certificateFacts(caPem).sha256;
    if (digest !== token.caSha256) {
      throw new Error(`the server presents CA sha256:${digest}, but the join token pins sha256:${token.caSha256}: another cluster, or someone in between`);
    }
    const key = await generateKeyPair();
    const csr = await createCsr(key.keys, distinguishedName(this.o.nodeName, [NODE_ORGANIZATION]));
    const pinned = credentials.createSsl(Buffer.from(caPem));
    const joiner = new AgentGatewayClient(server, pinned, { 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
    const r = await unary<JoinResponse>(joiner, (o, cb) => joiner.join({ token: token.text, nodeName: this.o.nodeName, csr }, new Metadata(), o, cb));
    if (!issuedBy(r.certificate, caPem)) throw new Error('the joined certificate is not signed by the pinned CA');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    writePrivate(this.path('ca.crt'), caPem);
    writePrivate(this.path('node.key'), key.privateKeyPem);
    writePrivate(this.path('node.crt'), r.certificate);
    this.receivedAtMs = Date.now();
    this.o.log.info('joined the cluster', { server, node: this.o.nodeName, ca: `sha256:${digest}`, notAfter: certificateFacts(r.certificate).notAfter.toISOString() });
    return { caPem, keyPem: key.privateKeyPem, certPem: r.certificate };
  }
}

/** unary runs one call with a deadline, then closes the client; a refusal becomes an Error with the server's details. */
function unary<Res>(client: AgentGatewayClient, call: (deadline: CallOptions, cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    call({ deadline: Date.now() + JOIN_CALL_TIMEOUT_MS }, (err, res) => {
      client.close();
      if (err) reject(new Error(err.details || err.message));
      else resolve(res);
    });
  });
}
