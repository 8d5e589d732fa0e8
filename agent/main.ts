#!/usr/bin/env node
/**
 * berth-agent: the node agent. Dials the control plane, runs the tasks it is given as
 * containers through the native runtime, and serves per-container metrics. On SIGTERM/SIGINT
 * it closes the session and the metrics server and exits 0, leaving containers running: each
 * is parented by its shim, and the next agent re-adopts them.
 */
import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { createRuntime } from './runtime/index.js';
import { IMAGE_GC_INTERVAL_MS, ImageStore } from './images/index.js';
import { LABEL_IMAGE_DIGEST } from './reconciler/spec.js';
import { Reconciler } from './reconciler/index.js';
import { AgentSession } from './session.js';
import { NodeIdentity } from './pki.js';
import { createAgentMetrics, parseListen, startMetricsServer } from './metrics/index.js';
import { berthVersion } from '../common/version.js';
import { firstNonLoopbackIPv4, parseLabels, readCapacity } from './node.js';
import { createLogger, isLogLevel, type LogLevel } from '../common/log.js';
import { messageOf } from './errors.js';
import { createExecHandler } from './exec.js';
import { createExecStreamHandler } from './exec-stream.js';
import { createLogsHandler } from './logs/handler.js';
import { keepPreviousLog, sweepPreviousLogs } from './logs/previous.js';
import type { AgentConfig } from './config.js';
import { settleAgentConfig } from './config-check.js';
import { BridgeNetwork } from './network/index.js';
import { gatewayOf } from './network/ipam.js';
import { DnsServer, namespaceIndex } from './dns/index.js';
import { parseCidr } from '../common/cidr.js';
import { VolumeManager } from './volumes/index.js';
import { registerVolumeMetrics } from './metrics/volume-metrics.js';

/** DEFAULT_GATEWAY is the control plane's agent gateway (DESIGN.md, ports). */
export const DEFAULT_GATEWAY = '127.0.0.1:7481';
/**
 * SHUTDOWN_WAIT_MS bounds how long exit waits for in-flight reconciler work (a stop may take its
 * whole grace period); anything cut short is redone by the next agent, which is level-triggered.
 */
export const SHUTDOWN_WAIT_MS = 2_000;

interface Flags {
  server: string;
  name: string;
  labels: Record<string, string>;
  stateDir: string;
  cgroupParent: string;
  metricsListen: string;
  advertiseAddress?: string;
  joinToken?: string;
  joinTokenFile?: string;
  config?: string;
  checkConfig?: boolean;
  network: 'bridge' | 'none';
  logLevel: LogLevel;
}

function option<T>(parse: (s: string) => T): (s: string) => T {
  return (s) => {
    try {
      return parse(s);
    } catch (err) {
      throw new InvalidArgumentError(messageOf(err));
    }
  };
}

function parseFlags(argv: string[]): { flags: Flags; config: AgentConfig } {
  const program = new Command('berth-agent')
    .description('berth node agent: runs this node\'s tasks as containers')
    .version(berthVersion())
    .option('--server <addrs>', 'control-plane gateway HOST:PORT[,HOST:PORT...]', DEFAULT_GATEWAY)
    .option('--name <name>', 'node name', hostname())
    .option('--labels <k=v,...>', 'node labels', option(parseLabels), {})
    .option('--state-dir <dir>', 'state directory (containers/, images/)', '/var/lib/berth')
    .option('--cgroup-parent <path>', 'cgroup parent for containers', 'berth')
    .option('--metrics-listen <addr:port>', 'metrics listen address', '0.0.0.0:9480')
    .option('--config <file>', 'agent config file, YAML or JSON: flag values (keys the long flag names; flags given here win) and registries, images, dns (default: /etc/berth/agent.yaml if it exists)')
    .option('--check-config', 'check the flags and config file without starting anything; print "config OK: FILE" or each problem; exit 0 or 1')
    .option('--network <mode>', 'container networking: bridge (berth0, an address per container) or none (loopback only)', option((s) => {
      if (s !== 'bridge' && s !== 'none') throw new Error(`unknown network mode ${s}`);
      return s;
    }), 'bridge')
    .option('--join-token <token>', 'join token (berth token create --role agent); needed only until the node has a certificate')
    .option('--join-token-file <file>', 'read the join token from this file (keeps it out of the process list)')
    .option('--advertise-address <ip>', 'address registered for this node (default: first non-loopback IPv4)')
    .option('--log-level <level>', 'debug|info|warn|error', option((s) => {
      if (!isLogLevel(s)) throw new Error(`unknown log level ${s}`);
      return s;
    }), 'info')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .parse(argv);
  const config = settleAgentConfig(program); // exits on --check-config or a bad file
  return { flags: program.opts<Flags>(), config };
}

/** readJoinToken takes --join-token, else the contents of --join-token-file, else none. */
function readJoinToken(flags: Flags): string | undefined {
  if (flags.joinToken) return flags.joinToken.trim();
  if (!flags.joinTokenFile) return undefined;
  // A node that has joined needs the token no more: a removed file is not an error then.
  return existsSync(flags.joinTokenFile) ? readFileSync(flags.joinTokenFile, 'utf8').trim() : undefined;
}

async function main(): Promise<void> {
  const { flags, config } = parseFlags(process.argv);
  const log = createLogger(flags.logLevel);
  // Servers may be written as https://HOST:PORT (as the README shows) or HOST:PORT.
  const servers = flags.server.split(',').map((s) => s.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '')).filter(Boolean);
  const listen = parseListen(flags.metricsListen);
  const advertise = flags.advertiseAddress ?? firstNonLoopbackIPv4() ?? '127.0.0.1';

  // The runtime keeps containers under <stateDir>/containers itself.
  const runtime = createRuntime({ stateDir: flags.stateDir, cgroupParent: flags.cgroupParent, log: log.child('runtime') });
  // Before re-adoption: remove what a crash mid-create left half-made.
  await runtime.recover?.();
  // The session is created later, but image changes are reported through it.
  let session: AgentSession | undefined;
  const images = new ImageStore({
    root: `${flags.stateDir}/images`,
    log,
    registries: config,
    allowSetuid: config.images.allowSetuid,
    maxLayerBytes: config.images.maxLayerBytes,
    gcAfterMs: config.images.gcAfterSeconds === undefined ? undefined : config.images.gcAfterSeconds * 1000,
    budgetBytes: config.images.storeBudgetBytes,
    containers: async () => (await runtime.list()).map((s) => ({ imageDigest: s.labels[LABEL_IMAGE_DIGEST] })),
    onChange: () => void images.list().then((l) => session?.reportImages(l), () => undefined),
  });
  await images.init();
  // Collect at start and then every few minutes; a failed run is logged and retried next time.
  const collectImages = (): void => {
    void images.gc().catch((err: unknown) => log.warn('image gc failed', { error: messageOf(err) }));
    // Kept logs of previous runs go with their containers, on the same schedule.
    void runtime.list().then((l) => sweepPreviousLogs(flags.stateDir, l.map((c) => c.id)))
      .catch((err: unknown) => log.warn('previous logs sweep failed', { error: messageOf(err) }));
  };
  const gcTimer = setInterval(collectImages, IMAGE_GC_INTERVAL_MS);
  gcTimer.unref();
  const metrics = createAgentMetrics({ runtime, nodeName: flags.name, cgroupParent: flags.cgroupParent });
  const server = await startMetricsServer(metrics, listen.host, listen.port, log);
  const metricsPort = (server.address() as { port: number }).port;

  // Named volumes live under the state dir; their list is reported at Register and on change.
  const volumes = new VolumeManager({
    root: `${flags.stateDir}/volumes`,
    log: log.child('volumes'),
    containers: () => runtime.list(),
    onChange: (list) => session?.reportVolumes(list),
  });
  await volumes.init();
  volumes.start();
  registerVolumeMetrics(metrics.registry, () => volumes.list());

  const network = flags.network === 'bridge' ? new BridgeNetwork(flags.stateDir, log.child('network')) : undefined;
  // What the node registered as its capacity is what admission holds tasks to; each registration re-reads it.
  let capacity = await readCapacity();
  const reconciler = new Reconciler({
    runtime, images, log, volumes, ...(network ? { network } : {}), report: (s) => session?.report(s), allocatable: () => capacity,
    beforeRestart: (old) => keepPreviousLog(flags.stateDir, old.id, old.logPath),
  });
  await reconciler.start();
  // The node resolver answers on the bridge's address, so it starts once the subnet is known.
  const dns = network ? new DnsServer({ upstreams: config.dns?.upstreams ?? [], namespaceOf: namespaceIndex(() => reconciler.statuses()), registry: metrics.registry, log: log.child('dns') }) : undefined;
  const onSubnet = async (subnet: string, clusterCidr: string): Promise<void> => {
    if (!network) return;
    await network.setSubnet(subnet, clusterCidr);
    const net = parseCidr(subnet);
    if (dns && net) await dns.listen(gatewayOf(net)).catch((err: unknown) => log.error('dns not listening', { subnet, error: messageOf(err) }));
  };
  collectImages(); // after re-adoption, so images of running containers count as in use
  const identity = new NodeIdentity({ stateDir: flags.stateDir, nodeName: flags.name, joinToken: readJoinToken(flags), log: log.child('pki') });
  session = new AgentSession({
    servers,
    identity,
    log,
    tasks: reconciler,
    exec: createExecHandler(runtime, log.child('exec')),
    deleteVolume: (namespace, name) => volumes.delete(namespace, name),
    streams: { logs: createLogsHandler({ runtime, stateDir: flags.stateDir, log: log.child('logs') }), exec: createExecStreamHandler(runtime, log.child('exec')) },
    onConnectedChange: (up) => metrics.sessionConnected.set(up ? 1 : 0),
    onPeers: (peers) => void network?.setPeers(peers),
    onEndpoints: (services) => {
      dns?.setEndpoints(services);
      void network?.setEndpoints(services);
    },
    onSubnet: (subnet, clusterCidr) => void onSubnet(subnet, clusterCidr).catch((err: unknown) => log.error('bridge set-up failed', { subnet, error: messageOf(err) })),
    register: async () => ({
      nodeName: flags.name,
      labels: flags.labels,
      capacity: (capacity = await readCapacity()),
      addresses: [{ type: 'InternalIP', address: advertise }],
      metricsUrl: `http://${advertise}:${metricsPort}/metrics`,
      agentVersion: berthVersion(),
      cgroupVersion: runtime.cgroupVersion,
      images: await images.list(),
      volumes: volumes.list(),
    }),
  });
  session.start();
  log.info('agent started', { node: flags.name, servers: servers.join(','), advertise, metrics: `${listen.host}:${metricsPort}`, stateDir: flags.stateDir });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down; containers keep running', { signal });
    void (async () => {
      clearInterval(gcTimer);
      volumes.stop();
      await session?.close();
      await dns?.close();
      await Promise.race([reconciler.close(), new Promise((resolve) => setTimeout(resolve, SHUTDOWN_WAIT_MS).unref())]);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`berth-agent: ${messageOf(err)}\n`);
  process.exit(1);
});
