/**
 * Sealing Secret values at rest: envelope encryption. Data keys (32 random bytes each) live in
 * etcd under secretkeys/<id>, sealed with the sealing key file every control-plane replica holds;
 * Secret values are sealed with the newest data key (AES-256-GCM, the key id in every value, the
 * etcd key as authenticated context). Rotation makes a new data key and re-seals every Secret
 * with it, online, on any replica: the others open the new key from etcd with the file they have.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import type { Secret, SecretKey } from '../objects/secret-types.js';
import { isSecretKey, isSecretKeyKey, secretKeyKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { SEALING_KEY_BYTES, seal, sealedKeyId, unseal, type SealingKey } from './sealing-key.js';

/** ROTATE_ATTEMPTS bounds the re-seal retries of one Secret that keeps changing under us. */
const ROTATE_ATTEMPTS = 8;

/** Rotation is what rotate() did: the new key's id, the Secrets re-sealed and those that failed. */
export interface Rotation {
  keyId: string;
  resealed: number;
  failed: string[];
}

/** SecretSealer seals and opens Secret values; one per replica, data keys cached in memory. */
export class SecretSealer {
  private readonly keys = new Map<string, { key: SealingKey; createdAt: string }>();

  constructor(private readonly store: Store, private readonly fileKey: SealingKey, private readonly log: Logger) {}

  /** seal seals plaintext for the etcd key context with the newest data key (made on first use). */
  async seal(plaintext: Buffer, context: string): Promise<string> {
    return seal(await this.primary(), plaintext, context);
  }

  /** open opens a value sealed by any replica; it throws naming the key id when none opens it. */
  async open(sealed: string, context: string): Promise<Buffer> {
    const id = sealedKeyId(sealed);
    if (id !== undefined && !this.keys.has(id)) await this.load();
    return unseal([...this.keys.values()].map((k) => k.key), sealed, context);
  }

  /** rotate makes a new data key and re-seals every Secret with it; Secrets that fail are listed. */
  async rotate(): Promise<Rotation> {
    const key = await this.create();
    const { items, keys } = await this.store.list<Secret>('secrets/', isSecretKey);
    let resealed = 0;
    const failed: string[] = [];
    for (const [i, secret] of items.entries()) {
      const etcdKey = keys[i]!;
      let done = false;
      for (let attempt = 0; attempt < ROTATE_ATTEMPTS && !done; attempt++) {
        const cur = attempt === 0 ? secret : await this.store.get<Secret>(etcdKey);
        if (!cur) { done = true; break; }
        if (sealedKeyId(cur.spec.sealed) === key.id) { done = true; break; }
        let plain: Buffer;
        try {
          plain = await this.open(cur.spec.sealed, etcdKey);
        } catch (err) {
          this.log.error('cannot open a secret to re-seal it', { secret: etcdKey, error: (err as Error).message });
          break;
        }
        const next: Secret = { ...cur, spec: { ...cur.spec, sealed: seal(key, plain, etcdKey) } };
        const r = await this.store.update(etcdKey, next, cur.metadata.resourceVersion!);
        if (r.ok) { resealed++; done = true; }
      }
      if (!done) failed.push(etcdKey.slice('secrets/'.length));
    }
    this.log.info('rotated the secrets data key', { keyId: key.id, resealed, failed: failed.length });
    return { keyId: key.id, resealed, failed };
  }

  /** primary is the newest data key in etcd, made when there is none. */
  private async primary(): Promise<SealingKey> {
    if (this.keys.size === 0) await this.load();
    const newest = this.newest();
    return newest ?? (await this.create());
  }

  private newest(): SealingKey | undefined {
    let best: { key: SealingKey; createdAt: string } | undefined;
    for (const k of this.keys.values()) if (!best || k.createdAt > best.createdAt || (k.createdAt === best.createdAt && k.key.id > best.key.id)) best = k;
    return best?.key;
  }

  /** load reads every data key from etcd (a rotation on another replica adds one). */
  private async load(): Promise<void> {
    const { items, keys } = await this.store.list<SecretKey>('secretkeys/', isSecretKeyKey);
    for (const [i, k] of items.entries()) {
      const id = k.metadata.name;
      if (this.keys.has(id)) continue;
      const bytes = unseal([this.fileKey], k.spec.sealedKey, keys[i]!);
      this.keys.set(id, { key: { id, key: bytes }, createdAt: k.metadata.createdAt });
    }
  }

  private async create(): Promise<SealingKey> {
    const bytes = randomBytes(SEALING_KEY_BYTES);
    // The id is random rather than a digest of the key, so nothing about the key is public.
    const id = randomUUID().replace(/-/g, '').slice(0, 16);
    const createdAt = new Date().toISOString();
    const etcdKey = secretKeyKey(id);
    const obj: SecretKey = {
      kind: 'SecretKey',
      metadata: { name: id, uid: randomUUID(), generation: 1, labels: {}, createdAt },
      spec: { sealedKey: seal(this.fileKey, bytes, etcdKey) },
      status: {},
    };
    const r = await this.store.create(etcdKey, obj);
    if (!r.ok) throw new Error(`cannot store a new secrets data key: ${r.reason}`);
    this.keys.set(id, { key: { id, key: bytes }, createdAt });
    return { id, key: bytes };
  }
}
