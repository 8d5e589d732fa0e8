/**
 * Variable interpolation as compose does it, on every string value of the file (keys are left
 * alone): `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
 * `${VAR:?message}` / `${VAR?message}` (refuse), `${VAR:+alt}` / `${VAR+alt}` (replace when
 * set), defaults that interpolate themselves (`${A:-${B}}`), and `$$` for a literal `$`.
 */
import { Diagnostics, isMap } from './diagnostics.js';

/** Lookup finds a variable's value; undefined when it is unset. */
export type Lookup = (name: string) => string | undefined;

/** Interpolated is the outcome of one string: its value, or why it cannot be interpolated. */
export type Interpolated = { ok: true; value: string; unset: string[] } | { ok: false; message: string };

const NAME_START = /[A-Za-z_]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** interpolate expands every reference in text; unset lists the variables used but unset (they became ""). */
export function interpolate(text: string, lookup: Lookup): Interpolated {
  const unset: string[] = [];
  try {
    return { ok: true, value: expand(text, lookup, unset), unset };
  } catch (err) {
    if (err instanceof InterpolationError) return { ok: false, message: err.message };
    throw err;
  }
}

// Thrown only inside this module and turned into a value by interpolate().
class InterpolationError extends Error {}

function expand(text: string, lookup: Lookup, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      out += braced(text.slice(i + 2, end), lookup, unset, text);
      i = end + 1;
    } else if (next !== undefined && NAME_START.test(next)) {
      const name = NAME.exec(text.slice(i + 1))![0];
      out += valueOf(name, lookup, unset);
      i += 1 + name.length;
    } else {
      throw new InterpolationError(`invalid interpolation in "${text}": "$" must start $VAR or \${VAR}; write $$ for a literal "$"`);
    }
  }
  return out;
}

/** closingBrace finds the "}" that closes the "${" opened just before from, skipping nested ones. */
function closingBrace(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') {
      i += 1;
    } else if (text[i] === '$' && text[i + 1] === '{') {
      depth += 1;
      i += 1;
    } else if (text[i] === '}') {
      if (depth === 0) return i;
      depth -= 1;
    }
  }
  throw new InterpolationError(`invalid interpolation in "${text}": "\${" is never closed with "}"`);
}

function braced(inner: string, lookup: Lookup, unset: string[], whole: string): string {
  const name = NAME.exec(inner)?.[0];
  if (name === undefined) throw new InterpolationError(`invalid interpolation in "${whole}": "\${${inner}}" does not start with a variable name`);
  const rest = inner.slice(name.length);
  if (rest === '') return valueOf(name, lookup, unset);
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (op === undefined) throw new InterpolationError(`invalid interpolation in "${whole}": unknown operator in "\${${inner}}" (use :-, -, :?, ?, :+ or +)`);
  const arg = rest.slice(op.length);
  const value = lookup(name);
  // the ":" forms treat an empty value like an unset one, as the shell does
  const present = op.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
  switch (op) {
    case ':-':
    case '-':
      return present ? value! : expand(arg, lookup, unset);
    case ':+':
    case '+':
      return present ? expand(arg, lookup, unset) : '';
    default: {
      if (present) return value!;
      const why = expand(arg, lookup, unset);
      throw new InterpolationError(`required variable ${name} is ${value === undefined ? 'not set' : 'empty'}${why ? `: ${why}` : ''}`);
    }
  }
}

function valueOf(name: string, lookup: Lookup, unset: string[]): string {
  const value = lookup(name);
  if (value === undefined) {
    if (!unset.includes(name)) unset.push(name);
    return '';
  }
  return value;
}

/**
 * interpolateTree returns a copy of a parsed file with every string value interpolated; a value
 * that cannot be is reported at its path and left as written. Unset variables are noted once each.
 */
export function interpolateTree(value: unknown, lookup: Lookup, path: string, diag: Diagnostics, seen = new Set<string>()): unknown {
  if (typeof value === 'string') {
    const r = interpolate(value, lookup);
    if (!r.ok) {
      diag.error(path, r.message);
      return value;
    }
    for (const name of r.unset) {
      if (seen.has(name)) continue;
      seen.add(name);
      diag.note(path, `variable ${name} is not set, using an empty string`);
    }
    return r.value;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, lookup, `${path}[${i}]`, diag, seen));
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, lookup, path ? `${path}.${k}` : k, diag, seen);
    return out;
  }
  return value;
}
