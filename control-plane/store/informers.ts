/**
 * Informers are the shared watch caches of services, tasks, nodes and node leases. Every
 * control-plane replica runs them (the gateway needs tasks and nodes); controllers reuse them.
 */
import type { Logger } from '../../common/log.js';
import type { Node, Service, Task } from '../objects/types.js';
import { WatchCache } from './cache.js';
import { isConfigKey, isNodeKey, isNodeLeaseKey, isSecretKey, isServiceKey, isTaskKey, isTokenKey } from './keys.js';
import type { Config, Secret } from '../objects/secret-types.js';
import type { Token } from '../objects/security-types.js';
import type { Store } from './store.js';
import { TaskTemplates } from './task-templates.js';

/** NodeLease is the value stored at leases/nodes/<name>. */
export interface NodeLease {
  nodeName: string;
  sessionId: string;
  connectedAt: string;
  /** relay is the ReplicaRelay address (host:port) of the replica holding the session; absent: none. */
  relay?: string;
}

/** TASKS_BY_NODE indexes tasks by spec.nodeName ("" for unplaced tasks). */
export const TASKS_BY_NODE = 'node';
/** TASKS_BY_SERVICE indexes tasks by "<ns>/<service>". */
export const TASKS_BY_SERVICE = 'service';
/** TASKS_BY_NAME indexes tasks by "<ns>/<name>" (task names are unique per namespace). */
export const TASKS_BY_NAME = 'name';

/** Informers holds the caches; stop() cancels their watches. */
export interface Informers {
  services: WatchCache<Service>;
  tasks: WatchCache<Task>;
  /** templates holds the one copy of each revision's template that tasks refer to (joined to tasks). */
  templates: TaskTemplates;
  nodes: WatchCache<Node>;
  leases: WatchCache<NodeLease>;
  /** tokens mirrors API and join tokens (hashes only) so authentication never waits on etcd. */
  tokens: WatchCache<Token>;
  /** secrets mirrors Secrets (values sealed); the gateway opens those its nodes' tasks use. */
  secrets: WatchCache<Secret>;
  /** configs mirrors Configs; the service controller reads generations of both to roll services. */
  configs: WatchCache<Config>;
  stop(): Promise<void>;
}

/** startInformers lists and watches everything the control plane mirrors. */
export async function startInformers(store: Store, log: Logger): Promise<Informers> {
  const services = new WatchCache<Service>(store, 'services/', isServiceKey, log);
  const tasks = new WatchCache<Task>(store, 'tasks/', isTaskKey, log);
  const templates = new TaskTemplates();
  const nodes = new WatchCache<Node>(store, 'nodes/', isNodeKey, log);
  const leases = new WatchCache<NodeLease>(store, 'leases/nodes/', isNodeLeaseKey, log);
  const tokens = new WatchCache<Token>(store, 'tokens/', isTokenKey, log);
  const secrets = new WatchCache<Secret>(store, 'secrets/', isSecretKey, log);
  const configs = new WatchCache<Config>(store, 'configs/', isConfigKey, log);
  tasks.setJoin(templates);
  tasks.addIndex(TASKS_BY_NODE, (t) => [t.spec.nodeName]);
  tasks.addIndex(TASKS_BY_SERVICE, (t) => [`${t.metadata.namespace}/${t.spec.service}`]);
  tasks.addIndex(TASKS_BY_NAME, (t) => [`${t.metadata.namespace}/${t.metadata.name}`]);
  const all = [services, tasks, nodes, leases, tokens, secrets, configs];
  await Promise.all(all.map((c) => c.start()));
  return { services, tasks, templates, nodes, leases, tokens, secrets, configs, stop: async () => { await Promise.all(all.map((c) => c.stop())); } };
}
