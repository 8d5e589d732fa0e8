/**
 * Env files as compose reads them (`.env` beside the compose file, and a service's `env_file`):
 * `KEY=value` lines, `export KEY=value`, `#` comments, 'single quotes' taken literally,
 * "double quotes" with \n, \t, \\ and \" escapes (and spanning lines), `${VAR}` interpolation
 * in unquoted and double-quoted values, and a bare `KEY` taken from the environment.
 */
import { interpolate, type Lookup } from './interpolate.js';

/** Dotenv is what an env file defines, in order, and what was wrong with it (line by line). */
export interface Dotenv {
  vars: Map<string, string>;
  errors: string[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * parseDotenv reads the text of an env file; lookup resolves `${VAR}` and bare keys, and also
 * sees the file's own earlier definitions (later lines may use earlier ones).
 */
export function parseDotenv(text: string, lookup: Lookup): Dotenv {
  const vars = new Map<string, string>();
  const errors: string[] = [];
  const resolve: Lookup = (name) => lookup(name) ?? vars.get(name);
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const body = line.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    const key = (eq < 0 ? body : body.slice(0, eq)).trim();
    if (!KEY.test(key)) {
      errors.push(`line ${n + 1}: "${key}" is not a variable name`);
      continue;
    }
    if (eq < 0) {
      const value = lookup(key);
      if (value !== undefined) vars.set(key, value);
      continue;
    }
    let raw = body.slice(eq + 1).trimStart();
    const quote = raw[0];
    if (quote === "'" || quote === '"') {
      // a quoted value may span lines: keep reading until its closing quote
      let close = closingQuote(raw, quote);
      while (close < 0 && n + 1 < lines.length) {
        n += 1;
        raw += `\n${lines[n]!}`;
        close = closingQuote(raw, quote);
      }
      if (close < 0) {
        errors.push(`line ${n + 1}: ${quote === '"' ? 'double' : 'single'} quote of ${key} is never closed`);
        continue;
      }
      const inner = raw.slice(1, close);
      if (quote === "'") {
        vars.set(key, inner);
        continue;
      }
      const r = interpolate(unescapeDoubleQuoted(inner), resolve);
      if (r.ok) vars.set(key, r.value);
      else errors.push(`line ${n + 1}: ${r.message}`);
      continue;
    }
    // an unquoted value ends at a " #" comment
    const value = raw.replace(/\s+#.*$/, '').trimEnd();
    const r = interpolate(value, resolve);
    if (r.ok) vars.set(key, r.value);
    else errors.push(`line ${n + 1}: ${r.message}`);
  }
  return { vars, errors };
}

function closingQuote(raw: string, quote: string): number {
  for (let i = 1; i < raw.length; i++) {
    if (quote === '"' && raw[i] === '\\') {
      i += 1;
      continue;
    }
    if (raw[i] === quote) return i;
  }
  return -1;
}

function unescapeDoubleQuoted(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
}
