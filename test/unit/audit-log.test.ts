import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { AuditLog, auditRefusal, type AuditEntry, type AuditRecord } from '../../control-plane/security/audit.js';

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-audit-'));
  roots.push(dir);
  return dir;
}

/** entry is a record of a POST by user, numbered by seq in its name so order can be checked. */
function entry(seq: number, user = 'alice', extra: Partial<AuditEntry> = {}): AuditEntry {
  return { requestId: `req-${seq}`, identity: user, role: 'operator', via: 'token', source: '10.0.0.1', verb: 'create', resource: 'services', namespace: 'default', name: `svc-${seq}`, code: 201, ...extra };
}

/** Clock is a settable time source. */
function clock(start: string): { now: () => number; set(iso: string): void; advance(ms: number): void } {
  let t = Date.parse(start);
  return { now: () => t, set: (iso) => (t = Date.parse(iso)), advance: (ms) => (t += ms) };
}

interface LoggedLine { level: string; msg: string; fields?: Record<string, unknown> }
function recordingLogger(): Logger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

async function filesOf(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

function seqs(records: AuditRecord[]): number[] {
  return records.map((r) => Number(r.requestId.slice('req-'.length)));
}

describe('AuditLog', () => {
  it('appends one JSON line per record, stamped by the clock, and reads them back oldest first', async () => {
    const dir = await tempDir();
    const c = clock('2025-01-01T00:00:00.000Z');
    const audit = new AuditLog({ path: join(dir, 'audit.log'), clock: c.now });
    audit.write(entry(1));
    c.advance(1500);
    audit.write(entry(2, 'bob', { verb: 'exec', resource: 'tasks', command: ['sh', '-c', 'echo "hi"\nexit 3'], code: 200 }));
    await audit.flush();
    const lines = (await readFile(join(dir, 'audit.log'), 'utf8')).split('\n');
    assert.equal(lines.length, 3, 'two lines and the final newline');
    assert.equal(lines[2], '');
    const first = JSON.parse(lines[0]!) as AuditRecord;
    assert.equal(first.time, '2025-01-01T00:00:00.000Z');
    assert.ok(lines[0]!.startsWith('{"time":'), 'time comes first, so a person scanning the file sees it');
    const records = await audit.read();
    assert.deepEqual(seqs(records), [1, 2]);
    assert.equal(records[1]!.time, '2025-01-01T00:00:01.500Z');
    assert.deepEqual(records[1]!.command, ['sh', '-c', 'echo "hi"\nexit 3']);
    await audit.close();
  });

  it('creates its directory 0700 and its files 0600, and tightens a file left looser', async () => {
    const dir = await tempDir();
    const path = join(dir, 'state', 'cp', 'audit.log');
    const audit = new AuditLog({ path, maxBytes: 300, maxFiles: 2 });
    for (let i = 0; i < 5; i++) audit.write(entry(i));
    await audit.flush();
    assert.equal((await stat(join(dir, 'state', 'cp'))).mode & 0o777, 0o700);
    for (const name of await filesOf(join(dir, 'state', 'cp'))) {
      assert.equal((await stat(join(dir, 'state', 'cp', name))).mode & 0o777, 0o600, `${name} mode`);
    }
    await audit.close();
    await chmod(path, 0o644);
    const reopened = new AuditLog({ path });
    reopened.write(entry(9));
    await reopened.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('rotates by size, keeps maxFiles rotated files and the newest records, none lost in between', async () => {
    const dir = await tempDir();
    const path = join(dir, 'audit.log');
    const maxBytes = 1000;
    const audit = new AuditLog({ path, maxBytes, maxFiles: 3 });
    for (let i = 1; i <= 200; i++) audit.write(entry(i));
    await audit.flush();
    assert.deepEqual(await filesOf(dir), ['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.3']);
    for (const name of await filesOf(dir)) {
      const size = (await stat(join(dir, name))).size;
      assert.ok(size > 0 && size <= maxBytes, `${name} holds ${size} bytes, expected 1..${maxBytes}`);
    }
    const got = seqs(await audit.read());
    assert.equal(got[got.length - 1], 200, 'the newest record is kept');
    assert.deepEqual(got, got.map((_, i) => got[0]! + i), 'the kept records are contiguous and in order');
    // audit.log.1 holds the records just before the live file's
    const live = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    const one = (await readFile(`${path}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    assert.equal(seqs(one).at(-1)! + 1, seqs(live)[0]);
    await audit.close();
  });

  it('drops rotated files beyond a lowered maxFiles at the next rotation, and keeps none with maxFiles 0', async () => {
    const dir = await tempDir();
    const path = join(dir, 'audit.log');
    const wide = new AuditLog({ path, maxBytes: 500, maxFiles: 5 });
    for (let i = 0; i < 60; i++) wide.write(entry(i));
    await wide.close();
    assert.deepEqual(await filesOf(dir), ['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.3', 'audit.log.4', 'audit.log.5']);
    const narrow = new AuditLog({ path, maxBytes: 500, maxFiles: 1 });
    for (let i = 0; i < 10; i++) narrow.write(entry(i));
    await narrow.close();
    assert.deepEqual(await filesOf(dir), ['audit.log', 'audit.log.1']);
    const none = new AuditLog({ path, maxBytes: 500, maxFiles: 0 });
    for (let i = 0; i < 10; i++) none.write(entry(i));
    await none.close();
    assert.deepEqual(await filesOf(dir), ['audit.log']);
  });

  it('writes a record larger than maxBytes alone into a fresh file instead of losing it', async () => {
    const dir = await tempDir();
    const audit = new AuditLog({ path: join(dir, 'audit.log'), maxBytes: 200, maxFiles: 2 });
    audit.write(entry(1));
    audit.write(entry(2, 'alice', { command: ['x'.repeat(500)] }));
    audit.write(entry(3));
    const got = await audit.read();
    assert.deepEqual(seqs(got), [1, 2, 3]);
    await audit.close();
  });

  it('filters by since and user across rotated files, and limit keeps the newest matches', async () => {
    const dir = await tempDir();
    const c = clock('2025-01-01T00:00:00.000Z');
    const audit = new AuditLog({ path: join(dir, 'audit.log'), maxBytes: 1200, maxFiles: 50, clock: c.now });
    for (let i = 1; i <= 60; i++) {
      audit.write(entry(i, i % 3 === 0 ? 'bob' : 'alice'));
      c.advance(60_000); // one record a minute
    }
    await audit.flush();
    assert.ok((await filesOf(dir)).length > 3, 'the records span several files');
    const since = new Date('2025-01-01T00:50:00.000Z'); // records 51..60
    assert.deepEqual(seqs(await audit.read({ since })), [51, 52, 53, 54, 55, 56, 57, 58, 59, 60]);
    assert.deepEqual(seqs(await audit.read({ since, user: 'bob' })), [51, 54, 57, 60]);
    assert.deepEqual(seqs(await audit.read({ user: 'bob', limit: 3 })), [54, 57, 60]);
    assert.deepEqual(seqs(await audit.read({ limit: 1 })), [60]);
    assert.deepEqual(await audit.read({ user: 'carol' }), []);
    assert.deepEqual(await audit.read({ user: 'bo' }), [], 'user matches the whole name only');
    await audit.close();
  });

  it('never interleaves concurrent writes within a line, and keeps their order', async () => {
    const dir = await tempDir();
    const audit = new AuditLog({ path: join(dir, 'audit.log'), maxBytes: 256 * 1024, maxFiles: 100 });
    const n = 2000;
    // Writers on many async paths at once, some with long lines (exec of a big script).
    await Promise.all(Array.from({ length: 20 }, async (_, w) => {
      for (let k = 0; k < n / 20; k++) {
        const seq = k * 20 + w;
        audit.write(entry(seq, `user-${w}`, { command: ['sh', '-c', String(seq).repeat(seq % 7 === 0 ? 3000 : 3)] }));
        if (k % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    }));
    await audit.flush();
    let lines = 0;
    for (const name of await filesOf(dir)) {
      for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
        if (line === '') continue;
        lines++;
        const r = JSON.parse(line) as AuditRecord; // throws on an interleaved line
        const seq = Number(r.requestId.slice(4));
        assert.equal(r.identity, `user-${seq % 20}`);
        assert.equal(r.command![2], String(seq).repeat(seq % 7 === 0 ? 3000 : 3));
      }
    }
    assert.equal(lines, n);
    const got = await audit.read();
    assert.equal(got.length, n);
    const written = Array.from({ length: n / 20 }, (_, k) => Array.from({ length: 20 }, (__, w) => k * 20 + w));
    // within one writer the order is its own; across writers only the count is fixed
    for (let w = 0; w < 20; w++) {
      const mine = seqs(got).filter((s) => s % 20 === w);
      assert.deepEqual(mine, written.map((row) => row[w]));
    }
    assert.equal(audit.droppedRecords, 0);
    await audit.close();
  });

  it('does not throw on a file system error: it logs once, counts the drops and recovers', async () => {
    const dir = await tempDir();
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    const log = recordingLogger();
    const audit = new AuditLog({ path: join(blocker, 'audit.log'), log });
    assert.doesNotThrow(() => {
      for (let i = 0; i < 5; i++) audit.write(entry(i));
    });
    await audit.flush();
    audit.write(entry(5));
    await audit.flush();
    assert.equal(audit.droppedRecords, 6);
    assert.equal(log.lines.filter((l) => l.level === 'error').length, 1, `one error line, got ${JSON.stringify(log.lines)}`);
    assert.match(String(log.lines[0]!.fields?.err), /^E[A-Z]+$/, 'the errno code is logged');
    // the directory appears: the next write succeeds and says so
    await rm(blocker);
    audit.write(entry(6));
    await audit.flush();
    assert.deepEqual(seqs(await audit.read()), [6]);
    assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'recovery is logged');
    await audit.close();
  });

  it('does not throw on a record that cannot be serialized, and drops writes after close', async () => {
    const dir = await tempDir();
    const audit = new AuditLog({ path: join(dir, 'audit.log') });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.doesNotThrow(() => audit.write({ ...entry(1), message: cyclic as unknown as string }));
    audit.write(entry(2));
    await audit.close();
    assert.doesNotThrow(() => audit.write(entry(3)));
    assert.equal(audit.droppedRecords, 2);
    assert.deepEqual(seqs(await audit.read()), [2]);
  });

  it('skips a torn line and keeps the next record whole', async () => {
    const dir = await tempDir();
    const path = join(dir, 'audit.log');
    await writeFile(path, `${JSON.stringify({ time: '2025-01-01T00:00:00.000Z', ...entry(1) })}\n`, { mode: 0o600 });
    await appendFile(path, '{"time":"2025-01-01T00:00:01.000Z","requestId":"req-2","ident'); // a crash mid-write
    const audit = new AuditLog({ path });
    audit.write(entry(3));
    assert.deepEqual(seqs(await audit.read()), [1, 3]);
    await audit.close();
  });

  it('auditRefusal records a gRPC refusal with defaults for what the peer did not prove', async () => {
    const dir = await tempDir();
    const audit = new AuditLog({ path: join(dir, 'audit.log'), clock: () => Date.parse('2025-01-01T00:00:00Z') });
    auditRefusal(audit, { source: '10.1.2.3:5555', verb: 'register', resource: 'nodes', name: 'node-7', code: 'PERMISSION_DENIED', message: 'Register.node_name "node-7" is not the certificate subject "node-2"' });
    const [r] = await audit.read();
    assert.equal(typeof r!.requestId, 'string');
    assert.ok(r!.requestId.length > 0);
    assert.deepEqual({ ...r!, requestId: '' }, {
      time: '2025-01-01T00:00:00.000Z', requestId: '', identity: '', role: '', via: '', source: '10.1.2.3:5555',
      verb: 'register', resource: 'nodes', name: 'node-7', code: 'PERMISSION_DENIED',
      message: 'Register.node_name "node-7" is not the certificate subject "node-2"',
    });
    await audit.close();
  });
});
