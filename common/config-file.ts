/**
 * Config files for berth's daemons. A file is a YAML (or JSON) mapping whose keys are the
 * program's long flag names, kebab-case (`node-lease-ttl`) or camelCase (`nodeLeaseTtl`):
 *
 * ```yaml
 * listen: 0.0.0.0:7480
 * node-lease-ttl: 10
 * ```
 *
 * The layer knows no flag by name: it walks the commander `Command`'s options, so a flag added to
 * a program is a file key at once. Each value goes through that option's own argument parser,
 * exactly as the same text on the command line would, so validation and messages are the flag's.
 * A flag given on the command line wins over the file. Commander already ranks value sources
 * (cli > env > config > default); file values are stored with source `config`, after `parse()`,
 * only into options whose value is still the default. Commander's own checks that run inside
 * `parse()` (mandatory options, `.conflicts()`, `.implies()`) therefore see only the command line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command, Option } from 'commander';
import { isMap, isScalar, isSeq, parseDocument, type Scalar } from 'yaml';

/** ConfigProblem is one thing wrong with a program's configuration; text names the key and where its value came from. */
export interface ConfigProblem {
  /** key is the kebab-case flag name or the file's key path (`registries.r.caFile`); '' for the file itself. */
  key: string;
  text: string;
}

/** ConfigFileOptions says where a program's file is and which of its keys are not flags. */
export interface ConfigFileOptions {
  /** fileOption is the long name of the option that holds the file's path (default `config`). */
  fileOption?: string;
  /** defaultFile is read when the option is not given, if it exists. */
  defaultFile?: string;
  /** sections are top-level keys that are not flags (the agent's `registries:`); returned untouched. */
  sections?: readonly string[];
  /** cliOnly are long option names a file may not set; help, version and check-config always are. */
  cliOnly?: readonly string[];
}

/** ConfigFileResult is what applying a file did: problems are collected, never thrown. */
export interface ConfigFileResult {
  /** file is the path read; absent when there was none. */
  file?: string;
  /** fromFile are the kebab-case flag names whose value the file set. */
  fromFile: string[];
  /** sections holds the file's non-flag sections as plain values. */
  sections: Record<string, unknown>;
  problems: ConfigProblem[];
}

/** CLI_ONLY_OPTIONS are flags that only make sense on a command line. */
export const CLI_ONLY_OPTIONS: readonly string[] = ['help', 'version', 'check-config'];

/** SUGGESTION_MAX_DISTANCE is the largest edit distance at which an unknown key gets a "did you mean". */
const SUGGESTION_MAX_DISTANCE = 3;

interface KeyTarget {
  option: Option;
  /** name is the kebab-case name messages use. */
  name: string;
  /** invert: the key is a `--no-x` flag, so true stores false. */
  invert: boolean;
}

/** camelCase turns a kebab-case flag name into commander's attribute name (`node-lease-ttl` → `nodeLeaseTtl`). */
function camelCase(kebab: string): string {
  return kebab.replace(/-([a-z0-9])/gi, (_m, c: string) => c.toUpperCase());
}

function longName(option: Option): string | undefined {
  return option.long?.replace(/^--/, '');
}

/** keyTable maps every spelling a file may use to the option it sets; cli-only names map to 'cli-only'. */
function keyTable(program: Command, cliOnly: Set<string>): Map<string, KeyTarget | 'cli-only'> {
  const table = new Map<string, KeyTarget | 'cli-only'>();
  const add = (key: string, target: KeyTarget | 'cli-only'): void => {
    if (!table.has(key)) table.set(key, target);
  };
  // Positive options first, so `color` names `--color` rather than the `--no-color` beside it.
  const ordered = [...program.options].sort((a, b) => Number(a.negate) - Number(b.negate));
  for (const option of ordered) {
    const name = longName(option);
    if (name === undefined) continue;
    if (cliOnly.has(name)) {
      add(name, 'cli-only');
      add(camelCase(name), 'cli-only');
      continue;
    }
    add(name, { option, name, invert: option.negate });
    add(camelCase(name), { option, name, invert: option.negate });
    if (option.negate) {
      // `--no-color` is also reachable as `color: false`, which reads better in a file.
      const positive = name.replace(/^no-/, '');
      add(positive, { option, name: positive, invert: false });
      add(camelCase(positive), { option, name: positive, invert: false });
    }
  }
  return table;
}

/** isRepeatable tells whether giving the flag twice collects values: variadic, or a parser that takes the previous value. */
function isRepeatable(option: Option): boolean {
  return option.variadic || (option.parseArg !== undefined && option.parseArg.length >= 2);
}

type Converted = { ok: true; value: unknown } | { ok: false; detail: string };

/** scalarText is a scalar's text as a command line would carry it: `1.10` stays `1.10`, not `1.1`. */
function scalarText(node: Scalar): string | undefined {
  const v = node.value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return node.type === 'PLAIN' && node.source ? node.source : String(v);
  return undefined;
}

function describeNode(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'empty' : typeof node.value === 'boolean' ? 'a boolean' : `a ${typeof node.value}`;
  return 'not a plain value';
}

/** parseOne runs the option's own parser over one text, as commander does for `--flag text`. */
function parseOne(option: Option, text: string, previous: unknown): Converted {
  try {
    if (option.parseArg) return { ok: true, value: option.parseArg(text, previous) };
    if (option.variadic) return { ok: true, value: Array.isArray(previous) && previous !== option.defaultValue ? [...previous, text] : [text] };
    return { ok: true, value: text };
  } catch (err) {
    // Commander prints `option '--x <n>' argument 'v' is invalid. REASON`; the file says the same.
    return { ok: false, detail: `argument '${text}' is invalid. ${err instanceof Error ? err.message : String(err)}` };
  }
}

function convert(program: Command, target: KeyTarget, node: unknown): Converted {
  const { option } = target;
  const takesValue = option.required || option.optional;
  if (!takesValue) {
    if (isScalar(node) && typeof node.value === 'boolean') return { ok: true, value: target.invert ? !node.value : node.value };
    return { ok: false, detail: `must be true or false, not ${describeNode(node)}` };
  }
  if (option.optional && isScalar(node) && node.value === true) {
    // `--x` without its optional value: the preset, else true.
    return option.presetArg === undefined ? { ok: true, value: true } : parseOne(option, String(option.presetArg), program.getOptionValue(option.attributeName()));
  }
  let items: unknown[];
  if (isSeq(node)) {
    if (!isRepeatable(option)) return { ok: false, detail: `takes one value (${option.flags}), not a list` };
    items = node.items;
    if (items.length === 0) return { ok: false, detail: 'is an empty list (remove the key to keep the default)' };
  } else {
    items = [node];
  }
  let value = program.getOptionValue(option.attributeName());
  for (const item of items) {
    const text = isScalar(item) ? scalarText(item) : undefined;
    if (text === undefined) {
      const what = describeNode(item);
      const hint = what === 'empty' ? ' (remove the key to keep the default)' : '';
      return { ok: false, detail: `must be a string or a number${isRepeatable(option) ? ' or a list of them' : ''}, not ${what}${hint}` };
    }
    const parsed = parseOne(option, text, value);
    if (!parsed.ok) return parsed;
    value = parsed.value;
  }
  return { ok: true, value };
}

/** editDistance is the optimal string alignment distance between a and b. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** closeKeys are the valid names nearest to key, best first (compared in both spellings). */
function closeKeys(key: string, table: Map<string, KeyTarget | 'cli-only'>, sections: readonly string[]): string[] {
  const scored = new Map<string, number>();
  const consider = (spelling: string, shown: string): void => {
    const dist = editDistance(key.toLowerCase(), spelling.toLowerCase());
    if (dist > SUGGESTION_MAX_DISTANCE || dist >= spelling.length) return;
    scored.set(shown, Math.min(dist, scored.get(shown) ?? Infinity));
  };
  for (const [spelling, target] of table) if (target !== 'cli-only') consider(spelling, target.name);
  for (const s of sections) consider(s, s);
  return [...scored].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).slice(0, 3).map(([name]) => name);
}

function validNames(table: Map<string, KeyTarget | 'cli-only'>, sections: readonly string[]): string[] {
  const names = new Set<string>();
  for (const target of table.values()) if (target !== 'cli-only') names.add(target.name);
  return [...names, ...sections].sort();
}

/**
 * applyConfigFile reads the program's config file (the path from its `--config`, else
 * defaultFile if that exists) and stores its values into every option the command line left at
 * its default. Call it after `program.parse()`. Problems are collected in the result, not thrown.
 */
export function applyConfigFile(program: Command, options: ConfigFileOptions = {}): ConfigFileResult {
  const attr = camelCase(options.fileOption ?? 'config');
  let file = program.getOptionValue(attr) as string | undefined;
  if (file === undefined && options.defaultFile !== undefined && existsSync(options.defaultFile)) {
    file = options.defaultFile;
    program.setOptionValueWithSource(attr, file, 'default');
  }
  if (file === undefined) return { fromFile: [], sections: {}, problems: [] };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { file, fromFile: [], sections: {}, problems: [{ key: '', text: `${file}: cannot read: ${(err as Error).message}` }] };
  }
  return applyConfigText(program, text, file, options);
}

/** applyConfigText is applyConfigFile for text already read; file names it in messages. */
export function applyConfigText(program: Command, text: string, file: string, options: ConfigFileOptions = {}): ConfigFileResult {
  const result: ConfigFileResult = { file, fromFile: [], sections: {}, problems: [] };
  const problem = (key: string, detail: string): void => void result.problems.push({ key, text: `${file}: ${key ? `${key}: ` : ''}${detail}` });
  const sections = options.sections ?? [];
  const cliOnly = new Set([...CLI_ONLY_OPTIONS, options.fileOption ?? 'config', ...(options.cliOnly ?? [])]);
  const table = keyTable(program, cliOnly);
  for (const s of sections) if (table.has(s)) throw new Error(`config section ${s} has the name of a flag`);

  // YAML is a superset of JSON, so one parser reads both.
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    problem('', `not valid YAML or JSON: ${doc.errors[0]!.message}`);
    return result;
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return result; // an empty file sets nothing
  if (!isMap(doc.contents)) {
    problem('', `must be a mapping of flag names to values, not ${describeNode(doc.contents)}`);
    return result;
  }
  const plain = (doc.toJS() ?? {}) as Record<string, unknown>;
  const setBy = new Map<string, string>();
  for (const pair of doc.contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (sections.includes(key)) {
      result.sections[key] = plain[key];
      continue;
    }
    const target = table.get(key);
    if (target === 'cli-only') {
      problem(key, 'can only be given on the command line');
      continue;
    }
    if (target === undefined) {
      const close = closeKeys(key, table, sections);
      problem(key, close.length > 0 ? `unknown key; did you mean ${close.join(', ')}?` : `unknown key; valid keys: ${validNames(table, sections).join(', ')}`);
      continue;
    }
    const attribute = target.option.attributeName();
    const earlier = setBy.get(attribute);
    if (earlier !== undefined) {
      problem(key, `sets the same flag as ${earlier}; keep one`);
      continue;
    }
    setBy.set(attribute, key);
    // Checked even when the command line overrides it: the file is wrong either way.
    const converted = convert(program, target, pair.value);
    if (!converted.ok) {
      problem(key, converted.detail);
      continue;
    }
    const source = program.getOptionValueSource(attribute);
    if (source !== undefined && source !== 'default') continue; // the command line (or env) wins
    program.setOptionValueWithSource(attribute, converted.value, 'config');
    result.fromFile.push(target.name);
  }
  return result;
}

/** problemAt is a problem with key's value (a flag name or a section path), naming the file when the value came from it, else the flag. */
export function problemAt(result: ConfigFileResult, key: string, detail: string): ConfigProblem {
  const inFile = result.fromFile.includes(key) || key.split('.')[0]! in result.sections;
  const where = result.file !== undefined && inFile ? `${result.file}: ${key}` : `--${key}`;
  return { key, text: `${where}: ${detail}` };
}

/**
 * settleConfigOrExit ends a daemon's configuration step. With check (`--check-config`) it runs
 * it, prints `config OK: FILE` or every problem, and exits 0 or 1 without starting anything.
 * Without it, it returns when the file had no problem and otherwise prints them and exits 2.
 */
export function settleConfigOrExit(program: string, result: ConfigFileResult, check?: () => ConfigProblem[]): void {
  const problems = check ? [...result.problems, ...check()] : result.problems;
  for (const p of problems) process.stderr.write(`${program}: ${p.text}\n`);
  if (check) {
    if (problems.length === 0) process.stdout.write(`config OK: ${result.file !== undefined ? resolve(result.file) : '(no config file; flags only)'}\n`);
    else process.stderr.write(`${program}: config has ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    process.exit(problems.length === 0 ? 0 : 1);
  }
  if (problems.length > 0) process.exit(2);
}
