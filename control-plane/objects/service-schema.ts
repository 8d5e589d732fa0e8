/**
 * JSON schemas (ajv, draft-07) for API bodies. Structure only: unknown properties are refused
 * everywhere (additionalProperties: false); semantic checks and quantity normalisation live in
 * validation.ts. Blocks marked "stored, not acted on yet" are admitted so specs written against
 * DESIGN.md apply cleanly; the issue that builds them starts acting on them.
 */

const str = { type: 'string' } as const;
const strings = { type: 'array', items: { type: 'string' } } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const seconds = { type: 'integer', minimum: 0, maximum: 86400 } as const;

const health = {
  type: 'object',
  additionalProperties: false,
  properties: {
    http: { type: 'object', additionalProperties: false, required: ['path', 'port'], properties: { path: str, port } },
    exec: { type: 'object', additionalProperties: false, required: ['command'], properties: { command: { ...strings, minItems: 1 } } },
    tcp: { type: 'object', additionalProperties: false, required: ['port'], properties: { port } },
    intervalSeconds: { type: 'integer', minimum: 1, maximum: 3600 },
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600 },
    failureThreshold: { type: 'integer', minimum: 1, maximum: 100 },
    initialDelaySeconds: seconds,
    successThreshold: { type: 'integer', minimum: 1, maximum: 100 },
  },
} as const;

// An integer, or an octal string ("0440") as compose files and people write modes; validation.ts converts.
const fileMode = { type: ['integer', 'string'] } as const;
const id = { type: 'integer', minimum: 0, maximum: 4294967294 } as const;

// A secret or config projected into the container as files: the whole object as a directory
// (one file per key) or, with key, that one key as a file.
const projection = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: str, key: str, target: str, mode: fileMode, uid: id, gid: id },
} as const;

const volume = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'target'],
  properties: {
    type: { enum: ['volume', 'tmpfs', 'bind'] },
    name: str,          // volume: the node-local named volume
    source: str,        // bind: the host path
    target: str,
    readOnly: { type: 'boolean' },
    size: { type: ['integer', 'string'] }, // tmpfs: a memory quantity
  },
} as const;

const template = {
  type: 'object',
  additionalProperties: false,
  required: ['image'],
  properties: {
    image: { type: 'string', minLength: 1 },
    command: strings,
    env: stringMap,
    workingDir: str,
    user: str,
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpu: { type: ['number', 'string'] },
        memory: { type: ['integer', 'string'] },
        pids: { type: 'integer', minimum: 1, maximum: 4194304 },
      },
    },
    ports: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['containerPort'],
        properties: {
          name: str,
          containerPort: port,
          hostPort: { type: 'integer', minimum: 0, maximum: 65535 },
          protocol: { enum: ['tcp', 'udp'] },
          mode: { enum: ['host', 'ingress'] },
        },
      },
    },
    health, // the liveness probe, run by the agent (agent/probes)
    readiness: health, // gates DNS, the mesh and rollouts; never restarts
    startup: health,   // holds health and readiness until it passes once
    secrets: { type: 'array', maxItems: 64, items: projection },
    configs: { type: 'array', maxItems: 64, items: projection },
    volumes: { type: 'array', maxItems: 64, items: volume },
    restart: { // applied by the agent (agent/reconciler/restart.ts)
      type: 'object',
      additionalProperties: false,
      required: ['policy'],
      properties: { policy: { enum: ['always', 'on-failure', 'never'] }, backoffSeconds: seconds, maxBackoffSeconds: seconds },
    },
    security: {
      type: 'object',
      additionalProperties: false,
      properties: {
        readOnlyRootfs: { type: 'boolean' }, capAdd: strings, capDrop: strings, userNamespace: { type: 'boolean' },
        seccomp: { enum: ['default', 'unconfined'] },
      },
    },
    pullPolicy: { enum: ['always', 'if-not-present', 'never'] },
    // Applied by the agent when it stops a task (agent/reconciler/task-runner.ts); stopSignal names are checked in validation.ts.
    stopSignal: { type: ['string', 'integer'] },
    stopGracePeriodSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
    init: { type: 'boolean' },
  },
} as const;

/** SERVICE_SPEC_SCHEMA is the structure of a service spec (DESIGN.md "The service spec"). */
export const SERVICE_SPEC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['template'],
  properties: {
    replicas: { type: 'integer', minimum: 0, maximum: 10000 },
    template,
    placement: {
      type: 'object',
      additionalProperties: false,
      properties: { constraints: strings, spread: str, strategy: { enum: ['spread', 'binpack'] } },
    },
    mode: { enum: ['replicated', 'global'] },
    update: { // rolling updates: controllers/rollout.ts
      type: 'object',
      additionalProperties: false,
      properties: {
        maxSurge: { type: 'integer', minimum: 0 },
        maxUnavailable: { type: 'integer', minimum: 0 },
        minReadySeconds: seconds,
        progressDeadlineSeconds: seconds,
        autoRollback: { type: 'boolean' },
      },
    },
  },
} as const;

/** SERVICE_BODY_SCHEMA is a full Service as POST/PUT take it; status and server-set metadata are ignored. */
export const SERVICE_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'metadata', 'spec'],
  properties: {
    kind: { const: 'Service' },
    apiVersion: str,
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: str,
        namespace: str,
        labels: stringMap,
        // Server-owned fields round-trip from `get -o json`; only resourceVersion is used (as a precondition).
        uid: str,
        generation: { type: 'integer' },
        createdAt: str,
        resourceVersion: str,
      },
    },
    spec: SERVICE_SPEC_SCHEMA,
    status: { type: 'object' },
  },
} as const;

/** SCALE_BODY_SCHEMA is the body of PUT .../scale. */
export const SCALE_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['replicas'],
  properties: { replicas: { type: 'integer', minimum: 0, maximum: 10000 } },
} as const;
