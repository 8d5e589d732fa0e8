/**
 * Turning a desired task plus its resolved image into a ContainerSpec: pure except for the
 * optional lookup of a user name in the image's /etc/passwd and /etc/group.
 */
import { lstat, readFile, stat } from 'node:fs/promises';
import type { ContainerSpec } from '../runtime/runtime.js';
import type { ResolvedImage } from '../images/index.js';
import { AgentError } from '../errors.js';
import { projectFiles, tmpfsMounts } from './projections.js';
import { LABEL_VOLUMES, type VolumeProvider } from '../volumes/index.js';
import type { DesiredTask, Resources, TaskRef } from './task.js';

/** Container labels that let a restarted agent re-adopt its containers. */
export const LABEL_NAMESPACE = 'berth.namespace';
/** LABEL_SERVICE holds the task's service name. */
export const LABEL_SERVICE = 'berth.service';
/** LABEL_TASK holds the task name. */
export const LABEL_TASK = 'berth.task';
/** LABEL_UID holds the task uid; a container without it is not berth's. */
export const LABEL_UID = 'berth.uid';
/** LABEL_IMAGE holds the image reference as written in the template. */
export const LABEL_IMAGE = 'berth.image';
/** LABEL_IMAGE_DIGEST holds the resolved manifest digest. */
export const LABEL_IMAGE_DIGEST = 'berth.image-digest';
/** LABEL_RESTARTS holds how many times the agent restarted the task before this container (restart policy). */
export const LABEL_RESTARTS = 'berth.restarts';
/** LABEL_RESTART_POLICY holds the task's restart policy, so a restarted agent knows whether an exited container comes back. */
export const LABEL_RESTART_POLICY = 'berth.restart-policy';
/** LABEL_REVISION holds the service revision the task runs. */
export const LABEL_REVISION = 'berth.revision';
/**
 * LABEL_STOP_SIGNAL / LABEL_STOP_GRACE_SECONDS hold how the container is stopped, fixed when it
 * starts: a task removed from the desired set (or an agent restarted meanwhile) has no template.
 */
export const LABEL_STOP_SIGNAL = 'berth.stop-signal';
/** LABEL_STOP_GRACE_SECONDS: see LABEL_STOP_SIGNAL. */
export const LABEL_STOP_GRACE_SECONDS = 'berth.stop-grace-seconds';
/**
 * LABEL_REQUEST_CPU_CORES, LABEL_REQUEST_MEMORY_BYTES and LABEL_REQUEST_PIDS hold what the task
 * requested of the node (absent: 0), so a restarted agent counts a container it re-adopts in its
 * admission check even before (or without) a desired task telling it the template.
 */
export const LABEL_REQUEST_CPU_CORES = 'berth.request.cpu-cores';
/** LABEL_REQUEST_MEMORY_BYTES: see LABEL_REQUEST_CPU_CORES. */
export const LABEL_REQUEST_MEMORY_BYTES = 'berth.request.memory-bytes';
/** LABEL_REQUEST_PIDS: see LABEL_REQUEST_CPU_CORES. */
export const LABEL_REQUEST_PIDS = 'berth.request.pids';

const CONTAINER_ID = /^[a-z0-9-]{1,63}$/;

/** containerIdFor picks the container id: the task uid, else the task name; both must be [a-z0-9-]{1,63}. */
export function containerIdFor(task: TaskRef): string {
  if (CONTAINER_ID.test(task.uid)) return task.uid;
  if (CONTAINER_ID.test(task.name)) return task.name;
  throw new AgentError('BERTH_ERR_TASK_INVALID',
    `task ${task.namespace}/${task.name}: neither uid ${JSON.stringify(task.uid)} nor name is a valid container id ([a-z0-9-]{1,63})`);
}

/** mergeEnv overlays template env on the image's "K=V" list, keeping the image's order. */
export function mergeEnv(imageEnv: string[], overrides: Record<string, string>): string[] {
  const out = new Map<string, string>();
  for (const kv of imageEnv) {
    const eq = kv.indexOf('=');
    out.set(eq === -1 ? kv : kv.slice(0, eq), eq === -1 ? '' : kv.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(overrides)) out.set(k, v);
  return [...out].map(([k, v]) => `${k}=${v}`);
}

/** UserLookup resolves user and group names inside an image (undefined: unknown name). */
export interface UserLookup {
  user(name: string): Promise<{ uid: number; gid: number } | undefined>;
  group(name: string): Promise<number | undefined>;
}

const NUMERIC = /^[0-9]{1,10}$/;

/** resolveUser turns "user[:group]" (numbers or names) into uid and gid; empty means root. */
export async function resolveUser(spec: string, lookup: UserLookup, where: string): Promise<{ uid: number; gid: number }> {
  if (spec === '') return { uid: 0, gid: 0 };
  const [u = '', g] = spec.split(':', 2);
  let uid: number;
  let gid: number;
  if (NUMERIC.test(u)) {
    uid = Number(u);
    gid = (await lookupUid(lookup, u)) ?? uid;
  } else {
    const found = await lookup.user(u);
    if (!found) throw new AgentError('BERTH_ERR_TASK_INVALID', `${where}: user ${JSON.stringify(u)} not found in the image's /etc/passwd`);
    ({ uid, gid } = found);
  }
  if (g !== undefined && g !== '') {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const found = await lookup.group(g);
      if (found === undefined) throw new AgentError('BERTH_ERR_TASK_INVALID', `${where}: group ${JSON.stringify(g)} not found in the image's /etc/group`);
      gid = found;
    }
  }
  return { uid, gid };
}

// A numeric uid with no group takes its primary gid from /etc/passwd when listed there.
async function lookupUid(lookup: UserLookup, uid: string): Promise<number | undefined> {
  return (await lookup.user(`#${uid}`))?.gid;
}

/** imageUserLookup reads /etc/passwd and /etc/group from the topmost layer that has them. */
export function imageUserLookup(lowerDirs: string[]): UserLookup {
  const readDb = async (file: string): Promise<string[][]> => {
    for (const dir of lowerDirs) {
      const path = `${dir}/etc/${file}`;
      // Only a regular file: a symlink would be resolved on the host, not in the image.
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      if (!st.isFile()) return [];
      return (await readFile(path, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
    }
    return [];
  };
  return {
    async user(name) {
      const byUid = name.startsWith('#') ? name.slice(1) : undefined;
      const row = (await readDb('passwd')).find((r) => (byUid !== undefined ? r[2] === byUid : r[0] === name));
      return row && NUMERIC.test(row[2] ?? '') && NUMERIC.test(row[3] ?? '') ? { uid: Number(row[2]), gid: Number(row[3]) } : undefined;
    },
    async group(name) {
      const row = (await readDb('group')).find((r) => r[0] === name);
      return row && NUMERIC.test(row[2] ?? '') ? Number(row[2]) : undefined;
    },
  };
}

/** buildContainerSpec combines a task's template with its image's defaults. */
export async function buildContainerSpec(task: DesiredTask, id: string, image: ResolvedImage,
  lookup: UserLookup = imageUserLookup(image.lowerDirs)): Promise<ContainerSpec> {
  const tpl = task.template;
  const where = `task ${task.namespace}/${task.name}`;
  if (!tpl) throw new AgentError('BERTH_ERR_TASK_INVALID', `${where}: no template`);
  const args = tpl.command.length > 0 ? tpl.command : [...image.config.entrypoint, ...image.config.cmd];
  if (args.length === 0) {
    throw new AgentError('BERTH_ERR_TASK_INVALID', `${where}: no command: the image has no Entrypoint or Cmd and the template gives none`);
  }
  const { uid, gid } = await resolveUser(tpl.user || image.config.user, lookup, where);
  const r = tpl.resources;
  const limits: ContainerSpec['limits'] = {};
  if (r.cpuCores > 0) limits.cpuCores = r.cpuCores;
  if (r.memoryBytes > 0) limits.memoryBytes = r.memoryBytes;
  if (r.pids > 0) limits.pids = r.pids;
  const spec: ContainerSpec = {
    id,
    hostname: task.name,
    lowerDirs: image.lowerDirs,
    args,
    env: mergeEnv(image.config.env, tpl.env),
    cwd: tpl.workingDir || image.config.workingDir || '/',
    uid,
    gid,
    limits,
    labels: {
      [LABEL_NAMESPACE]: task.namespace,
      [LABEL_SERVICE]: task.service,
      [LABEL_TASK]: task.name,
      [LABEL_UID]: task.uid,
      [LABEL_IMAGE]: tpl.image,
      [LABEL_IMAGE_DIGEST]: image.digest,
      [LABEL_REVISION]: String(task.revision),
      [LABEL_RESTART_POLICY]: tpl.restart.policy,
      ...requestLabels(r),
    },
  };
  if (tpl.stopSignal) spec.labels[LABEL_STOP_SIGNAL] = tpl.stopSignal;
  if (tpl.stopGracePeriodSeconds !== undefined) spec.labels[LABEL_STOP_GRACE_SECONDS] = String(tpl.stopGracePeriodSeconds);
  // Templates default to an init (the converter settles absent as true), unlike the runtime's own default.
  if (tpl.init) spec.init = true;
  if (tpl.security) spec.security = tpl.security;
  const tmpfs = tmpfsMounts(tpl.volumes);
  if (tmpfs.length > 0) spec.tmpfs = tmpfs;
  // The runner checked the projections before the start (projectionProblem); here they resolve
  // their owner, the container's user.
  const projected = projectFiles(task, { uid, gid });
  if (!projected.ok) throw new AgentError('BERTH_ERR_TASK_INVALID', `${where}: ${projected.message}`);
  if (projected.files.length > 0) spec.files = projected.files;
  return spec;
}

/** requestLabels records a task's non-zero requests as container labels. */
export function requestLabels(r: Resources): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.cpuCores > 0) out[LABEL_REQUEST_CPU_CORES] = String(r.cpuCores);
  if (r.memoryBytes > 0) out[LABEL_REQUEST_MEMORY_BYTES] = String(r.memoryBytes);
  if (r.pids > 0) out[LABEL_REQUEST_PIDS] = String(r.pids);
  return out;
}

/** requestOfLabels reads what requestLabels wrote; an absent or garbled label reads as 0. */
export function requestOfLabels(labels: Record<string, string>): Resources {
  const num = (key: string): number => {
    const n = Number(labels[key] ?? 0);
    return Number.isFinite(n) && n > 0 ? n : 0;
  };
  return { cpuCores: num(LABEL_REQUEST_CPU_CORES), memoryBytes: num(LABEL_REQUEST_MEMORY_BYTES), pids: num(LABEL_REQUEST_PIDS) };
}

/** StopSettings say how a container is stopped: its first signal, and the wait before SIGKILL. */
export interface StopSettings {
  signal: string;
  /** graceMs is undefined when the container's task set none (the agent's default applies). */
  graceMs?: number;
}

/** stopSettings reads them from the labels buildContainerSpec set; absent means SIGTERM and the default grace. */
export function stopSettings(labels: Record<string, string>): StopSettings {
  const seconds = Number(labels[LABEL_STOP_GRACE_SECONDS]);
  const graced = labels[LABEL_STOP_GRACE_SECONDS] !== undefined && Number.isInteger(seconds) && seconds >= 0;
  return { signal: labels[LABEL_STOP_SIGNAL] || 'SIGTERM', ...(graced ? { graceMs: seconds * 1000 } : {}) };
}

/** releaseVolumes ends the holds addVolumeMounts took on task's named volumes (its start is over). */
export function releaseVolumes(task: DesiredTask, volumes: VolumeProvider | undefined): void {
  for (const v of task.template?.volumes ?? []) if (v.type === 'volume') volumes?.release?.(task.namespace, v.name);
}

/**
 * addVolumeMounts turns a task's named and bind volumes into bind mounts of spec (tmpfs volumes
 * are tmpfsMounts'): a named volume mounts its data directory, which the provider makes on first
 * use; a bind mounts the host path, which must exist (a missing one fails the start with
 * HostPathNotFound naming it: making it would hide a typo behind an empty directory). The
 * container is labelled with its named volumes, so the node tells them in use from its
 * containers alone. Targets are resolved inside the rootfs by the native core.
 */
export async function addVolumeMounts(spec: ContainerSpec, task: DesiredTask, volumes: VolumeProvider | undefined): Promise<void> {
  const where = `task ${task.namespace}/${task.name}`;
  const wanted = (task.template?.volumes ?? []).filter((v) => v.type === 'volume' || v.type === 'bind');
  if (wanted.length === 0) return;
  const mounts: NonNullable<ContainerSpec['mounts']> = [];
  const named: string[] = [];
  // Host paths first: a task that cannot start must not make volumes on its way out.
  for (const v of wanted) {
    if (v.type !== 'bind') continue;
    const st = await stat(v.source).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      throw new AgentError('BERTH_ERR_VOLUME_SOURCE_NOT_FOUND', `${where}: bind volume source ${v.source} ${st.code === 'ENOENT' ? 'does not exist on this node' : `cannot be read: ${st.message}`}`);
    }
  }
  for (const v of wanted) {
    if (v.type === 'bind') {
      mounts.push({ source: v.source, target: v.target, ...(v.readOnly ? { readonly: true } : {}) });
      continue;
    }
    if (!volumes) throw new AgentError('BERTH_ERR_VOLUME_FAILED', `${where}: volume ${v.name}: this agent keeps no named volumes`);
    const data = await volumes.ensure(task.namespace, v.name);
    mounts.push({ source: data, target: v.target, ...(v.readOnly ? { readonly: true } : {}) });
    const key = `${task.namespace}/${v.name}`;
    if (!named.includes(key)) named.push(key);
  }
  spec.mounts = [...(spec.mounts ?? []), ...mounts];
  if (named.length > 0) spec.labels[LABEL_VOLUMES] = named.join(',');
}
