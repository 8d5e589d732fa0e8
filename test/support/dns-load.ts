/**
 * A small DNS load generator for the network bench: A queries for one name over UDP to one
 * resolver, with a bounded number in flight. A query unanswered within QUERY_TIMEOUT_MS counts as
 * lost and its slot sends the next one, so a dropped packet never stalls the window; the whole
 * run is bounded by a deadline as well.
 */
import { createSocket } from 'node:dgram';

/** QUERY_TIMEOUT_MS is how long one query may stay unanswered before it counts as lost. */
export const QUERY_TIMEOUT_MS = 1_000;
const TYPE_A = 1;
const CLASS_IN = 1;

/** DnsLoadOptions says whom to ask what, how often, and how many at a time. */
export interface DnsLoadOptions {
  server: string;
  port?: number;
  name: string;
  queries: number;
  window: number;
  deadlineMs: number;
}

/** DnsLoadResult counts answers with ≥ 1 A record, other replies (any rcode, empty), and losses. */
export interface DnsLoadResult {
  answered: number;
  otherReplies: number;
  lost: number;
  elapsedMs: number;
  qps: number;
  /** rcodes counts replies by rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN...). */
  rcodes: Record<string, number>;
}

/** encodeQuery builds a standard recursive A query for name with the given id. */
export function encodeQuery(id: number, name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'ascii'));
  parts.push(Buffer.from([0, TYPE_A >> 8, TYPE_A & 0xff, CLASS_IN >> 8, CLASS_IN & 0xff]));
  return Buffer.concat(parts);
}

/** decodeHeader reads id, rcode and the answer count of a reply; undefined: not a DNS reply. */
export function decodeHeader(msg: Buffer): { id: number; rcode: number; answers: number } | undefined {
  if (msg.length < 12 || (msg[2]! & 0x80) === 0) return undefined;
  return { id: msg.readUInt16BE(0), rcode: msg[3]! & 0x0f, answers: msg.readUInt16BE(6) };
}

/** runDnsLoad sends opts.queries queries (opts.window in flight) and counts what came back. */
export function runDnsLoad(opts: DnsLoadOptions): Promise<DnsLoadResult> {
  const port = opts.port ?? 53;
  const socket = createSocket('udp4');
  const inFlight = new Map<number, number>(); // query id → time sent
  const result: DnsLoadResult = { answered: 0, otherReplies: 0, lost: 0, elapsedMs: 0, qps: 0, rcodes: {} };
  let sent = 0;
  let nextId = 0;
  const start = performance.now();
  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearInterval(sweep);
      clearTimeout(deadline);
      result.elapsedMs = performance.now() - start;
      result.qps = result.answered / (result.elapsedMs / 1000);
      socket.close();
      if (err) reject(err);
      else resolve(result);
    };
    const sendOne = (): void => {
      if (sent >= opts.queries) {
        if (inFlight.size === 0) finish();
        return;
      }
      // Ids cycle through 16 bits; the window is far smaller, so a live id is never reused.
      const id = nextId;
      nextId = (nextId + 1) & 0xffff;
      sent++;
      inFlight.set(id, performance.now());
      socket.send(encodeQuery(id, opts.name), port, opts.server, (err) => {
        if (err) finish(err);
      });
    };
    socket.on('message', (msg) => {
      const h = decodeHeader(msg);
      if (!h || !inFlight.delete(h.id)) return; // late reply to a query already counted as lost
      result.rcodes[h.rcode] = (result.rcodes[h.rcode] ?? 0) + 1;
      if (h.rcode === 0 && h.answers > 0) result.answered++;
      else result.otherReplies++;
      sendOne();
    });
    socket.on('error', (err) => finish(err));
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [id, at] of inFlight) {
        if (now - at < QUERY_TIMEOUT_MS) continue;
        inFlight.delete(id);
        result.lost++;
        sendOne();
      }
    }, QUERY_TIMEOUT_MS / 4);
    const deadline = setTimeout(() => finish(), opts.deadlineMs);
    for (let i = 0; i < Math.min(opts.window, opts.queries); i++) sendOne();
  });
}
