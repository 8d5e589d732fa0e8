/** The etcd key layout (DESIGN.md "Data model"). Keys in code are relative to ROOT_PREFIX. */
import { BerthError } from '../errors.js';

/** ROOT_PREFIX is where every berth key lives in etcd. */
export const ROOT_PREFIX = '/berth/v1/';

/**
 * seg returns s when it can be one key segment. A "/" in a name would address another object
 * (a service named "db/revisions/1" is a revision's key): the API refuses such names, and this
 * throws for any that slips past it, so no caller can build such a key.
 */
function seg(s: string, what: string): string {
  if (s === '' || s.includes('/')) throw new BerthError('BERTH_ERR_INTERNAL', `${what} ${JSON.stringify(s)} cannot be an etcd key segment: it is empty or contains "/"`);
  return s;
}

/** serviceKey is services/<ns>/<name>. */
export const serviceKey = (ns: string, name: string): string => `services/${seg(ns, 'namespace')}/${seg(name, 'service name')}`;
/** taskKey is tasks/<ns>/<service>/<name>. */
export const taskKey = (ns: string, service: string, name: string): string =>
  `tasks/${seg(ns, 'namespace')}/${seg(service, 'service name')}/${seg(name, 'task name')}`;
/** nodeKey is nodes/<name>. */
export const nodeKey = (name: string): string => `nodes/${seg(name, 'node name')}`;
/** namespaceKey is namespaces/<name> (a Namespace object; a namespace's services live under services/<name>/). */
export const namespaceKey = (name: string): string => `namespaces/${seg(name, 'namespace')}`;
/** nodeLeaseKey is leases/nodes/<name>, bound to the node's heartbeat lease. */
export const nodeLeaseKey = (name: string): string => `leases/nodes/${seg(name, 'node name')}`;

/**
 * taskTemplateKey is tasks/<ns>/<service>/~templates/<ref>: the one stored copy of a template its
 * tasks refer to (ref is "<service uid>.<revision>"). It sits beside the tasks, under the same
 * watch, so etcd delivers it before any task that refers to it.
 */
export const taskTemplateKey = (ns: string, service: string, ref: string): string =>
  `tasks/${seg(ns, 'namespace')}/${seg(service, 'service name')}/~templates/${seg(ref, 'template ref')}`;
/** TASK_TEMPLATE_KEY matches a task template key: namespace, service, ref. */
export const TASK_TEMPLATE_KEY = /^tasks\/([^/]+)\/([^/]+)\/~templates\/([^/]+)$/;
/** isTaskTemplateKey accepts tasks/<ns>/<service>/~templates/<ref>. */
export const isTaskTemplateKey = (key: string): boolean => TASK_TEMPLATE_KEY.test(key);

/** isServiceKey accepts services/<ns>/<name> but not its revisions/ children. */
export const isServiceKey = (key: string): boolean => /^services\/[^/]+\/[^/]+$/.test(key);
/** isTaskKey accepts tasks/<ns>/<service>/<name>. */
export const isTaskKey = (key: string): boolean => /^tasks\/[^/]+\/[^/]+\/[^/]+$/.test(key);
/** isNodeKey accepts nodes/<name>. */
export const isNodeKey = (key: string): boolean => /^nodes\/[^/]+$/.test(key);
/** isNamespaceKey accepts namespaces/<name>. */
export const isNamespaceKey = (key: string): boolean => /^namespaces\/[^/]+$/.test(key);
/** isNodeLeaseKey accepts leases/nodes/<name>. */
export const isNodeLeaseKey = (key: string): boolean => /^leases\/nodes\/[^/]+$/.test(key);

/** secretKey is secrets/<ns>/<name> (a Secret; its values sealed, security/secret-sealer.ts). */
export const secretKey = (ns: string, name: string): string => `secrets/${seg(ns, 'namespace')}/${seg(name, 'secret name')}`;
/** configKey is configs/<ns>/<name>. */
export const configKey = (ns: string, name: string): string => `configs/${seg(ns, 'namespace')}/${seg(name, 'config name')}`;
/** isSecretKey accepts secrets/<ns>/<name>. */
export const isSecretKey = (key: string): boolean => /^secrets\/[^/]+\/[^/]+$/.test(key);
/** isConfigKey accepts configs/<ns>/<name>. */
export const isConfigKey = (key: string): boolean => /^configs\/[^/]+\/[^/]+$/.test(key);

/** secretKeyKey is secretkeys/<id>: a data key sealing Secrets (objects/secret-types.ts SecretKey). */
export const secretKeyKey = (id: string): string => `secretkeys/${seg(id, 'key id')}`;
/** isSecretKeyKey accepts secretkeys/<id>. */
export const isSecretKeyKey = (key: string): boolean => /^secretkeys\/[^/]+$/.test(key);

/** lastSegment is the name part of any key. */
export const lastSegment = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** prefixEnd is the etcd range_end that covers every key starting with prefix. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** CLUSTER_CA_KEY holds the cluster CA (certificate and sealed private key). */
export const CLUSTER_CA_KEY = 'pki/ca';
/** tokenKey is tokens/<id>. */
export const tokenKey = (id: string): string => `tokens/${id}`;
/** isTokenKey accepts tokens/<id>. */
export const isTokenKey = (key: string): boolean => /^tokens\/[^/]+$/.test(key);
/** nodeRevocationKey is pki/revoked-nodes/<name>. */
export const nodeRevocationKey = (name: string): string => `pki/revoked-nodes/${seg(name, 'node name')}`;
