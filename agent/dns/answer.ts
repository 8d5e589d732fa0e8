/**
 * What the node's resolver answers, as a pure function of the query, the cluster's endpoints and
 * the asking container's namespace. Names under `svc.berth` are berth's own (authoritative);
 * anything else is someone else's and goes upstream (or fails with SERVFAIL without one).
 */
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { aRecord, CLASS_ANY, CLASS_IN, Rcode, RRType, type DnsMessage, type DnsRecord } from './codec.js';

/** CLUSTER_DOMAIN is the zone berth answers for: NAME.NAMESPACE.svc.berth. */
export const CLUSTER_DOMAIN = 'svc.berth';
/** ANSWER_TTL_S is short so a replica that turns unready leaves client caches quickly. */
export const ANSWER_TTL_S = 5;
const OPCODE_QUERY = 0;

/** ServiceTable maps "namespace/service" to its ready addresses (sorted). */
export type ServiceTable = ReadonlyMap<string, readonly string[]>;

/** serviceTable indexes a pushed endpoints set; services with no ready replica map to []. */
export function serviceTable(services: readonly ServiceEndpoints[]): ServiceTable {
  const table = new Map<string, readonly string[]>();
  for (const s of services) table.set(`${s.namespace}/${s.service}`.toLowerCase(), [...s.ips]);
  return table;
}

/** Decision is a reply to send, or the query to relay upstream unchanged. */
export type Decision = { kind: 'reply'; message: DnsMessage } | { kind: 'forward' };

/** AnswerContext is what a decision depends on besides the query. */
export interface AnswerContext {
  table: ServiceTable;
  /** namespace of the asking container; undefined when the source is not one of this node's containers. */
  namespace: string | undefined;
  /** canForward: upstreams are configured (also sets RA in replies). */
  canForward: boolean;
  /** shuffle permutes answers in place; replaced in tests for determinism. */
  shuffle?: <T>(items: T[]) => T[];
}

/** lookupName resolves a query name against the table: the service's addresses, 'nxdomain', or 'foreign' (not berth's name). */
export function lookupName(name: string, ctx: Pick<AnswerContext, 'table' | 'namespace'>): readonly string[] | 'nxdomain' | 'foreign' {
  const lower = name.toLowerCase().replace(/\.$/, '');
  const labels = lower === '' ? [] : lower.split('.');
  if (lower === CLUSTER_DOMAIN || lower.endsWith(`.${CLUSTER_DOMAIN}`)) {
    const inner = labels.slice(0, -2);
    if (inner.length !== 2) return 'nxdomain';
    return ctx.table.get(`${inner[1]}/${inner[0]}`) ?? 'nxdomain';
  }
  // A single label from one of this node's containers is a service in its own namespace; a public
  // single-label name is not a useful thing to ask for, so an unknown one is NXDOMAIN, not relayed.
  if (labels.length === 1 && ctx.namespace !== undefined) return ctx.table.get(`${ctx.namespace}/${labels[0]}`.toLowerCase()) ?? 'nxdomain';
  return 'foreign';
}

/** fisherYates shuffles in place with Math.random (answer order spreads clients over replicas). */
export function fisherYates<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** replyTo builds an empty reply to query carrying rcode, echoing id, question and RD. */
export function replyTo(query: DnsMessage, rcode: number, opts: { aa?: boolean; ra?: boolean; answers?: DnsRecord[] } = {}): DnsMessage {
  return {
    id: query.id,
    flags: { qr: true, opcode: query.flags.opcode, aa: opts.aa ?? false, tc: false, rd: query.flags.rd, ra: opts.ra ?? false, rcode },
    questions: query.questions.slice(0, 1),
    answers: opts.answers ?? [],
    authorities: [],
    additionals: [],
  };
}

/** answer decides how to answer one decoded query. */
export function answer(query: DnsMessage, ctx: AnswerContext): Decision {
  const ra = ctx.canForward;
  if (query.flags.qr) return { kind: 'reply', message: replyTo(query, Rcode.FORMERR, { ra }) };
  if (query.flags.opcode !== OPCODE_QUERY) return { kind: 'reply', message: replyTo(query, Rcode.NOTIMP, { ra }) };
  const q = query.questions[0];
  if (query.questions.length !== 1 || !q) return { kind: 'reply', message: replyTo(query, Rcode.FORMERR, { ra }) };
  const found = q.class === CLASS_IN || q.class === CLASS_ANY ? lookupName(q.name, ctx) : 'foreign';
  if (found === 'foreign') {
    return ctx.canForward ? { kind: 'forward' } : { kind: 'reply', message: replyTo(query, Rcode.SERVFAIL) };
  }
  if (found === 'nxdomain') return { kind: 'reply', message: replyTo(query, Rcode.NXDOMAIN, { aa: true, ra }) };
  // The name exists: AAAA and other types get NOERROR with no data (clients then use the A answer).
  const wantsA = q.type === RRType.A || q.type === RRType.ANY;
  const ips = wantsA ? (ctx.shuffle ?? fisherYates)([...found]) : [];
  return { kind: 'reply', message: replyTo(query, Rcode.NOERROR, { aa: true, ra, answers: ips.map((ip) => aRecord(q.name, ip, ANSWER_TTL_S)) }) };
}
