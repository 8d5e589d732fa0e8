/**
 * One compose service to one berth Service. Every key of the service is translated, reported
 * as unsupported (with what to do instead), or is an `x-` extension. command and entrypoint
 * combine into berth's one `command`, which replaces the image's ENTRYPOINT and CMD.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ContainerTemplate, FileProjection, ServiceSpec } from '../../objects/types.js';
import { convertDeploy, convertLabels, convertRestart } from './deploy.js';
import { checkKeys, isMap, type ComposeMap, type Diagnostics } from './diagnostics.js';
import { parseDotenv } from './dotenv.js';
import { convertHealthcheck } from './health.js';
import type { Lookup } from './interpolate.js';
import { normaliseName } from './load.js';
import { convertExpose, convertPorts } from './ports.js';
import { convertTmpfs, convertVolumes, type VolumeContext } from './volumes.js';
import { describe, parseBytes, readBool, readInt, readNumber, readOctalMode, readSeconds, readString, readStringList, splitShellWords } from './values.js';

/** FileObjectRef is how a declared secret or config is projected: the berth object and the key holding the file. */
export interface FileObjectRef {
  object: string;
  key: string;
}

/** ServiceContext is what converting a service needs from the rest of the project. */
export interface ServiceContext extends VolumeContext {
  namespace: string;
  lookup: Lookup;
  secrets: Map<string, FileObjectRef>;
  configs: Map<string, FileObjectRef>;
}

/** ServiceObject is a Service as `berth apply` sends it (the server fills uid, generation, status). */
export interface ServiceObject {
  kind: 'Service';
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: ServiceSpec;
}

/** BERTH_SERVICE_NAME_MAX is the longest service name berth takes (tasks append a suffix). */
const BERTH_SERVICE_NAME_MAX = 40;

const TRANSLATED = [
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'expose', 'deploy', 'healthcheck', 'restart',
  'volumes', 'tmpfs', 'secrets', 'configs', 'labels', 'stop_signal', 'stop_grace_period', 'user', 'working_dir', 'init',
  'cap_add', 'cap_drop', 'read_only', 'security_opt', 'pull_policy', 'scale', 'cpus', 'mem_limit', 'pids_limit',
] as const;

const UNSUPPORTED: Record<string, string> = {
  build: 'berth runs images: build and push the image, then set image',
  container_name: 'berth names tasks itself',
  hostname: 'a berth container\'s hostname is its task name',
  networks: 'every berth service is on the one cluster network and reached by its name',
  network_mode: 'every berth service is on the one cluster network',
  depends_on: 'berth starts services independently; make clients retry, and use healthcheck',
  links: 'services reach each other by name',
  logging: 'berth keeps container logs itself: berth logs',
  privileged: 'berth never runs privileged containers; use cap_add',
};

/** convertService translates the service `name`; undefined when it has no usable image or name. */
export function convertService(name: string, v: unknown, ctx: ServiceContext, diag: Diagnostics): ServiceObject | undefined {
  const path = `services.${name}`;
  if (!isMap(v)) {
    diag.error(path, `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  checkKeys(v, path, diag, TRANSLATED, UNSUPPORTED);
  const berthName = normaliseName(name, BERTH_SERVICE_NAME_MAX);
  if (berthName === '') diag.error(path, 'the service name needs at least one letter or digit');
  else if (berthName !== name) diag.note(path, `is named ${berthName} in berth (names are DNS labels of at most ${BERTH_SERVICE_NAME_MAX} characters); other services reach it by that name`);
  const image = v.image === undefined ? undefined : readString(v.image, `${path}.image`, diag);
  if (image === undefined || image === '') diag.error(`${path}.image`, 'required: berth runs images (build and push it first)');
  const template: ContainerTemplate = { image: image ?? '' };
  const command = convertCommand(v, path, diag);
  if (command !== undefined) template.command = command;
  const env = convertEnvironment(v, path, ctx, diag);
  if (Object.keys(env).length > 0) template.env = env;
  const ports = [
    ...(v.ports === undefined ? [] : convertPorts(v.ports, `${path}.ports`, diag)),
    ...(v.expose === undefined ? [] : convertExpose(v.expose, `${path}.expose`, diag)),
  ];
  const unique = ports.filter((p, i) => p.hostPort !== undefined || !ports.some((q, j) => j < i && q.containerPort === p.containerPort && q.protocol === p.protocol));
  if (unique.length > 0) template.ports = unique;
  const volumes = [
    ...(v.volumes === undefined ? [] : convertVolumes(v.volumes, `${path}.volumes`, ctx, diag)),
    ...(v.tmpfs === undefined ? [] : convertTmpfs(v.tmpfs, `${path}.tmpfs`, diag)),
  ];
  if (volumes.length > 0) template.volumes = volumes;
  if (v.secrets !== undefined) template.secrets = convertFileRefs(v.secrets, `${path}.secrets`, 'secret', ctx.secrets, diag);
  if (v.configs !== undefined) template.configs = convertFileRefs(v.configs, `${path}.configs`, 'config', ctx.configs, diag);
  if (v.healthcheck !== undefined) Object.assign(template, convertHealthcheck(v.healthcheck, `${path}.healthcheck`, diag));
  convertProcess(v, path, template, diag);
  const deploy = v.deploy === undefined ? {} : convertDeploy(v.deploy, `${path}.deploy`, diag);
  const restart = deploy.restart ?? (v.restart === undefined ? undefined : convertRestart(v.restart, `${path}.restart`, diag));
  if (deploy.restart && v.restart !== undefined) diag.note(`${path}.restart`, 'deploy.restart_policy is used instead, as docker stack deploy does');
  if (restart) template.restart = restart;
  const resources = { ...legacyResources(v, path, diag), ...deploy.resources };
  if (Object.keys(resources).length > 0) template.resources = resources;
  const spec: ServiceSpec = { replicas: 1, template };
  if (deploy.mode === 'global') {
    spec.mode = 'global';
    if (deploy.replicas !== undefined) diag.note(`${path}.deploy.replicas`, 'a global service runs one task per node; replicas is ignored');
  }
  const replicas = deploy.replicas ?? (v.scale === undefined ? undefined : readInt(v.scale, `${path}.scale`, diag, 0, 10_000));
  if (replicas !== undefined) spec.replicas = replicas;
  if (deploy.placement && Object.keys(deploy.placement).length > 0) spec.placement = deploy.placement;
  if (deploy.update) spec.update = deploy.update;
  const labels = { ...(v.labels === undefined ? {} : convertLabels(v.labels, `${path}.labels`, diag)), ...deploy.labels };
  return {
    kind: 'Service',
    metadata: { name: berthName, namespace: ctx.namespace, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
    spec,
  };
}

/** commandWords reads a command or entrypoint: a string is split into words as compose does, a list taken as is. */
function commandWords(v: unknown, path: string, diag: Diagnostics): string[] | undefined {
  if (v === null) return undefined;
  if (typeof v === 'string') {
    const words = splitShellWords(v);
    if (words === undefined) diag.error(path, `"${v}" has an unclosed quote`);
    return words;
  }
  return readStringList(v, path, diag);
}

function convertCommand(v: ComposeMap, path: string, diag: Diagnostics): string[] | undefined {
  const entrypoint = v.entrypoint === undefined ? undefined : commandWords(v.entrypoint, `${path}.entrypoint`, diag);
  const command = v.command === undefined ? undefined : commandWords(v.command, `${path}.command`, diag);
  if (entrypoint !== undefined && entrypoint.length > 0) return [...entrypoint, ...(command ?? [])];
  if (command !== undefined && entrypoint === undefined) {
    diag.note(`${path}.command`, 'berth runs it in place of the image\'s ENTRYPOINT and CMD; if the image has an ENTRYPOINT, repeat it in entrypoint:');
  }
  if (entrypoint !== undefined && command === undefined) diag.note(`${path}.entrypoint`, 'an empty entrypoint without command leaves the image\'s own');
  return command;
}

function convertEnvironment(v: ComposeMap, path: string, ctx: ServiceContext, diag: Diagnostics): Record<string, string> {
  const env: Record<string, string> = {};
  if (v.env_file !== undefined) {
    const entries = Array.isArray(v.env_file) ? v.env_file : [v.env_file];
    entries.forEach((entry, i) => {
      const at = Array.isArray(v.env_file) ? `${path}.env_file[${i}]` : `${path}.env_file`;
      const file = isMap(entry) ? entry.path : entry;
      if (isMap(entry)) checkKeys(entry, at, diag, ['path', 'required'], { format: 'berth reads the compose env file format only' });
      const required = isMap(entry) && entry.required !== undefined ? readBool(entry.required, `${at}.required`, diag) : true;
      const name = readString(file, isMap(entry) ? `${at}.path` : at, diag);
      if (name === undefined) return;
      const full = resolve(ctx.dir, name);
      let text: string;
      try {
        text = readFileSync(full, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' || required !== false) diag.error(at, `${full}: ${code === 'ENOENT' ? 'no such file' : code ?? String(err)}`);
        return;
      }
      const parsed = parseDotenv(text, ctx.lookup);
      for (const e of parsed.errors) diag.error(at, `${full}: ${e}`);
      for (const [k, value] of parsed.vars) env[k] = value;
    });
  }
  const set = (key: string, value: unknown, at: string): void => {
    if (value === null || value === undefined) {
      // KEY with no value takes the variable from the environment, and is unset when it is not there
      const fromEnv = ctx.lookup(key);
      if (fromEnv !== undefined) env[key] = fromEnv;
      return;
    }
    const s = readString(value, at, diag);
    if (s !== undefined) env[key] = s;
  };
  if (Array.isArray(v.environment)) {
    v.environment.forEach((item, i) => {
      const text = readString(item, `${path}.environment[${i}]`, diag);
      if (text === undefined) return;
      const eq = text.indexOf('=');
      set(eq < 0 ? text : text.slice(0, eq), eq < 0 ? null : text.slice(eq + 1), `${path}.environment[${i}]`);
    });
  } else if (isMap(v.environment)) {
    for (const [k, value] of Object.entries(v.environment)) set(k, value, `${path}.environment.${k}`);
  } else if (v.environment !== undefined) {
    diag.error(`${path}.environment`, `must be a mapping or a list of KEY=VALUE, got ${describe(v.environment)}`);
  }
  return env;
}

/** convertFileRefs translates a service's `secrets:` or `configs:` list into file projections. */
function convertFileRefs(v: unknown, path: string, kind: 'secret' | 'config', declared: Map<string, FileObjectRef>, diag: Diagnostics): FileProjection[] {
  if (!Array.isArray(v)) {
    diag.error(path, `must be a list, got ${describe(v)}`);
    return [];
  }
  const out: FileProjection[] = [];
  v.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const long = isMap(entry) ? entry : undefined;
    if (long) checkKeys(long, at, diag, ['source', 'target', 'uid', 'gid', 'mode']);
    const source = readString(long ? long.source : entry, long ? `${at}.source` : at, diag);
    if (source === undefined) return;
    const ref = declared.get(source);
    if (ref === undefined) {
      diag.error(at, `${kind} "${source}" is not declared in the top-level ${kind}s: mapping`);
      return;
    }
    // compose puts a secret at /run/secrets/<name> and a config at /<name>; a relative target is under the same place
    const base = kind === 'secret' ? '/run/secrets/' : '/';
    const target = long?.target === undefined ? source : readString(long.target, `${at}.target`, diag) ?? source;
    const projection: FileProjection = { name: ref.object, key: ref.key, target: target.startsWith('/') ? target : `${base}${target}` };
    if (long?.uid !== undefined) projection.uid = readInt(long.uid, `${at}.uid`, diag, 0, 4_294_967_294);
    if (long?.gid !== undefined) projection.gid = readInt(long.gid, `${at}.gid`, diag, 0, 4_294_967_294);
    if (long?.mode !== undefined) projection.mode = readOctalMode(long.mode, `${at}.mode`, diag);
    out.push(projection);
  });
  return out;
}

/** convertProcess sets what the container's process runs as: user, directory, signals, init, capabilities. */
function convertProcess(v: ComposeMap, path: string, template: ContainerTemplate, diag: Diagnostics): void {
  if (v.user !== undefined) template.user = readString(v.user, `${path}.user`, diag);
  if (v.working_dir !== undefined) template.workingDir = readString(v.working_dir, `${path}.working_dir`, diag);
  if (v.stop_signal !== undefined) template.stopSignal = readString(v.stop_signal, `${path}.stop_signal`, diag);
  if (v.stop_grace_period !== undefined) template.stopGracePeriodSeconds = readSeconds(v.stop_grace_period, `${path}.stop_grace_period`, diag, 0, 3600);
  if (v.init !== undefined) template.init = readBool(v.init, `${path}.init`, diag);
  if (v.pull_policy !== undefined) {
    const policy = readString(v.pull_policy, `${path}.pull_policy`, diag);
    const berth = ({ always: 'always', missing: 'if-not-present', if_not_present: 'if-not-present', never: 'never' } as const)[policy ?? ''];
    if (berth) template.pullPolicy = berth;
    else if (policy !== undefined) diag.unsupportedField(`${path}.pull_policy`, `"${policy}": berth takes always, missing or never`);
  }
  const security: NonNullable<ContainerTemplate['security']> = {};
  if (v.cap_add !== undefined) security.capAdd = readStringList(v.cap_add, `${path}.cap_add`, diag);
  if (v.cap_drop !== undefined) security.capDrop = readStringList(v.cap_drop, `${path}.cap_drop`, diag);
  if (v.read_only !== undefined) security.readOnlyRootfs = readBool(v.read_only, `${path}.read_only`, diag);
  (v.security_opt === undefined ? [] : readStringList(v.security_opt, `${path}.security_opt`, diag) ?? []).forEach((opt, i) => {
    if (opt === 'seccomp=unconfined' || opt === 'seccomp:unconfined') security.seccomp = 'unconfined';
    else diag.unsupportedField(`${path}.security_opt[${i}]`, `"${opt}": berth takes seccomp=unconfined only`);
  });
  if (Object.keys(security).length > 0) template.security = security;
}

/** legacyResources reads the non-Swarm limits (cpus, mem_limit, pids_limit); deploy.resources.limits wins over them. */
function legacyResources(v: ComposeMap, path: string, diag: Diagnostics): NonNullable<ContainerTemplate['resources']> {
  const out: NonNullable<ContainerTemplate['resources']> = {};
  if (v.cpus !== undefined) {
    const cpu = readNumber(v.cpus, `${path}.cpus`, diag);
    if (cpu !== undefined) out.cpu = cpu;
  }
  if (v.mem_limit !== undefined) {
    const memory = parseBytes(v.mem_limit);
    if (memory === undefined) diag.error(`${path}.mem_limit`, `must be a size like 512m, got ${describe(v.mem_limit)}`);
    else out.memory = memory;
  }
  if (v.pids_limit !== undefined) {
    const pids = readInt(v.pids_limit, `${path}.pids_limit`, diag, 1, 4_194_304);
    if (pids !== undefined) out.pids = pids;
  }
  return out;
}
