import type { ContainerSpec } from './runtime.js';

/** ShimSpecOptions are the host-side settings that travel with a container spec to the shim. */
export interface ShimSpecOptions {
  cgroupParent: string;
  cgroupRoot: string;
  cgroupVersion: 'v1' | 'v2';
  logMaxBytes: number;
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
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
  lines.push(
    `cgroupParent=${escape(opts.cgroupParent)}`,
    `cgroupRoot=${escape(opts.cgroupRoot)}`,
    `cgroupVersion=${opts.cgroupVersion}`,
    `logMaxBytes=${opts.logMaxBytes}`,
  );
  return lines.join('\n') + '\n';
}
