/**
 * Service `volumes:` and `tmpfs:` to berth's template volumes, and the top-level `volumes:`
 * declarations they name. Short syntax `SOURCE:TARGET[:ro]`: a source that is a path (`/`,
 * `.`, `~`) is a bind mount, resolved against the compose file's directory as compose does;
 * any other source is a named volume, which must be declared. Long syntax: type volume, bind
 * or tmpfs (with tmpfs.size).
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { VolumeSpec } from '../../objects/types.js';
import { checkKeys, isMap, type ComposeMap, type Diagnostics } from './diagnostics.js';
import { normaliseName } from './load.js';
import { describe, parseBytes, readBool, readString, readStringList } from './values.js';

/** VolumeContext is what resolving a service's volumes needs from the project. */
export interface VolumeContext {
  /** declared maps each top-level volume's compose name to its berth name. */
  declared: Map<string, string>;
  /** dir is the compose file's directory (relative bind sources are under it). */
  dir: string;
}

/** convertVolumeDeclarations reads the top-level `volumes:` mapping into compose name → berth name. */
export function convertVolumeDeclarations(v: unknown, diag: Diagnostics): Map<string, string> {
  const declared = new Map<string, string>();
  if (v === undefined || v === null) return declared;
  if (!isMap(v)) {
    diag.error('volumes', `must be a mapping of volume names, got ${describe(v)}`);
    return declared;
  }
  for (const [name, decl] of Object.entries(v)) {
    const at = `volumes.${name}`;
    let berthName = normaliseName(name);
    if (decl !== null && decl !== undefined && !isMap(decl)) {
      diag.error(at, `must be a mapping (or empty), got ${describe(decl)}`);
      continue;
    }
    const d: ComposeMap = decl ?? {};
    checkKeys(d, at, diag, ['external', 'name', 'driver'], {
      driver_opts: 'berth named volumes are node-local directories with no driver options',
      labels: 'volumes carry no labels in berth',
    });
    if (d.driver !== undefined && d.driver !== 'local') diag.unsupportedField(`${at}.driver`, 'berth named volumes are node-local; the local driver is used');
    const external = d.external === undefined ? false : readBool(d.external, `${at}.external`, diag);
    if (d.name !== undefined) {
      const given = readString(d.name, `${at}.name`, diag);
      if (given !== undefined) berthName = given;
    } else if (external) {
      berthName = name;
    }
    if (berthName === '') diag.error(at, 'the volume name needs at least one letter or digit');
    declared.set(name, berthName);
  }
  return declared;
}

/** convertVolumes translates a service's `volumes:` list. */
export function convertVolumes(v: unknown, path: string, ctx: VolumeContext, diag: Diagnostics): VolumeSpec[] {
  if (!Array.isArray(v)) {
    diag.error(path, `must be a list, got ${describe(v)}`);
    return [];
  }
  const out: VolumeSpec[] = [];
  v.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const spec = typeof entry === 'string' ? shortVolume(entry, at, ctx, diag)
      : isMap(entry) ? longVolume(entry, at, ctx, diag)
        : (diag.error(at, `must be "SOURCE:TARGET[:ro]" or a mapping with type and target, got ${describe(entry)}`), undefined);
    if (spec) out.push(spec);
  });
  return out;
}

/** convertTmpfs translates the service-level `tmpfs:` (a path or a list, each `PATH[:size=64m,...]`). */
export function convertTmpfs(v: unknown, path: string, diag: Diagnostics): VolumeSpec[] {
  const entries = readStringList(v, path, diag) ?? [];
  const out: VolumeSpec[] = [];
  entries.forEach((entry, i) => {
    const at = Array.isArray(v) ? `${path}[${i}]` : path;
    const colon = entry.indexOf(':');
    const target = colon < 0 ? entry : entry.slice(0, colon);
    if (!isAbsolute(target)) {
      diag.error(at, `"${entry}": the tmpfs target must be an absolute path`);
      return;
    }
    const spec: VolumeSpec = { type: 'tmpfs', target };
    for (const option of colon < 0 ? [] : entry.slice(colon + 1).split(',')) {
      const [key, value] = option.split('=', 2) as [string, string | undefined];
      if (key === 'size') {
        const size = parseBytes(value);
        if (size === undefined) diag.error(at, `size "${value ?? ''}" is not a size like 64m`);
        else spec.size = size;
      } else if (key !== 'rw' && key !== '') {
        diag.unsupportedField(`${at} option ${key}`, 'a berth tmpfs takes only a size');
      }
    }
    out.push(spec);
  });
  return out;
}

function isPathSource(source: string): boolean {
  return source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
}

/** bindSource resolves a bind source as compose does: `~` is the home directory, a relative path is under dir. */
function bindSource(source: string, dir: string): string {
  if (source === '~' || source.startsWith('~/')) return join(homedir(), source.slice(1));
  return resolve(dir, source);
}

function namedVolume(source: string, at: string, ctx: VolumeContext, diag: Diagnostics): string | undefined {
  const name = ctx.declared.get(source);
  if (name === undefined) diag.error(at, `volume "${source}" is not declared in the top-level volumes: mapping`);
  return name;
}

function shortVolume(entry: string, at: string, ctx: VolumeContext, diag: Diagnostics): VolumeSpec | undefined {
  const parts = entry.split(':');
  if (parts.length === 1) {
    diag.unsupportedField(at, `"${entry}" is an anonymous volume; declare a named volume or use tmpfs`);
    return undefined;
  }
  if (parts.length > 3) {
    diag.error(at, `"${entry}" is not SOURCE:TARGET[:MODE]`);
    return undefined;
  }
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (!isAbsolute(target)) {
    diag.error(at, `"${entry}": the target must be an absolute path in the container`);
    return undefined;
  }
  let spec: VolumeSpec;
  if (isPathSource(source)) {
    spec = { type: 'bind', source: bindSource(source, ctx.dir), target };
  } else {
    const name = namedVolume(source, at, ctx, diag);
    if (name === undefined) return undefined;
    spec = { type: 'volume', name, target };
  }
  for (const option of mode === undefined ? [] : mode.split(',')) {
    if (option === 'ro') spec.readOnly = true;
    else if (option !== 'rw') diag.unsupportedField(`${at} mode ${option}`, 'berth takes only ro or rw');
  }
  return spec;
}

function longVolume(entry: ComposeMap, at: string, ctx: VolumeContext, diag: Diagnostics): VolumeSpec | undefined {
  checkKeys(entry, at, diag, ['type', 'source', 'target', 'read_only', 'tmpfs', 'bind', 'volume'], {
    consistency: 'it only matters on Docker Desktop',
  });
  const type = readString(entry.type ?? '', `${at}.type`, diag);
  const target = entry.target === undefined ? undefined : readString(entry.target, `${at}.target`, diag);
  if (target === undefined || !isAbsolute(target)) {
    diag.error(`${at}.target`, 'required, an absolute path in the container');
    return undefined;
  }
  const readOnly = entry.read_only === undefined ? undefined : readBool(entry.read_only, `${at}.read_only`, diag);
  const source = entry.source === undefined ? undefined : readString(entry.source, `${at}.source`, diag);
  for (const [key, allowed] of [['bind', 'bind'], ['volume', 'volume'], ['tmpfs', 'tmpfs']] as const) {
    if (entry[key] !== undefined && type !== allowed) diag.error(`${at}.${key}`, `only applies to type ${allowed}`);
  }
  if (isMap(entry.bind)) checkKeys(entry.bind, `${at}.bind`, diag, [], { propagation: 'berth bind mounts are private', selinux: 'berth does not relabel', create_host_path: 'berth never creates host paths' });
  if (isMap(entry.volume)) checkKeys(entry.volume, `${at}.volume`, diag, [], { nocopy: 'berth never copies image content into a volume', subpath: 'berth mounts the whole volume' });
  let spec: VolumeSpec;
  switch (type) {
    case 'volume': {
      if (source === undefined || source === '') {
        diag.unsupportedField(at, 'an anonymous volume (no source); declare a named volume or use tmpfs');
        return undefined;
      }
      const name = namedVolume(source, `${at}.source`, ctx, diag);
      if (name === undefined) return undefined;
      spec = { type: 'volume', name, target };
      break;
    }
    case 'bind':
      if (source === undefined || source === '') {
        diag.error(`${at}.source`, 'required for a bind mount (a host path)');
        return undefined;
      }
      spec = { type: 'bind', source: bindSource(source, ctx.dir), target };
      break;
    case 'tmpfs': {
      spec = { type: 'tmpfs', target };
      if (entry.tmpfs !== undefined && !isMap(entry.tmpfs)) diag.error(`${at}.tmpfs`, 'must be a mapping with size');
      const options: ComposeMap = isMap(entry.tmpfs) ? entry.tmpfs : {};
      checkKeys(options, `${at}.tmpfs`, diag, ['size'], { mode: 'a berth tmpfs takes only a size' });
      if (options.size !== undefined) {
        const size = parseBytes(options.size);
        if (size === undefined) diag.error(`${at}.tmpfs.size`, `${describe(options.size)} is not a size like 64m or 67108864`);
        else spec.size = size;
      }
      break;
    }
    default:
      diag.error(`${at}.type`, `must be volume, bind or tmpfs, got ${describe(entry.type)}`);
      return undefined;
  }
  if (readOnly) spec.readOnly = true;
  return spec;
}
