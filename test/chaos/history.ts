/**
 * The history: the harness's own read-only mirror of services, tasks and nodes, fed by one etcd
 * watch on /berth/v1/ straight from the members (never through the proxy, never through a
 * control plane), so every revision is seen in order. After each revision the snapshot
 * invariants run; deletions and spec changes are judged against the previous value. The
 * snapshot checks use the same pure functions as the API sampler (invariants.ts).
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { decode } from '../../control-plane/store/codec.js';
import { ROOT_PREFIX, TASK_TEMPLATE_KEY, isNodeKey, isServiceKey, isTaskKey, prefixEnd } from '../../control-plane/store/keys.js';
import { TaskTemplates } from '../../control-plane/store/task-templates.js';
import { checkApiIps, checkCapacity, checkSurge, serviceName, specVersion, taskName, type Snapshot, type SpecVersion, type SurgeBound } from './invariants.js';
import type { Violations } from './violations.js';

type Kind = 'service' | 'task' | 'node' | 'template';

function kindOf(key: string): Kind | undefined {
  if (isTaskKey(key)) return 'task';
  if (TASK_TEMPLATE_KEY.test(key)) return 'template';
  if (isServiceKey(key)) return 'service';
  if (isNodeKey(key)) return 'node';
  return undefined;
}

/** History mirrors etcd and checks the object invariants at every revision. */
export class History {
  private readonly services = new Map<string, Service>();
  private readonly tasks = new Map<string, Task>();
  private readonly nodes = new Map<string, Node>();
  /** templates are the stored task templates; tasks that refer to one are read back with it, as the API does. */
  private readonly templates = new TaskTemplates();
  /** specs holds every generation seen of each service (by uid), for the surge bound. */
  private readonly specs = new Map<string, Map<number, SpecVersion>>();
  private readonly deletedServices = new Set<string>();
  private watcher: Watcher | undefined;
  private stopped = false;
  /** revision is the last etcd revision applied. */
  revision = 0;
  /** revisions counts the revisions checked; gaps counts re-seeds after a lost watch (none expected). */
  revisions = 0;
  gaps = 0;
  /** journal is one line per change of a task, service or node, for the report's artifacts and excerpts. */
  readonly journal: string[] = [];

  constructor(private readonly client: Etcd3, private readonly violations: Violations, private readonly log: (line: string) => void) {}

  /** start reads everything at one revision and watches from the next one on. */
  async start(): Promise<void> {
    await this.seed();
  }

  /** stop cancels the watch. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher?.cancel().catch(() => undefined);
  }

  /** snapshot is the mirror as of `revision`, tasks with their templates filled in. */
  snapshot(): Snapshot {
    const tasks = [...this.tasks.values()].map((t) => this.templates.hydrate(t) ?? t);
    return { services: [...this.services.values()], tasks, nodes: [...this.nodes.values()] };
  }

  /** surgeBound is the bound of invariants.ts from every generation seen of each service. */
  readonly surgeBound: SurgeBound = (svc) => this.boundBetween(svc, svc.status?.observedGeneration ?? 1);

  /**
   * boundBetween is the largest replicas + maxSurge over generations lo..svc's current one, or
   * undefined when one of them was never seen (written before the history started, or not yet
   * delivered to it).
   */
  boundBetween(svc: Service, lo: number): { allowed: number; detail: string } | undefined {
    const versions = this.specs.get(svc.metadata.uid);
    const hi = svc.metadata.generation;
    let allowed = -1;
    const parts: string[] = [];
    for (let g = Math.max(1, lo); g <= hi; g++) {
      const v = g === hi ? specVersion(svc) : versions?.get(g);
      if (!v) return undefined;
      allowed = Math.max(allowed, v.replicas + v.maxSurge);
      parts.push(`gen ${g}: ${v.replicas}+${v.maxSurge}`);
    }
    return { allowed, detail: `observedGeneration ${svc.status?.observedGeneration ?? 'none'}, ${parts.join(', ')}` };
  }

  /** taskByUid indexes the mirror's tasks by uid (= container id on the node). */
  taskByUid(): Map<string, Task> {
    return new Map([...this.tasks.values()].map((t) => [t.metadata.uid, t]));
  }

  /** desiredOn is the set of task uids desired running on node. */
  desiredOn(node: string): Set<string> {
    const out = new Set<string>();
    for (const t of this.tasks.values()) if (t.spec.nodeName === node && t.spec.desiredState === 'running') out.add(t.metadata.uid);
    return out;
  }

  private async seed(): Promise<void> {
    const prefix = Buffer.from(ROOT_PREFIX);
    const res = await this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix) });
    this.services.clear();
    this.tasks.clear();
    this.nodes.clear();
    this.templates.reset();
    for (const kv of res.kvs) this.put(kv.key.toString().slice(ROOT_PREFIX.length), kv, Number(kv.mod_revision), false);
    this.revision = Number(res.header.revision);
    this.checkSnapshot();
    const w = await this.client.watch().prefix(ROOT_PREFIX).startRevision(String(this.revision + 1)).create();
    this.watcher = w;
    w.on('data', (r: IWatchResponse) => this.apply(r));
    w.on('error', (err: Error) => void this.reseed(err));
  }

  // reseed replaces a watch etcd ended (compacted past us, which the harness never does on purpose).
  private async reseed(err: Error): Promise<void> {
    if (this.stopped) return;
    this.gaps++;
    this.log(`history: watch lost at revision ${this.revision} (${err.message}); reading everything again — deletions in the gap are not judged`);
    await this.watcher?.cancel().catch(() => undefined);
    for (let attempt = 0; attempt < 20 && !this.stopped; attempt++) {
      try {
        await this.seed();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private apply(res: IWatchResponse): void {
    let current = -1;
    for (const e of res.events) {
      const rev = Number(e.kv.mod_revision);
      if (current !== -1 && rev !== current) this.checkSnapshot();
      current = rev;
      const key = e.kv.key.toString().slice(ROOT_PREFIX.length);
      if (e.type === 'Put') this.put(key, e.kv, rev, true);
      else this.remove(key, rev);
      this.revision = rev;
    }
    if (current !== -1) this.checkSnapshot();
    this.revision = Math.max(this.revision, Number(res.header.revision));
  }

  private put(key: string, kv: Parameters<typeof decode>[0], revision: number, judge: boolean): void {
    const kind = kindOf(key);
    if (!kind) return;
    const obj = decode<Service | Task | Node>(kv);
    if (kind === 'template') {
      this.templates.observe(key, obj);
      this.journal.push(`${new Date().toISOString()} @${revision} ${judge ? 'put' : 'seed'} ${key} ${obj ? 'template' : 'undecodable'}`);
      return;
    }
    // Only well-formed objects of the expected kind (marker keys and the like are not objects).
    if (!obj || !obj.spec || obj.kind !== { task: 'Task', node: 'Node', service: 'Service' }[kind]) return;
    if (kind === 'task') this.tasks.set(key, obj as Task);
    else if (kind === 'node') this.nodes.set(key, obj as Node);
    else this.putService(key, obj as Service, revision, judge);
    this.note(revision, judge ? 'put' : 'seed', key, obj);
  }

  private putService(key: string, svc: Service, revision: number, judge: boolean): void {
    const prev = this.services.get(key);
    this.services.set(key, svc);
    let versions = this.specs.get(svc.metadata.uid);
    if (!versions) this.specs.set(svc.metadata.uid, (versions = new Map()));
    versions.set(svc.metadata.generation, specVersion(svc));
    if (!judge) return;
    this.violations.checked('acked-write-lost');
    if (this.deletedServices.has(svc.metadata.uid)) {
      this.violations.add({ invariant: 'acked-write-lost', source: 'etcd-history', objects: [`service ${serviceName(svc)} uid ${svc.metadata.uid}`],
        message: `a deleted service came back at revision ${revision}` });
    }
    if (prev && prev.metadata.uid === svc.metadata.uid && svc.metadata.generation < prev.metadata.generation) {
      this.violations.add({ invariant: 'acked-write-lost', source: 'etcd-history', objects: [`service ${serviceName(svc)} uid ${svc.metadata.uid}`],
        message: `generation went back from ${prev.metadata.generation} to ${svc.metadata.generation} at revision ${revision}` });
    }
  }

  // note journals one change in a line a person can grep for a task, service, node, uid or address.
  private note(revision: number, what: string, key: string, obj: Service | Task | Node | undefined): void {
    let detail = '';
    if (obj?.kind === 'Task') {
      const t = obj;
      detail = `uid ${t.metadata.uid} node ${t.spec.nodeName || '-'} desired ${t.spec.desiredState} phase ${t.status.phase} rev ${t.spec.revision} ip ${t.status.ip ?? '-'}${t.status.reason ? ` reason ${t.status.reason}` : ''}`;
    } else if (obj?.kind === 'Service') {
      const s = obj;
      detail = `uid ${s.metadata.uid} gen ${s.metadata.generation} replicas ${s.spec.replicas} observed ${s.status?.observedGeneration ?? '-'} running ${s.status?.runningReplicas ?? '-'}`;
    } else if (obj?.kind === 'Node') {
      detail = `ready ${obj.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? '-'} subnet ${obj.status?.subnet ?? '-'}`;
    }
    this.journal.push(`${new Date().toISOString()} @${revision} ${what} ${key} ${detail}`);
  }

  private remove(key: string, revision: number): void {
    const kind = kindOf(key);
    if (kind) this.note(revision, 'delete', key, undefined);
    if (kind === 'template') this.templates.observe(key, undefined);
    if (kind === 'task') {
      const t = this.tasks.get(key);
      this.tasks.delete(key);
      this.violations.checked('desired-task-lost');
      if (t && t.spec.desiredState === 'running') {
        this.violations.add({ invariant: 'desired-task-lost', source: 'etcd-history',
          objects: [`task ${taskName(t)} uid ${t.metadata.uid}`, `service ${t.metadata.namespace}/${t.spec.service}`, `node ${t.spec.nodeName || '(none)'}`],
          message: `deleted at revision ${revision} while desired running (phase ${t.status.phase})` });
      }
    } else if (kind === 'service') {
      const s = this.services.get(key);
      this.services.delete(key);
      if (s) this.deletedServices.add(s.metadata.uid);
    } else if (kind === 'node') {
      this.nodes.delete(key);
    }
  }

  private checkSnapshot(): void {
    const snap = this.snapshot();
    const source = `etcd-history@${this.revision}`;
    const [surge, surgeChecks] = checkSurge(snap, this.surgeBound, source);
    const [capacity, capacityChecks] = checkCapacity(snap, source);
    const ips = checkApiIps(snap, source);
    for (const v of [...surge, ...capacity, ...ips]) this.violations.add(v);
    this.violations.checked('surge', surgeChecks);
    this.violations.checked('capacity', capacityChecks);
    this.violations.checked('ip-unique-api');
    this.revisions++;
  }
}
