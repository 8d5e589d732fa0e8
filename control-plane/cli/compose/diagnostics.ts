/**
 * What a compose conversion found besides the objects: errors (the file cannot be converted),
 * unsupported fields (dropped with a warning, or refused with --strict) and notes (a field was
 * translated, but not exactly as compose would run it). Every key of the file lands in one of
 * these or is translated, so nothing is dropped without a line saying so.
 */

/** Diagnostics collects the findings of one conversion; problems are values, never exceptions. */
export class Diagnostics {
  readonly errors: string[] = [];
  /** unsupported lists each dropped field and, when known, what to do instead. */
  readonly unsupported: { path: string; why?: string }[] = [];
  readonly notes: string[] = [];

  /** error records why the field at path cannot be converted; conversion goes on to find the rest. */
  error(path: string, message: string): void {
    this.errors.push(`${path}: ${message}`);
  }

  /** unsupportedField records a field berth has no equivalent for; why (optional) says what to do instead. */
  unsupportedField(path: string, why?: string): void {
    this.unsupported.push(why === undefined ? { path } : { path, why });
  }

  /** note records a translation that differs from compose's behaviour. */
  note(path: string, message: string): void {
    this.notes.push(`${path}: ${message}`);
  }
}

/** unsupportedLine is the warning for a dropped field: `PATH is not supported, ignored (WHY)`. */
export function unsupportedLine(u: { path: string; why?: string }, outcome = 'ignored'): string {
  return `${u.path} is not supported, ${outcome}${u.why ? ` (${u.why})` : ''}`;
}

/** isExtension tells whether a key is a compose extension field (`x-...`), which compose itself ignores. */
export function isExtension(key: string): boolean {
  return key.startsWith('x-');
}

/** ComposeMap is a YAML mapping as parsed. */
export type ComposeMap = Record<string, unknown>;

/** isMap tells whether v is a YAML mapping (not a list, not null). */
export function isMap(v: unknown): v is ComposeMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * checkKeys reports every key of map that is neither translated (known) nor an extension:
 * a key in unsupported gets that reason, any other key is reported as unsupported too.
 */
export function checkKeys(map: ComposeMap, path: string, diag: Diagnostics, known: readonly string[],
  unsupported: Readonly<Record<string, string>> = {}): void {
  for (const key of Object.keys(map)) {
    if (known.includes(key) || isExtension(key)) continue;
    diag.unsupportedField(path ? `${path}.${key}` : key, unsupported[key]);
  }
}
