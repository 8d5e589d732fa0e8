/**
 * A service's effective template: its spec.template with the generation of every Secret and
 * Config it projects written into the projection. Revisions are made of effective templates, so
 * changing a secret's value makes a new revision and the service rolls through its update
 * strategy like after any template change; no task keeps an old value unknowingly.
 */
import type { Config, Secret } from '../objects/secret-types.js';
import type { ContainerTemplate, FileProjection, Service } from '../objects/types.js';
import type { WatchCache } from '../store/cache.js';
import { configKey, secretKey } from '../store/keys.js';

/** InputCaches are the mirrors the generations are read from. */
export interface InputCaches {
  secrets: WatchCache<Secret>;
  configs: WatchCache<Config>;
}

const projects = (t: ContainerTemplate): boolean => (t.secrets?.length ?? 0) > 0 || (t.configs?.length ?? 0) > 0;

/**
 * effectiveService returns svc with its effective template (a copy; svc itself when it projects
 * nothing). A missing object counts as generation 0, so its creation rolls the service too.
 */
export function effectiveService(svc: Service, caches: InputCaches): Service {
  const t = svc.spec.template;
  if (!projects(t)) return svc;
  const ns = svc.metadata.namespace ?? '';
  const withGen = (list: FileProjection[] | undefined, gen: (name: string) => number): FileProjection[] | undefined =>
    list?.map((p) => ({ ...p, generation: gen(p.name) }));
  const template: ContainerTemplate = { ...t };
  const secrets = withGen(t.secrets, (n) => caches.secrets.get(secretKey(ns, n))?.metadata.generation ?? 0);
  const configs = withGen(t.configs, (n) => caches.configs.get(configKey(ns, n))?.metadata.generation ?? 0);
  if (secrets) template.secrets = secrets;
  if (configs) template.configs = configs;
  return { ...svc, spec: { ...svc.spec, template } };
}

/** userTemplate strips the generations effectiveService adds (a rollback writes it back to spec). */
export function userTemplate(t: ContainerTemplate): ContainerTemplate {
  if (!projects(t)) return structuredClone(t);
  const strip = (list: FileProjection[] | undefined): FileProjection[] | undefined => list?.map(({ generation: _g, ...p }) => p);
  const out = structuredClone(t);
  const secrets = strip(out.secrets);
  const configs = strip(out.configs);
  if (secrets) out.secrets = secrets;
  if (configs) out.configs = configs;
  return out;
}

/** servicesUsing lists the "<ns>/<name>" keys of services in ns that project kind/name. */
export function servicesUsing(services: readonly Service[], ns: string, kind: 'secrets' | 'configs', name: string): string[] {
  return services.filter((s) => s.metadata.namespace === ns && (s.spec.template[kind] ?? []).some((p) => p.name === name))
    .map((s) => `${ns}/${s.metadata.name}`);
}
