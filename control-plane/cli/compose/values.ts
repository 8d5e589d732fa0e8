/**
 * Scalar readers for compose values: Go durations (`1m30s`), Docker byte sizes (`512m`), shell
 * words (`command: python app.py`), and typed reads that accept the strings interpolation leaves
 * (`replicas: ${N}` is the string "3"). Each reader reports a bad value at its path and returns
 * undefined, so one conversion lists every problem of the file.
 */
import type { Diagnostics } from './diagnostics.js';

const DURATION_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)/;

/** parseGoDuration reads a Go duration (`90s`, `1m30s`, `500ms`, `0`) into milliseconds; undefined when it is not one. */
export function parseGoDuration(text: string): number | undefined {
  let s = text.trim();
  if (s === '0') return 0;
  if (s === '') return undefined;
  let ms = 0;
  while (s !== '') {
    const part = DURATION_RE.exec(s)?.[0];
    if (part === undefined) return undefined;
    const unit = /(ns|us|µs|ms|s|m|h)$/.exec(part)![0];
    ms += Number(part.slice(0, -unit.length)) * DURATION_UNIT_MS[unit]!;
    s = s.slice(part.length);
  }
  return ms;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4 };

/** parseBytes reads a Docker size (`512m`, `1.5g`, `65536k`, `100`: binary units) into whole bytes; undefined when it is not one. */
export function parseBytes(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = BYTE_UNITS[m?.[2]?.toLowerCase() ?? 'x'];
  if (!m || unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** splitShellWords splits a command string as compose does (quotes and backslashes, no expansion); undefined when a quote is unclosed. */
export function splitShellWords(s: string): string[] | undefined {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word += s.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1]!)) j += 1;
        word += s[j];
      }
      if (j >= s.length) return undefined;
      inWord = true;
      i = j;
    } else if (c === '\\' && i + 1 < s.length) {
      word += s[i + 1];
      inWord = true;
      i += 1;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** readString takes a string, or a number or boolean written unquoted (`user: 1000`). */
export function readString(v: unknown, path: string, diag: Diagnostics): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  diag.error(path, `must be a string, got ${describe(v)}`);
  return undefined;
}

/** readInt takes a whole number in [min, max], or a string of one (what interpolation leaves). */
export function readInt(v: unknown, path: string, diag: Diagnostics, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    diag.error(path, `must be a whole number, got ${describe(v)}`);
    return undefined;
  }
  if (n < min || n > max) {
    diag.error(path, `must be between ${min} and ${max}, got ${n}`);
    return undefined;
  }
  return n;
}

/** readNumber takes a number, or a string of one (`cpus: "0.5"`). */
export function readNumber(v: unknown, path: string, diag: Diagnostics): number | undefined {
  const n = typeof v === 'string' && /^\d+(\.\d+)?$|^\.\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    diag.error(path, `must be a number >= 0, got ${describe(v)}`);
    return undefined;
  }
  return n;
}

/** readBool takes a boolean, or "true"/"false" (what interpolation leaves). */
export function readBool(v: unknown, path: string, diag: Diagnostics): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  diag.error(path, `must be true or false, got ${describe(v)}`);
  return undefined;
}

/** readStringList takes one string or a list of strings (`env_file: a.env` or `[a.env, b.env]`). */
export function readStringList(v: unknown, path: string, diag: Diagnostics): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) {
    diag.error(path, `must be a string or a list of strings, got ${describe(v)}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    const s = readString(item, `${path}[${i}]`, diag);
    if (s !== undefined) out.push(s);
  });
  return out;
}

/** readSeconds turns a compose duration into whole seconds, rounded up (berth's probes and grace periods count seconds). */
export function readSeconds(v: unknown, path: string, diag: Diagnostics, min = 0, max = 86_400): number | undefined {
  const ms = typeof v === 'string' ? parseGoDuration(v) : undefined;
  if (ms === undefined) {
    diag.error(path, `must be a duration like 10s, 1m30s or 500ms, got ${describe(v)}`);
    return undefined;
  }
  const seconds = Math.max(min, Math.ceil(ms / 1000 - 1e-9));
  if (seconds * 1000 !== ms) diag.note(path, `${String(v)} is ${seconds}s in berth, which counts whole seconds (at least ${min})`);
  if (seconds > max) {
    diag.error(path, `must be at most ${max}s, got ${String(v)}`);
    return undefined;
  }
  return seconds;
}

/** readOctalMode takes a file mode: a number (0440 is octal in YAML as compose reads it) or an octal string "0440". */
export function readOctalMode(v: unknown, path: string, diag: Diagnostics): number | undefined {
  const n = typeof v === 'string' && /^0?[0-7]{1,4}$/.test(v.trim()) ? parseInt(v.trim(), 8) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0o777) {
    diag.error(path, `must be a file mode like 0440, got ${describe(v)}`);
    return undefined;
  }
  return n;
}

/** describe names a value for messages: `"abc"`, `42`, `a list`, `a mapping`, `null`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'string' ? `"${v}"` : String(v);
}
