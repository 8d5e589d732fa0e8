/**
 * Admission levels (objects/admission-policy.ts): every rule at every level, allowed and refused,
 * with the message; capability names as the runtime accepts them; the API's refusal message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkPolicy, POLICY_FIELD_REVIEW, POLICY_LEVELS } from '../../control-plane/objects/admission-policy.js';
import { canonicalCapability, DEFAULT_CAPABILITIES, LINUX_CAPABILITIES } from '../../control-plane/objects/capabilities.js';
import { SERVICE_SPEC_SCHEMA } from '../../control-plane/objects/service-schema.js';
import type { ContainerTemplate, Namespace, PolicyLevel, SecuritySpec, Service } from '../../control-plane/objects/types.js';
import { admitNamespace, admitService } from '../../control-plane/objects/validation.js';
import { levelOf, namespaceViolations, policyRefusal } from '../../control-plane/api/namespace-policy.js';

const IMAGE = 'oci-archive:/images/busybox.tar';
/** COMPLIANT is the least a restricted template needs; cases add or override fields. */
const COMPLIANT: Pick<ContainerTemplate, 'user'> & { security: SecuritySpec } = { user: '1000', security: { capDrop: ['ALL'] } };
const BASELINE_ALLOWED = 'allowed: AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, NET_RAW, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT';

function tpl(extra: Partial<ContainerTemplate> = {}, security: SecuritySpec = {}): ContainerTemplate {
  return { image: IMAGE, ...extra, security };
}

/** restrictedTpl is compliant at restricted except for what the case changes. */
function restrictedTpl(extra: Partial<ContainerTemplate> = {}, security: SecuritySpec = {}): ContainerTemplate {
  return { image: IMAGE, user: COMPLIANT.user, ...extra, security: { ...COMPLIANT.security, ...security } };
}

type Expect = { field: string; value: string; message?: string | RegExp };
type Case = { rule: string; level: PolicyLevel; name: string; template: ContainerTemplate; refused: Expect[] };

const cases: Case[] = [
  // capabilities
  { rule: 'capabilities', level: 'privileged', name: 'capAdd SYS_ADMIN', template: tpl({}, { capAdd: ['SYS_ADMIN'] }), refused: [] },
  { rule: 'capabilities', level: 'privileged', name: 'capAdd ALL', template: tpl({}, { capAdd: ['ALL'] }), refused: [] },
  { rule: 'capabilities', level: 'baseline', name: 'capAdd within the default set, any spelling', template: tpl({}, { capAdd: ['NET_BIND_SERVICE', 'cap_chown', 'Kill', 'CAP_AUDIT_WRITE'] }), refused: [] },
  {
    rule: 'capabilities', level: 'baseline', name: 'capAdd SYS_ADMIN', template: tpl({}, { capAdd: ['SYS_ADMIN'] }),
    refused: [{ field: 'spec.template.security.capAdd[0]', value: 'SYS_ADMIN', message: `spec.template.security.capAdd[0]: SYS_ADMIN is not allowed at policy level baseline (${BASELINE_ALLOWED})` }],
  },
  {
    rule: 'capabilities', level: 'baseline', name: 'capAdd cap_net_admin after an allowed one (index and spelling kept)', template: tpl({}, { capAdd: ['CHOWN', 'cap_net_admin'] }),
    refused: [{ field: 'spec.template.security.capAdd[1]', value: 'cap_net_admin', message: /^spec\.template\.security\.capAdd\[1\]: cap_net_admin is not allowed at policy level baseline/ }],
  },
  { rule: 'capabilities', level: 'baseline', name: 'capAdd ALL', template: tpl({}, { capAdd: ['ALL'] }), refused: [{ field: 'spec.template.security.capAdd[0]', value: 'ALL' }] },
  { rule: 'capabilities', level: 'restricted', name: 'capAdd NET_BIND_SERVICE', template: restrictedTpl({}, { capAdd: ['net_bind_service'] }), refused: [] },
  {
    rule: 'capabilities', level: 'restricted', name: 'capAdd CHOWN (default set, still too much)', template: restrictedTpl({}, { capAdd: ['CHOWN'] }),
    refused: [{ field: 'spec.template.security.capAdd[0]', value: 'CHOWN', message: 'spec.template.security.capAdd[0]: CHOWN is not allowed at policy level restricted (allowed: NET_BIND_SERVICE)' }],
  },
  { rule: 'capabilities', level: 'restricted', name: 'capAdd SYS_ADMIN', template: restrictedTpl({}, { capAdd: ['SYS_ADMIN'] }), refused: [{ field: 'spec.template.security.capAdd[0]', value: 'SYS_ADMIN', message: /allowed: NET_BIND_SERVICE\)$/ }] },

  // seccomp
  { rule: 'seccomp', level: 'privileged', name: 'seccomp unconfined', template: tpl({}, { seccomp: 'unconfined' }), refused: [] },
  { rule: 'seccomp', level: 'baseline', name: 'seccomp default', template: tpl({}, { seccomp: 'default' }), refused: [] },
  {
    rule: 'seccomp', level: 'baseline', name: 'seccomp unconfined', template: tpl({}, { seccomp: 'unconfined' }),
    refused: [{ field: 'spec.template.security.seccomp', value: 'unconfined', message: 'spec.template.security.seccomp: unconfined is not allowed at policy level baseline (the default seccomp filter must stay on: omit the field or set "default")' }],
  },
  { rule: 'seccomp', level: 'restricted', name: 'seccomp absent', template: restrictedTpl(), refused: [] },
  { rule: 'seccomp', level: 'restricted', name: 'seccomp unconfined', template: restrictedTpl({}, { seccomp: 'unconfined' }), refused: [{ field: 'spec.template.security.seccomp', value: 'unconfined', message: /at policy level restricted/ }] },

  // runAsNonRoot
  { rule: 'runAsNonRoot', level: 'privileged', name: 'user 0', template: tpl({ user: '0' }), refused: [] },
  { rule: 'runAsNonRoot', level: 'baseline', name: 'user 0', template: tpl({ user: '0' }), refused: [] },
  { rule: 'runAsNonRoot', level: 'baseline', name: 'no user', template: tpl(), refused: [] },
  {
    rule: 'runAsNonRoot', level: 'restricted', name: 'no user (the image decides)', template: restrictedTpl({ user: undefined }),
    refused: [{ field: 'spec.template.user', value: '<unset>', message: /^spec\.template\.user: <unset> is not allowed at policy level restricted \(.*unknown at admission; set a numeric non-root user/ }],
  },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user 0', template: restrictedTpl({ user: '0' }), refused: [{ field: 'spec.template.user', value: '0', message: /uid 0 is root/ }] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user 0:1000', template: restrictedTpl({ user: '0:1000' }), refused: [{ field: 'spec.template.user', value: '0:1000' }] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user 000 (still uid 0)', template: restrictedTpl({ user: '000' }), refused: [{ field: 'spec.template.user', value: '000' }] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user root', template: restrictedTpl({ user: 'root' }), refused: [{ field: 'spec.template.user', value: 'root', message: /"root" is root/ }] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user name nobody', template: restrictedTpl({ user: 'nobody' }), refused: [{ field: 'spec.template.user', value: 'nobody', message: /resolved inside the image/ }] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user 1000', template: restrictedTpl({ user: '1000' }), refused: [] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'user 65534:0 (root group is not root)', template: restrictedTpl({ user: '65534:0' }), refused: [] },
  { rule: 'runAsNonRoot', level: 'restricted', name: 'userNamespace does not relax it', template: restrictedTpl({ user: '0' }, { userNamespace: true }), refused: [{ field: 'spec.template.user', value: '0' }] },

  // dropAll
  { rule: 'dropAll', level: 'privileged', name: 'no capDrop', template: tpl(), refused: [] },
  { rule: 'dropAll', level: 'baseline', name: 'no capDrop', template: tpl(), refused: [] },
  {
    rule: 'dropAll', level: 'restricted', name: 'no capDrop', template: restrictedTpl({}, { capDrop: undefined }),
    refused: [{ field: 'spec.template.security.capDrop', value: '<unset>', message: 'spec.template.security.capDrop: <unset> is not allowed at policy level restricted (must contain ALL)' }],
  },
  { rule: 'dropAll', level: 'restricted', name: 'capDrop without ALL', template: restrictedTpl({}, { capDrop: ['NET_RAW', 'MKNOD'] }), refused: [{ field: 'spec.template.security.capDrop', value: '[NET_RAW, MKNOD]' }] },
  { rule: 'dropAll', level: 'restricted', name: 'capDrop all (lower case)', template: restrictedTpl({}, { capDrop: ['NET_RAW', 'all'] }), refused: [] },

  // fields that no level refuses
  { rule: 'none', level: 'restricted', name: 'userNamespace, readOnlyRootfs and a published host port', template: restrictedTpl({ ports: [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }] }, { userNamespace: true, readOnlyRootfs: true }), refused: [] },
  { rule: 'none', level: 'baseline', name: 'userNamespace false', template: tpl({}, { userNamespace: false }), refused: [] },
];

describe('checkPolicy', () => {
  for (const c of cases) {
    it(`${c.level}: ${c.rule}: ${c.name} is ${c.refused.length === 0 ? 'allowed' : 'refused'}`, () => {
      const got = checkPolicy(c.template, c.level);
      assert.deepEqual(got.map((v) => [v.field, v.value, v.level]), c.refused.map((e) => [e.field, e.value, c.level]), `violations seen: ${JSON.stringify(got)}`);
      c.refused.forEach((e, i) => {
        const message = got[i]!.message;
        if (typeof e.message === 'string') assert.equal(message, e.message);
        else if (e.message) assert.match(message, e.message);
        // every message names the field, the value and the level
        assert.ok(message.startsWith(`${e.field}: ${e.value} `) && message.includes(`policy level ${c.level}`), message);
      });
    });
  }

  it('reports every violation, in rule order (capabilities, seccomp, user, capDrop)', () => {
    const got = checkPolicy(tpl({ user: '0' }, { capAdd: ['SYS_ADMIN', 'NET_ADMIN'], seccomp: 'unconfined' }), 'restricted');
    assert.deepEqual(got.map((v) => v.field), [
      'spec.template.security.capAdd[0]', 'spec.template.security.capAdd[1]', 'spec.template.security.seccomp', 'spec.template.user', 'spec.template.security.capDrop',
    ]);
  });

  it('each level allows less than the one before', () => {
    const t = tpl({}, { capAdd: ['SYS_ADMIN'] });
    assert.deepEqual(POLICY_LEVELS.map((l) => checkPolicy(t, l).length), [0, 1, 3]);
  });

  it('a level it does not know is checked as restricted (fail closed)', () => {
    assert.deepEqual(checkPolicy(tpl(), 'bogus' as PolicyLevel).map((v) => v.field), ['spec.template.user', 'spec.template.security.capDrop']);
  });

  it('the field prefix is a parameter', () => {
    assert.equal(checkPolicy(tpl({}, { seccomp: 'unconfined' }), 'baseline', 'template')[0]!.field, 'template.security.seccomp');
  });

  it('every template field the schema admits has a policy decision (POLICY_FIELD_REVIEW)', () => {
    const t = SERVICE_SPEC_SCHEMA.properties.template.properties;
    const fields = [...Object.keys(t), ...Object.keys(t.security.properties).map((k) => `security.${k}`)];
    const missing = fields.filter((f) => !(f in POLICY_FIELD_REVIEW));
    assert.deepEqual(missing, [], 'new template fields need a rule in admission-policy.ts or a reason in POLICY_FIELD_REVIEW');
  });
});

describe('capability names', () => {
  const nativeSource = readFileSync(new URL('../../../native/src/lib/security.cc', import.meta.url), 'utf8');

  it('LINUX_CAPABILITIES is the runtime\'s list, in number order', () => {
    const block = /CAP_NAMES\[\] = \{([^}]*)\}/.exec(nativeSource)?.[1] ?? '';
    assert.deepEqual([...block.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]), LINUX_CAPABILITIES);
  });

  it('DEFAULT_CAPABILITIES is the runtime\'s default set', () => {
    const block = /DEFAULT_CAPS = ([^;]*);/.exec(nativeSource)?.[1] ?? '';
    assert.deepEqual([...block.matchAll(/bit\(CAP_([A-Z_]+)\)/g)].map((m) => m[1]), DEFAULT_CAPABILITIES);
  });

  for (const [name, expected] of [
    ['NET_ADMIN', 'NET_ADMIN'], ['net_admin', 'NET_ADMIN'], ['CAP_NET_ADMIN', 'NET_ADMIN'], ['cap_Net_Admin', 'NET_ADMIN'],
    ['ALL', 'ALL'], ['all', 'ALL'], ['All', undefined], ['CAP_ALL', undefined], ['NET_ADMN', undefined], ['', undefined], ['CAP_', undefined],
  ] as const) {
    it(`canonicalCapability(${JSON.stringify(name)}) is ${String(expected)}`, () => assert.equal(canonicalCapability(name), expected));
  }

  const admit = (security: SecuritySpec) => admitService({ kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { image: IMAGE, security } } }, { namespace: 'default' });

  it('admission accepts every spelling the runtime accepts', () => {
    const r = admit({ capAdd: ['SYS_ADMIN', 'cap_net_admin', 'Bpf', 'ALL'], capDrop: ['all', 'CAP_MKNOD'] });
    assert.ok(r.ok, JSON.stringify(r));
  });

  for (const [list, bad] of [['capAdd', 'SYS_ADMN'], ['capAdd', 'All'], ['capDrop', 'CAP_ALL'], ['capDrop', 'NET RAW']] as const) {
    it(`admission refuses ${list} "${bad}" at every level, naming the field`, () => {
      const r = admit({ [list]: ['CHOWN', bad] });
      assert.ok(!r.ok, 'must be refused');
      assert.deepEqual(r.error, {
        code: 'BERTH_ERR_VALIDATION',
        field: `spec.template.security.${list}[1]`,
        message: `spec.template.security.${list}[1]: unknown capability "${bad}" (a name from capabilities(7) such as NET_ADMIN, with or without CAP_, any case, or ALL)`,
      });
    });
  }
});

describe('namespaces at the API (pure parts)', () => {
  const svc = (name: string, template: ContainerTemplate): Service => ({
    kind: 'Service', metadata: { name, namespace: 'prod', uid: name, generation: 1, labels: {}, createdAt: '2025-01-01T00:00:00Z' }, spec: { replicas: 1, template },
  });
  const ns = (policy: unknown): Namespace => ({ kind: 'Namespace', metadata: { name: 'prod', uid: 'u', generation: 1, labels: {}, createdAt: '' }, spec: { policy: policy as PolicyLevel }, status: {} });

  it('policyRefusal lists every violation and names the first field', () => {
    const e = policyRefusal('service "prod/web"', 'prod', tpl({}, { capAdd: ['SYS_ADMIN'], seccomp: 'unconfined' }), 'baseline');
    assert.equal(e?.code, 'BERTH_ERR_POLICY_VIOLATION');
    assert.equal(e?.field, 'spec.template.security.capAdd[0]');
    assert.equal(e?.message, 'service "prod/web" is not allowed in namespace "prod" at policy level baseline (2 violations): '
      + `spec.template.security.capAdd[0]: SYS_ADMIN is not allowed at policy level baseline (${BASELINE_ALLOWED}); `
      + 'spec.template.security.seccomp: unconfined is not allowed at policy level baseline (the default seccomp filter must stay on: omit the field or set "default")');
    assert.equal(policyRefusal('service "prod/web"', 'prod', tpl({}, { capAdd: ['SYS_ADMIN'] }), 'privileged'), undefined);
  });

  it('namespaceViolations lists only the breaking services, by name, with their messages', () => {
    const got = namespaceViolations([svc('web', tpl({}, { seccomp: 'unconfined' })), svc('api', tpl({}, { capAdd: ['NET_ADMIN'] })), svc('ok', tpl())], 'baseline');
    assert.deepEqual(got.map((v) => [v.service, v.violations.length]), [['api', 1], ['web', 1]]);
    assert.match(got[1]!.violations[0]!, /^spec\.template\.security\.seccomp: unconfined/);
  });

  it('levelOf: the default without an object, restricted for a damaged one', () => {
    assert.deepEqual([levelOf(undefined), levelOf(ns('privileged')), levelOf(ns('restricted')), levelOf(ns('open'))], ['baseline', 'privileged', 'restricted', 'restricted']);
  });

  it('admitNamespace takes the name from the URL and refuses a different one or a bad name', () => {
    const ok = admitNamespace({ spec: { policy: 'restricted' } }, 'prod');
    assert.deepEqual(ok, { ok: true, value: { name: 'prod', labels: {}, spec: { policy: 'restricted' }, resourceVersion: undefined } });
    const other = admitNamespace({ metadata: { name: 'dev' }, spec: { policy: 'baseline' } }, 'prod');
    assert.ok(!other.ok && other.error.field === 'metadata.name' && /does not match the name in the URL/.test(other.error.message));
    const bad = admitNamespace({ spec: { policy: 'baseline' } }, 'Prod_1');
    assert.ok(!bad.ok && /DNS label/.test(bad.error.message));
  });
});
