/**
 * Output formatting for `berth get`: kubectl-style tables and JSON/YAML documents.
 * Everything here is pure (the clock is a parameter) so it is unit-tested as tables of cases.
 */
import { stringify as toYaml } from 'yaml';
import { TERMINAL_PHASES } from '../../common/task-status.js';
import type { Namespace, Node, NodeImage, Service, Task } from '../objects/types.js';

/** OutputFormat is the value of `-o`. */
export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml';

/** OUTPUT_FORMATS lists the accepted `-o` values, for validation and help. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'wide', 'json', 'yaml'];

/** TableOptions controls a table: wide adds columns, withNamespace prefixes a NAMESPACE column, now is the clock in ms. */
export interface TableOptions {
  wide: boolean;
  withNamespace: boolean;
  now: number;
}

const COLUMN_GAP = '   ';
const NONE = '<none>';
const SECOND_MS = 1000;
const MINUTE_S = 60;
const HOUR_S = 60 * MINUTE_S;
const DAY_S = 24 * HOUR_S;
const YEAR_S = 365 * DAY_S;

/** renderTable pads every column to its widest cell, kubectl style; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join(COLUMN_GAP).trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** formatAge renders the time since an ISO timestamp like kubectl: 42s, 5m30s, 47m, 3h20m, 20h, 3d4h, 12d, 2y. */
export function formatAge(since: string | undefined, now: number): string {
  if (!since) return NONE;
  const start = Date.parse(since);
  if (Number.isNaN(start)) return NONE;
  return formatDuration(now - start);
}

/** formatDuration renders a span of ms the way formatAge does (negative spans as 0s). */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / SECOND_MS));
  if (s < 2 * MINUTE_S) return `${s}s`;
  const m = Math.floor(s / MINUTE_S);
  if (s < 10 * MINUTE_S) return s % MINUTE_S === 0 ? `${m}m` : `${m}m${s % MINUTE_S}s`;
  if (s < 3 * HOUR_S) return `${m}m`;
  const h = Math.floor(s / HOUR_S);
  if (s < 8 * HOUR_S) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (s < 2 * DAY_S) return `${h}h`;
  const d = Math.floor(s / DAY_S);
  if (s < 8 * DAY_S) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (s < 2 * YEAR_S) return `${d}d`;
  return `${Math.floor(s / YEAR_S)}y`;
}

/** formatBytes renders a byte count with the largest binary suffix that keeps it >= 1 (64Mi, 3.8Gi). */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return NONE;
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${trimNumber(value)}${units[unit]}`;
}

/** formatCpu renders cores with at most two decimals (0.25, 2). */
export function formatCpu(cores: number | undefined): string {
  if (cores === undefined || !Number.isFinite(cores)) return NONE;
  return trimNumber(cores);
}

function trimNumber(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function orNone(value: string | number | undefined | null): string {
  return value === undefined || value === null || value === '' ? NONE : String(value);
}

function nsCell(opts: TableOptions, namespace: string | undefined): string[] {
  return opts.withNamespace ? [orNone(namespace)] : [];
}

function nsHeader(opts: TableOptions): string[] {
  return opts.withNamespace ? ['NAMESPACE'] : [];
}

/** servicesTable renders NAME REPLICAS(running/desired) IMAGE AGE (wide adds CPU MEMORY LABELS). */
export function servicesTable(services: Service[], opts: TableOptions): string {
  const headers = [...nsHeader(opts), 'NAME', 'REPLICAS', 'IMAGE', 'AGE'];
  if (opts.wide) headers.push('CPU', 'MEMORY', 'LABELS');
  const rows = services.map((svc) => {
    const row = [
      ...nsCell(opts, svc.metadata.namespace),
      svc.metadata.name,
      `${svc.status?.runningReplicas ?? 0}/${svc.spec.replicas}`,
      svc.spec.template.image,
      formatAge(svc.metadata.createdAt, opts.now),
    ];
    if (opts.wide) {
      const res = svc.spec.template.resources;
      row.push(formatCpu(res?.cpu), formatBytes(res?.memory), formatLabels(svc.metadata.labels));
    }
    return row;
  });
  return renderTable(headers, rows);
}

/** namespacesTable renders NAME POLICY AGE; an implicit namespace (no object, only services) shows its level as "baseline (implicit)". */
export function namespacesTable(namespaces: Namespace[], opts: Pick<TableOptions, 'now'>): string {
  const rows = namespaces.map((ns) => [
    ns.metadata.name,
    `${orNone(ns.spec?.policy)}${ns.status?.implicit ? ' (implicit)' : ''}`,
    formatAge(ns.metadata.createdAt, opts.now),
  ]);
  return renderTable(['NAME', 'POLICY', 'AGE'], rows);
}

/** tasksTable renders NAME SERVICE NODE PHASE READY IP RESTARTS AGE (wide adds PID CONTAINER REASON MESSAGE). */
export function tasksTable(tasks: Task[], opts: TableOptions): string {
  const headers = [...nsHeader(opts), 'NAME', 'SERVICE', 'NODE', 'PHASE', 'READY', 'IP', 'RESTARTS', 'AGE'];
  if (opts.wide) headers.push('PID', 'CONTAINER', 'REASON', 'MESSAGE');
  const rows = tasks.map((task) => {
    const st = task.status ?? { phase: 'pending', restarts: 0 };
    const row = [
      ...nsCell(opts, task.metadata.namespace),
      task.metadata.name,
      orNone(task.spec.service),
      orNone(task.spec.nodeName),
      phaseCell(st),
      String(st.phase === 'running' && st.ready === true), // health checks (agent/probes): ready only while passing
      orNone(st.ip),
      String(st.restarts ?? 0),
      formatAge(task.metadata.createdAt, opts.now),
    ];
    if (opts.wide) row.push(orNone(st.pid), orNone(st.containerId), orNone(st.reason), orNone(st.message));
    return row;
  });
  return renderTable(headers, rows);
}

const MIB = 1024 * 1024;

/** formatPullProgress renders bytes done/total in MiB with one decimal: 12.5/48.0MiB. */
export function formatPullProgress(done: number, total: number): string {
  return `${(done / MIB).toFixed(1)}/${(total / MIB).toFixed(1)}MiB`;
}

/**
 * phaseCell is the PHASE cell: the phase, plus pull progress or the pull back-off reason while
 * preparing (`preparing 12.5/48.0MiB`, `preparing (ImagePullBackOff)`), the way kubectl's STATUS
 * shows a waiting container's reason.
 */
export function phaseCell(st: Pick<Task['status'], 'phase' | 'reason' | 'pullBytesDone' | 'pullBytesTotal'>): string {
  // A running task waiting to restart its container shows why: running (CrashLoopBackOff) / (Unhealthy).
  if (st.phase === 'running' && st.reason) return `running (${st.reason})`;
  if (st.phase !== 'preparing') return orNone(st.phase);
  if (st.reason) return `preparing (${st.reason})`;
  if (st.pullBytesTotal) return `preparing ${formatPullProgress(st.pullBytesDone ?? 0, st.pullBytesTotal)}`;
  return 'preparing';
}

/** shortDigest renders sha256:<first 12 hex>, like docker's IMAGE ID. */
export function shortDigest(digest: string | undefined): string {
  if (!digest) return NONE;
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  return hex.slice(0, 12);
}

/** NodeImageRow is one image on one node, for `get images`. */
export type NodeImageRow = NodeImage & { node: string };

/** imagesTable renders NODE REFERENCE IMAGE-ID SIZE IN-USE LAST-USED, one row per reference. */
export function imagesTable(rows: NodeImageRow[], opts: Pick<TableOptions, 'now'>): string {
  const out = rows.flatMap((img) => (img.references.length > 0 ? img.references : [NONE]).map((ref) => [
    img.node, ref, shortDigest(img.digest), formatBytes(img.sizeBytes), img.inUse ? 'yes' : 'no', formatAge(img.lastUsed, opts.now),
  ]));
  return renderTable(['NODE', 'REFERENCE', 'IMAGE-ID', 'SIZE', 'IN-USE', 'LAST-USED'], out);
}

/** nodeStatus is the STATUS cell: Ready/NotReady/Unknown from the Ready condition, plus SchedulingDisabled when cordoned. */
export function nodeStatus(node: Node): string {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const base = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
  return node.spec?.unschedulable ? `${base},SchedulingDisabled` : base;
}

/** NodeLoad is what the tasks placed on a node reserve; computed by the caller from a task list. */
export interface NodeLoad {
  tasks: number;
  cpu: number;
  memory: number;
}

/** nodeLoads sums the reservations of the live (non-terminal) tasks per node name. */
export function nodeLoads(tasks: Task[]): Map<string, NodeLoad> {
  const loads = new Map<string, NodeLoad>();
  for (const task of tasks) {
    const node = task.spec?.nodeName;
    if (!node || TERMINAL_PHASES.has(task.status?.phase)) continue;
    const load = loads.get(node) ?? { tasks: 0, cpu: 0, memory: 0 };
    load.tasks++;
    load.cpu += task.spec.template?.resources?.cpu ?? 0;
    load.memory += task.spec.template?.resources?.memory ?? 0;
    loads.set(node, load);
  }
  return loads;
}

/**
 * nodesTable renders NAME STATUS ADDRESS TASKS CPU MEMORY AGE (wide adds LABELS METRICS-URL).
 * CPU and MEMORY read reserved/allocatable; with loads undefined (task list unavailable) TASKS is
 * <unknown> and only allocatable is shown.
 */
export function nodesTable(nodes: Node[], loads: Map<string, NodeLoad> | undefined, opts: TableOptions): string {
  const headers = ['NAME', 'STATUS', 'ADDRESS', 'TASKS', 'CPU', 'MEMORY', 'AGE'];
  if (opts.wide) headers.push('LABELS', 'METRICS-URL');
  const rows = nodes.map((node) => {
    const alloc = node.status?.allocatable ?? node.status?.capacity;
    const load = loads?.get(node.metadata.name) ?? { tasks: 0, cpu: 0, memory: 0 };
    const address = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const row = [
      node.metadata.name,
      nodeStatus(node),
      orNone(address),
      loads ? String(load.tasks) : '<unknown>',
      loads ? `${formatCpu(load.cpu)}/${formatCpu(alloc?.cpu)}` : formatCpu(alloc?.cpu),
      loads ? `${formatBytes(load.memory)}/${formatBytes(alloc?.memory)}` : formatBytes(alloc?.memory),
      formatAge(node.metadata.createdAt, opts.now),
    ];
    if (opts.wide) row.push(formatLabels(node.metadata.labels), orNone(node.status?.metricsUrl));
    return row;
  });
  return renderTable(headers, rows);
}

/** formatLabels renders labels as sorted k=v pairs joined by commas. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const pairs = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return pairs.length === 0 ? NONE : pairs.map(([k, v]) => `${k}=${v}`).join(',');
}

/** formatDocument renders an object or a list (as an array) in JSON or YAML, newline-terminated. */
export function formatDocument(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) + '\n' : toYaml(value);
}
