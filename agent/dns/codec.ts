/**
 * A small RFC 1035 message codec: enough for a resolver that answers A queries and relays the
 * rest. Reading follows compression pointers (backwards only, bounded) and checks every length
 * against the buffer; anything malformed reads as undefined, never as an exception.
 */

/** DNS_HEADER_BYTES is the fixed header size. */
export const DNS_HEADER_BYTES = 12;
/** MAX_NAME_BYTES is the longest encoded name RFC 1035 allows. */
export const MAX_NAME_BYTES = 255;
const MAX_LABEL_BYTES = 63;
const POINTER_MASK = 0xc0;

/** RRType holds the record types berth's resolver knows by name. */
export const RRType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, AAAA: 28, OPT: 41, ANY: 255 } as const;
/** CLASS_IN is the Internet class; CLASS_ANY matches any class in a question. */
export const CLASS_IN = 1;
/** CLASS_ANY is the wildcard class a question may carry. */
export const CLASS_ANY = 255;

/** Rcode is the response code in the header's low four bits. */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** DnsFlags are the header's flag bits, unpacked. */
export interface DnsFlags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
}

/** DnsQuestion is one entry of the question section; name has no trailing dot and keeps its case. */
export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** DnsRecord is one resource record; rdata is raw except that A records also carry `address`. */
export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
}

/** DnsMessage is a whole message. */
export interface DnsMessage {
  id: number;
  flags: DnsFlags;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** packFlags is the header's 16-bit flags word. */
export function packFlags(f: DnsFlags): number {
  return (f.qr ? 0x8000 : 0) | ((f.opcode & 0xf) << 11) | (f.aa ? 0x400 : 0) | (f.tc ? 0x200 : 0)
    | (f.rd ? 0x100 : 0) | (f.ra ? 0x80 : 0) | (f.rcode & 0xf);
}

/** unpackFlags splits the header's flags word. */
export function unpackFlags(w: number): DnsFlags {
  return {
    qr: (w & 0x8000) !== 0, opcode: (w >> 11) & 0xf, aa: (w & 0x400) !== 0, tc: (w & 0x200) !== 0,
    rd: (w & 0x100) !== 0, ra: (w & 0x80) !== 0, rcode: w & 0xf,
  };
}

/** readName reads a possibly compressed name at offset; next is the offset after it in the original position. */
export function readName(buf: Uint8Array, offset: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let total = 0;
  // Every pointer must go strictly backwards from the label that holds it, so no loop is possible;
  // the hop bound is a second guard.
  let limit = offset;
  for (let hops = 0; hops <= MAX_NAME_BYTES; hops++) {
    if (pos >= buf.length) return undefined;
    const len = buf[pos]!;
    if ((len & POINTER_MASK) === POINTER_MASK) {
      if (pos + 1 >= buf.length) return undefined;
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= limit) return undefined;
      if (next < 0) next = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & POINTER_MASK) !== 0) return undefined; // 0x40 / 0x80: extended label types, unsupported
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.join('.'), next };
    }
    if (pos + 1 + len > buf.length) return undefined;
    total += len + 1;
    if (total + 1 > MAX_NAME_BYTES) return undefined;
    labels.push(decodeLabel(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return undefined;
}

function decodeLabel(bytes: Uint8Array): string {
  // Names are compared byte for byte (ASCII case-insensitively); latin1 keeps every byte one char.
  return Buffer.from(bytes).toString('latin1');
}

function readRecords(buf: Uint8Array, offset: number, count: number): { records: DnsRecord[]; next: number } | undefined {
  const records: DnsRecord[] = [];
  let pos = offset;
  for (let i = 0; i < count; i++) {
    const n = readName(buf, pos);
    if (!n || n.next + 10 > buf.length) return undefined;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const rdlen = view.getUint16(n.next + 8);
    const start = n.next + 10;
    if (start + rdlen > buf.length) return undefined;
    records.push({ name: n.name, type: view.getUint16(n.next), class: view.getUint16(n.next + 2), ttl: view.getUint32(n.next + 4), rdata: new Uint8Array(buf.subarray(start, start + rdlen)) });
    pos = start + rdlen;
  }
  return { records, next: pos };
}

/** decodeMessage parses a whole message; undefined when any part is malformed or bytes trail it. */
export function decodeMessage(buf: Uint8Array): DnsMessage | undefined {
  if (buf.length < DNS_HEADER_BYTES) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const counts = [view.getUint16(4), view.getUint16(6), view.getUint16(8), view.getUint16(10)] as const;
  const questions: DnsQuestion[] = [];
  let pos = DNS_HEADER_BYTES;
  for (let i = 0; i < counts[0]; i++) {
    const n = readName(buf, pos);
    if (!n || n.next + 4 > buf.length) return undefined;
    questions.push({ name: n.name, type: view.getUint16(n.next), class: view.getUint16(n.next + 2) });
    pos = n.next + 4;
  }
  const answers = readRecords(buf, pos, counts[1]);
  const authorities = answers && readRecords(buf, answers.next, counts[2]);
  const additionals = authorities && readRecords(buf, authorities.next, counts[3]);
  if (!answers || !authorities || !additionals || additionals.next !== buf.length) return undefined;
  return { id: view.getUint16(0), flags: unpackFlags(view.getUint16(2)), questions, answers: answers.records, authorities: authorities.records, additionals: additionals.records };
}

/** Writer appends to a growing buffer, compressing names against suffixes already written. */
class Writer {
  private buf = Buffer.alloc(512);
  private len = 0;
  private readonly suffixes = new Map<string, number>();

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.len); this.len += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16BE(v, this.len); this.len += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32BE(v >>> 0, this.len); this.len += 4; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }

  name(name: string): void {
    const labels = name === '' ? [] : name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const key = labels.slice(i).join('.').toLowerCase();
      const at = this.suffixes.get(key);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      // Pointers hold 14 bits; later suffixes simply are not offered for compression.
      if (this.len < 0x4000) this.suffixes.set(key, this.len);
      const label = Buffer.from(labels[i]!, 'latin1');
      if (label.length === 0 || label.length > MAX_LABEL_BYTES) throw new RangeError(`bad label in ${JSON.stringify(name)}`);
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }

  done(): Buffer { return this.buf.subarray(0, this.len); }
}

/** encodeMessage serialises a message with name compression; it throws RangeError on an unencodable name. */
export function encodeMessage(m: DnsMessage): Buffer {
  const w = new Writer();
  w.u16(m.id);
  w.u16(packFlags(m.flags));
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) {
    w.name(r.name);
    w.u16(r.type);
    w.u16(r.class);
    w.u32(r.ttl);
    w.u16(r.rdata.length);
    w.bytes(r.rdata);
  }
  return w.done();
}

/** aRecord builds an A record for a dotted-quad address. */
export function aRecord(name: string, address: string, ttlSeconds: number): DnsRecord {
  return { name, type: RRType.A, class: CLASS_IN, ttl: ttlSeconds, rdata: Uint8Array.from(address.split('.').map(Number)) };
}

/** addressOf reads an A record's rdata as a dotted quad; undefined for any other shape. */
export function addressOf(r: DnsRecord): string | undefined {
  return r.type === RRType.A && r.rdata.length === 4 ? Array.from(r.rdata).join('.') : undefined;
}
