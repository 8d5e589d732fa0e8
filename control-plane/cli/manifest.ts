/**
 * Reading manifests for `berth apply -f`: YAML or JSON (JSON is YAML), one or more documents
 * separated by `---`; a document may also be an array of objects. Every problem is found here,
 * before anything is sent, so a bad file never half-applies.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { CliError } from './errors.js';

/** SUPPORTED_KINDS lists the kinds `apply` knows how to send. */
export const SUPPORTED_KINDS = ['Service', 'Namespace', 'Secret', 'Config'] as const;

/** Manifest is one object to apply, with where it came from for messages. */
export interface Manifest {
  /** kind: a compose file also makes Secrets and Configs (cli/compose), sent through the same path. */
  kind: (typeof SUPPORTED_KINDS)[number] | 'Secret' | 'Config';
  name: string;
  namespace: string | undefined;
  object: Record<string, unknown>;
  /** source is `FILE` or `FILE (document N)` for messages. */
  source: string;
  /** createOnly: send it only when no such object exists (a compose project's namespace). */
  createOnly?: boolean;
}

function manifestError(message: string): CliError {
  return new CliError('BERTH_ERR_CLI_MANIFEST', message);
}

/** readSource reads FILE, or all of stdin for `-`; a missing or unreadable file is a usage error. */
export async function readSource(file: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code ?? String(err);
    throw new CliError('BERTH_ERR_CLI_FILE', `${file}: ${why}`, { cause: err });
  }
}

/** parseManifests turns the text of one file into manifests; label names the file (`-` is stdin). */
export function parseManifests(text: string, label: string): Manifest[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  // parseAllDocuments returns an EmptyStream (not an array) for input with no documents
  if (!Array.isArray(docs)) throw manifestError(`${label}: no objects found`);
  const manifests: Manifest[] = [];
  docs.forEach((doc, index) => {
    const where = docs.length > 1 ? `${label} (document ${index + 1})` : label;
    const problem = doc.errors[0];
    if (problem) {
      const pos = problem.linePos?.[0];
      const at = pos ? `${label}:${pos.line}:${pos.col}` : label;
      throw manifestError(`${at}: invalid YAML: ${firstLine(problem.message)}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document, e.g. a trailing ---
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) => manifests.push(toManifest(item, Array.isArray(value) ? `${where} [${i}]` : where)));
  });
  if (manifests.length === 0) throw manifestError(`${label}: no objects found`);
  return manifests;
}

/** firstLine keeps the headline of a yaml error; the position is already in our prefix. */
function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').trim();
}

function toManifest(item: unknown, source: string): Manifest {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw manifestError(`${source}: expected an object with kind, metadata and spec`);
  }
  const object = item as Record<string, unknown>;
  const kind = object.kind;
  if (typeof kind !== 'string' || kind === '') throw manifestError(`${source}: kind: required`);
  if (!(SUPPORTED_KINDS as readonly string[]).includes(kind)) {
    throw manifestError(`${source}: kind "${kind}" is not supported (supported: ${SUPPORTED_KINDS.join(', ')})`);
  }
  const metadata = object.metadata as Record<string, unknown> | undefined;
  if (typeof metadata !== 'object' || metadata === null) throw manifestError(`${source}: metadata: required`);
  if (typeof metadata.name !== 'string' || metadata.name === '') throw manifestError(`${source}: metadata.name: required`);
  if (metadata.namespace !== undefined && (typeof metadata.namespace !== 'string' || metadata.namespace === '')) {
    throw manifestError(`${source}: metadata.namespace: must be a non-empty string`);
  }
  if (kind === 'Namespace' && metadata.namespace !== undefined) {
    throw manifestError(`${source}: metadata.namespace: a Namespace is not inside a namespace; remove the field`);
  }
  return {
    kind: kind as Manifest['kind'],
    name: metadata.name,
    namespace: metadata.namespace as string | undefined,
    object,
    source,
  };
}
