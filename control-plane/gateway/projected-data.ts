/**
 * The content of Secrets and Configs as agents receive it. Values are opened once per change,
 * when the watch cache delivers it, and kept in this replica's memory only, so building a node's
 * desired set stays synchronous; a session adds exactly the objects its node's tasks project.
 */
import type { DesiredTasks, ObjectData } from '../../proto/gen/berth/v1/agent.js';
import type { Logger } from '../../common/log.js';
import type { Config, Secret } from '../objects/secret-types.js';
import type { WatchCache } from '../store/cache.js';
import { configKey, secretKey } from '../store/keys.js';
import type { SecretSealer } from '../security/secret-sealer.js';

interface Opened {
  resourceVersion: string;
  data: ObjectData;
}

/** ProjectedData mirrors opened Secrets and Configs and tells subscribers when one changes. */
export class ProjectedData {
  private readonly secrets = new Map<string, Opened>();
  private readonly listeners = new Set<(ref: string) => void>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly secretCache: WatchCache<Secret>,
    private readonly configCache: WatchCache<Config>,
    private readonly sealer: SecretSealer | undefined,
    private readonly log: Logger,
  ) {
    this.unsubscribe.push(secretCache.onChange((e) => {
      const s = e.object ?? e.previous;
      if (s) void this.openSecret(s);
    }));
    this.unsubscribe.push(configCache.onChange((e) => {
      const c = e.object ?? e.previous;
      if (c) this.notify(`${c.metadata.namespace}/${c.metadata.name}`);
    }));
    for (const s of secretCache.list()) void this.openSecret(s);
  }

  /** subscribe calls fn with "<ns>/<name>" whenever that Secret's or Config's content changes. */
  subscribe(fn: (ref: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** fill adds to desired the secrets and configs its templates project (those that exist and opened). */
  fill(desired: DesiredTasks): void {
    for (const a of desired.tasks) {
      const tpl = a.template ?? (a.templateRef !== undefined ? desired.templates[a.templateRef] : undefined);
      if (!tpl) continue;
      for (const p of tpl.secrets) {
        const ref = `${a.namespace}/${p.name}`;
        const opened = this.secrets.get(ref);
        if (opened) desired.secrets[ref] = opened.data;
      }
      for (const p of tpl.configs) {
        const ref = `${a.namespace}/${p.name}`;
        const c = this.configCache.get(configKey(a.namespace, p.name));
        if (c) desired.configs[ref] = { generation: c.metadata.generation, data: Object.fromEntries(Object.entries(c.data).map(([k, v]) => [k, Buffer.from(v)])) };
      }
    }
  }

  /** stop ends the cache subscriptions. */
  stop(): void {
    for (const u of this.unsubscribe) u();
    this.listeners.clear();
  }

  private async openSecret(s: Secret): Promise<void> {
    const ns = s.metadata.namespace ?? '';
    const ref = `${ns}/${s.metadata.name}`;
    const key = secretKey(ns, s.metadata.name);
    const current = this.secretCache.get(key);
    if (!current) {
      if (this.secrets.delete(ref)) this.notify(ref);
      return;
    }
    if (this.secrets.get(ref)?.resourceVersion === current.metadata.resourceVersion) return;
    if (!this.sealer) return;
    try {
      const json = JSON.parse((await this.sealer.open(current.spec.sealed, key)).toString('utf8')) as Record<string, string>;
      // A newer version may have arrived while this one was opening: keep only the cache's current one.
      if (this.secretCache.get(key)?.metadata.resourceVersion !== current.metadata.resourceVersion) return;
      const data = Object.fromEntries(Object.entries(json).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
      this.secrets.set(ref, { resourceVersion: current.metadata.resourceVersion!, data: { generation: current.metadata.generation, data } });
      this.notify(ref);
    } catch (err) {
      this.log.error('cannot open a secret for the agents that use it', { secret: ref, error: (err as Error).message });
    }
  }

  private notify(ref: string): void {
    for (const fn of this.listeners) fn(ref);
  }
}
