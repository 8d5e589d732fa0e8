/**
 * The audit log: one JSON line per security-relevant request (mutations, exec, logs, secret
 * reveals, refused credentials), appended to a file only the control plane's user can read, with
 * size-based rotation (`audit.log` → `audit.log.1` → … → `audit.log.<maxFiles>`, the oldest dropped).
 *
 * Writing never fails a request: records are queued in memory and appended by one serialized
 * writer, so lines never interleave; a file system error is logged once per outage and the
 * records it costs are counted (`droppedRecords`), not thrown.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';

/** DEFAULT_AUDIT_MAX_BYTES is the size past which the live file is rotated. */
export const DEFAULT_AUDIT_MAX_BYTES = 100 * 1024 * 1024;
/** DEFAULT_AUDIT_MAX_FILES is how many rotated files are kept beside the live one. */
export const DEFAULT_AUDIT_MAX_FILES = 5;
/** AUDIT_LOG_FILE_NAME is the live file's name in the control plane's data directory. */
export const AUDIT_LOG_FILE_NAME = 'audit.log';
/**
 * AUDIT_MAX_QUEUED_RECORDS bounds the records waiting for a slow or stuck disk; past it new
 * records are dropped (and counted) rather than growing the heap without limit.
 */
export const AUDIT_MAX_QUEUED_RECORDS = 10_000;

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** How much of a rotated file's end is read to find its newest record's time. */
const TAIL_PROBE_BYTES = 64 * 1024;

/** AuditVia says how the caller proved who it is; '' when it did not. */
export type AuditVia = 'token' | 'certificate' | 'node' | '';

/** AuditRecord is one line of the audit log. */
export interface AuditRecord {
  /** time is when the record was written, RFC 3339 with milliseconds in UTC. */
  time: string;
  requestId: string;
  /** identity is the caller's token or certificate name; '' when unauthenticated. */
  identity: string;
  /** role is the caller's role; '' when unknown. */
  role: string;
  via: AuditVia;
  /** source is the remote address. */
  source: string;
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  /** code is the HTTP status, or the gRPC status name (PERMISSION_DENIED) for gateway refusals. */
  code: number | string;
  /** message says why a request was refused or failed. */
  message?: string;
  /** command is the argv of an exec. */
  command?: string[];
}

/** AuditEntry is what callers hand to write(): a record whose time the log fills in when absent. */
export type AuditEntry = Omit<AuditRecord, 'time'> & { time?: string };

/** AuditQuery filters read(). */
export interface AuditQuery {
  /** since keeps records at or after this time. */
  since?: Date;
  /** user keeps records whose identity is exactly this name. */
  user?: string;
  /** limit keeps only the newest `limit` matches (still returned oldest first). */
  limit?: number;
}

/** AuditLogOptions configure an AuditLog. */
export interface AuditLogOptions {
  /** path is the live file; rotated files are `<path>.1` (newest) to `<path>.<maxFiles>`. */
  path: string;
  maxBytes?: number;
  /** maxFiles is the number of rotated files kept; 0 keeps none. */
  maxFiles?: number;
  /** clock returns the current time in ms since the epoch (record times). */
  clock?: () => number;
  /** log receives the one message per outage when the file cannot be written. */
  log?: Logger;
}

/** An open, size-bounded view of one file, taken between two writer batches. */
interface Snapshot {
  fh: FileHandle;
  size: number;
  /** rotated files may be skipped whole when their newest record is older than `since`. */
  rotated: boolean;
}

/** AuditLog appends AuditRecords to a rotating JSON-lines file and reads them back. */
export class AuditLog {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  private readonly clock: () => number;
  private readonly log: Logger;
  /** Serialized lines waiting for the writer. */
  private queue: string[] = [];
  private drainScheduled = false;
  /** Every file operation runs on this chain, one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private fh: FileHandle | undefined;
  private size = 0;
  private dropped = 0;
  /** failing is set from the first lost record of an outage to the next successful write. */
  private failing = false;
  private closed = false;

  constructor(options: AuditLogOptions) {
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.maxFiles = options.maxFiles ?? DEFAULT_AUDIT_MAX_FILES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1) throw new RangeError(`audit log maxBytes must be a positive integer, got ${this.maxBytes}`);
    if (!Number.isInteger(this.maxFiles) || this.maxFiles < 0) throw new RangeError(`audit log maxFiles must be a non-negative integer, got ${this.maxFiles}`);
    this.clock = options.clock ?? Date.now;
    this.log = options.log ?? silentLogger;
  }

  /** droppedRecords counts the records lost to file system errors, a full queue or a closed log. */
  get droppedRecords(): number {
    return this.dropped;
  }

  /** write queues one record (time filled from the clock when absent); it never throws. */
  write(entry: AuditEntry): void {
    if (this.closed) return this.drop(1, 'the log is closed');
    if (this.queue.length >= AUDIT_MAX_QUEUED_RECORDS) return this.drop(1, `${AUDIT_MAX_QUEUED_RECORDS} records already wait for the disk`);
    let line: string;
    try {
      const { time, ...rest } = entry;
      const record: AuditRecord = { time: time ?? new Date(this.clock()).toISOString(), ...rest };
      line = `${JSON.stringify(record)}\n`;
    } catch (err) {
      return this.drop(1, 'a record cannot be serialized', err);
    }
    this.queue.push(line);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      void this.run(() => this.drain());
    }
  }

  /** flush resolves once every record written before the call is on disk or counted as dropped. */
  flush(): Promise<void> {
    return this.run(async () => {});
  }

  /** close flushes, closes the file and drops (counts) any later write. */
  async close(): Promise<void> {
    this.closed = true;
    await this.run(async () => {
      const fh = this.fh;
      this.fh = undefined;
      await fh?.close();
    });
  }

  /**
   * read returns the records matching query, oldest first, across the rotated files and the live
   * one; lines that do not parse (a torn write after a crash) are skipped.
   */
  async read(query: AuditQuery = {}): Promise<AuditRecord[]> {
    if (query.limit !== undefined && query.limit <= 0) return [];
    // The files are opened between two writer batches, so a rotation during the read moves
    // names but not the open files: nothing is seen twice or missed.
    const snapshots = await this.run(() => this.openSnapshots());
    const sinceMs = query.since?.getTime();
    const userNeedle = query.user === undefined ? undefined : `"identity":${JSON.stringify(query.user)}`;
    const limit = query.limit;
    let out: AuditRecord[] = [];
    try {
      for (const snap of snapshots) {
        if (snap.size === 0) continue;
        if (sinceMs !== undefined && snap.rotated) {
          const newest = await newestTime(snap);
          if (newest !== undefined && newest < sinceMs) continue;
        }
        const lines = createInterface({ input: snap.fh.createReadStream({ start: 0, end: snap.size - 1, autoClose: false }), crlfDelay: Infinity });
        for await (const line of lines) {
          if (userNeedle !== undefined && !line.includes(userNeedle)) continue;
          const record = parseRecord(line);
          if (!record) continue;
          if (query.user !== undefined && record.identity !== query.user) continue;
          if (sinceMs !== undefined && !(Date.parse(record.time) >= sinceMs)) continue;
          out.push(record);
          if (limit !== undefined && out.length >= 2 * limit) out = out.slice(-limit);
        }
      }
    } finally {
      await Promise.all(snapshots.map((s) => s.fh.close().catch(() => undefined)));
    }
    return limit === undefined ? out : out.slice(-limit);
  }

  /** run appends op to the chain; a failed op does not stop the ones after it. */
  private run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.chain.then(op);
    this.chain = result.then(() => undefined, () => undefined);
    return result;
  }

  /** drain writes everything queued so far, rotating between records when the file would pass maxBytes. */
  private async drain(): Promise<void> {
    this.drainScheduled = false;
    const lines = this.queue;
    this.queue = [];
    let pending = lines.length;
    try {
      await this.ensureOpen();
      let chunk = '';
      let chunkLines = 0;
      for (const line of lines) {
        const bytes = Buffer.byteLength(line);
        const used = this.size + Buffer.byteLength(chunk);
        // A record larger than maxBytes still gets written, alone in a fresh file.
        if (used > 0 && used + bytes > this.maxBytes) {
          if (chunkLines > 0) {
            await this.append(chunk);
            pending -= chunkLines;
            chunk = '';
            chunkLines = 0;
          }
          await this.rotate();
        }
        chunk += line;
        chunkLines++;
      }
      if (chunkLines > 0) {
        await this.append(chunk);
        pending -= chunkLines;
      }
      if (this.failing) {
        this.failing = false;
        this.log.warn('audit log: records are written again', { path: this.path, droppedRecords: this.dropped });
      }
    } catch (err) {
      const fh = this.fh;
      this.fh = undefined; // reopened (and its torn end repaired) by the next batch
      await fh?.close().catch(() => undefined);
      this.drop(pending, 'the file cannot be written', err);
    }
  }

  private async append(data: string): Promise<void> {
    await this.fh!.appendFile(data);
    this.size += Buffer.byteLength(data);
  }

  /** ensureOpen opens the live file for appending, making it (0600) and its directory (0700) when missing. */
  private async ensureOpen(): Promise<void> {
    if (this.fh) return;
    await mkdir(dirname(this.path), { recursive: true, mode: DIR_MODE });
    const fh = await open(this.path, 'a+', FILE_MODE);
    try {
      // The log holds exec command lines and who did what: a file left looser by hand is tightened.
      await fh.chmod(FILE_MODE);
      let { size } = await fh.stat();
      if (size > 0) {
        // A write torn by a crash or a full disk must not glue the next record onto its remains.
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) {
          await fh.appendFile('\n');
          size++;
        }
      }
      this.fh = fh;
      this.size = size;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** rotate shifts `<path>.N` to `<path>.N+1` (the last one dropped), the live file to `<path>.1`, and opens a new live file. */
  private async rotate(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
    for (const n of await this.rotatedNumbers()) {
      if (n >= this.maxFiles) await rm(`${this.path}.${n}`, { force: true });
    }
    for (let n = this.maxFiles - 1; n >= 1; n--) await renameIfPresent(`${this.path}.${n}`, `${this.path}.${n + 1}`);
    if (this.maxFiles === 0) await rm(this.path, { force: true });
    else await rename(this.path, `${this.path}.1`);
    await this.ensureOpen();
  }

  /** rotatedNumbers lists the N of every `<path>.N` present, largest (oldest) first. */
  private async rotatedNumbers(): Promise<number[]> {
    const base = basename(this.path);
    let names: string[];
    try {
      names = await readdir(dirname(this.path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((name) => name.startsWith(`${base}.`) && /^[1-9]\d*$/.test(name.slice(base.length + 1)))
      .map((name) => Number(name.slice(base.length + 1)))
      .sort((a, b) => b - a);
  }

  /** openSnapshots opens every file oldest first; run on the chain, so no batch is half written. */
  private async openSnapshots(): Promise<Snapshot[]> {
    const paths = [...(await this.rotatedNumbers()).map((n) => `${this.path}.${n}`), this.path];
    const snapshots: Snapshot[] = [];
    try {
      for (const path of paths) {
        let fh: FileHandle;
        try {
          fh = await open(path, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        snapshots.push({ fh, size: (await fh.stat()).size, rotated: path !== this.path });
      }
    } catch (err) {
      await Promise.all(snapshots.map((s) => s.fh.close().catch(() => undefined)));
      throw err;
    }
    return snapshots;
  }

  /** drop counts lost records and logs the first loss of an outage. */
  private drop(records: number, why: string, err?: unknown): void {
    if (records <= 0) return;
    this.dropped += records;
    if (this.failing) return;
    this.failing = true;
    const cause = err === undefined ? undefined : (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
    this.log.error(`audit log: records dropped: ${why} (further drops are counted, not logged, until a write succeeds)`, { path: this.path, err: cause, droppedRecords: this.dropped });
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** parseRecord decodes one line, or undefined when it is not a record. */
function parseRecord(line: string): AuditRecord | undefined {
  if (line === '') return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null || typeof (value as AuditRecord).time !== 'string') return undefined;
    return value as AuditRecord;
  } catch {
    return undefined;
  }
}

/** newestTime is the time of the last complete record in a file, undefined when its tail holds none. */
async function newestTime(snap: Snapshot): Promise<number | undefined> {
  const length = Math.min(snap.size, TAIL_PROBE_BYTES);
  const buf = Buffer.alloc(length);
  await snap.fh.read(buf, 0, length, snap.size - length);
  const lines = buf.toString('utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const record = parseRecord(lines[i]!);
    if (record) {
      const t = Date.parse(record.time);
      return Number.isNaN(t) ? undefined : t;
    }
  }
  return undefined;
}

/**
 * AuditRefusal is a refusal outside the HTTP API (a gRPC session or join the gateway turned
 * away): a record whose request id (random when absent) and identity, role and via ('' when the
 * peer proved none) may be left out.
 */
export type AuditRefusal = Omit<AuditRecord, 'time' | 'requestId' | 'identity' | 'role' | 'via' | 'command'>
  & Partial<Pick<AuditRecord, 'requestId' | 'identity' | 'role' | 'via'>>;

/** auditRefusal records a refused non-HTTP request in audit; like write() it never throws. */
export function auditRefusal(audit: AuditLog, refusal: AuditRefusal): void {
  const { requestId, identity, role, via, ...rest } = refusal;
  audit.write({ requestId: requestId ?? randomUUID(), identity: identity ?? '', role: role ?? '', via: via ?? '', ...rest });
}

/** auditLogPath is the default live file inside a data directory. */
export function auditLogPath(dataDir: string): string {
  return join(dataDir, AUDIT_LOG_FILE_NAME);
}
