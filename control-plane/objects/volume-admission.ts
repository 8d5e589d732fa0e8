/**
 * Admission of a template's `volumes`: what the schema cannot say (which fields belong to which
 * type, absolute targets, one mount per target, volume names, tmpfs sizes) and normalising each
 * tmpfs size to bytes. Whether a namespace may bind host paths is admission-policy.ts's question.
 * Pure: no I/O.
 */
import { posix } from 'node:path';
import type { FieldError } from '../errors.js';
import { checkDnsLabel } from './names.js';
import { parseMemory } from './quantity.js';
import type { VolumeSpec } from './types.js';

/** DEFAULT_TMPFS_BYTES is the size of a tmpfs volume that names none (64 MiB, as Docker's /dev/shm). */
export const DEFAULT_TMPFS_BYTES = 64 * 1024 * 1024;
/** MIN_TMPFS_BYTES is one page: a smaller tmpfs holds nothing. */
export const MIN_TMPFS_BYTES = 4096;
/**
 * MAX_TMPFS_BYTES bounds a tmpfs volume. Its pages are charged to the container's memory, so a
 * larger one is almost always a unit mistake (64Gi meant as 64Mi) rather than a plan.
 */
export const MAX_TMPFS_BYTES = 16 * 1024 ** 3;

/** FIELDS_BY_TYPE are the fields each volume type takes besides type, target and readOnly. */
const FIELDS_BY_TYPE: Record<VolumeSpec['type'], readonly ('name' | 'source' | 'size')[]> = {
  volume: ['name'],
  bind: ['source'],
  tmpfs: ['size'],
};

/** OWNER_OF says which type a type-specific field belongs to, for the refusal message. */
const OWNER_OF: Record<'name' | 'source' | 'size', VolumeSpec['type']> = { name: 'volume', source: 'bind', size: 'tmpfs' };

type Admitted = { ok: true; value: VolumeSpec[] } | { ok: false; error: FieldError };

function invalid(field: string, why: string): { ok: false; error: FieldError } {
  return { ok: false, error: { code: 'BERTH_ERR_VALIDATION', field, message: `${field}: ${why}` } };
}

/**
 * checkAbsolutePath says why p is not a clean absolute path, or undefined. ".." is refused
 * rather than resolved: a path that climbs reads as an attempt to leave somewhere, and the
 * native core resolves targets inside the rootfs anyway.
 */
function checkAbsolutePath(p: string): string | undefined {
  if (!p.startsWith('/')) return `"${p}" must be an absolute path`;
  if (p.includes('\0')) return 'must not contain NUL';
  if (p.split('/').includes('..')) return `"${p}" must not contain ".."`;
  return undefined;
}

/** normalisePath drops repeated and trailing slashes and "." segments, so /data/ and /data are one target. */
export function normalisePath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * admitVolumes checks a template's volumes (at is the field prefix, e.g. "spec.template") and
 * returns them with targets and sources normalised and each tmpfs size in bytes (default
 * DEFAULT_TMPFS_BYTES). The first problem is returned, naming its field.
 */
export function admitVolumes(volumes: readonly VolumeSpec[] | undefined, at: string): Admitted {
  const out: VolumeSpec[] = [];
  const targets = new Map<string, number>();
  for (const [i, v] of (volumes ?? []).entries()) {
    const f = `${at}.volumes[${i}]`;
    for (const field of ['name', 'source', 'size'] as const) {
      if (v[field] !== undefined && !FIELDS_BY_TYPE[v.type].includes(field)) return invalid(`${f}.${field}`, `only for type ${OWNER_OF[field]}`);
    }
    const targetWhy = checkAbsolutePath(v.target);
    if (targetWhy) return invalid(`${f}.target`, targetWhy);
    const target = normalisePath(v.target);
    if (target === '/') return invalid(`${f}.target`, 'must not be / (the container\'s root filesystem)');
    const earlier = targets.get(target);
    if (earlier !== undefined) return invalid(`${f}.target`, `"${target}" is already the target of ${at}.volumes[${earlier}]`);
    targets.set(target, i);
    const next: VolumeSpec = { type: v.type, target };
    if (v.readOnly !== undefined) next.readOnly = v.readOnly;
    switch (v.type) {
      case 'volume': {
        if (v.name === undefined) return invalid(`${f}.name`, 'required for type volume');
        const why = checkDnsLabel(v.name);
        if (why) return invalid(`${f}.name`, why);
        next.name = v.name;
        break;
      }
      case 'bind': {
        if (v.source === undefined) return invalid(`${f}.source`, 'required for type bind (the host path)');
        const why = checkAbsolutePath(v.source);
        if (why) return invalid(`${f}.source`, why);
        next.source = normalisePath(v.source);
        break;
      }
      case 'tmpfs': {
        if (v.size === undefined) {
          next.size = DEFAULT_TMPFS_BYTES;
          break;
        }
        const size = parseMemory(v.size);
        if (!size.ok) return invalid(`${f}.size`, size.message);
        if (size.value < MIN_TMPFS_BYTES || size.value > MAX_TMPFS_BYTES) {
          return invalid(`${f}.size`, `${size.value} bytes is outside ${MIN_TMPFS_BYTES} bytes .. ${MAX_TMPFS_BYTES / 1024 ** 3} GiB`);
        }
        next.size = size.value;
        break;
      }
    }
    out.push(next);
  }
  return { ok: true, value: out };
}

/** namedVolumesOf lists the named volumes (type volume) a template mounts, once each, in order. */
export function namedVolumesOf(volumes: readonly VolumeSpec[] | undefined): string[] {
  const names: string[] = [];
  for (const v of volumes ?? []) if (v.type === 'volume' && v.name !== undefined && !names.includes(v.name)) names.push(v.name);
  return names;
}
