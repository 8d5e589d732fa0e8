/**
 * Admission of Secret and Config bodies and of the template fields that project them. Pure.
 * Key names are file names in the container, so they follow Kubernetes' rule for data keys.
 */
import type { FieldError } from '../errors.js';
import { checkDnsLabel, checkLabel } from './names.js';
import type { ContainerTemplate, FileProjection } from './types.js';

/** MAX_SECRET_BYTES bounds the values of one Secret or Config together (Kubernetes: 1 MiB per object). */
export const MAX_SECRET_BYTES = 512 * 1024;
/** MAX_KEYS bounds the keys of one Secret or Config. */
export const MAX_KEYS = 256;

const KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const str = { type: 'string' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const metadata = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: str, namespace: str, labels: stringMap, uid: str, generation: { type: 'integer' }, createdAt: str, resourceVersion: str },
} as const;

/** SECRET_BODY_SCHEMA is a Secret as POST/PUT take it: data (base64 values) and/or stringData. */
export const SECRET_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'metadata'],
  properties: { kind: { const: 'Secret' }, apiVersion: str, metadata, data: stringMap, stringData: stringMap, sizes: { type: 'object' } },
} as const;

/** CONFIG_BODY_SCHEMA is a Config as POST/PUT take it: data with plain text values. */
export const CONFIG_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'metadata', 'data'],
  properties: { kind: { const: 'Config' }, apiVersion: str, metadata, data: stringMap },
} as const;

/** KeyedBody is a schema-valid Secret or Config body. */
export interface KeyedBody {
  kind: 'Secret' | 'Config';
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** AdmittedKeyed is an admitted Secret or Config: its identity and each key's value as bytes. */
export interface AdmittedKeyed {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  values: Record<string, Buffer>;
  resourceVersion?: string;
}

const invalid = (field: string, message: string): { ok: false; error: FieldError } =>
  ({ ok: false, error: { code: 'BERTH_ERR_VALIDATION', field, message: `${field}: ${message}` } });

/**
 * admitKeyed checks a Secret (data is base64, stringData plain; a key in both is refused) or a
 * Config (data is plain text) against the URL's namespace and name.
 */
export function admitKeyed(body: KeyedBody, url: { namespace: string; name?: string }):
  { ok: true; value: AdmittedKeyed } | { ok: false; error: FieldError } {
  const kind = body.kind.toLowerCase();
  const nsWhy = checkDnsLabel(url.namespace);
  if (nsWhy) return invalid('metadata.namespace', nsWhy);
  if (body.metadata.namespace !== undefined && body.metadata.namespace !== url.namespace) {
    return invalid('metadata.namespace', `"${body.metadata.namespace}" does not match the namespace in the URL ("${url.namespace}")`);
  }
  const nameWhy = checkDnsLabel(body.metadata.name);
  if (nameWhy) return invalid('metadata.name', nameWhy);
  if (url.name !== undefined && body.metadata.name !== url.name) {
    return invalid('metadata.name', `"${body.metadata.name}" does not match the name in the URL ("${url.name}")`);
  }
  for (const [k, v] of Object.entries(body.metadata.labels ?? {})) {
    const why = checkLabel(k, v);
    if (why) return invalid('metadata.labels', why);
  }
  const values: Record<string, Buffer> = {};
  const plain = body.kind === 'Config' ? body.data ?? {} : body.stringData ?? {};
  const encoded = body.kind === 'Secret' ? body.data ?? {} : {};
  const plainField = body.kind === 'Config' ? 'data' : 'stringData';
  for (const [k, v] of Object.entries(encoded)) {
    if (!KEY.test(k)) return invalid(`data.${k}`, `key "${k}" must be 1-253 characters of letters, digits, "-", "_" or "." (it becomes a file name)`);
    const compact = v.replace(/\s+/g, '');
    if (!BASE64.test(compact)) return invalid(`data.${k}`, 'must be base64 (use stringData for plain text)');
    values[k] = Buffer.from(compact, 'base64');
  }
  for (const [k, v] of Object.entries(plain)) {
    if (!KEY.test(k)) return invalid(`${plainField}.${k}`, `key "${k}" must be 1-253 characters of letters, digits, "-", "_" or "." (it becomes a file name)`);
    if (k in values) return invalid(`stringData.${k}`, 'is also in data; give each key once');
    values[k] = Buffer.from(v, 'utf8');
  }
  const keys = Object.keys(values);
  if (keys.length === 0) {
    return invalid(body.kind === 'Secret' ? 'data' : 'data', `a ${kind} needs at least one key${body.kind === 'Secret' ? ' in data or stringData (a secret read without --reveal has no values: it cannot be applied back)' : ''}`);
  }
  if (keys.some((k) => k === '.' || k === '..')) return invalid('data', 'keys "." and ".." are not file names');
  if (keys.length > MAX_KEYS) return invalid('data', `has ${keys.length} keys, over the limit of ${MAX_KEYS}`);
  const bytes = Object.values(values).reduce((n, b) => n + b.length, 0);
  if (bytes > MAX_SECRET_BYTES) return invalid('data', `holds ${bytes} bytes, over the limit of ${MAX_SECRET_BYTES} (${MAX_SECRET_BYTES / 1024} KiB)`);
  const out: AdmittedKeyed = { name: body.metadata.name, namespace: url.namespace, labels: { ...(body.metadata.labels ?? {}) }, values };
  if (body.metadata.resourceVersion !== undefined) out.resourceVersion = body.metadata.resourceVersion;
  return { ok: true, value: out };
}

/**
 * admitProjections admits a template's secrets and configs (names, keys, targets, no target
 * twice) and turns octal mode strings ("0440", as compose files write them) into numbers, in t.
 */
export function admitProjections(t: ContainerTemplate, f: string): FieldError | undefined {
  const targets = new Map<string, string>();
  for (const list of ['secrets', 'configs'] as const) {
    for (const [i, p] of (t[list] ?? []).entries()) {
      const at = `${f}.${list}[${i}]`;
      const why = checkProjection(p, at);
      if (why) return why;
      if (typeof p.mode === 'string') p.mode = parseInt(p.mode, 8);
      const target = projectionTarget(p, list === 'secrets' ? '/run/secrets' : '/run/configs');
      const other = targets.get(target);
      if (other !== undefined) return { code: 'BERTH_ERR_VALIDATION', field: `${at}.target`, message: `${at}.target: ${target} is also the target of ${other}` };
      targets.set(target, at);
    }
  }
  return undefined;
}

function checkProjection(p: FileProjection, at: string): FieldError | undefined {
  const fail = (field: string, message: string): FieldError => ({ code: 'BERTH_ERR_VALIDATION', field, message: `${field}: ${message}` });
  const nameWhy = checkDnsLabel(p.name);
  if (nameWhy) return fail(`${at}.name`, nameWhy);
  const mode = p.mode as number | string | undefined;
  if (typeof mode === 'string' && !/^0?[0-7]{1,3}$/.test(mode)) return fail(`${at}.mode`, `"${mode}" must be an octal mode such as "0440" (or a number)`);
  if (typeof mode === 'number' && (!Number.isInteger(mode) || mode < 0 || mode > 0o777)) return fail(`${at}.mode`, `${mode} must be 0-511 (0o777); write octal as a string, e.g. "0440"`);
  if (p.key !== undefined && !KEY.test(p.key)) return fail(`${at}.key`, `"${p.key}" is not a key name (letters, digits, "-", "_", ".")`);
  if (p.target !== undefined) {
    const parts = p.target.split('/').filter((s) => s !== '');
    if (parts.length === 0) return fail(`${at}.target`, 'must name a file or directory, not /');
    if (parts.some((s) => s === '..' || s === '.')) return fail(`${at}.target`, `"${p.target}" must not contain "." or ".." segments`);
    if (p.target.includes('\0') || p.target.includes('\n') || p.target.includes('\t')) return fail(`${at}.target`, 'must not contain NUL, tab or newline');
  }
  return undefined;
}

/** projectionTarget is where a projection lands: <dir>/<name> by default, a relative target under dir. */
export function projectionTarget(p: FileProjection, dir: string): string {
  if (p.target === undefined) return `${dir}/${p.name}`;
  const clean = p.target.split('/').filter((s) => s !== '').join('/');
  return p.target.startsWith('/') ? `/${clean}` : `${dir}/${clean}`;
}
