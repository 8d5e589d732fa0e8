/**
 * Linux capability names as the runtime accepts them (native/src/lib/security.cc
 * `cap_from_name`, spec.cc `valid_cap`): a name from capabilities(7), with or without the
 * `CAP_` prefix, in any case, or the word ALL (exactly "ALL" or "all"). Admission uses the same
 * rules so a typo is refused with its field named instead of failing every task on its node.
 */

/** LINUX_CAPABILITIES lists every capability up to CAP_LAST_CAP (CHECKPOINT_RESTORE, 40), without CAP_, in number order. */
export const LINUX_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID',
  'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK',
  'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE',
  'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];

/** DEFAULT_CAPABILITIES is Docker's default set, which the runtime starts every container with (security.h DEFAULT_CAPS). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP',
  'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** ALL_CAPABILITIES is the runtime's word for every capability (capAdd) or none (capDrop). */
export const ALL_CAPABILITIES = 'ALL';

const KNOWN: ReadonlySet<string> = new Set(LINUX_CAPABILITIES);

/**
 * canonicalCapability maps a name the runtime accepts to its bare upper-case form ("cap_net_admin"
 * → "NET_ADMIN", "all" → "ALL"); undefined when the runtime would refuse it.
 */
export function canonicalCapability(name: string): string | undefined {
  if (name === 'ALL' || name === 'all') return ALL_CAPABILITIES;
  const upper = name.toUpperCase();
  const bare = upper.startsWith('CAP_') ? upper.slice('CAP_'.length) : upper;
  return KNOWN.has(bare) ? bare : undefined;
}
