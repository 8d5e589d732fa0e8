/**
 * `berth describe service|task|node|namespace NAME`: a readable page per object, kubectl style:
 * spec, status with reason and message, conditions, and the related tasks (and a node's images;
 * a namespace's policy violations). Rendering is pure (describeTask/describeService/describeNode/
 * describeNamespace) so tests compare text.
 */
import { errorText, type ListBody } from './client.js';
import { nsPath, type CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import {
  formatAge, formatBytes, formatCpu, formatLabels, formatPullProgress, imagesTable, nodeStatus, renderTable, tasksTable,
} from './format.js';
import type { Condition, ContainerTemplate, HealthSpec, Namespace, Node, Service, Task } from '../objects/types.js';

type Kind = 'service' | 'task' | 'node' | 'namespace';

const KINDS: Record<string, Kind> = {
  service: 'service', services: 'service', svc: 'service',
  task: 'task', tasks: 'task',
  node: 'node', nodes: 'node', no: 'node',
  namespace: 'namespace', namespaces: 'namespace', ns: 'namespace',
};

const NONE = '<none>';

/** Field is one "Label: value" line; a nested list indents under its label. */
type Field = [label: string, value: string | number | undefined];

function fields(rows: Field[], indent = ''): string {
  const shown = rows.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(0, ...shown.map(([l]) => l.length + 1));
  return shown.map(([l, v]) => `${indent}${`${l}:`.padEnd(width)}  ${v}`).join('\n') + (shown.length > 0 ? '\n' : '');
}

function indentBlock(text: string, indent = '  '): string {
  return text.split('\n').map((l) => (l === '' ? l : indent + l)).join('\n');
}

function templateFields(t: ContainerTemplate): Field[] {
  const r = t.resources;
  const res = r ? [r.cpu !== undefined ? `cpu=${formatCpu(r.cpu)}` : '', r.memory !== undefined ? `memory=${formatBytes(r.memory)}` : '',
    r.pids !== undefined ? `pids=${r.pids}` : ''].filter(Boolean).join(' ') : '';
  return [
    ['Image', t.image],
    ['Pull policy', t.pullPolicy ?? 'if-not-present'],
    ['Command', t.command?.length ? JSON.stringify(t.command) : '<image default>'],
    ['Env', Object.keys(t.env ?? {}).length ? formatLabels(t.env) : undefined],
    ['Working dir', t.workingDir],
    ['User', t.user],
    ['Resources', res || undefined],
    ['Ports', t.ports?.length ? t.ports.map((p) => `${p.containerPort}/${p.protocol}${p.hostPort ? ` -> ${p.hostPort}` : ''}`).join(', ') : undefined],
    ['Startup', t.startup && checkText(t.startup)],
    ['Liveness', t.health && checkText(t.health)],
    ['Readiness', t.readiness && checkText(t.readiness)],
  ];
}

/** checkText renders a check as kubectl does: `exec [test -f /tmp/ready] delay=0s timeout=1s period=10s #success=1 #failure=3`. */
export function checkText(h: HealthSpec): string {
  const what = h.http ? `http-get :${h.http.port}${h.http.path}` : h.tcp ? `tcp-socket :${h.tcp.port}` : h.exec ? `exec [${h.exec.command.join(' ')}]` : 'none';
  // The agent's defaults (agent/probes/probe-state.ts), shown so the line says what actually runs.
  return `${what} delay=${h.initialDelaySeconds ?? 0}s timeout=${h.timeoutSeconds ?? 1}s period=${h.intervalSeconds ?? 10}s`
    + ` #success=${h.successThreshold ?? 1} #failure=${h.failureThreshold ?? 3}`;
}

function conditionsBlock(conditions: Condition[] | undefined, now: number): string {
  if (!conditions?.length) return `Conditions:  ${NONE}\n`;
  const rows = conditions.map((c) => [c.type, c.status, c.reason, formatAge(c.lastTransitionTime, now), c.message]);
  return `Conditions:\n${indentBlock(renderTable(['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], rows))}`;
}

/** describeTask renders a task: spec, status (phase, reason, message, pull progress) and the image digest run. */
export function describeTask(task: Task, now: number): string {
  const st = task.status ?? { phase: 'pending', restarts: 0 };
  const pull = st.phase === 'preparing' && st.pullBytesTotal ? formatPullProgress(st.pullBytesDone ?? 0, st.pullBytesTotal) : undefined;
  return [
    fields([
      ['Name', task.metadata.name], ['Namespace', task.metadata.namespace], ['Service', task.spec.service],
      ['Node', task.spec.nodeName || NONE], ['Revision', task.spec.revision], ['Desired state', task.spec.desiredState],
      ['Created', `${task.metadata.createdAt} (${formatAge(task.metadata.createdAt, now)} ago)`],
    ]),
    `Template:\n${fields(templateFields(task.spec.template), '  ')}`,
    `Status:\n${fields([
      ['Phase', st.phase], ['Reason', st.reason], ['Message', st.message], ['Pull progress', pull],
      ['Image digest', st.imageDigest ?? NONE], ['Container', st.containerId], ['PID', st.pid], ['IP', st.ip],
      ['Exit code', st.exitCode], ['Restarts', st.restarts], ['Started', st.startedAt], ['Finished', st.finishedAt],
      ['Started', st.phase === 'running' && st.started !== undefined ? String(st.started) : undefined],
      ['Ready', st.phase === 'running' ? String(st.ready === true) : undefined],
      // Each check's last outcome that changed its verdict; the health (liveness) one keeps its old label.
      ['Last probe', st.lastProbe && `${st.lastProbe} (liveness)`], ['Last startup probe', st.lastStartupProbe],
      ['Last readiness probe', st.lastReadinessProbe],
    ], '  ')}`,
  ].join('');
}

/** describeService renders a service: template, replicas, placement, conditions and its tasks. */
export function describeService(svc: Service, tasks: Task[], now: number): string {
  const p = svc.spec.placement;
  return [
    fields([
      ['Name', svc.metadata.name], ['Namespace', svc.metadata.namespace], ['Labels', formatLabels(svc.metadata.labels)],
      ['Generation', svc.metadata.generation], ['Created', `${svc.metadata.createdAt} (${formatAge(svc.metadata.createdAt, now)} ago)`],
      ['Replicas', `${svc.status?.runningReplicas ?? 0} running / ${svc.spec.replicas} desired`],
      ['Constraints', p?.constraints?.length ? p.constraints.join('; ') : undefined], ['Spread', p?.spread], ['Strategy', p?.strategy],
    ]),
    `Template:\n${fields(templateFields(svc.spec.template), '  ')}`,
    conditionsBlock(svc.status?.conditions, now),
    tasks.length ? `Tasks:\n${indentBlock(tasksTable(tasks, { wide: false, withNamespace: false, now }))}` : `Tasks:  ${NONE}\n`,
  ].join('');
}

/** describeNode renders a node: labels, addresses, capacity, conditions, its tasks and its images. */
export function describeNode(node: Node, tasks: Task[], now: number): string {
  const cap = node.status?.capacity;
  const alloc = node.status?.allocatable;
  const res = (r: typeof cap): string | undefined => (r ? `cpu=${formatCpu(r.cpu)} memory=${formatBytes(r.memory)} pids=${r.pids}` : undefined);
  const images = (node.status?.images ?? []).map((i) => ({ node: node.metadata.name, ...i }));
  return [
    fields([
      ['Name', node.metadata.name], ['Status', nodeStatus(node)], ['Labels', formatLabels(node.metadata.labels)],
      ['Taints', node.spec?.taints?.length ? node.spec.taints.map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`).join(', ') : undefined],
      ['Addresses', node.status?.addresses?.map((a) => `${a.type}=${a.address}`).join(', ')], ['Metrics URL', node.status?.metricsUrl],
      ['Agent version', node.status?.agentVersion], ['Cgroup version', node.status?.cgroupVersion],
      ['Last heartbeat', node.status?.lastHeartbeatTime], ['Capacity', res(cap)], ['Allocatable', res(alloc)],
      ['Created', `${node.metadata.createdAt} (${formatAge(node.metadata.createdAt, now)} ago)`],
    ]),
    conditionsBlock(node.status?.conditions, now),
    tasks.length ? `Tasks:\n${indentBlock(tasksTable(tasks, { wide: false, withNamespace: true, now }))}` : `Tasks:  ${NONE}\n`,
    images.length ? `Images:\n${indentBlock(imagesTable(images, { now }))}` : `Images:  ${NONE}\n`,
  ].join('');
}

/** describeNamespace renders a namespace: its level, and each service that breaks the level now with every message (or none). */
export function describeNamespace(ns: Namespace, now: number): string {
  const violations = ns.status?.violations ?? [];
  const created = ns.metadata.createdAt ? `${ns.metadata.createdAt} (${formatAge(ns.metadata.createdAt, now)} ago)` : undefined;
  const head = fields([
    ['Name', ns.metadata.name],
    ['Policy', `${ns.spec?.policy ?? NONE}${ns.status?.implicit ? ' (implicit: no Namespace object, so the default level)' : ''}`],
    ['Labels', formatLabels(ns.metadata.labels)],
    ['Created', created],
  ]);
  if (violations.length === 0) return `${head}Violations:  none\n`;
  const list = violations.map((v) => `  ${v.service}:\n${v.violations.map((m) => `    ${m}\n`).join('')}`).join('');
  return `${head}Violations (running tasks are not touched; each service's next template change must comply):\n${list}`;
}

/** describeCommand fetches an object and what relates to it, and prints its page. */
export async function describeCommand(ctx: CommandContext, word: string, name: string): Promise<number> {
  const kind = KINDS[word.toLowerCase()];
  if (!kind) throw usageError(`unknown resource type "${word}" (use service, task, node or namespace)`);
  const enc = encodeURIComponent(name);
  const now = ctx.io.now();
  const fail = (error: Parameters<typeof errorText>[0]): number => {
    ctx.io.stderr.write(`error: ${errorText(error)}\n`);
    return EXIT_REQUEST_FAILED;
  };
  // Related tasks are a courtesy: without them the page still prints.
  const tasksOf = async (path: string): Promise<Task[]> => {
    const r = await ctx.client.get<ListBody<Task>>(path);
    return r.ok ? r.body.items ?? [] : [];
  };
  switch (kind) {
    case 'task': {
      const r = await ctx.client.get<Task>(`${nsPath(ctx.namespace)}/tasks/${enc}`);
      if (!r.ok) return fail(r.error);
      ctx.io.stdout.write(describeTask(r.body, now));
      return EXIT_OK;
    }
    case 'service': {
      const r = await ctx.client.get<Service>(`${nsPath(ctx.namespace)}/services/${enc}`);
      if (!r.ok) return fail(r.error);
      ctx.io.stdout.write(describeService(r.body, await tasksOf(`${nsPath(ctx.namespace)}/tasks?service=${enc}`), now));
      return EXIT_OK;
    }
    case 'node': {
      const r = await ctx.client.get<Node>(`/v1/nodes/${enc}`);
      if (!r.ok) return fail(r.error);
      ctx.io.stdout.write(describeNode(r.body, await tasksOf(`/v1/tasks?node=${enc}`), now));
      return EXIT_OK;
    }
    case 'namespace': {
      const r = await ctx.client.get<Namespace>(`/v1/namespaces/${enc}`);
      if (!r.ok) return fail(r.error);
      ctx.io.stdout.write(describeNamespace(r.body, now));
      return EXIT_OK;
    }
  }
}
