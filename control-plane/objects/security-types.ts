/** Stored objects of the security layer: the cluster CA, API and join tokens, node revocations. */
import type { ObjectMeta } from './types.js';
import type { TokenRole } from '../security/identity.js';

/** ClusterCa is the cluster's certificate authority; its private key is sealed (security/sealing-key.ts). */
export interface ClusterCa {
  kind: 'ClusterCA';
  metadata: ObjectMeta;
  spec: {
    /** certificate is the CA certificate (PEM), the trust root of every berth TLS connection. */
    certificate: string;
    /** sealedKey is the CA's PKCS#8 private key sealed with the control plane's sealing key. */
    sealedKey: string;
  };
  status: Record<string, never>;
}

/** Token is a bearer or join token; only a hash of its secret is stored. metadata.name is the public id. */
export interface Token {
  kind: 'Token';
  metadata: ObjectMeta;
  spec: {
    /** displayName is a person's label for the token (who or what uses it). */
    displayName: string;
    role: TokenRole;
    /** namespaces limits the token; ["*"] means all. Join tokens carry none. */
    namespaces: string[];
    /** secretSha256 is the hex SHA-256 of the token's secret part. */
    secretSha256: string;
    expiresAt?: string;
    description?: string;
    createdBy: string;
  };
  status: Record<string, never>;
}

/** NodeRevocation refuses every certificate of a node issued before revokedAt (berth delete node). */
export interface NodeRevocation {
  kind: 'NodeRevocation';
  metadata: ObjectMeta;
  spec: { revokedAt: string; revokedBy: string };
  status: Record<string, never>;
}
