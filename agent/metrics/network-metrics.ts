/**
 * Per-container network series with cAdvisor's names, one per interface inside the container.
 * They are read from /proc/<pid>/net/dev, which shows the counters of the network namespace
 * the container's init lives in; loopback is left out, as cAdvisor does.
 */
import { readFile } from 'node:fs/promises';
import { Counter, type Registry } from 'prom-client';

/** InterfaceCounters are one interface's cumulative counters. */
export interface InterfaceCounters {
  interface: string;
  receiveBytes: number;
  receivePackets: number;
  receiveErrors: number;
  receiveDropped: number;
  transmitBytes: number;
  transmitPackets: number;
  transmitErrors: number;
  transmitDropped: number;
}

/** parseNetDev reads /proc/net/dev text; malformed lines and `lo` are skipped. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
    if (!name || name === 'lo' || f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({
      interface: name,
      receiveBytes: f[0]!, receivePackets: f[1]!, receiveErrors: f[2]!, receiveDropped: f[3]!,
      transmitBytes: f[8]!, transmitPackets: f[9]!, transmitErrors: f[10]!, transmitDropped: f[11]!,
    });
  }
  return out;
}

/** readContainerInterfaces reads the counters of the netns `pid` lives in; [] when it is gone. */
export async function readContainerInterfaces(pid: number): Promise<InterfaceCounters[]> {
  try {
    return parseNetDev(await readFile(`/proc/${pid}/net/dev`, 'utf8'));
  } catch {
    return [];
  }
}

const SERIES: Array<{ field: Exclude<keyof InterfaceCounters, 'interface'>; name: string; help: string }> = [
  { field: 'receiveBytes', name: 'container_network_receive_bytes_total', help: 'Cumulative count of bytes received.' },
  { field: 'receivePackets', name: 'container_network_receive_packets_total', help: 'Cumulative count of packets received.' },
  { field: 'receiveErrors', name: 'container_network_receive_errors_total', help: 'Cumulative count of errors encountered while receiving.' },
  { field: 'receiveDropped', name: 'container_network_receive_packets_dropped_total', help: 'Cumulative count of packets dropped while receiving.' },
  { field: 'transmitBytes', name: 'container_network_transmit_bytes_total', help: 'Cumulative count of bytes transmitted.' },
  { field: 'transmitPackets', name: 'container_network_transmit_packets_total', help: 'Cumulative count of packets transmitted.' },
  { field: 'transmitErrors', name: 'container_network_transmit_errors_total', help: 'Cumulative count of errors encountered while transmitting.' },
  { field: 'transmitDropped', name: 'container_network_transmit_packets_dropped_total', help: 'Cumulative count of packets dropped while transmitting.' },
];

/** NetworkSeries are the network counters and how one container's interfaces land in them. */
export interface NetworkSeries {
  readonly all: Counter[];
  record(labels: Record<string, string>, interfaces: readonly InterfaceCounters[]): void;
}

/** createNetworkSeries registers the series with the container labels plus `interface`. */
export function createNetworkSeries(registry: Registry, containerLabels: string[]): NetworkSeries {
  const labelNames = [...containerLabels, 'interface'];
  const metrics = SERIES.map((s) => ({ field: s.field, metric: new Counter({ name: s.name, help: s.help, labelNames, registers: [registry] }) }));
  return {
    all: metrics.map((m) => m.metric),
    record(labels, interfaces) {
      for (const i of interfaces) {
        for (const m of metrics) m.metric.inc({ ...labels, interface: i.interface }, i[m.field]);
      }
    },
  };
}
