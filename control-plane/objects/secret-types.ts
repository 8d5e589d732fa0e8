/**
 * Secrets and configs: named sets of keys a template projects into its containers as files.
 * A Secret's values are sealed in etcd (security/secret-sealer.ts) and leave the control plane
 * only towards agents that run a task using them, or to an operator who asks to reveal them.
 */
import type { ObjectMeta } from './types.js';

/** SecretSpec is what etcd holds for a Secret: every value sealed together, and each key's size. */
export interface SecretSpec {
  /** sealed is the JSON object { key: base64 value } sealed with the secrets keyring. */
  sealed: string;
  /** sizes is each key's value size in bytes (shown without revealing anything else). */
  sizes: Record<string, number>;
}

/** Secret is stored at /berth/v1/secrets/<ns>/<name>; metadata.generation counts value changes. */
export interface Secret {
  kind: 'Secret';
  metadata: ObjectMeta;
  spec: SecretSpec;
  status: Record<string, never>;
}

/** SecretView is a Secret as the API shows it: sizes always, data (base64) only when revealed. */
export interface SecretView {
  kind: 'Secret';
  metadata: ObjectMeta;
  sizes: Record<string, number>;
  data?: Record<string, string>;
}

/** Config is stored at /berth/v1/configs/<ns>/<name>: plain text values, readable by every role. */
export interface Config {
  kind: 'Config';
  metadata: ObjectMeta;
  data: Record<string, string>;
}

/** ProjectedRef names one Secret or Config a template uses. */
export interface ProjectedRef {
  kind: 'Secret' | 'Config';
  namespace: string;
  name: string;
}

/**
 * SecretKey is one data key that seals Secrets, stored at /berth/v1/secretkeys/<id> sealed with
 * the sealing key file (envelope encryption): every replica holding that file opens it, so
 * rotating the data key needs no file copied between hosts. The newest is the one that seals.
 */
export interface SecretKey {
  kind: 'SecretKey';
  metadata: ObjectMeta;
  spec: { sealedKey: string };
  status: Record<string, never>;
}
