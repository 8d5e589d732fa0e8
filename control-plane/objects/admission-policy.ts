/**
 * Admission levels of a namespace, after Kubernetes' Pod Security Standards. Each level allows
 * less than the one before:
 * - privileged: everything the spec language allows.
 * - baseline (the default): no capability beyond the runtime's default set, no `seccomp:
 *   unconfined`, nothing that reaches the host's namespaces or paths.
 * - restricted: baseline, plus a numeric non-root user, `capDrop: [ALL]`, and no added
 *   capability but NET_BIND_SERVICE.
 * Pure: no I/O. Capability *names* are checked at every level by validation.ts, not here.
 */
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, canonicalCapability } from './capabilities.js';
import type { ContainerTemplate, PolicyLevel } from './types.js';

/** POLICY_LEVELS lists the levels from the most to the least permissive. */
export const POLICY_LEVELS: readonly PolicyLevel[] = ['privileged', 'baseline', 'restricted'];

/** DEFAULT_POLICY_LEVEL applies to a namespace without a Namespace object. */
export const DEFAULT_POLICY_LEVEL: PolicyLevel = 'baseline';

/** isPolicyLevel tells whether s names a level. */
export function isPolicyLevel(s: unknown): s is PolicyLevel {
  return typeof s === 'string' && (POLICY_LEVELS as readonly string[]).includes(s);
}

/** PolicyViolation is one field a level refuses: where, the value found, the level, and a message naming all three. */
export interface PolicyViolation {
  field: string;
  value: string;
  level: PolicyLevel;
  message: string;
}

/** Finding is what a rule reports; checkPolicy adds the level and the message. */
interface Finding {
  field: string;
  value: string;
  /** why ends the message in parentheses: what is allowed instead. */
  why: string;
}

/** PolicyRule is one check, applied at level `from` and every stricter level; check may read the level to vary its allowance. */
interface PolicyRule {
  name: string;
  from: Exclude<PolicyLevel, 'privileged'>;
  check(t: ContainerTemplate, level: PolicyLevel, at: string): Finding[];
}

const RANK: Record<PolicyLevel, number> = { privileged: 0, baseline: 1, restricted: 2 };

/** RESTRICTED_CAP_ADD is all a restricted template may add (binding ports below 1024), as in Kubernetes. */
const RESTRICTED_CAP_ADD: readonly string[] = ['NET_BIND_SERVICE'];

const ROOT_NAMES: ReadonlySet<string> = new Set(['root']);

/** capabilities: capAdd stays within the default set (baseline) or NET_BIND_SERVICE (restricted). */
const capabilities: PolicyRule = {
  name: 'capabilities',
  from: 'baseline',
  check(t, level, at) {
    const allowed = level === 'restricted' ? RESTRICTED_CAP_ADD : DEFAULT_CAPABILITIES;
    const allowedText = `allowed: ${[...allowed].sort().join(', ')}`;
    return (t.security?.capAdd ?? []).flatMap((name, i) => {
      const cap = canonicalCapability(name);
      if (cap !== undefined && cap !== ALL_CAPABILITIES && allowed.includes(cap)) return [];
      return [{ field: `${at}.security.capAdd[${i}]`, value: name, why: allowedText }];
    });
  },
};

/** seccomp: the runtime's default syscall filter stays on. */
const seccomp: PolicyRule = {
  name: 'seccomp',
  from: 'baseline',
  check(t, _level, at) {
    if (t.security?.seccomp !== 'unconfined') return [];
    return [{ field: `${at}.security.seccomp`, value: 'unconfined', why: 'the default seccomp filter must stay on: omit the field or set "default"' }];
  },
};

/**
 * runAsNonRoot: a numeric uid other than 0. An absent user means the image's user, and a user
 * name is looked up in the image's /etc/passwd: neither is known at admission, so both are refused.
 */
const runAsNonRoot: PolicyRule = {
  name: 'runAsNonRoot',
  from: 'restricted',
  check(t, _level, at) {
    const field = `${at}.user`;
    const hint = 'set a numeric non-root user such as "1000" or "1000:1000"';
    const user = t.user ?? '';
    if (user === '') return [{ field, value: '<unset>', why: `without a user the container runs as the image's user, which is unknown at admission; ${hint}` }];
    const uid = user.split(':')[0]!;
    if (/^\d+$/.test(uid)) return Number(uid) === 0 ? [{ field, value: user, why: `uid 0 is root; ${hint}` }] : [];
    if (ROOT_NAMES.has(uid)) return [{ field, value: user, why: `"${uid}" is root; ${hint}` }];
    return [{ field, value: user, why: `a user name is resolved inside the image, unknown at admission; ${hint}` }];
  },
};

/** dropAll: capDrop contains ALL, so the container keeps no capability it did not ask for. */
const dropAll: PolicyRule = {
  name: 'dropAll',
  from: 'restricted',
  check(t, _level, at) {
    const drop = t.security?.capDrop ?? [];
    if (drop.some((c) => canonicalCapability(c) === ALL_CAPABILITIES)) return [];
    return [{ field: `${at}.security.capDrop`, value: drop.length === 0 ? '<unset>' : `[${drop.join(', ')}]`, why: 'must contain ALL' }];
  },
};

/**
 * hostPath: bind volumes mount a node's own files into the container, so a workload could read
 * or change the node (its credentials, the runtime's state); as in Kubernetes' Pod Security
 * Standards, only privileged namespaces may.
 */
const hostPath: PolicyRule = {
  name: 'hostPath',
  from: 'baseline',
  check(t, _level, at) {
    return (t.volumes ?? []).flatMap((v, i) => (v.type !== 'bind' ? [] : [{
      field: `${at}.volumes[${i}].source`,
      value: v.source ?? '<unset>',
      why: 'a bind volume reaches the node\'s filesystem; only namespaces at policy level privileged may use one: use a named volume (type volume) instead',
    }]));
  },
};

/**
 * RULES are applied in this order, so the first violation (the one an API error names as its
 * field) is the most common mistake. A template field that can reach the host (host network,
 * bind mounts, devices, sysctls) gets its rule here with `from: 'baseline'` when the template
 * grows it; POLICY_FIELD_REVIEW records the decision for every field that exists today.
 */
const RULES: readonly PolicyRule[] = [capabilities, seccomp, hostPath, runAsNonRoot, dropAll];

/**
 * POLICY_FIELD_REVIEW says, for every template field the schema admits, which rule checks it or
 * why none is needed. A unit test fails when the schema grows a field missing here.
 */
export const POLICY_FIELD_REVIEW: Readonly<Record<string, string>> = {
  'image': 'no host access',
  'command': 'runs inside the container',
  'env': 'inside the container',
  'workingDir': 'a path inside the container rootfs',
  'user': 'rule runAsNonRoot (restricted)',
  'resources': 'limits only',
  'ports': 'hostPort is published through NAT while the container keeps its own network namespace (docker -p); allowed at every level',
  'health': 'probed by the agent from outside the container',
  'readiness': 'probed by the agent from outside the container, like health',
  'startup': 'probed by the agent from outside the container, like health',
  'secrets': 'files on a tmpfs inside the container; the namespace\'s own Secrets only; uid/gid own files inside the container',
  'configs': 'files on a tmpfs inside the container; the namespace\'s own Configs only',
  'restart': 'applied by the agent',
  'security': 'see security.*',
  'volumes': 'type bind: rule hostPath (baseline, restricted); named volumes are directories the agent makes under its state dir, tmpfs is memory of the container',
  'pullPolicy': 'when the agent fetches the image',
  'stopSignal': 'a signal the agent has the shim send to the container itself',
  'stopGracePeriodSeconds': 'how long the agent waits before SIGKILL, bounded by the schema (0..3600)',
  'init': 'berth-init runs inside the container with its identity and privileges; false only makes the command PID 1',
  'security.readOnlyRootfs': 'only tightens',
  'security.capAdd': 'rule capabilities (baseline, restricted)',
  'security.capDrop': 'only tightens; rule dropAll (restricted)',
  'security.userNamespace': 'true only adds isolation and false is the runtime default, so there is nothing to opt out of; it does not relax runAsNonRoot',
  'security.seccomp': 'rule seccomp (baseline, restricted)',
};

/**
 * checkPolicy lists every way template breaks level; empty when it complies. at prefixes the
 * field names. A level it does not know (a damaged stored object) is checked as restricted.
 */
export function checkPolicy(template: ContainerTemplate, level: PolicyLevel, at = 'spec.template'): PolicyViolation[] {
  const rank = RANK[level] ?? RANK.restricted;
  return RULES
    .filter((r) => rank >= RANK[r.from])
    .flatMap((r) => r.check(template, level, at))
    .map((f) => ({ field: f.field, value: f.value, level, message: `${f.field}: ${f.value} is not allowed at policy level ${level} (${f.why})` }));
}
