/**
 * The `deploy:` block (what `docker stack deploy` reads) and the service-level `restart:`:
 * replicas and mode, resource limits, placement constraints in Swarm's syntax rewritten to
 * berth's, update_config as maxSurge / maxUnavailable, restart_policy, and labels.
 */
import { isSpreadAttribute, parseConstraint } from '../../objects/constraints.js';
import { checkLabel } from '../../objects/names.js';
import type { Resources, RestartSpec, ServiceSpec, UpdateSpec } from '../../objects/types.js';
import { checkKeys, isMap, type ComposeMap, type Diagnostics } from './diagnostics.js';
import { describe, parseBytes, readInt, readNumber, readSeconds, readString } from './values.js';

/** Deploy is what the deploy block sets on a service. */
export interface Deploy {
  replicas?: number;
  mode?: ServiceSpec['mode'];
  resources?: Partial<Resources>;
  placement?: NonNullable<ServiceSpec['placement']>;
  update?: UpdateSpec;
  restart?: RestartSpec;
  labels?: Record<string, string>;
}

/** convertDeploy translates a service's `deploy:` mapping. */
export function convertDeploy(v: unknown, path: string, diag: Diagnostics): Deploy {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping, got ${describe(v)}`);
    return {};
  }
  checkKeys(v, path, diag, ['mode', 'replicas', 'resources', 'placement', 'update_config', 'restart_policy', 'labels', 'endpoint_mode'], {
    rollback_config: 'an automatic rollback goes back to the previous revision with the update settings',
  });
  const out: Deploy = {};
  if (v.mode !== undefined) {
    const mode = readString(v.mode, `${path}.mode`, diag);
    if (mode === 'replicated' || mode === 'global') out.mode = mode;
    else if (mode !== undefined) diag.error(`${path}.mode`, `"${mode}" is not supported (replicated or global; berth has no jobs)`);
  }
  if (v.replicas !== undefined) out.replicas = readInt(v.replicas, `${path}.replicas`, diag, 0, 10_000);
  if (v.endpoint_mode !== undefined && v.endpoint_mode !== 'vip') diag.unsupportedField(`${path}.endpoint_mode`, 'berth services are reached through one service address');
  if (v.resources !== undefined) out.resources = convertResources(v.resources, `${path}.resources`, diag);
  if (v.placement !== undefined) out.placement = convertPlacement(v.placement, `${path}.placement`, diag);
  if (v.update_config !== undefined) out.update = convertUpdate(v.update_config, `${path}.update_config`, out.replicas, diag);
  if (v.restart_policy !== undefined) out.restart = convertRestartPolicy(v.restart_policy, `${path}.restart_policy`, diag);
  if (v.labels !== undefined) out.labels = convertLabels(v.labels, `${path}.labels`, diag);
  return out;
}

function convertResources(v: unknown, path: string, diag: Diagnostics): Partial<Resources> | undefined {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping with limits, got ${describe(v)}`);
    return undefined;
  }
  checkKeys(v, path, diag, ['limits'], { reservations: 'berth reserves what limits set' });
  if (v.limits === undefined) return undefined;
  if (!isMap(v.limits)) {
    diag.error(`${path}.limits`, `must be a mapping with cpus, memory, pids, got ${describe(v.limits)}`);
    return undefined;
  }
  const limits: ComposeMap = v.limits;
  const at = `${path}.limits`;
  checkKeys(limits, at, diag, ['cpus', 'memory', 'pids'], { devices: 'berth schedules no devices', generic_resources: 'berth schedules cpu, memory and pids only' });
  const out: Partial<Resources> = {};
  if (limits.cpus !== undefined) {
    const cpu = readNumber(limits.cpus, `${at}.cpus`, diag);
    if (cpu !== undefined) out.cpu = cpu;
  }
  if (limits.memory !== undefined) {
    const memory = parseBytes(limits.memory);
    if (memory === undefined) diag.error(`${at}.memory`, `must be a size like 512m or 1g, got ${describe(limits.memory)}`);
    else out.memory = memory;
  }
  if (limits.pids !== undefined) {
    const pids = readInt(limits.pids, `${at}.pids`, diag, 1, 4_194_304);
    if (pids !== undefined) out.pids = pids;
  }
  return out;
}

/**
 * convertConstraint rewrites one Swarm constraint into berth's syntax: node.labels.K stays,
 * node.hostname is node.name; undefined when it has no equivalent (reported) or is always true
 * on berth (node.platform.os == linux, noted).
 */
export function convertConstraint(text: string, at: string, diag: Diagnostics): string | undefined {
  const m = /^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$/.exec(text);
  if (!m) {
    diag.error(at, `"${text}" is not ATTRIBUTE == VALUE or ATTRIBUTE != VALUE`);
    return undefined;
  }
  const [, attribute, op, value] = m as unknown as [string, string, string, string];
  let berth: string;
  if (attribute.startsWith('node.labels.')) {
    berth = `${attribute} ${op} ${value}`;
  } else if (attribute === 'node.hostname') {
    berth = `node.name ${op} ${value}`;
  } else if (attribute === 'node.platform.os') {
    if ((op === '==') === (value.toLowerCase() === 'linux')) {
      diag.note(at, `"${text}" always holds on berth (every node is Linux), dropped`);
      return undefined;
    }
    diag.error(at, `"${text}" can never hold on berth: every node is Linux`);
    return undefined;
  } else if (attribute === 'node.role') {
    diag.unsupportedField(at, `"${text}": every berth node runs tasks and none is a manager; use a node label`);
    return undefined;
  } else if (attribute === 'node.id') {
    diag.unsupportedField(at, `"${text}": berth nodes have no IDs; use node.hostname`);
    return undefined;
  } else {
    diag.unsupportedField(at, `"${text}": berth places on node.hostname and node.labels.* only`);
    return undefined;
  }
  const parsed = parseConstraint(berth);
  if (!parsed.ok) {
    diag.error(at, parsed.message);
    return undefined;
  }
  return berth;
}

function convertPlacement(v: unknown, path: string, diag: Diagnostics): Deploy['placement'] {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping with constraints, got ${describe(v)}`);
    return undefined;
  }
  checkKeys(v, path, diag, ['constraints', 'preferences'], { max_replicas_per_node: 'berth limits replicas per node only through host ports and resources' });
  const out: NonNullable<Deploy['placement']> = {};
  if (v.constraints !== undefined) {
    if (!Array.isArray(v.constraints)) diag.error(`${path}.constraints`, `must be a list, got ${describe(v.constraints)}`);
    const constraints = (Array.isArray(v.constraints) ? v.constraints : []).flatMap((c, i) => {
      const text = readString(c, `${path}.constraints[${i}]`, diag);
      const berth = text === undefined ? undefined : convertConstraint(text, `${path}.constraints[${i}]`, diag);
      return berth === undefined ? [] : [berth];
    });
    if (constraints.length > 0) out.constraints = constraints;
  }
  if (v.preferences !== undefined) {
    const prefs = Array.isArray(v.preferences) ? v.preferences : [];
    if (!Array.isArray(v.preferences)) diag.error(`${path}.preferences`, `must be a list, got ${describe(v.preferences)}`);
    prefs.forEach((p, i) => {
      const at = `${path}.preferences[${i}]`;
      const spread = isMap(p) ? p.spread : undefined;
      if (typeof spread !== 'string' || !isSpreadAttribute(spread)) {
        diag.error(at, `must be { spread: node.labels.KEY }, got ${describe(spread ?? p)}`);
      } else if (out.spread !== undefined) {
        diag.unsupportedField(at, 'berth spreads over one attribute; the first preference is kept');
      } else {
        out.spread = spread;
      }
    });
  }
  return out;
}

/**
 * convertUpdate maps update_config. Swarm stops `parallelism` old tasks, then starts new ones
 * (stop-first, its default) or starts them first (start-first): the same batch as berth's
 * maxUnavailable or maxSurge. failure_action rollback is autoRollback; monitor, the time a new
 * task must stay up to count, is minReadySeconds.
 */
function convertUpdate(v: unknown, path: string, replicas: number | undefined, diag: Diagnostics): UpdateSpec | undefined {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  checkKeys(v, path, diag, ['parallelism', 'order', 'failure_action', 'monitor', 'delay', 'max_failure_ratio']);
  let batch = v.parallelism === undefined ? 1 : readInt(v.parallelism, `${path}.parallelism`, diag, 0) ?? 1;
  if (batch === 0) {
    // Swarm's 0 is "all at once"
    batch = Math.max(1, replicas ?? 1);
    diag.note(`${path}.parallelism`, `0 (all at once) becomes batches of ${batch}, the replica count`);
  }
  const order = v.order === undefined ? 'stop-first' : readString(v.order, `${path}.order`, diag);
  const update: UpdateSpec = order === 'start-first' ? { maxSurge: batch, maxUnavailable: 0 } : { maxSurge: 0, maxUnavailable: batch };
  if (order !== 'start-first' && order !== 'stop-first' && order !== undefined) diag.error(`${path}.order`, `must be start-first or stop-first, got "${order}"`);
  if (v.failure_action !== undefined) {
    const action = readString(v.failure_action, `${path}.failure_action`, diag);
    if (action === 'rollback') update.autoRollback = true;
    else if (action === 'pause') update.autoRollback = false;
    else if (action === 'continue') diag.unsupportedField(`${path}.failure_action`, 'continue: berth halts a failing update (pause) or rolls it back');
    else if (action !== undefined) diag.error(`${path}.failure_action`, `must be rollback, pause or continue, got "${action}"`);
  }
  if (v.monitor !== undefined) update.minReadySeconds = readSeconds(v.monitor, `${path}.monitor`, diag);
  if (v.delay !== undefined && readSeconds(v.delay, `${path}.delay`, diag) !== 0) {
    diag.unsupportedField(`${path}.delay`, 'berth starts the next batch as soon as the previous one is ready; use monitor');
  }
  if (v.max_failure_ratio !== undefined && Number(v.max_failure_ratio) !== 0) {
    diag.unsupportedField(`${path}.max_failure_ratio`, 'a berth update fails on its progress deadline');
  }
  return update;
}

const CONDITIONS: Record<string, RestartSpec['policy']> = { any: 'always', 'on-failure': 'on-failure', none: 'never' };

function convertRestartPolicy(v: unknown, path: string, diag: Diagnostics): RestartSpec | undefined {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping with condition, got ${describe(v)}`);
    return undefined;
  }
  checkKeys(v, path, diag, ['condition', 'delay'], {
    max_attempts: 'berth restarts with a growing backoff, without a limit',
    window: 'berth restarts with a growing backoff, without a limit',
  });
  const condition = v.condition === undefined ? 'any' : readString(v.condition, `${path}.condition`, diag);
  const policy = condition === undefined ? undefined : CONDITIONS[condition];
  if (policy === undefined) {
    if (condition !== undefined) diag.error(`${path}.condition`, `must be any, on-failure or none, got "${condition}"`);
    return undefined;
  }
  const restart: RestartSpec = { policy };
  if (v.delay !== undefined) {
    const delay = readSeconds(v.delay, `${path}.delay`, diag);
    if (delay !== undefined) restart.backoffSeconds = delay;
  }
  return restart;
}

/** convertRestart maps the service-level `restart:` (no, always, on-failure[:N], unless-stopped). */
export function convertRestart(v: unknown, path: string, diag: Diagnostics): RestartSpec | undefined {
  const text = readString(v, path, diag);
  if (text === undefined) return undefined;
  const m = /^on-failure(?::(\d+))?$/.exec(text);
  if (m) {
    if (m[1] !== undefined) diag.unsupportedField(`${path} maximum ${m[1]}`, 'berth restarts with a growing backoff, without a limit');
    return { policy: 'on-failure' };
  }
  if (text === 'no') return { policy: 'never' };
  if (text === 'always') return { policy: 'always' };
  if (text === 'unless-stopped') return { policy: 'always' }; // a berth task is only stopped by berth
  diag.error(path, `must be no, always, on-failure[:N] or unless-stopped, got "${text}"`);
  return undefined;
}

/** convertLabels reads labels as a mapping or a `KEY=VALUE` list; a label berth cannot store is reported and dropped. */
export function convertLabels(v: unknown, path: string, diag: Diagnostics): Record<string, string> {
  const pairs: [string, unknown, string][] = [];
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const text = readString(item, `${path}[${i}]`, diag);
      if (text === undefined) return;
      const eq = text.indexOf('=');
      pairs.push(eq < 0 ? [text, '', `${path}[${i}]`] : [text.slice(0, eq), text.slice(eq + 1), `${path}[${i}]`]);
    });
  } else if (isMap(v)) {
    for (const [k, value] of Object.entries(v)) pairs.push([k, value ?? '', `${path}.${k}`]);
  } else {
    diag.error(path, `must be a mapping or a list of KEY=VALUE, got ${describe(v)}`);
  }
  const out: Record<string, string> = {};
  for (const [key, raw, at] of pairs) {
    const value = readString(raw, at, diag);
    if (value === undefined) continue;
    const problem = checkLabel(key, value);
    if (problem) diag.unsupportedField(at, `${problem}: berth label values are at most 63 letters, digits, "-", "_" or "."`);
    else out[key] = value;
  }
  return out;
}
