/**
 * GET /v1/namespaces/:ns/tasks/:name/exec?command=a&command=b&stdin=1&tty=1&rows=R&cols=C —
 * an interactive command in a task's container over a WebSocket (frames in exec-channels.ts),
 * carried to the task's agent as an exec stream (gateway/streams.ts), through another replica
 * when that one holds the node's session. Authentication and authorization are the other
 * routes' (bearer token or client certificate on the upgrade request; verb exec on tasks).
 *
 * Everything that can fail before the command runs (bad query, unknown task, task not running,
 * node unreachable, agent refusal) is answered as a plain HTTP error before the upgrade, so a
 * client gets the same `{"error":{code,message}}` body as from any route.
 *
 * Back-pressure runs both ways. Output: the next chunk is taken from the agent's stream (which
 * is what grants the agent credit) only while the socket has less than SOCKET_HIGH_WATER_BYTES
 * unsent, so a slow terminal stops the command on its node. Input: once STDIN_PENDING_BYTES of
 * stdin wait for the agent's credit, the socket is paused until they are sent.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import type { FieldError } from '../errors.js';
import type { Task } from '../objects/types.js';
import { isTaskKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { AuditLog } from '../security/audit.js';
import type { StreamEnd } from '../../proto/gen/berth/v1/agent.js';
import type { StreamHandle, StreamOpen } from '../gateway/streams.js';
import { decodeFrame, EXEC_CHANNEL, frame, MAX_TERMINAL_SIZE, type ExecStatus } from './exec-channels.js';
import { notFound, sendError } from './errors.js';

/** SOCKET_HIGH_WATER_BYTES is the unsent output past which the route stops taking the agent's chunks. */
export const SOCKET_HIGH_WATER_BYTES = 256 * 1024;
/** STDIN_PENDING_BYTES is the stdin waiting for agent credit past which the socket is paused. */
export const STDIN_PENDING_BYTES = 64 * 1024;
/** MAX_FRAME_BYTES bounds one incoming frame (stdin is sent in pieces far smaller). */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** MAX_COMMAND_ARGS bounds the command's argv taken from the query. */
export const MAX_COMMAND_ARGS = 256;

/** ExecStreamGateway is the part of the agent gateway the route needs. */
export interface ExecStreamGateway {
  openStream(node: string, open: StreamOpen, windowBytes?: number): StreamHandle;
}

/** ExecStreamQuery is the route's parsed query. */
export interface ExecStreamQuery {
  command: string[];
  stdin: boolean;
  tty: boolean;
  rows: number;
  cols: number;
}

type Query = Record<string, string | string[] | undefined>;

function bad(name: string, message: string): FieldError {
  return { code: 'BERTH_ERR_VALIDATION', field: `query.${name}`, message: `query.${name}: ${message}` };
}

function one(q: Query, name: string): string | undefined | FieldError {
  const v = q[name];
  if (Array.isArray(v)) return bad(name, 'given more than once');
  return v;
}

function flag(q: Query, name: string): boolean | FieldError {
  const v = one(q, name);
  if (typeof v === 'object') return v;
  if (v === undefined || v === '0' || v === 'false') return false;
  if (v === '' || v === '1' || v === 'true') return true;
  return bad(name, `want true or false, got "${v}"`);
}

function size(q: Query, name: string): number | FieldError {
  const v = one(q, name);
  if (typeof v === 'object') return v;
  if (v === undefined || v === '') return 0;
  if (!/^\d{1,5}$/.test(v) || Number(v) > MAX_TERMINAL_SIZE) return bad(name, `want a whole number from 0 to ${MAX_TERMINAL_SIZE}, got "${v}"`);
  return Number(v);
}

/** parseExecStreamQuery checks the query string; a bad value is a 400 naming the parameter. */
export function parseExecStreamQuery(q: Query): ExecStreamQuery | FieldError {
  const raw = q.command;
  const command = raw === undefined ? [] : [raw].flat();
  if (command.length === 0) return bad('command', 'at least one command=ARG is required');
  if (command.length > MAX_COMMAND_ARGS) return bad('command', `at most ${MAX_COMMAND_ARGS} arguments`);
  if (command[0] === '') return bad('command', 'the command (first command=) must not be empty');
  const stdin = flag(q, 'stdin');
  if (typeof stdin === 'object') return stdin;
  const tty = flag(q, 'tty');
  if (typeof tty === 'object') return tty;
  const rows = size(q, 'rows');
  if (typeof rows === 'object') return rows;
  const cols = size(q, 'cols');
  if (typeof cols === 'object') return cols;
  if ((rows > 0) !== (cols > 0)) return bad(rows > 0 ? 'cols' : 'rows', 'rows and cols go together');
  return { command, stdin, tty, rows, cols };
}

/** openErrorOf maps an agent's refusal to the API's error codes (the status the client gets). */
function openErrorOf(code: string, message: string): FieldError {
  switch (code) {
    case 'BERTH_ERR_TASK_NOT_RUNNING':
    case 'BERTH_ERR_NODE_UNAVAILABLE':
    case 'BERTH_ERR_EXEC_FAILED':
      return { code, message };
    default:
      return { code: 'BERTH_ERR_STREAM_FAILED', message: `${message} (${code})` };
  }
}

/** statusOf turns the agent's StreamEnd into the status frame's payload. */
export function statusOf(e: StreamEnd): ExecStatus {
  if (e.errorCode) return { error: { code: e.errorCode, message: e.errorMessage } };
  if (e.hasExitCode) return { exitCode: e.exitCode };
  return { error: { code: 'BERTH_ERR_STREAM_FAILED', message: 'the stream ended without an exit code' } };
}

/** Opened is what the pre-upgrade step hands the WebSocket handler. */
interface Opened {
  handle: StreamHandle;
}

/**
 * registerExecStreamRoutes adds the WebSocket exec route (and the @fastify/websocket plugin);
 * without a gateway it answers BERTH_ERR_NODE_UNAVAILABLE. audit records each session's command.
 */
export function registerExecStreamRoutes(app: FastifyInstance, store: Store, gateway: ExecStreamGateway | undefined, audit?: AuditLog): void {
  const opened = new WeakMap<FastifyRequest, Opened>();
  void app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
  void app.register(async (scope) => {
    scope.get<{ Params: { ns: string; name: string }; Querystring: Query }>('/v1/namespaces/:ns/tasks/:name/exec', {
      websocket: true,
      // Runs after authentication and authorization, before the upgrade: failures stay HTTP.
      preHandler: async (req, reply) => {
        const r = await open(req, reply);
        if (r) opened.set(req, r);
      },
    }, (socket, req) => {
      const o = opened.get(req as FastifyRequest);
      if (!o) {
        socket.close(1011, 'exec stream missing');
        return;
      }
      audit?.write({
        requestId: String(req.id), identity: req.identity?.name ?? '', role: req.identity?.role ?? '', via: req.identity?.via ?? '',
        source: req.ip, verb: 'exec', resource: 'tasks', namespace: req.params.ns, name: req.params.name, code: 101,
        command: [(req.query as Query).command ?? []].flat() as string[],
      });
      serve(socket, o.handle);
    });
  });

  async function open(req: FastifyRequest<{ Params: { ns: string; name: string }; Querystring: Query }>, reply: FastifyReply): Promise<Opened | undefined> {
    const { ns, name } = req.params;
    if (!req.ws) {
      sendError(reply, { code: 'BERTH_ERR_VALIDATION', message: 'this route speaks WebSocket only: send an Upgrade request (berth exec -i/-t does)' });
      return undefined;
    }
    const q = parseExecStreamQuery(req.query);
    if ('code' in q) {
      sendError(reply, q);
      return undefined;
    }
    const { items } = await store.list<Task>(`tasks/${ns}/`, isTaskKey);
    const task = items.find((t) => t.metadata.name === name);
    if (!task) {
      sendError(reply, notFound('task', `${ns}/${name}`));
      return undefined;
    }
    const node = task.spec.nodeName;
    const containerId = task.status.containerId;
    if (task.status.phase !== 'running' || !node || !containerId) {
      sendError(reply, { code: 'BERTH_ERR_TASK_NOT_RUNNING', message: `task ${ns}/${name} is ${task.status.phase}, not running` });
      return undefined;
    }
    if (!gateway) {
      sendError(reply, { code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'this control plane has no agent gateway' });
      return undefined;
    }
    const handle = gateway.openStream(node, { exec: {
      namespace: ns, task: name, containerId, command: q.command, tty: q.tty, stdin: q.stdin, rows: q.rows, cols: q.cols,
    } });
    // The client may leave before the agent answers: the stream must not outlive it.
    // (An injected request has no socket.)
    const cancel = (): void => handle.cancel();
    const socket = req.raw.socket as Socket | undefined;
    socket?.once('close', cancel);
    const outcome = await handle.opened;
    socket?.off('close', cancel);
    if (!outcome.ok) {
      sendError(reply, openErrorOf(outcome.code, `exec in task ${ns}/${name} on node ${node}: ${outcome.message}`));
      return undefined;
    }
    return { handle };
  }
}

/** serve joins one WebSocket to its agent stream until the command ends or either side leaves. */
function serve(ws: WebSocket, h: StreamHandle): void {
  let pendingStdin = 0;
  let paused = false;
  const fail = (why: string): void => {
    h.cancel();
    ws.close(1002, why.slice(0, 120));
  };
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (!isBinary) return fail('frames must be binary');
    const f = decodeFrame(raw);
    if (typeof f === 'string') return fail(f);
    switch (f.channel) {
      case EXEC_CHANNEL.stdin: {
        if (f.data.length === 0) {
          void h.send({ eof: true });
          return;
        }
        pendingStdin += f.data.length;
        if (pendingStdin > STDIN_PENDING_BYTES && !paused) {
          paused = true;
          ws.pause();
        }
        const n = f.data.length;
        void h.send({ data: Buffer.from(f.data) }).then(() => {
          pendingStdin -= n;
          if (paused && pendingStdin <= STDIN_PENDING_BYTES / 2) {
            paused = false;
            ws.resume();
          }
        });
        return;
      }
      case EXEC_CHANNEL.resize:
        void h.send({ rows: f.rows, cols: f.cols });
        return;
      case EXEC_CHANNEL.signal:
        void h.send({ signal: f.signal });
        return;
      default:
        return fail(`channel ${f.channel} is not the client's to send`);
    }
  });
  ws.on('close', () => h.cancel());
  ws.on('error', () => h.cancel());
  void (async () => {
    for await (const d of h.chunks) {
      if (ws.readyState !== ws.OPEN) break;
      await sendFrame(ws, frame(d.channel, d.data));
    }
    const end = await h.end;
    if (ws.readyState !== ws.OPEN) return;
    ws.send(frame(EXEC_CHANNEL.status, JSON.stringify(statusOf(end))));
    ws.close(1000);
  })();
}

/** sendFrame sends one frame and, past the high-water mark, waits until the socket took it. */
function sendFrame(ws: WebSocket, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    ws.send(data, () => resolve());
    if (ws.bufferedAmount <= SOCKET_HIGH_WATER_BYTES) resolve();
  });
}
