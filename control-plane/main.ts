#!/usr/bin/env node
/** berth-control-plane: the API, agent gateway, controllers and (by default) an embedded etcd. */
import { Command, InvalidArgumentError } from 'commander';
import { BerthError } from './errors.js';
import { killEmbeddedEtcdsSync } from './etcd/embedded.js';
import { createLogger, isLogLevel, type LogLevel } from '../common/log.js';
import { startControlPlane, type ControlPlane } from './server.js';
import { berthVersion } from '../common/version.js';
import { DURATION_SYNTAX, parseDuration } from '../common/duration.js';
import { DEFAULT_AUDIT_MAX_BYTES, DEFAULT_AUDIT_MAX_FILES } from './security/audit.js';
import { DEFAULT_CONTROL_PLANE_CONFIG_FILE, settleControlPlaneConfig } from './config-check.js';
import { runSnapshotCommand } from './snapshot/command.js';
import { DEFAULT_DATA_DIR, DEFAULT_ETCD_CLIENT_PORT, DEFAULT_ETCD_PEER_PORT } from './etcd/embedded.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number 1-65535');
  return n;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

function duration(v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 10_000) throw new InvalidArgumentError(`must be ${DURATION_SYNTAX}, at least 10s`);
  return ms;
}

function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function level(v: string): LogLevel {
  if (!isLogLevel(v)) throw new InvalidArgumentError('must be debug, info, warn or error');
  return v;
}

const program = new Command('berth-control-plane')
  .description('berth control plane: REST API, agent gateway, controllers and scheduler')
  .version(berthVersion())
  .option('--listen <addr:port>', 'REST API address', '0.0.0.0:7480')
  .option('--gateway-listen <addr:port>', 'agent gateway (gRPC) address', '0.0.0.0:7481')
  .option('--etcd <urls>', 'external etcd endpoints, comma-separated, e.g. every member of a 3-member cluster (default: start an embedded etcd)')
  .option('--data-dir <dir>', 'state directory (embedded etcd data and log)', DEFAULT_DATA_DIR)
  .option('--etcd-client-port <n>', 'embedded etcd client port on 127.0.0.1', port, DEFAULT_ETCD_CLIENT_PORT)
  .option('--etcd-peer-port <n>', 'embedded etcd peer port on 127.0.0.1', port, DEFAULT_ETCD_PEER_PORT)
  .option('--node-lease-ttl <seconds>', 'node heartbeat lease TTL', positiveInt, 10)
  .option('--node-lost-grace <seconds>', 'how long a node stays not Ready before its tasks are marked lost and replaced', positiveInt, 15)
  .option('--leader-lease-ttl <seconds>', 'leader election lease TTL (HA: takeover after a leader dies takes about this long)', positiveInt, 2)
  .option('--cluster-cidr <cidr>', 'IPv4 range node subnets (a /24 each) are allocated from', '10.244.0.0/16')
  .option('--advertise-address <names>', 'extra addresses or DNS names clients dial the API and gateway by, comma-separated (the serving certificate covers them; a wildcard --listen already covers every local address)', list, [] as string[])
  .option('--sealing-key-file <file>', 'key file sealing the cluster CA key in etcd; made on the first start; copy it to every control-plane replica (default <data-dir>/sealing.key)')
  .option('--admin-config <file>', 'where the first start writes the admin berth config (default <data-dir>/admin.config)')
  .option('--node-cert-ttl <duration>', 'lifetime of node certificates; agents renew them at two thirds', duration, 24 * 3600_000)
  .option('--audit-log <file>', 'audit log, one JSON line per change, exec, logs and refusal (default <data-dir>/audit.log)')
  .option('--audit-max-bytes <n>', 'rotate the audit log when it would pass this size', positiveInt, DEFAULT_AUDIT_MAX_BYTES)
  .option('--audit-max-files <n>', 'rotated audit files kept', positiveInt, DEFAULT_AUDIT_MAX_FILES)
  .option('--log-level <level>', 'debug, info, warn or error', level, 'info' as LogLevel)
  .option('--config <file>', `YAML or JSON file of flag values, keys the long flag names; flags given here win (default: ${DEFAULT_CONTROL_PLANE_CONFIG_FILE} if it exists)`)
  .option('--check-config', 'check the flags and config file without starting anything; print "config OK: FILE" or each problem; exit 0 or 1')
  .addHelpText('after', '\nCommands:\n  snapshot save FILE       save the cluster state (etcd) to FILE\n  snapshot restore FILE    restore FILE as the embedded etcd of --data-dir (control plane stopped)\n  see `berth-control-plane snapshot --help`');

// `snapshot save|restore` is a one-shot tool, not the server: it is dispatched before the
// server's flags and config file are settled, which would otherwise start a control plane.
if (process.argv[2] === 'snapshot') process.exit(await runSnapshotCommand(process.argv.slice(3)));
program.parse();
settleControlPlaneConfig(program); // applies the config file; exits on --check-config or a bad file
const o = program.opts<{
  listen: string; gatewayListen: string; etcd?: string; dataDir: string;
  etcdClientPort: number; etcdPeerPort: number; nodeLeaseTtl: number; leaderLeaseTtl: number; logLevel: LogLevel;
  nodeLostGrace: number;
  clusterCidr: string;
  advertiseAddress: string[]; sealingKeyFile?: string; adminConfig?: string; nodeCertTtl: number;
  auditLog?: string; auditMaxBytes: number; auditMaxFiles: number;
}>();
const log = createLogger(o.logLevel);

let cp: ControlPlane | undefined;
let exiting = false;

async function shutdown(signal: string): Promise<void> {
  if (exiting) return;
  exiting = true;
  log.info('shutting down', { signal });
  await cp?.stop();
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(ev, (err: unknown) => {
    log.error(`fatal ${ev}`, { err: err instanceof Error ? err.stack ?? err.message : String(err) });
    // The exit hook also kills the embedded etcd; kill it here too in case exit hooks are skipped.
    killEmbeddedEtcdsSync();
    process.exit(1);
  });
}

try {
  cp = await startControlPlane({
    listen: o.listen,
    gatewayListen: o.gatewayListen,
    etcd: o.etcd?.split(',').map((s) => s.trim()),
    dataDir: o.dataDir,
    etcdClientPort: o.etcdClientPort,
    etcdPeerPort: o.etcdPeerPort,
    nodeLeaseTtlSeconds: o.nodeLeaseTtl,
    nodeLostGraceSeconds: o.nodeLostGrace,
    clusterCidr: o.clusterCidr,
    leaderLeaseTtlSeconds: o.leaderLeaseTtl,
    advertiseAddresses: o.advertiseAddress,
    sealingKeyFile: o.sealingKeyFile,
    adminConfig: o.adminConfig,
    nodeCertTtlMs: o.nodeCertTtl,
    auditLog: o.auditLog,
    auditMaxBytes: o.auditMaxBytes,
    auditMaxFiles: o.auditMaxFiles,
    log,
  });
  if (exiting) await cp.stop();
} catch (err) {
  const code = err instanceof BerthError ? `${err.code}: ` : '';
  log.error(`cannot start: ${code}${(err as Error).message}`);
  process.exit(1);
}
