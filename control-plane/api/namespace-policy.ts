/**
 * Admission levels at the API: the level a namespace is checked at (its stored Namespace, or the
 * default when there is none), the refusal of a template that breaks it, and the services that
 * break it now. Only template changes are checked; running tasks are never touched.
 */
import type { FieldError } from '../errors.js';
import { checkPolicy, DEFAULT_POLICY_LEVEL, isPolicyLevel } from '../objects/admission-policy.js';
import type { ContainerTemplate, Namespace, NamespaceViolation, PolicyLevel, Service } from '../objects/types.js';
import { namespaceKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

/**
 * levelOf is the level of a stored Namespace: the default without one, and restricted when the
 * stored value is not a level (a damaged object fails closed, not open).
 */
export function levelOf(ns: Namespace | undefined): PolicyLevel {
  if (!ns) return DEFAULT_POLICY_LEVEL;
  return isPolicyLevel(ns.spec?.policy) ? ns.spec.policy : 'restricted';
}

/** namespaceLevel reads the level namespace ns checks templates at. */
export async function namespaceLevel(store: Store, ns: string): Promise<PolicyLevel> {
  return levelOf(await store.get<Namespace>(namespaceKey(ns)));
}

/**
 * policyRefusal is the BERTH_ERR_POLICY_VIOLATION error for a template that breaks level, or
 * undefined when it complies (pure). subject names what was refused (`service "ns/web"`); the
 * message lists every violation, the field is the first one's.
 */
export function policyRefusal(subject: string, ns: string, template: ContainerTemplate, level: PolicyLevel): FieldError | undefined {
  const violations = checkPolicy(template, level);
  if (violations.length === 0) return undefined;
  const count = violations.length === 1 ? '1 violation' : `${violations.length} violations`;
  return {
    code: 'BERTH_ERR_POLICY_VIOLATION',
    field: violations[0]!.field,
    message: `${subject} is not allowed in namespace "${ns}" at policy level ${level} (${count}): ${violations.map((v) => v.message).join('; ')}`,
  };
}

/** admitTemplateChange reads namespace ns's level and refuses template when it breaks it. */
export async function admitTemplateChange(store: Store, subject: string, ns: string, template: ContainerTemplate): Promise<FieldError | undefined> {
  return policyRefusal(subject, ns, template, await namespaceLevel(store, ns));
}

/** namespaceViolations lists, by service name, every service whose template breaks level (pure). */
export function namespaceViolations(services: readonly Service[], level: PolicyLevel): NamespaceViolation[] {
  return services
    .map((s) => ({ service: s.metadata.name, violations: checkPolicy(s.spec.template, level).map((v) => v.message) }))
    .filter((v) => v.violations.length > 0)
    .sort((a, b) => a.service.localeCompare(b.service));
}
