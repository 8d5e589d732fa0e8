/**
 * How a batch of writes is cut into etcd txns. etcd refuses a request over --max-request-bytes
 * (ETCD_MAX_REQUEST_BYTES by default; its gRPC server stops reading at that plus 512 KiB with
 * RESOURCE_EXHAUSTED) and a txn over --max-txn-ops, so a batch is bounded by both: 100 tasks of
 * 20 KiB each are one txn by count but 2 MiB of request. Pure: no I/O.
 */

/** ETCD_MAX_REQUEST_BYTES is etcd's default --max-request-bytes (1.5 MiB). */
export const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/**
 * MAX_TXN_BYTES is the request size a txn is kept under: a third below ETCD_MAX_REQUEST_BYTES
 * for the guard compare and protobuf framing, and small enough that the watch response of a txn
 * of updates (every value twice, with its previous one) stays far below gRPC's 4 MiB default.
 */
export const MAX_TXN_BYTES = 1024 * 1024;

/** TXN_OP_OVERHEAD_BYTES over-estimates one op's protobuf framing (tags, lengths, revisions). */
export const TXN_OP_OVERHEAD_BYTES = 64;

/** txnOpBytes estimates what one write adds to a txn request: its key twice (compare and request), its value, framing. */
export function txnOpBytes(keyBytes: number, valueBytes: number): number {
  return 2 * keyBytes + valueBytes + TXN_OP_OVERHEAD_BYTES;
}

/** TxnBatch is the half-open range [start, end) of ops that go into one txn. */
export interface TxnBatch {
  start: number;
  end: number;
}

/**
 * txnBatches cuts ops of the given sizes, in order, into consecutive batches of at most maxOps
 * ops and at most maxBytes bytes. An op larger than maxBytes on its own gets a batch of its own
 * (etcd then decides; admission keeps stored objects far below that).
 */
export function txnBatches(opBytes: readonly number[], maxOps: number, maxBytes: number): TxnBatch[] {
  if (!(maxOps >= 1)) throw new RangeError(`maxOps must be at least 1 (got ${maxOps})`);
  const out: TxnBatch[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < opBytes.length; i++) {
    const size = opBytes[i]!;
    if (i > start && (i - start >= maxOps || bytes + size > maxBytes)) {
      out.push({ start, end: i });
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < opBytes.length) out.push({ start, end: opBytes.length });
  return out;
}
