/**
 * Reading a compose file: detection by content (a top-level `services:` mapping and no `kind`),
 * YAML parsing as compose does it (a leading-zero integer such as `mode: 0440` is octal), the
 * `.env` file beside it, interpolation from the process environment (which wins) and `.env`,
 * and the project name that becomes the default namespace.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseAllDocuments, parseDocument, type ScalarTag } from 'yaml';
import { Diagnostics, isMap, type ComposeMap } from './diagnostics.js';
import { parseDotenv } from './dotenv.js';
import { interpolateTree, type Lookup } from './interpolate.js';

/** ComposeProject is a compose file read and interpolated, with what conversion needs to resolve paths. */
export interface ComposeProject {
  /** file names the compose file in messages (`<stdin>` for -). */
  file: string;
  /** dir is the directory relative paths are resolved against (the file's, or the working directory for stdin). */
  dir: string;
  /** name is the project name (top-level `name:`, else the directory's), as a DNS label. */
  name: string;
  model: ComposeMap;
  lookup: Lookup;
}

// Compose reads YAML with Go's yaml.v3, for which 0440 is octal: file modes are written that way.
const LEGACY_OCTAL: ScalarTag = {
  identify: (value) => typeof value === 'number' && Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^0[0-7]+$/,
  resolve: (str: string) => parseInt(str, 8),
};

/** looksLikeCompose tells whether text is one YAML document with a `services:` mapping and no `kind` (never throws). */
export function looksLikeCompose(text: string): boolean {
  try {
    const docs = parseAllDocuments(text);
    if (!Array.isArray(docs) || docs.length !== 1 || docs[0]!.errors.length > 0) return false;
    const value: unknown = docs[0]!.toJS({ maxAliasCount: 100 });
    return isMap(value) && value.kind === undefined && isMap(value.services);
  } catch {
    return false;
  }
}

/** parseComposeYaml parses the text into a mapping, or records why it cannot. */
export function parseComposeYaml(text: string, file: string, diag: Diagnostics): ComposeMap | undefined {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, customTags: (tags) => [LEGACY_OCTAL, ...tags] });
  const problem = doc.errors[0];
  if (problem) {
    const pos = problem.linePos?.[0];
    diag.error(pos ? `${file}:${pos.line}:${pos.col}` : file, `invalid YAML: ${problem.message.split('\n')[0]}`);
    return undefined;
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!isMap(value) || !isMap(value.services)) {
    diag.error(file, 'a compose file needs a top-level services: mapping');
    return undefined;
  }
  return value;
}

/** normaliseName turns a compose name into a DNS label (lowercase; `_`, `.` and spaces become `-`), or '' when nothing is left. */
export function normaliseName(s: string, max = 63): string {
  return s.toLowerCase().replace(/[_. ]/g, '-').replace(/[^a-z0-9-]/g, '').replace(/^-+/, '').slice(0, max).replace(/-+$/, '');
}

/**
 * loadCompose reads and interpolates a compose file; env is the process environment. The
 * `.env` beside the file fills what the environment does not set. Problems go to diag; the
 * project is undefined when the file is not usable at all.
 */
export function loadCompose(text: string, file: string, env: Record<string, string | undefined>, diag: Diagnostics): ComposeProject | undefined {
  const dir = file === '<stdin>' || file === '-' ? process.cwd() : dirname(resolve(file));
  const dotenv = readDotenv(dir, env, diag);
  const lookup: Lookup = (name) => env[name] ?? dotenv.get(name);
  const raw = parseComposeYaml(text, file, diag);
  if (raw === undefined) return undefined;
  const model = interpolateTree(raw, lookup, '', diag) as ComposeMap;
  let name = normaliseName(basename(dir));
  if (model.name !== undefined) {
    if (typeof model.name === 'string' && normaliseName(model.name) !== '') name = normaliseName(model.name);
    else diag.error('name', 'must be a project name with at least one letter or digit');
  }
  if (name === '') name = 'default';
  return { file, dir, name, model, lookup };
}

function readDotenv(dir: string, env: Record<string, string | undefined>, diag: Diagnostics): Map<string, string> {
  const path = join(dir, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') diag.error(path, `cannot read: ${code ?? String(err)}`);
    return new Map();
  }
  const parsed = parseDotenv(text, (name) => env[name]);
  for (const e of parsed.errors) diag.error(path, e);
  return parsed.vars;
}
