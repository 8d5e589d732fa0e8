/**
 * CRI log records as the shim writes them: `<RFC3339Nano> stdout|stderr F|P <text>`, one per line.
 * A P (partial) record is a piece of a line longer than the shim's line cap; the pieces of one
 * stream join until its next F record. Parsing is pure so the rules are tested without files.
 */

/** LogStream is which of the container's outputs a record came from. */
export type LogStream = 'stdout' | 'stderr';

/** CriRecord is one parsed record. */
export interface CriRecord {
  /** time is the record's RFC 3339 timestamp as written (nanoseconds kept for --timestamps). */
  time: string;
  /** timeMs is time in Unix milliseconds (NaN never: unparseable records are refused). */
  timeMs: number;
  stream: LogStream;
  partial: boolean;
  text: string;
}

/** LogLine is one whole line of a container's output, P records joined. */
export interface LogLine {
  /** time is the timestamp of the line's first record. */
  time: string;
  timeMs: number;
  stream: LogStream;
  text: string;
}

/** parseCriRecord reads one record (without its newline); undefined for a line that is not one. */
export function parseCriRecord(line: string): CriRecord | undefined {
  const a = line.indexOf(' ');
  if (a <= 0) return undefined;
  const b = line.indexOf(' ', a + 1);
  if (b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = line.slice(b + 1, b + 2);
  if ((tag !== 'F' && tag !== 'P') || (line.length > b + 2 && line[b + 2] !== ' ')) return undefined;
  const time = line.slice(0, a);
  const timeMs = Date.parse(time);
  if (!Number.isFinite(timeMs)) return undefined;
  return { time, timeMs, stream, partial: tag === 'P', text: line.slice(b + 3) };
}

/** CriJoiner turns records into whole lines, joining each stream's P records until its F record. */
export class CriJoiner {
  private readonly pending = new Map<LogStream, { time: string; timeMs: number; parts: string[] }>();

  /** push takes one record and returns the whole line it completes, if any. */
  push(r: CriRecord): LogLine | undefined {
    const held = this.pending.get(r.stream);
    if (r.partial) {
      if (held) held.parts.push(r.text);
      else this.pending.set(r.stream, { time: r.time, timeMs: r.timeMs, parts: [r.text] });
      return undefined;
    }
    if (!held) return { time: r.time, timeMs: r.timeMs, stream: r.stream, text: r.text };
    this.pending.delete(r.stream);
    return { time: held.time, timeMs: held.timeMs, stream: r.stream, text: held.parts.join('') + r.text };
  }

  /** flush returns the lines still being joined (the log ended inside a long line). */
  flush(): LogLine[] {
    const out = [...this.pending.entries()].map(([stream, h]) => ({ time: h.time, timeMs: h.timeMs, stream, text: h.parts.join('') }));
    this.pending.clear();
    return out;
  }
}

/** parseCriText parses a whole log text into lines (records that do not parse are skipped). */
export function parseCriText(text: string): LogLine[] {
  const j = new CriJoiner();
  const out: LogLine[] = [];
  for (const raw of text.split('\n')) {
    const r = raw === '' ? undefined : parseCriRecord(raw);
    if (!r) continue;
    const l = j.push(r);
    if (l) out.push(l);
  }
  return [...out, ...j.flush()];
}

/** LineFilter is what a reader keeps: lines at or after sinceMs, then the last tail of them (<0: all). */
export interface LineFilter {
  sinceMs: number;
  tail: number;
}

/** selectLines applies a filter to lines in log order. */
export function selectLines(lines: LogLine[], f: LineFilter): LogLine[] {
  const kept = f.sinceMs > 0 ? lines.filter((l) => l.timeMs >= f.sinceMs) : lines;
  return f.tail >= 0 ? kept.slice(Math.max(0, kept.length - f.tail)) : kept;
}

/** formatLine renders a line for people: its text, after its RFC 3339 time when timestamps is set. */
export function formatLine(l: LogLine, timestamps: boolean): string {
  return timestamps ? `${l.time} ${l.text}\n` : `${l.text}\n`;
}
