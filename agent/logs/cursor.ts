/**
 * LogCursor reads a container's log file as it grows, across rotation, the way `tail -F` does:
 * it keeps the file it has open (an open descriptor survives the rename to container.log.1), and
 * when the path names a new inode it first drains the old file to its end, then opens the new
 * one from its start. A file that shrinks under the same inode was truncated: read it again from
 * 0. Only whole lines come out; a record caught mid-write waits for its newline.
 */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';

/** READ_CHUNK_BYTES is how much one read takes from the file. */
export const READ_CHUNK_BYTES = 64 * 1024;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** LogCursor follows one log path; see the file comment. Not safe for concurrent next() calls. */
export class LogCursor {
  private fh: FileHandle | undefined;
  private ino = -1;
  private offset = 0;
  private rest: Buffer = Buffer.alloc(0);

  constructor(readonly path: string) {}

  /**
   * start opens the current file and returns the rotated generation's lines (container.log.1)
   * followed by every whole line of the current file so far; next() then returns what is added.
   */
  async start(): Promise<string[]> {
    await this.reopen();
    let older: string[] = [];
    try {
      const st = await stat(`${this.path}.1`);
      // The rotation may have happened between opening and here: then .1 is the open file.
      if (st.ino !== this.ino) older = splitWhole(await readFile(`${this.path}.1`)).lines;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    return [...older, ...(await this.next())];
  }

  /** next returns the whole lines added since the last call, following a rotation if there was one. */
  async next(): Promise<string[]> {
    if (!this.fh) {
      await this.reopen();
      if (!this.fh) return [];
    }
    let current: number | undefined;
    try {
      current = (await stat(this.path)).ino;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    const out = await this.drain();
    if (current !== undefined && current !== this.ino) {
      // Rotated: everything of the old generation is read above; carry on in the new file.
      const tail = this.rest;
      await this.close();
      this.rest = Buffer.alloc(0);
      if (tail.length > 0) out.push(tail.toString('utf8'));
      await this.reopen();
      out.push(...(await this.drain()));
    }
    return out;
  }

  /** close releases the open file; the cursor may be started again. */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.ino = -1;
    await fh?.close().catch(() => undefined);
  }

  private async reopen(): Promise<void> {
    try {
      this.fh = await open(this.path, 'r');
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    this.ino = (await this.fh.stat()).ino;
    this.offset = 0;
    this.rest = Buffer.alloc(0);
  }

  /** drain reads the open file from the offset to its end. */
  private async drain(): Promise<string[]> {
    const fh = this.fh;
    if (!fh) return [];
    const size = (await fh.stat()).size;
    if (size < this.offset) {
      this.offset = 0;
      this.rest = Buffer.alloc(0);
    }
    const lines: string[] = [];
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      const split = splitWhole(Buffer.concat([this.rest, buf.subarray(0, bytesRead)]));
      this.rest = split.rest;
      lines.push(...split.lines);
    }
    return lines;
  }
}

/** splitWhole cuts bytes into whole lines (without their newline) and the unfinished rest. */
export function splitWhole(b: Buffer): { lines: string[]; rest: Buffer } {
  const lines: string[] = [];
  let start = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, start)) {
    lines.push(b.toString('utf8', start, i));
    start = i + 1;
  }
  return { lines, rest: Buffer.from(b.subarray(start)) };
}
