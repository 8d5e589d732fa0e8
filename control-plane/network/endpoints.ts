/**
 * Endpoints: every service's ready replicas, as agents need them for DNS and the routing mesh.
 * The set is computed once per burst of changes and shared by all gateway sessions (a cluster
 * with 100k tasks must not recompute it per agent), then each session sends it when it differs
 * from what that session last sent.
 */
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import type { Service, Task } from '../objects/types.js';
import type { Informers } from '../store/informers.js';

/** ENDPOINTS_DEBOUNCE_MS coalesces a burst of task and service changes into one recomputation. */
export const ENDPOINTS_DEBOUNCE_MS = 20;

/** isEndpoint says whether a task serves traffic: meant to run, running, passing its check, addressed. */
export function isEndpoint(t: Task | undefined): boolean {
  return t !== undefined && t.spec.desiredState === 'running' && t.status.phase === 'running' && t.status.ready === true && !!t.status.ip;
}

/** endpointsOf lists every service (sorted by namespace, name) with its ready replicas' addresses; a service with none has ips []. */
export function endpointsOf(services: readonly Service[], tasks: readonly Task[]): ServiceEndpoints[] {
  const ips = new Map<string, string[]>();
  for (const t of tasks) {
    if (!isEndpoint(t)) continue;
    const key = `${t.metadata.namespace ?? ''}/${t.spec.service}`;
    const list = ips.get(key);
    if (list) list.push(t.status.ip!);
    else ips.set(key, [t.status.ip!]);
  }
  return services
    .map((s): ServiceEndpoints => {
      const namespace = s.metadata.namespace ?? '';
      return {
        namespace,
        service: s.metadata.name,
        ips: [...new Set(ips.get(`${namespace}/${s.metadata.name}`) ?? [])].sort(compareIPv4),
        ports: (s.spec.template.ports ?? []).map((p) => ({
          name: p.name ?? '', containerPort: p.containerPort, hostPort: p.hostPort ?? 0, protocol: p.protocol, mode: p.mode ?? 'host',
        })),
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.service.localeCompare(b.service));
}

/** compareIPv4 orders dotted quads numerically (10.244.0.9 before 10.244.0.10); other strings by text. */
export function compareIPv4(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  if (pa.length !== 4 || pb.length !== 4 || [...pa, ...pb].some((n) => !Number.isInteger(n))) return a.localeCompare(b);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** EndpointsSnapshot is one computed set and its JSON encoding (sessions compare encodings, not objects). */
export interface EndpointsSnapshot {
  services: ServiceEndpoints[];
  encoded: string;
}

/** EndpointsFeed watches the informers while anyone listens and tells listeners each new set. */
export class EndpointsFeed {
  private listeners = new Set<(s: EndpointsSnapshot) => void>();
  private snapshot: EndpointsSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;

  constructor(private readonly inf: Pick<Informers, 'services' | 'tasks'>, private readonly debounceMs = ENDPOINTS_DEBOUNCE_MS) {}

  /** subscribe calls fn with the current set at once and then with every changed set; returns the unsubscribe function. */
  subscribe(fn: (s: EndpointsSnapshot) => void): () => void {
    if (this.listeners.size === 0) this.watch();
    this.listeners.add(fn);
    fn(this.current());
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.unwatchAll();
    };
  }

  /** current is the set as of the last recomputation (computed now if there was none). */
  current(): EndpointsSnapshot {
    this.snapshot ??= this.compute();
    return this.snapshot;
  }

  private compute(): EndpointsSnapshot {
    const services = endpointsOf(this.inf.services.list(), this.inf.tasks.list());
    return { services, encoded: JSON.stringify(services) };
  }

  private watch(): void {
    const offTasks = this.inf.tasks.onChange((e) => {
      // Most task writes (scheduling, pulls, restarts) do not touch any endpoint; skip those.
      if (isEndpoint(e.object) || isEndpoint(e.previous)) this.schedule();
    });
    const offServices = this.inf.services.onChange(() => this.schedule());
    this.snapshot = undefined;
    this.unwatch = () => {
      offTasks();
      offServices();
    };
  }

  private unwatchAll(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // Without a watch the snapshot could go stale; drop it so the next subscriber recomputes.
    this.snapshot = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const next = this.compute();
      if (next.encoded === this.snapshot?.encoded) return;
      this.snapshot = next;
      for (const fn of [...this.listeners]) fn(next);
    }, this.debounceMs);
  }
}
