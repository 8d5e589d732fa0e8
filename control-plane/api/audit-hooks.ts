/**
 * The API's audit hooks: after every response, one AuditRecord for each mutating request, each
 * exec, logs or secret reveal, and each refusal (401 failed authentication, 403 forbidden).
 * Who comes from `req.identity`, what from `req.access` (method and path when a request was
 * refused before the access table ran), why from the error body the response carried.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEntry, AuditLog } from '../security/audit.js';

export { auditRefusal, type AuditRefusal } from '../security/audit.js';

/** AUDITED_METHODS are the methods that change state; every request with one is recorded. */
export const AUDITED_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** AUDITED_VERBS are the reads that expose what runs or what is secret; they are recorded too. */
export const AUDITED_VERBS: ReadonlySet<string> = new Set(['exec', 'logs', 'reveal']);
/** AUDITED_STATUSES are refusals, recorded whatever the request was. */
export const AUDITED_STATUSES: ReadonlySet<number> = new Set([401, 403]);

/** MAX_AUDIT_MESSAGE_CHARS bounds the refusal message copied into a record. */
export const MAX_AUDIT_MESSAGE_CHARS = 1024;
/** Error bodies are small; a larger payload is not an error body worth parsing. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** AuditHookOptions tune registerAuditHooks. */
export interface AuditHookOptions {
  /** isAudited replaces isAuditedByDefault as the choice of which responses are recorded. */
  isAudited?(req: FastifyRequest, reply: FastifyReply): boolean;
}

/** isAuditedByDefault is true for mutating methods, exec/logs/reveal and 401/403 answers. */
export function isAuditedByDefault(req: FastifyRequest, reply: FastifyReply): boolean {
  return AUDITED_METHODS.has(req.method)
    || (req.access !== undefined && AUDITED_VERBS.has(req.access.verb))
    || AUDITED_STATUSES.has(reply.statusCode);
}

/**
 * registerAuditHooks adds the onSend (capture the error message) and onResponse (write the
 * record) hooks to app; call it on the root instance so every route, and the not-found
 * handler, is covered.
 */
export function registerAuditHooks(app: FastifyInstance, audit: AuditLog, options: AuditHookOptions = {}): void {
  const isAudited = options.isAudited ?? isAuditedByDefault;
  const messages = new WeakMap<FastifyRequest, string>();
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode >= 400) {
      const message = errorMessageOf(payload);
      if (message !== undefined) messages.set(req, message);
    }
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    if (!isAudited(req, reply)) return;
    audit.write(requestEntry(req, reply.statusCode, messages.get(req)));
  });
}

/** requestEntry builds the record of one answered request. */
function requestEntry(req: FastifyRequest, status: number, message: string | undefined): AuditEntry {
  const id = req.identity;
  const access = req.access;
  const entry: AuditEntry = {
    requestId: String(req.id),
    identity: id?.name ?? '',
    role: id?.role ?? '',
    via: id?.via ?? '',
    source: req.ip,
    verb: access?.verb ?? req.method,
    // The query string is left out: it may carry values that do not belong in a log.
    resource: access?.resource ?? urlPath(req.url),
    code: status,
  };
  if (access?.namespace !== undefined) entry.namespace = access.namespace;
  if (access?.name !== undefined) entry.name = access.name;
  if (message !== undefined) entry.message = message;
  const command = execCommand(req);
  if (command !== undefined) entry.command = command;
  return entry;
}

function urlPath(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** execCommand is the body's `command` argv of an exec request, when it has one. */
function execCommand(req: FastifyRequest): string[] | undefined {
  const isExec = req.access !== undefined ? req.access.verb === 'exec' : urlPath(req.url).endsWith('/exec');
  if (!isExec) return undefined;
  const command = (req.body as { command?: unknown } | null | undefined)?.command;
  return Array.isArray(command) && command.every((a) => typeof a === 'string') ? command : undefined;
}

/** errorMessageOf reads `{"error":{"message"}}` (or fastify's own `{"message"}`) from a reply payload. */
function errorMessageOf(payload: unknown): string | undefined {
  let text: string;
  if (typeof payload === 'string') text = payload;
  else if (Buffer.isBuffer(payload)) text = payload.toString('utf8');
  else return undefined; // a stream: not an error body
  if (text.length > MAX_ERROR_BODY_BYTES) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { error, message } = body as { error?: unknown; message?: unknown };
  const found = typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string'
    ? (error as { message: string }).message
    : typeof message === 'string' ? message : undefined;
  return found === undefined ? undefined : found.slice(0, MAX_AUDIT_MESSAGE_CHARS);
}
