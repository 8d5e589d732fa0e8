/** The REST API (fastify): JSON only, every body schema-validated, unknown fields refused. */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../../common/log.js';
import type { Store } from '../store/store.js';
import { installErrorHandlers } from './errors.js';
import { registerExecRoutes, type ExecRelay } from './routes-exec.js';
import { registerNodeRemoval, type NodeRemoval } from './node-removal.js';
import { registerNodeRoutes } from './routes-nodes.js';
import { registerReadRoutes } from './routes-read.js';
import { registerRolloutRoutes } from './routes-rollout.js';
import { registerServiceRoutes } from './routes-services.js';
import { registerWatchRoutes } from './routes-watch.js';

/** API_BODY_LIMIT_BYTES caps request bodies; a service spec is a few KiB. */
export const API_BODY_LIMIT_BYTES = 1024 * 1024;

/** buildApi assembles the fastify app over store without listening (tests may inject()); relay serves exec, removal forgets deleted nodes. */
export function buildApi(store: Store, log: Logger, relay?: ExecRelay, removal?: NodeRemoval): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: API_BODY_LIMIT_BYTES,
    // Reject unknown properties instead of silently dropping them; never coerce types.
    // allErrors is on (the brief suggested off) because ajv checks `required` before
    // `additionalProperties`: a typo like "imagee" must be reported as the unknown field it is,
    // not as "image: required". The error handler picks the most telling error (pickSchemaError).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, allowUnionTypes: true } },
  });
  // Only JSON bodies: without the default text/plain parser fastify answers 415 for anything else.
  app.removeContentTypeParser('text/plain');
  installErrorHandlers(app, log);
  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'GET' || reply.statusCode >= 400) {
      log.info(`${req.method} ${req.url} ${reply.statusCode}`, { ms: Math.round(reply.elapsedTime) });
    }
  });
  // Node lifecycle: the watch hook must come before the list routes it intercepts (?watch=1).
  registerWatchRoutes(app, store, log);
  registerReadRoutes(app, store);
  registerNodeRoutes(app, store);
  registerNodeRemoval(app, store, removal);
  registerServiceRoutes(app, store);
  registerRolloutRoutes(app, store);
  registerExecRoutes(app, store, relay);
  return app;
}
