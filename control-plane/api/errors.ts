/** Translation of every API failure into `{"error":{"code","message","field"?}}` with its HTTP status. */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { HTTP_STATUS, type ErrorCode, type FieldError } from '../errors.js';
import type { Logger } from '../../common/log.js';
import { formatSchemaError, pickSchemaError, type SchemaErrorLike } from '../objects/validation.js';
import { checkPathParams } from './path-params.js';

/** sendError replies with the catalogue status of e.code and the error body. */
export function sendError(reply: FastifyReply, e: FieldError): FastifyReply {
  const body: { code: ErrorCode; message: string; field?: string } = { code: e.code, message: e.message };
  if (e.field !== undefined) body.field = e.field;
  return reply.code(HTTP_STATUS[e.code] ?? 500).send({ error: body });
}

/** notFound is the 404 value for a missing object. */
export function notFound(kind: string, name: string): FieldError {
  return { code: 'BERTH_ERR_NOT_FOUND', message: `${kind} "${name}" not found` };
}

const CONTEXT_PREFIX: Record<string, string> = { body: '', querystring: 'query', params: '', headers: 'headers' };

/**
 * installErrorHandlers maps fastify, ajv and unexpected errors onto the catalogue, and refuses a
 * request whose path parameters break their naming rule (path-params.ts) in an onRequest hook
 * installed before any other: call it before registering hooks and routes.
 */
export function installErrorHandlers(app: FastifyInstance, log: Logger): void {
  app.addHook('onRequest', async (req, reply) => {
    // No matched route: the not-found handler answers, and its "*" parameter is no name.
    if (req.routeOptions.url === undefined) return;
    const err = checkPathParams(req.routeOptions.url, req.params as Record<string, unknown>);
    if (err) return sendError(reply, err);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, { code: 'BERTH_ERR_ROUTE_NOT_FOUND', message: `no route for ${req.method} ${req.url}` }));
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation && err.validation.length > 0) {
      const prefix = CONTEXT_PREFIX[err.validationContext ?? 'body'] ?? '';
      return sendError(reply, formatSchemaError(pickSchemaError(err.validation as SchemaErrorLike[]), prefix));
    }
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, { code: 'BERTH_ERR_UNSUPPORTED_MEDIA_TYPE', message: `unsupported content type "${req.headers['content-type'] ?? ''}"; send application/json` });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, { code: 'BERTH_ERR_INVALID_JSON', message: 'the body is empty; expected a JSON object' });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, { code: 'BERTH_ERR_BODY_TOO_LARGE', message: err.message });
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendError(reply, { code: 'BERTH_ERR_INVALID_JSON', message: `invalid JSON body: ${err.message}` });
    }
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return sendError(reply, { code: 'BERTH_ERR_INVALID_JSON', message: `invalid JSON body: ${err.message}` });
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: { code: 'BERTH_ERR_VALIDATION', message: err.message } });
    }
    log.error('unexpected API error', { method: req.method, url: req.url, err, stack: err.stack });
    return sendError(reply, { code: 'BERTH_ERR_INTERNAL', message: `internal error: ${err.message}` });
  });
}
