/**
 * A whole compose project to berth objects, in the order they must be applied: the Secrets and
 * Configs the file declares (from a file, an environment variable or inline content), then one
 * Service per compose service. Top-level `external:` secrets and configs make no object; the
 * services refer to the existing one. Every declared secret or config becomes an object with
 * one key, its compose name, holding the content, so a service projects that key to the path
 * compose would use (/run/secrets/<name>, /<name> for configs).
 */
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkKeys, isMap, type ComposeMap, type Diagnostics } from './diagnostics.js';
import type { ComposeProject } from './load.js';
import { normaliseName } from './load.js';
import { convertService, type FileObjectRef, type ServiceObject } from './service.js';
import { describe, readBool, readString } from './values.js';
import { convertVolumeDeclarations } from './volumes.js';

/** FileObject is a Secret (data base64) or a Config (data as text) as `berth apply` sends it. */
export interface FileObject {
  kind: 'Secret' | 'Config';
  metadata: { name: string; namespace: string };
  data: Record<string, string>;
}

/** ComposeObject is any object a compose file becomes. */
export type ComposeObject = FileObject | ServiceObject;

const TOP_LEVEL = ['version', 'name', 'services', 'volumes', 'secrets', 'configs'];

/** convertProject turns a loaded project into objects for namespace; problems are in diag. */
export function convertProject(project: ComposeProject, namespace: string, diag: Diagnostics): ComposeObject[] {
  const { model } = project;
  checkKeys(model, '', diag, TOP_LEVEL, {
    networks: 'every berth service is on the one cluster network and reached by its name',
    include: 'convert each included file on its own',
  });
  const objects: ComposeObject[] = [];
  const secrets = declareFiles('secret', model.secrets, project, namespace, objects, diag);
  const configs = declareFiles('config', model.configs, project, namespace, objects, diag);
  const declared = convertVolumeDeclarations(model.volumes, diag);
  const services = model.services as ComposeMap;
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(services)) {
    const service = convertService(name, value, { namespace, lookup: project.lookup, secrets, configs, declared, dir: project.dir }, diag);
    if (!service) continue;
    const clash = seen.get(service.metadata.name);
    if (clash !== undefined) diag.error(`services.${name}`, `is named ${service.metadata.name} in berth, as services.${clash} is`);
    seen.set(service.metadata.name, name);
    objects.push(service);
  }
  // undefined fields (a value that was reported) must not reach the output as nulls
  return JSON.parse(JSON.stringify(objects)) as ComposeObject[];
}

/**
 * declareFiles reads the top-level `secrets:` or `configs:` mapping: each non-external entry
 * becomes an object appended to objects; the answer maps every compose name to what services
 * project.
 */
function declareFiles(kind: 'secret' | 'config', v: unknown, project: ComposeProject, namespace: string,
  objects: ComposeObject[], diag: Diagnostics): Map<string, FileObjectRef> {
  const refs = new Map<string, FileObjectRef>();
  const section = `${kind}s`;
  if (v === undefined || v === null) return refs;
  if (!isMap(v)) {
    diag.error(section, `must be a mapping of ${kind} names, got ${describe(v)}`);
    return refs;
  }
  for (const [name, decl] of Object.entries(v)) {
    const at = `${section}.${name}`;
    if (!isMap(decl)) {
      diag.error(at, `must be a mapping with file, environment${kind === 'config' ? ', content' : ''} or external, got ${describe(decl)}`);
      continue;
    }
    const sources = kind === 'secret' ? ['file', 'environment'] : ['file', 'environment', 'content'];
    checkKeys(decl, at, diag, [...sources, 'external', 'name'], {
      driver: `berth keeps ${section} in its own store`,
      driver_opts: `berth keeps ${section} in its own store`,
      template_driver: `berth projects ${section} as they are`,
      labels: `${section} carry no labels in berth`,
    });
    const external = decl.external === undefined ? false : readBool(decl.external, `${at}.external`, diag);
    const given = decl.name === undefined ? undefined : readString(decl.name, `${at}.name`, diag);
    const object = given ?? (external ? name : normaliseName(name));
    if (object === '') diag.error(at, `the ${kind} name needs at least one letter or digit`);
    refs.set(name, { object, key: name });
    if (external) continue;
    const chosen = sources.filter((s) => decl[s] !== undefined);
    if (chosen.length !== 1) {
      diag.error(at, `needs exactly one of ${sources.join(', ')} (or external: true)${chosen.length > 1 ? `, got ${chosen.join(' and ')}` : ''}`);
      continue;
    }
    const content = readContent(chosen[0]!, decl, at, project, diag);
    if (content === undefined) continue;
    if (kind === 'config' && !isUtf8(content)) {
      diag.error(at, 'a config holds text; this content is not UTF-8 (make it a secret)');
      continue;
    }
    objects.push({
      kind: kind === 'secret' ? 'Secret' : 'Config',
      metadata: { name: object, namespace },
      data: { [name]: kind === 'secret' ? content.toString('base64') : content.toString('utf8') },
    });
  }
  return refs;
}

function readContent(source: string, decl: ComposeMap, at: string, project: ComposeProject, diag: Diagnostics): Buffer | undefined {
  const value = readString(decl[source], `${at}.${source}`, diag);
  if (value === undefined) return undefined;
  if (source === 'content') return Buffer.from(value, 'utf8');
  if (source === 'environment') {
    const fromEnv = project.lookup(value);
    if (fromEnv === undefined) diag.error(`${at}.environment`, `variable ${value} is not set (in the environment or .env)`);
    return fromEnv === undefined ? undefined : Buffer.from(fromEnv, 'utf8');
  }
  const full = resolve(project.dir, value);
  try {
    return readFileSync(full);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    diag.error(`${at}.file`, `${full}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code ?? String(err)}`);
    return undefined;
  }
}
