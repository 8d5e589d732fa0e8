/**
 * The CLI side of compose files: `berth compose convert -f FILE [-o yaml|json] [--strict]`
 * prints the berth objects a compose file becomes, and `berth apply -f` hands compose files here
 * (composeManifests) before sending anything. Warnings go to stderr as `warning: ...`; errors
 * stop before anything is sent (exit 2); with --strict, unsupported fields do too (exit 1).
 */
import { stringify } from 'yaml';
import type { CommandContext } from '../context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, EXIT_USAGE, usageError } from '../errors.js';
import { readSource, type Manifest } from '../manifest.js';
import { Diagnostics, unsupportedLine } from './diagnostics.js';
import { loadCompose } from './load.js';
import { convertProject, type ComposeObject } from './project.js';

/** ComposeOptions are the flags that change a conversion. */
export interface ComposeOptions {
  /** strict refuses unsupported fields instead of warning about them. */
  strict?: boolean;
}

/** Converted is a compose file turned into objects, or the exit status after its problems were printed. */
export type Converted =
  | { ok: true; namespace: string; objects: ComposeObject[] }
  | { ok: false; exitCode: number };

/**
 * convertComposeText converts the text of a compose file named label; namespace is -n when
 * given (else the project's name). Warnings, errors and strict refusals are written to stderr.
 */
export function convertComposeText(text: string, label: string, ctx: Pick<CommandContext, 'io' | 'namespaceFlags'>, opts: ComposeOptions): Converted {
  const diag = new Diagnostics();
  const project = loadCompose(text, label, ctx.io.env, diag);
  const namespace = ctx.namespaceFlags.at(-1) ?? project?.name ?? 'default';
  const objects = project ? convertProject(project, namespace, diag) : [];
  const { stderr } = ctx.io;
  for (const line of diag.errors) stderr.write(`error: ${label}: ${line}\n`);
  if (diag.errors.length > 0) return { ok: false, exitCode: EXIT_USAGE };
  if (opts.strict && diag.unsupported.length > 0) {
    stderr.write(`error: ${label}: ${diag.unsupported.length} unsupported field${diag.unsupported.length === 1 ? '' : 's'} (--strict):\n`);
    for (const u of diag.unsupported) stderr.write(`  ${unsupportedLine(u, 'refused')}\n`);
    return { ok: false, exitCode: EXIT_REQUEST_FAILED };
  }
  for (const line of [...diag.unsupported.map((u) => unsupportedLine(u)), ...diag.notes]) stderr.write(`warning: ${line}\n`);
  return { ok: true, namespace, objects };
}

/**
 * composeManifests turns a converted file into what apply sends, in apply's order: the
 * namespace (created only when it does not exist), the Secrets and Configs, the Services.
 */
export function composeManifests(converted: { namespace: string; objects: ComposeObject[] }, label: string): Manifest[] {
  const namespace: Manifest = {
    kind: 'Namespace',
    name: converted.namespace,
    namespace: undefined,
    object: { kind: 'Namespace', metadata: { name: converted.namespace }, spec: { policy: 'baseline' } },
    source: label,
    createOnly: true,
  };
  return [namespace, ...converted.objects.map((o): Manifest => ({
    kind: o.kind,
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    object: o as unknown as Record<string, unknown>,
    source: `${label} (${o.kind.toLowerCase()} ${o.metadata.name})`,
  }))];
}

/** ConvertOptions are the flags of `compose convert`. */
export interface ConvertOptions extends ComposeOptions {
  filename?: string;
  output?: string;
}

/** composeConvertCommand prints the objects of a compose file as YAML documents or a JSON array; it sends nothing. */
export async function composeConvertCommand(ctx: CommandContext, opts: ConvertOptions): Promise<number> {
  if (!opts.filename) throw usageError('compose convert: -f FILE is required (- reads stdin)');
  const output = opts.output ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw usageError(`compose convert: -o must be yaml or json, got "${output}"`);
  const text = await readSource(opts.filename, ctx.io.stdin);
  const converted = convertComposeText(text, opts.filename === '-' ? '<stdin>' : opts.filename, ctx, opts);
  if (!converted.ok) return converted.exitCode;
  if (output === 'json') ctx.io.stdout.write(`${JSON.stringify(converted.objects, null, 2)}\n`);
  else ctx.io.stdout.write(converted.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
  return EXIT_OK;
}
