/**
 * Task templates stored once per service revision: a task written with templateRef
 * is stored without its template, which lives once at taskTemplateKey; whoever reads tasks
 * fills it in from there. The watch cache of tasks sees the template keys under the same watch
 * (etcd delivers a template before any task created after it), and every task of a revision
 * shares one frozen template object in memory.
 */
import type { ContainerTemplate, Task, TaskTemplate } from '../objects/types.js';
import { deepFreeze, type CacheJoin } from './cache.js';
import { isTaskKey, TASK_TEMPLATE_KEY, taskTemplateKey } from './keys.js';
import type { Store, WriteOp } from './store.js';

/** templateRefOf is the ref new tasks of a service revision carry. */
export function templateRefOf(serviceUid: string, revision: number): string {
  return `${serviceUid}.${revision}`;
}

/** TaskTemplates maps "<ns>/<service>/<ref>" to its template, as read from etcd; it joins the tasks cache. */
export class TaskTemplates implements CacheJoin<Task> {
  private readonly byKey = new Map<string, ContainerTemplate>();

  /** observe takes one template key's put or delete (key relative to ROOT_PREFIX). */
  observe(key: string, value: unknown): void {
    const m = TASK_TEMPLATE_KEY.exec(key);
    if (!m) return;
    const id = `${m[1]}/${m[2]}/${m[3]}`;
    const template = (value as TaskTemplate | undefined)?.spec?.template;
    if (template) this.byKey.set(id, deepFreeze(template));
    else this.byKey.delete(id);
  }

  /** reset forgets every template (before a full list). */
  reset(): void {
    this.byKey.clear();
  }

  /** has tells whether the template of ref for service ns/service is known. */
  has(ns: string, service: string, ref: string): boolean {
    return this.byKey.has(`${ns}/${service}/${ref}`);
  }

  /** refs lists the stored refs of one service. */
  refs(ns: string, service: string): string[] {
    const prefix = `${ns}/${service}/`;
    return [...this.byKey.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** resolve is hydrate, for the tasks cache. */
  resolve(task: Task): Task | undefined {
    return this.hydrate(task);
  }

  /** accept tells whether key is a task template key (the tasks cache's companion keys). */
  accept(key: string): boolean {
    return TASK_TEMPLATE_KEY.test(key);
  }

  /** hydrate gives a task without its template the stored one; undefined when that is unknown. */
  hydrate(task: Task): Task | undefined {
    if (task.spec.template !== undefined || task.spec.templateRef === undefined) return task;
    const template = this.byKey.get(`${task.metadata.namespace}/${task.spec.service}/${task.spec.templateRef}`);
    if (!template) return undefined;
    return { ...task, spec: { ...task.spec, template } };
  }
}

/** templateCreateOp stores the one copy of a revision's template (create only: a ref's template never changes). */
export function templateCreateOp(ns: string, service: string, ref: string, template: ContainerTemplate): WriteOp {
  const object: TaskTemplate = {
    kind: 'TaskTemplate',
    metadata: { name: ref, namespace: ns, uid: ref, generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: { template },
  };
  return { type: 'create', key: taskTemplateKey(ns, service, ref), object };
}

/**
 * listTasks reads the tasks under prefix straight from etcd with their templates filled in (the
 * API's reads); a task whose template is missing is returned without one rather than dropped.
 */
export async function listTasks(store: Store, prefix: string): Promise<Task[]> {
  const templates = new TaskTemplates();
  const { items, keys } = await store.list<Task | TaskTemplate>(prefix, (k) => isTaskKey(k) || TASK_TEMPLATE_KEY.test(k));
  const tasks: Task[] = [];
  items.forEach((o, i) => {
    if (o.kind === 'TaskTemplate') templates.observe(keys[i]!, o);
    else tasks.push(o);
  });
  return tasks.map((t) => templates.hydrate(t) ?? t);
}
