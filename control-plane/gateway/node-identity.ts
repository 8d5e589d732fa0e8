/**
 * Who is at the other end of a gateway call: the node certificate the TLS layer verified against
 * the cluster CA, checked here for the node organization and for revocation (berth delete node
 * refuses every certificate the node was issued before). Also the join and renewal signers.
 */
import { status, type ServerUnaryCall, type sendUnaryData, type ServerDuplexStream } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { NODE_ORGANIZATION, peerSubject } from '../../common/x509.js';
import type { ClusterInfoRequest, ClusterInfoResponse, JoinRequest, JoinResponse } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';
import { checkDnsLabel } from '../objects/names.js';
import type { NodeRevocation } from '../objects/security-types.js';
import { CLOCK_SKEW_MS, SERVING_DNS_NAME, type ClusterCa } from '../security/pki.js';
import { parseToken, type Tokens } from '../security/tokens.js';
import type { Informers } from '../store/informers.js';
import { nodeLeaseKey, nodeRevocationKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

/** NodeCertificate is a verified node certificate's facts. */
export interface NodeCertificate {
  nodeName: string;
  /** issuedAt is when the CA signed it (notBefore is back-dated by CLOCK_SKEW_MS). */
  issuedAt: Date;
  notAfter: Date;
}

/** Refusal is why a call was turned away: a catalogue code, the gRPC status and a message for the agent's log. */
export interface Refusal {
  code: ErrorCode;
  grpc: status;
  message: string;
}

/** nodeCertificateOf reads the verified peer certificate of a call, or says why there is none. */
export function nodeCertificateOf(peer: PeerCertificate | undefined): NodeCertificate | Refusal {
  if (!peer?.raw) {
    return { code: 'BERTH_ERR_CERTIFICATE_REQUIRED', grpc: status.UNAUTHENTICATED, message: 'no node certificate signed by this cluster\'s CA (expired, foreign or missing): join with a token first' };
  }
  const { commonName: nodeName, organizations } = peerSubject(peer);
  if (!organizations.includes(NODE_ORGANIZATION) || !nodeName) {
    return { code: 'BERTH_ERR_CERTIFICATE_REQUIRED', grpc: status.PERMISSION_DENIED, message: 'the client certificate is not a node certificate' };
  }
  return { nodeName, issuedAt: new Date(Date.parse(peer.valid_from) + CLOCK_SKEW_MS), notAfter: new Date(Date.parse(peer.valid_to)) };
}

/** checkRevocation refuses a certificate issued no later than the node's revocation. */
export async function checkRevocation(store: Store, cert: NodeCertificate): Promise<Refusal | undefined> {
  const r = await store.get<NodeRevocation>(nodeRevocationKey(cert.nodeName));
  if (r && cert.issuedAt.getTime() <= Date.parse(r.spec.revokedAt)) {
    return { code: 'BERTH_ERR_CERTIFICATE_REVOKED', grpc: status.PERMISSION_DENIED, message: `the certificates of node ${cert.nodeName} were revoked at ${r.spec.revokedAt} (the node was deleted): join again with a new token` };
  }
  return undefined;
}

/** JoinDeps is what the join handlers need. */
export interface JoinDeps {
  ca: ClusterCa;
  tokens: Tokens;
  inf: Informers;
  nodeCertTtlMs: number;
  /** refused reports a refused join for the audit log. */
  refused(what: { source: string; node: string; code: string; message: string }): void;
}

/** clusterInfoHandler answers the CA certificate to anyone (it is public; the join token pins it). */
export function clusterInfoHandler(ca: ClusterCa) {
  return (_call: ServerUnaryCall<ClusterInfoRequest, ClusterInfoResponse>, cb: sendUnaryData<ClusterInfoResponse>): void => cb(null, { caCertificate: ca.certificatePem });
}

/** joinHandler signs a node certificate for a valid join token and a well-formed request. */
export function joinHandler(d: JoinDeps) {
  return (call: ServerUnaryCall<JoinRequest, JoinResponse>, cb: sendUnaryData<JoinResponse>): void => {
    const { token, nodeName, csr } = call.request;
    const refuse = (grpc: status, code: string, message: string): void => {
      d.refused({ source: call.getPeer(), node: nodeName, code, message });
      cb({ code: grpc, details: `${code}: ${message}` });
    };
    void (async () => {
      const why = checkDnsLabel(nodeName) ?? (nodeName === SERVING_DNS_NAME ? `"${nodeName}" is reserved for the control plane's certificates` : undefined);
      if (why) return refuse(status.INVALID_ARGUMENT, 'BERTH_ERR_INVALID_NODE_NAME', `node name ${why}`);
      const parsed = parseToken(token);
      if (parsed?.kind === 'join' && parsed.caSha256 !== d.ca.sha256) {
        return refuse(status.UNAUTHENTICATED, 'BERTH_ERR_INVALID_TOKEN', 'the join token was made for another cluster (its CA digest differs)');
      }
      const check = await d.tokens.check(token, 'join');
      if (!check.ok) {
        return refuse(status.UNAUTHENTICATED, 'BERTH_ERR_INVALID_TOKEN', check.reason === 'Expired' ? 'the join token expired' : 'the join token is not valid (unknown, revoked, or not a join token)');
      }
      // A token buys a certificate for a free name only: taking over a connected node's name
      // would let the holder displace that node's session.
      if (d.inf.leases.get(nodeLeaseKey(nodeName))) {
        return refuse(status.ALREADY_EXISTS, 'BERTH_ERR_NODE_NAME_IN_USE', `node ${nodeName} is connected; pick another name, or remove it first (berth delete node ${nodeName})`);
      }
      const signed = await d.ca.signNode(csr, nodeName, d.nodeCertTtlMs);
      if (!signed.ok) return refuse(status.INVALID_ARGUMENT, 'BERTH_ERR_VALIDATION', signed.reason);
      cb(null, { certificate: signed.certificatePem, caCertificate: d.ca.certificatePem });
    })().catch((err: Error) => cb({ code: status.INTERNAL, details: `BERTH_ERR_INTERNAL: ${err.message}` }));
  };
}

/** peerOf is the verified peer certificate of a session call, if the TLS layer has one. */
export function peerOf(call: ServerDuplexStream<unknown, unknown>): PeerCertificate | undefined {
  return call.getAuthContext().sslPeerCertificate;
}
