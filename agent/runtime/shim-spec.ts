import type { ContainerSpec } from './runtime.js';

/** ShimSpecOptions are the host-side settings that travel with a container spec to the shim. */
export interface ShimSpecOptions {
  cgroupParent: string;
  cgroupRoot: string;
  cgroupVersion: 'v1' | 'v2';
  logMaxBytes: number;
  /** initPath is the host path of berth-init, bound into the container when spec.init is set. */
  initPath?: string;
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

// encodeIsolation renders the privilege and filesystem keys; defaults are left out.
function encodeIsolation(spec: ContainerSpec): string[] {
  const lines: string[] = [];
  const sec = spec.security ?? {};
  for (const cap of sec.capAdd ?? []) lines.push(`capAdd=${escape(cap)}`);
  for (const cap of sec.capDrop ?? []) lines.push(`capDrop=${escape(cap)}`);
  if (sec.readOnlyRootfs) lines.push('readOnlyRootfs=1');
  if (sec.seccomp === 'unconfined') lines.push('seccomp=unconfined');
  if (sec.userNamespace) {
    lines.push('userNamespace=1');
    if (typeof sec.userNamespace === 'object') {
      const { uidBase, gidBase, size } = sec.userNamespace;
      lines.push(`uidMapBase=${uidBase}`, `gidMapBase=${gidBase}`, `idMapSize=${size}`);
    }
  }
  for (const gid of spec.groups ?? []) lines.push(`group=${gid}`);
  for (const r of spec.rlimits ?? []) lines.push(`rlimit=${escape(r.name)}:${r.soft}:${r.hard}`);
  for (const m of spec.mounts ?? []) lines.push(`mount=${escape(m.source)}\t${escape(m.target)}\t${m.readonly ? 'ro' : 'rw'}`);
  lines.push(...encodeTmpfsAndFiles(spec));
  if (spec.etcHosts) lines.push(`hosts=${escape(spec.etcHosts)}`);
  if (spec.resolvConf) lines.push(`resolvConf=${escape(spec.resolvConf)}`);
  return lines;
}

/** DEFAULT_TMPFS_MODE is a tmpfs mount's root mode when the spec gives none (as /tmp). */
export const DEFAULT_TMPFS_MODE = 0o1777;

// encodeTmpfsAndFiles renders `tmpfs=TARGET\tSIZE_BYTES\tMODE_OCTAL\tro|rw` and
// `file=TARGET\tMODE_OCTAL\tUID\tGID\tBASE64`; the native parser checks every field.
function encodeTmpfsAndFiles(spec: ContainerSpec): string[] {
  const lines: string[] = [];
  for (const t of spec.tmpfs ?? []) {
    const mode = (t.mode ?? DEFAULT_TMPFS_MODE).toString(8);
    lines.push(`tmpfs=${escape(t.target)}\t${Math.floor(t.sizeBytes)}\t${mode}\t${t.readonly ? 'ro' : 'rw'}`);
  }
  for (const f of spec.files ?? []) {
    // A view, not a copy: decoded wire bytes may arrive as a plain Uint8Array.
    const content = Buffer.from(f.content.buffer, f.content.byteOffset, f.content.byteLength);
    lines.push(`file=${escape(f.target)}\t${f.mode.toString(8)}\t${f.uid}\t${f.gid}\t${content.toString('base64')}`);
  }
  return lines;
}

/**
 * encodeShimSpec renders a spec in the shim's wire format: one `key=value` per line, list keys
 * repeated, `\` and newline escaped. The parser is `parse_spec` in native/src/lib/spec.cc.
 */
export function encodeShimSpec(spec: ContainerSpec, opts: ShimSpecOptions): string {
  const lines: string[] = [`id=${escape(spec.id)}`, `hostname=${escape(spec.hostname)}`];
  for (const dir of spec.lowerDirs) lines.push(`lower=${escape(dir)}`);
  for (const arg of spec.args) lines.push(`arg=${escape(arg)}`);
  for (const kv of spec.env) lines.push(`env=${escape(kv)}`);
  lines.push(`cwd=${escape(spec.cwd || '/')}`, `uid=${spec.uid}`, `gid=${spec.gid}`);
  const { memoryBytes, cpuCores, pids } = spec.limits;
  if (memoryBytes) lines.push(`memory=${Math.floor(memoryBytes)}`);
  if (cpuCores) lines.push(`cpuMillis=${Math.max(1, Math.round(cpuCores * 1000))}`);
  if (pids) lines.push(`pids=${Math.floor(pids)}`);
  if (spec.limits.swapBytes) lines.push(`swap=${Math.floor(spec.limits.swapBytes)}`);
  if (spec.limits.cpus) lines.push(`cpus=${escape(spec.limits.cpus)}`);
  lines.push(...encodeIsolation(spec));
  lines.push(
    `cgroupParent=${escape(opts.cgroupParent)}`,
    `cgroupRoot=${escape(opts.cgroupRoot)}`,
    `cgroupVersion=${opts.cgroupVersion}`,
    `logMaxBytes=${opts.logMaxBytes}`,
  );
  if (spec.init) {
    if (!opts.initPath) throw new Error('encodeShimSpec: spec.init needs opts.initPath');
    lines.push(`init=${escape(opts.initPath)}`);
  }
  return lines.join('\n') + '\n';
}
