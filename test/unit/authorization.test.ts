import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  authorize, CLUSTER_RESOURCES, NAMESPACED_RESOURCES, READ_VERBS, VERBS,
} from '../../control-plane/security/authorization.js';
import { ALL_NAMESPACES, type AccessRequest, type Identity, type Role } from '../../control-plane/security/identity.js';

const who = (role: Role, namespaces: string[] = [ALL_NAMESPACES], name = `${role}-1`): Identity => ({ name, role, namespaces, via: 'token' });

type Row = [role: Role, namespaces: string[], verb: string, resource: string, namespace: string | undefined, allowed: boolean];
const ALL = [ALL_NAMESPACES];
const DEV = ['dev'];

/** The role table, one request per row. Namespace undefined is a cluster resource or a cross-namespace list. */
const rows: Row[] = [
  // viewer: reads every namespaced resource, nodes and namespaces; never writes.
  ...NAMESPACED_RESOURCES.flatMap((r): Row[] => READ_VERBS.map((v): Row => ['viewer', ALL, v, r, 'prod', true])),
  ...NAMESPACED_RESOURCES.map((r): Row => ['viewer', ALL, 'list', r, undefined, true]),
  ['viewer', ALL, 'list', 'nodes', undefined, true],
  ['viewer', ALL, 'get', 'nodes', undefined, true],
  ['viewer', ALL, 'watch', 'nodes', undefined, true],
  ['viewer', ALL, 'list', 'namespaces', undefined, true],
  ['viewer', ALL, 'list', 'images', undefined, true],
  ['viewer', ALL, 'list', 'tokens', undefined, false],
  ['viewer', ALL, 'get', 'audit', undefined, false],
  ['viewer', ALL, 'create', 'certificates', undefined, false],
  ...(['create', 'update', 'delete'] as const).flatMap((v): Row[] => [
    ...NAMESPACED_RESOURCES.map((r): Row => ['viewer', ALL, v, r, 'prod', false]),
    ...CLUSTER_RESOURCES.map((r): Row => ['viewer', ALL, v, r, undefined, false]),
  ]),
  ['viewer', ALL, 'exec', 'tasks', 'prod', false],
  ['viewer', ALL, 'reveal', 'secrets', 'prod', false],
  // viewer logs: tasks only, and only in its namespaces.
  ['viewer', ALL, 'logs', 'tasks', 'prod', true],
  ['viewer', DEV, 'logs', 'tasks', 'dev', true],
  ['viewer', DEV, 'logs', 'tasks', 'prod', false],
  ['viewer', ALL, 'logs', 'services', 'prod', false],
  ['viewer', DEV, 'get', 'services', 'dev', true],
  ['viewer', DEV, 'get', 'services', 'prod', false],

  // operator: writes workload objects in its namespaces, execs, reveals; no cluster writes.
  ...(['create', 'update', 'delete'] as const).flatMap((v): Row[] => [
    ['operator', DEV, v, 'services', 'dev', true],
    ['operator', DEV, v, 'services', 'prod', false],
    ['operator', ALL, v, 'services', 'prod', true],
    ['operator', ALL, v, 'secrets', 'prod', true],
    ['operator', ALL, v, 'configs', 'prod', true],
    ['operator', ALL, v, 'volumes', 'prod', true],
    ['operator', ALL, v, 'tasks', 'prod', false],
    ['operator', ALL, v, 'events', 'prod', false],
    ...CLUSTER_RESOURCES.map((r): Row => ['operator', ALL, v, r, undefined, false]),
  ]),
  ['operator', DEV, 'exec', 'tasks', 'dev', true],
  ['operator', DEV, 'exec', 'tasks', 'prod', false],
  ['operator', ALL, 'exec', 'services', 'prod', false],
  ['operator', DEV, 'reveal', 'secrets', 'dev', true],
  ['operator', DEV, 'reveal', 'secrets', 'prod', false],
  ['operator', ALL, 'reveal', 'configs', 'prod', false],
  ['operator', DEV, 'logs', 'tasks', 'dev', true],
  ['operator', ALL, 'get', 'audit', undefined, false],
  ['operator', ALL, 'list', 'tokens', undefined, false],
  ['operator', ALL, 'list', 'nodes', undefined, true],
  ['operator', DEV, 'list', 'nodes', undefined, true],

  // admin: everything.
  ...VERBS.flatMap((v): Row[] => [
    ...NAMESPACED_RESOURCES.map((r): Row => ['admin', ALL, v, r, 'prod', true]),
    ...CLUSTER_RESOURCES.map((r): Row => ['admin', ALL, v, r, undefined, true]),
  ]),

  // A namespace-scoped identity cannot list across namespaces, whatever its role.
  ...(['viewer', 'operator', 'admin'] as const).flatMap((role): Row[] => [
    [role, DEV, 'list', 'services', undefined, false],
    [role, DEV, 'watch', 'tasks', undefined, false],
    [role, DEV, 'list', 'events', undefined, false],
    [role, DEV, 'list', 'services', 'dev', true],
  ]),
];

describe('authorize', () => {
  for (const [role, namespaces, verb, resource, namespace, allowed] of rows) {
    const where = namespace === undefined ? '' : ` in ${namespace}`;
    it(`${role} [${namespaces.join(',')}] ${allowed ? 'may' : 'may not'} ${verb} ${resource}${where}`, () => {
      const a: AccessRequest = { verb, resource, ...(namespace !== undefined ? { namespace } : {}) };
      const d = authorize(who(role, namespaces), a);
      assert.equal(d.allowed, allowed, `expected allowed=${allowed}, saw ${d.allowed}: ${d.reason}`);
    });
  }
});

describe('namespaces as a resource', () => {
  const cases: { name: string; id: Identity; a: AccessRequest; allowed: boolean }[] = [
    { name: 'a dev viewer reads namespace dev', id: who('viewer', DEV), a: { verb: 'get', resource: 'namespaces', name: 'dev' }, allowed: true },
    { name: 'a dev viewer may not read namespace prod', id: who('viewer', DEV), a: { verb: 'get', resource: 'namespaces', name: 'prod' }, allowed: false },
    { name: 'an operator may not update a namespace', id: who('operator'), a: { verb: 'update', resource: 'namespaces', name: 'dev' }, allowed: false },
    { name: 'an admin updates a namespace', id: who('admin'), a: { verb: 'update', resource: 'namespaces', name: 'dev' }, allowed: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = authorize(c.id, c.a);
      assert.equal(d.allowed, c.allowed, `expected allowed=${c.allowed}, saw ${d.allowed}: ${d.reason}`);
    });
  }
});

describe('a namespace-scoped admin', () => {
  // An admin token limited to namespace dev should not be able to act on the whole cluster:
  // minting tokens or certificates would let it issue itself an unscoped admin credential.
  const cases: { verb: string; resource: string }[] = [
    { verb: 'create', resource: 'tokens' },
    { verb: 'create', resource: 'certificates' },
    { verb: 'update', resource: 'nodes' },
    { verb: 'get', resource: 'audit' },
  ];
  for (const c of cases) {
    it(`may not ${c.verb} ${c.resource}, which reaches beyond its namespaces`, () => {
      const d = authorize(who('admin', DEV), { verb: c.verb, resource: c.resource });
      assert.equal(d.allowed, false, `expected a dev-scoped admin refused, saw allowed: ${d.reason}`);
    });
  }
});

describe('unknown verbs', () => {
  for (const role of ['viewer', 'operator'] as const) {
    it(`are refused to ${role} (deny by default)`, () => {
      const d = authorize(who(role), { verb: 'escalate', resource: 'services', namespace: 'prod' });
      assert.equal(d.allowed, false, `expected refused, saw allowed: ${d.reason}`);
    });
  }
});

describe('refusal reasons', () => {
  const cases: { name: string; id: Identity; a: AccessRequest; says: string[] }[] = [
    {
      name: 'a role refusal names identity, verb, resource and namespace',
      id: who('viewer', ALL, 'alice'),
      a: { verb: 'create', resource: 'services', namespace: 'prod' },
      says: ['token alice (viewer)', 'create services', 'namespace prod'],
    },
    {
      name: 'a namespace refusal names identity, verb, resource, namespace and the allowed namespaces',
      id: who('operator', ['dev', 'qa'], 'bob'),
      a: { verb: 'delete', resource: 'services', namespace: 'prod' },
      says: ['token bob (operator)', 'delete services', 'namespace prod', 'dev, qa'],
    },
    {
      name: 'a cross-namespace refusal says across all namespaces and how to name one',
      id: who('viewer', DEV, 'carol'),
      a: { verb: 'list', resource: 'services' },
      says: ['token carol (viewer)', 'list services', 'across all namespaces', '-n'],
    },
    {
      name: 'a certificate identity is named as one',
      id: { name: 'dave', role: 'viewer', namespaces: ALL, via: 'certificate' },
      a: { verb: 'update', resource: 'nodes' },
      says: ['certificate dave (viewer)', 'update nodes'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = authorize(c.id, c.a);
      assert.equal(d.allowed, false);
      for (const s of c.says) assert.ok(d.reason.includes(s), `reason should contain ${JSON.stringify(s)}, saw: ${d.reason}`);
    });
  }

  it('an allowed decision also explains itself', () => {
    const d = authorize(who('operator', ALL, 'erin'), { verb: 'create', resource: 'services', namespace: 'prod' });
    assert.deepEqual(d, { allowed: true, reason: 'token erin (operator) may create services in namespace prod' });
  });
});
