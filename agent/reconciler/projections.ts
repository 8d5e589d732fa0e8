/**
 * Secrets, configs and tmpfs volumes as the container sees them: a task's projections plus the
 * objects' content (carried by the desired set, held in memory only) become ContainerSpec.files,
 * and its tmpfs volumes ContainerSpec.tmpfs. Pure; the native core writes the files onto a tmpfs
 * private to the container (native/src/lib/projected.h), never onto the node's disk.
 */
import type { ContainerFile, ContainerTmpfs } from '../runtime/runtime.js';
import type { DesiredTask, FileProjection, ObjectData, VolumeMount } from './task.js';

/** DEFAULT_SECRET_FILE_MODE is a secret file's mode when its projection sets none: the owner reads. */
export const DEFAULT_SECRET_FILE_MODE = 0o400;
/** DEFAULT_CONFIG_FILE_MODE is a config file's mode when its projection sets none: everyone reads. */
export const DEFAULT_CONFIG_FILE_MODE = 0o444;
/** DEFAULT_TMPFS_BYTES sizes a tmpfs volume that gives no size. */
export const DEFAULT_TMPFS_BYTES = 64 * 1024 * 1024;
/** TMPFS_VOLUME_MODE is a tmpfs volume's root mode: writable by every user, sticky, as /tmp. */
export const TMPFS_VOLUME_MODE = 0o1777;

// A key becomes a file name below the projection's target: one path component, as Kubernetes
// allows for ConfigMap and Secret keys.
const KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;

/** ProjectionReason is why a task's files cannot be made yet; the task waits in preparing. */
export type ProjectionReason = 'SecretNotFound' | 'ConfigNotFound' | 'SecretKeyNotFound' | 'ConfigKeyNotFound';

/** Projected is a task's files, or why they cannot be made (a value: the task waits for the object). */
export type Projected = { ok: true; files: ContainerFile[] } | { ok: false; reason: ProjectionReason; message: string };

interface Kind {
  label: 'secret' | 'config';
  defaultMode: number;
  notFound: ProjectionReason;
  keyNotFound: ProjectionReason;
}

const SECRET: Kind = { label: 'secret', defaultMode: DEFAULT_SECRET_FILE_MODE, notFound: 'SecretNotFound', keyNotFound: 'SecretKeyNotFound' };
const CONFIG: Kind = { label: 'config', defaultMode: DEFAULT_CONFIG_FILE_MODE, notFound: 'ConfigNotFound', keyNotFound: 'ConfigKeyNotFound' };

/**
 * projectFiles turns the task's secret and config projections into files: without a key, one
 * file per key of the object at `<target>/<key>`; with a key, that key's content at target. Mode
 * defaults to 0400 (secrets) / 0444 (configs), owner to `owner` (the container's user). An
 * object the desired set did not bring, or a key it lacks, is a value naming it — never its content.
 */
export function projectFiles(task: DesiredTask, owner: { uid: number; gid: number }): Projected {
  const files: ContainerFile[] = [];
  const kinds: Array<[Kind, FileProjection[] | undefined, Record<string, ObjectData> | undefined]> = [
    [SECRET, task.template?.secrets, task.secrets],
    [CONFIG, task.template?.configs, task.configs],
  ];
  for (const [kind, projections, objects] of kinds) {
    for (const p of projections ?? []) {
      const ref = `${task.namespace}/${p.name}`;
      const obj = objects?.[p.name];
      if (!obj) {
        return { ok: false, reason: kind.notFound, message: `${kind.label} ${ref} has not reached this node` };
      }
      const file = (target: string, content: Buffer): ContainerFile => ({
        target, content, mode: p.mode ?? kind.defaultMode, uid: p.uid ?? owner.uid, gid: p.gid ?? owner.gid,
      });
      if (p.key !== undefined) {
        const content = obj.data[p.key];
        if (content === undefined) return { ok: false, reason: kind.keyNotFound, message: `${kind.label} ${ref} has no key ${JSON.stringify(p.key)}` };
        files.push(file(p.target, content));
        continue;
      }
      for (const key of Object.keys(obj.data).sort()) {
        // The control plane admits only such keys; one that is not a plain name is never a path.
        if (!KEY_PATTERN.test(key) || key === '.' || key === '..') {
          return { ok: false, reason: kind.keyNotFound, message: `${kind.label} ${ref}: key ${JSON.stringify(key)} is not a file name` };
        }
        files.push(file(`${p.target.replace(/\/+$/, '')}/${key}`, obj.data[key]!));
      }
    }
  }
  return { ok: true, files };
}

/** projectionProblem tells why the task's files cannot be made yet, or undefined when they can. */
export function projectionProblem(task: DesiredTask): { reason: ProjectionReason; message: string } | undefined {
  const projected = projectFiles(task, { uid: 0, gid: 0 });
  return projected.ok ? undefined : { reason: projected.reason, message: projected.message };
}

/** tmpfsMounts maps the template's tmpfs volumes: size 0 → DEFAULT_TMPFS_BYTES, mode 1777. */
export function tmpfsMounts(volumes: VolumeMount[] | undefined): ContainerTmpfs[] {
  return (volumes ?? []).filter((v) => v.type === 'tmpfs').map((v) => ({
    target: v.target,
    sizeBytes: v.sizeBytes > 0 ? v.sizeBytes : DEFAULT_TMPFS_BYTES,
    mode: TMPFS_VOLUME_MODE,
    ...(v.readOnly ? { readonly: true } : {}),
  }));
}
