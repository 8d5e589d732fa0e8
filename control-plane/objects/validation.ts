/**
 * Admission of user-written objects: turns schema errors into messages that name the field,
 * checks what JSON schema cannot express (names, image references, quantities, constraints)
 * and normalises quantities to numbers. Pure: no I/O.
 */
import type { FieldError } from '../errors.js';
import { canonicalCapability } from './capabilities.js';
import { parseConstraint, isSpreadAttribute } from './constraints.js';
import { checkImage } from './image.js';
import { admitProjections } from './secret-validation.js';
import { checkDnsLabel, checkLabel, MAX_SERVICE_NAME_LENGTH } from './names.js';
import { parseCpu, parseMemory } from './quantity.js';
import { canonicalSignal } from './signals.js';
import { admitVolumes } from './volume-admission.js';
import type { ContainerTemplate, NamespaceSpec, ServiceSpec } from './types.js';

/** SchemaErrorLike is the part of an ajv ErrorObject the formatter reads. */
export interface SchemaErrorLike {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** DEFAULT_REPLICAS is what a spec without replicas gets. */
export const DEFAULT_REPLICAS = 1;

/**
 * MAX_TEMPLATE_BYTES bounds a service's template as stored JSON. Tasks refer to their revision's
 * one stored copy (store/task-templates.ts) and an agent gets each copy once, but the revision
 * history keeps up to REVISION_HISTORY_LIMIT of them per service, each fits one etcd txn
 * (MAX_TXN_BYTES) with room to spare, and tasks stored before templates were shared (or 200 of
 * them on one node) still fit one agent push (GRPC_MAX_MESSAGE_BYTES in common/grpc-limits.ts).
 */
export const MAX_TEMPLATE_BYTES = 256 * 1024;

function pathToField(instancePath: string, prefix: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = prefix;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function join(field: string, child: string): string {
  return field === '' ? child : `${field}.${child}`;
}

/**
 * pickSchemaError chooses the error to report from ajv's list: an unknown field first (it is
 * usually a typo that also causes the "required" error), then the earliest reported.
 */
export function pickSchemaError(errors: readonly SchemaErrorLike[]): SchemaErrorLike {
  return errors.find((e) => e.keyword === 'additionalProperties') ?? errors[0]!;
}

/** formatSchemaError names the field an ajv error is about and says what is wrong in words. */
export function formatSchemaError(e: SchemaErrorLike, prefix = ''): FieldError {
  const field = pathToField(e.instancePath, prefix);
  const at = field === '' ? 'body' : field;
  const p = e.params;
  const fail = (f: string, message: string): FieldError => ({ code: 'BERTH_ERR_VALIDATION', field: f, message });
  switch (e.keyword) {
    case 'additionalProperties':
      return fail(join(field, String(p.additionalProperty)), `${at}: unknown field "${String(p.additionalProperty)}"`);
    case 'required':
      return fail(join(field, String(p.missingProperty)), `${join(field, String(p.missingProperty))}: required`);
    case 'minimum': return fail(at, `${at}: must be >= ${String(p.limit)}`);
    case 'maximum': return fail(at, `${at}: must be <= ${String(p.limit)}`);
    case 'type': {
      const t = Array.isArray(p.type) ? p.type.join(' or ') : String(p.type).replace(',', ' or ');
      return fail(at, `${at}: must be ${/^[aeiou]/.test(t) ? 'an' : 'a'} ${t}`);
    }
    case 'enum': return fail(at, `${at}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
    case 'const': return fail(at, `${at}: must be ${JSON.stringify(p.allowedValue)}`);
    case 'minLength': return fail(at, Number(p.limit) === 1 ? `${at}: must not be empty` : `${at}: must be at least ${String(p.limit)} characters`);
    case 'maxLength': return fail(at, `${at}: must be at most ${String(p.limit)} characters`);
    case 'minItems': return fail(at, `${at}: must have at least ${String(p.limit)} item(s)`);
    case 'maxItems': return fail(at, `${at}: must have at most ${String(p.limit)} items`);
    default: return fail(at, `${at}: ${e.message ?? 'is invalid'}`);
  }
}

type Admit<T> = { ok: true; value: T } | { ok: false; error: FieldError };

function invalid(field: string, why: string): { ok: false; error: FieldError } {
  return { ok: false, error: { code: 'BERTH_ERR_VALIDATION', field, message: `${field}: ${why}` } };
}

/** checkName validates a URL or body name segment; kind picks the length limit. */
export function checkName(field: string, value: string, kind: 'service' | 'other'): FieldError | undefined {
  const why = checkDnsLabel(value, kind === 'service' ? MAX_SERVICE_NAME_LENGTH : undefined);
  return why === undefined ? undefined : { code: 'BERTH_ERR_VALIDATION', field, message: `${field}: ${why}` };
}

function admitTemplate(t: ContainerTemplate, f: string): Admit<ContainerTemplate> {
  const imageWhy = checkImage(t.image);
  if (imageWhy) return invalid(`${f}.image`, imageWhy);
  if (t.workingDir !== undefined && !t.workingDir.startsWith('/')) return invalid(`${f}.workingDir`, 'must be an absolute path');
  if (t.user !== undefined && !/^\d{1,10}(:\d{1,10})?$/.test(t.user)) return invalid(`${f}.user`, `"${t.user}" must be "uid" or "uid:gid" (numeric)`);
  for (const [k, v] of Object.entries(t.env ?? {})) {
    if (!/^[^=\0]+$/.test(k)) return invalid(`${f}.env`, `invalid variable name "${k}"`);
    if (v.includes('\0')) return invalid(`${f}.env.${k}`, 'must not contain NUL');
  }
  // Checks (agent/probes): exactly one probe kind, so the agent never has to pick.
  for (const role of ['health', 'readiness', 'startup'] as const) {
    const check = t[role];
    if (!check) continue;
    const kinds = (['http', 'tcp', 'exec'] as const).filter((k) => check[k] !== undefined);
    if (kinds.length !== 1) return invalid(`${f}.${role}`, `must have exactly one of http, tcp or exec (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
    if (check.http && !check.http.path.startsWith('/')) return invalid(`${f}.${role}.http.path`, 'must start with /');
  }
  // Capability names as the runtime accepts them, so a typo is refused here rather than failing every task.
  for (const list of ['capAdd', 'capDrop'] as const) {
    for (const [i, name] of (t.security?.[list] ?? []).entries()) {
      if (canonicalCapability(name) === undefined) {
        return invalid(`${f}.security.${list}[${i}]`, `unknown capability "${name}" (a name from capabilities(7) such as NET_ADMIN, with or without CAP_, any case, or ALL)`);
      }
    }
  }
  const stopSignal = t.stopSignal === undefined ? undefined : canonicalSignal(t.stopSignal);
  if (t.stopSignal !== undefined && stopSignal === undefined) {
    return invalid(`${f}.stopSignal`, `unknown signal ${JSON.stringify(t.stopSignal)} (a name such as SIGTERM, TERM or SIGQUIT, or a number 1-31)`);
  }
  const out: ContainerTemplate = structuredClone(t);
  const projection = admitProjections(out, f);
  if (projection) return { ok: false, error: projection };
  if (stopSignal !== undefined) out.stopSignal = stopSignal;
  if (t.resources) {
    const r = t.resources as Record<string, unknown>;
    const res: ContainerTemplate['resources'] = {};
    if (r.cpu !== undefined) {
      const cpu = parseCpu(r.cpu);
      if (!cpu.ok) return invalid(`${f}.resources.cpu`, cpu.message);
      res.cpu = cpu.value;
    }
    if (r.memory !== undefined) {
      const mem = parseMemory(r.memory);
      if (!mem.ok) return invalid(`${f}.resources.memory`, mem.message);
      res.memory = mem.value;
    }
    if (r.pids !== undefined) res.pids = r.pids as number;
    out.resources = res;
  }
  if (t.volumes !== undefined) {
    const volumes = admitVolumes(t.volumes, f);
    if (!volumes.ok) return volumes;
    out.volumes = volumes.value;
  }
  const seen = new Set<string>();
  const hostSeen = new Set<string>();
  for (const [i, p] of (out.ports ?? []).entries()) {
    p.protocol ??= 'tcp';
    const k = `${p.containerPort}/${p.protocol}`;
    if (seen.has(k)) return invalid(`${f}.ports[${i}].containerPort`, `duplicate port ${k}`);
    seen.add(k);
    if (p.hostPort) {
      const h = `${p.hostPort}/${p.protocol}`;
      if (hostSeen.has(h)) return invalid(`${f}.ports[${i}].hostPort`, `duplicate host port ${h}`);
      hostSeen.add(h);
    }
  }
  return { ok: true, value: out };
}

/** admitServiceSpec checks and normalises a schema-valid spec (field names are under "spec."). */
export function admitServiceSpec(spec: ServiceSpec): Admit<ServiceSpec> {
  const template = admitTemplate(spec.template, 'spec.template');
  if (!template.ok) return template;
  const templateBytes = Buffer.byteLength(JSON.stringify(template.value));
  if (templateBytes > MAX_TEMPLATE_BYTES) {
    return invalid('spec.template', `is ${templateBytes} bytes as JSON, over the limit of ${MAX_TEMPLATE_BYTES} (${MAX_TEMPLATE_BYTES / 1024} KiB): it is kept with every revision and sent to every node that runs it; put large configuration into the image instead of env or command`);
  }
  for (const [i, c] of (spec.placement?.constraints ?? []).entries()) {
    const parsed = parseConstraint(c);
    if (!parsed.ok) return invalid(`spec.placement.constraints[${i}]`, parsed.message);
  }
  const spread = spec.placement?.spread;
  if (spread !== undefined && !isSpreadAttribute(spread)) return invalid('spec.placement.spread', `"${spread}" must be node.name or node.labels.KEY`);
  const out: ServiceSpec = { ...structuredClone(spec), replicas: spec.replicas ?? DEFAULT_REPLICAS, template: template.value };
  return { ok: true, value: out };
}

/** ServiceBody is a schema-valid Service as the API receives it. */
export interface ServiceBody {
  kind: 'Service';
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec: ServiceSpec;
}

/** AdmittedService is what the API stores: identity, labels, normalised spec, optional precondition. */
export interface AdmittedService {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  spec: ServiceSpec;
  resourceVersion?: string;
}

/** admitService checks a schema-valid body against the URL's namespace (and name, for PUT). */
export function admitService(body: ServiceBody, url: { namespace: string; name?: string }): Admit<AdmittedService> {
  const nsErr = checkName('metadata.namespace', url.namespace, 'other');
  if (nsErr) return { ok: false, error: nsErr };
  if (body.metadata.namespace !== undefined && body.metadata.namespace !== url.namespace) {
    return invalid('metadata.namespace', `"${body.metadata.namespace}" does not match the namespace in the URL ("${url.namespace}")`);
  }
  const nameErr = checkName('metadata.name', body.metadata.name, 'service');
  if (nameErr) return { ok: false, error: nameErr };
  if (url.name !== undefined && body.metadata.name !== url.name) {
    return invalid('metadata.name', `"${body.metadata.name}" does not match the name in the URL ("${url.name}")`);
  }
  for (const [k, v] of Object.entries(body.metadata.labels ?? {})) {
    const why = checkLabel(k, v);
    if (why) return invalid('metadata.labels', why);
  }
  const spec = admitServiceSpec(body.spec);
  if (!spec.ok) return spec;
  return {
    ok: true,
    value: {
      name: body.metadata.name,
      namespace: url.namespace,
      labels: { ...(body.metadata.labels ?? {}) },
      spec: spec.value,
      resourceVersion: body.metadata.resourceVersion,
    },
  };
}

/** NamespaceBody is a schema-valid Namespace as PUT takes it; kind and metadata are optional. */
export interface NamespaceBody {
  kind?: 'Namespace';
  metadata?: { name?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec: NamespaceSpec;
}

/** AdmittedNamespace is what the API stores for a Namespace, with an optional precondition. */
export interface AdmittedNamespace {
  name: string;
  labels: Record<string, string>;
  spec: NamespaceSpec;
  resourceVersion?: string;
}

/** admitNamespace checks a schema-valid body against the name in the URL. */
export function admitNamespace(body: NamespaceBody, urlName: string): Admit<AdmittedNamespace> {
  const nameErr = checkName('metadata.name', urlName, 'other');
  if (nameErr) return { ok: false, error: nameErr };
  const m = body.metadata ?? {};
  if (m.name !== undefined && m.name !== urlName) {
    return invalid('metadata.name', `"${m.name}" does not match the name in the URL ("${urlName}")`);
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    const why = checkLabel(k, v);
    if (why) return invalid('metadata.labels', why);
  }
  return { ok: true, value: { name: urlName, labels: { ...(m.labels ?? {}) }, spec: { policy: body.spec.policy }, resourceVersion: m.resourceVersion } };
}
