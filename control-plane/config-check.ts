/**
 * berth-control-plane's config file (`--config`, keys are the long flag names) and what
 * `--check-config` can verify without starting: addresses parse, files named can be read or
 * made. Nothing here binds, connects to etcd or creates a file.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigChecker, isHostOrIp } from '../common/config-check.js';
import { applyConfigFile, settleConfigOrExit, type ConfigFileResult, type ConfigProblem } from '../common/config-file.js';
import { parseCidr } from '../common/cidr.js';
import { splitHostPort } from './server.js';
import { readSealingKey } from './security/sealing-key.js';

/** DEFAULT_CONTROL_PLANE_CONFIG_FILE is read when `--config` is not given and it exists. */
export const DEFAULT_CONTROL_PLANE_CONFIG_FILE = '/etc/berth/control-plane.yaml';

/** NODE_SUBNET_BITS is the prefix of the subnet each node gets from the cluster CIDR. */
const NODE_SUBNET_BITS = 24;

function str(opts: Record<string, unknown>, attr: string): string | undefined {
  const v = opts[attr];
  return typeof v === 'string' ? v : undefined;
}

/** checkControlPlaneConfig lists what is wrong with the control plane's parsed options (flags and file). */
/** isEtcdUrl tells whether url can name an etcd client endpoint: http(s)://HOST[:PORT]. */
export function isEtcdUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

export function checkControlPlaneConfig(opts: Record<string, unknown>, result: ConfigFileResult): ConfigProblem[] {
  const c = new ConfigChecker(result);
  for (const [key, attr] of [['listen', 'listen'], ['gateway-listen', 'gatewayListen']] as const) {
    c.parses(key, str(opts, attr), (s) => {
      if (!isHostOrIp(splitHostPort(s).host)) throw new Error(`invalid address "${s}" (want ADDR:PORT)`);
    });
  }
  const etcd = str(opts, 'etcd');
  if (etcd !== undefined) {
    for (const url of etcd.split(',').map((s) => s.trim())) {
      if (!isEtcdUrl(url)) c.problem('etcd', `${JSON.stringify(url)} is not an http(s)://HOST:PORT URL`);
    }
  } else if (opts.etcdClientPort !== undefined && opts.etcdClientPort === opts.etcdPeerPort) {
    c.problem('etcd-peer-port', `must differ from etcd-client-port (both ${String(opts.etcdPeerPort)})`);
  }
  c.creatableDir('data-dir', str(opts, 'dataDir'));
  const cidr = str(opts, 'clusterCidr');
  if (cidr !== undefined) {
    const parsed = parseCidr(cidr);
    if (!parsed) c.problem('cluster-cidr', `${JSON.stringify(cidr)} is not an IPv4 CIDR (a.b.c.d/n)`);
    else if (parsed.bits > NODE_SUBNET_BITS) c.problem('cluster-cidr', `${cidr} is smaller than one node subnet (/${NODE_SUBNET_BITS})`);
  }
  const advertise = opts.advertiseAddress;
  for (const a of Array.isArray(advertise) ? advertise : []) c.hostOrIp('advertise-address', String(a));
  // The key sealing the cluster CA is made at the cluster's first start, so a missing one only
  // needs a place to go; an existing one must be what the control plane will read.
  const sealingKey = str(opts, 'sealingKeyFile');
  if (sealingKey !== undefined && existsSync(sealingKey)) c.parses('sealing-key-file', sealingKey, readSealingKey);
  else c.creatableFile('sealing-key-file', sealingKey);
  c.creatableFile('admin-config', str(opts, 'adminConfig'));
  c.creatableFile('audit-log', str(opts, 'auditLog'));
  return c.problems;
}

/**
 * settleControlPlaneConfig applies the config file to the parsed program; on `--check-config`
 * it checks everything, reports and exits 0 or 1; a file it cannot apply exits 2.
 */
export function settleControlPlaneConfig(program: Command): void {
  const result = applyConfigFile(program, { defaultFile: DEFAULT_CONTROL_PLANE_CONFIG_FILE });
  const opts = program.opts();
  settleConfigOrExit(program.name(), result, opts.checkConfig === true ? () => checkControlPlaneConfig(opts, result) : undefined);
}
