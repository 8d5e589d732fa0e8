/**
 * JSON schema (ajv, draft-07) of a Namespace body for PUT /v1/namespaces/NAME. As for services,
 * unknown properties are refused everywhere; kind and metadata may be left out (the URL names
 * the namespace), and status is accepted so `get -o json` output applies back, but ignored.
 */
import { POLICY_LEVELS } from './admission-policy.js';

const str = { type: 'string' } as const;

/** NAMESPACE_BODY_SCHEMA is the structure of a Namespace body. */
export const NAMESPACE_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['spec'],
  properties: {
    kind: { const: 'Namespace' },
    apiVersion: str,
    metadata: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: str,
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        // Server-owned fields round-trip from `get -o json`; only resourceVersion is used (as a precondition).
        uid: str,
        generation: { type: 'integer' },
        createdAt: str,
        resourceVersion: str,
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['policy'],
      properties: { policy: { enum: [...POLICY_LEVELS] } },
    },
    status: { type: 'object' },
  },
} as const;
