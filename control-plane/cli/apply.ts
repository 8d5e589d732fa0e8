/**
 * `berth apply -f FILE|-`: create or replace each object with PUT, and say what happened
 * (created, configured, unchanged) the way kubectl does. Namespaces go first, so services in the
 * same files are admitted at the level being applied; Secrets and Configs next, so the services
 * that project them find them. A compose file (cli/compose) is converted into such objects first.
 */
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { composeManifests, convertComposeText, type ComposeOptions } from './compose/command.js';
import { looksLikeCompose } from './compose/load.js';
import { parseManifests, readSource, type Manifest } from './manifest.js';
import type { Namespace, Service } from '../objects/types.js';

/** ApplyOutcome is what the server did with one object. */
export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/**
 * applyOutcome decides the verb to print: 201 is created; 200 is unchanged when the generation
 * did not move (the server bumps it only on spec changes), configured otherwise.
 */
export function applyOutcome(status: number, previousGeneration: number | undefined, storedGeneration: number | undefined): ApplyOutcome {
  if (status === 201) return 'created';
  if (previousGeneration !== undefined && previousGeneration === storedGeneration) return 'unchanged';
  return 'configured';
}

/** applyCommand reads every file first (so bad input sends nothing), then applies the objects in order. */
export async function applyCommand(ctx: CommandContext, files: string[], opts: ComposeOptions = {}): Promise<number> {
  if (files.length === 0) throw usageError('apply: -f FILE is required (- reads stdin)');
  const manifests: Manifest[] = [];
  for (const file of files) {
    const text = await readSource(file, ctx.io.stdin);
    const label = file === '-' ? '<stdin>' : file;
    if (looksLikeCompose(text)) {
      const converted = convertComposeText(text, label, ctx, opts);
      if (!converted.ok) return converted.exitCode;
      manifests.push(...composeManifests(converted, label));
      continue;
    }
    manifests.push(...parseManifests(text, label));
  }
  let failed = false;
  for (const manifest of applyOrder(manifests)) {
    if (!(await applyObject(ctx, manifest))) failed = true;
  }
  return failed ? EXIT_REQUEST_FAILED : EXIT_OK;
}

/** applyOrder puts Namespace documents first, then Secrets and Configs, and keeps the file order otherwise (pure). */
export function applyOrder(manifests: readonly Manifest[]): Manifest[] {
  const rank = (m: Manifest): number => (m.kind === 'Namespace' ? 0 : m.kind === 'Secret' || m.kind === 'Config' ? 1 : 2);
  return [0, 1, 2].flatMap((r) => manifests.filter((m) => rank(m) === r));
}

/** COLLECTION_OF is the URL segment of each namespaced kind apply sends. */
const COLLECTION_OF: Record<Exclude<Manifest['kind'], 'Namespace'>, string> = { Service: 'services', Secret: 'secrets', Config: 'configs' };

/** violationWarning is the stderr line for existing services that break a namespace's level, or '' (pure). */
export function violationWarning(ns: Namespace): string {
  const names = (ns.status?.violations ?? []).map((v) => v.service);
  if (names.length === 0) return '';
  const services = names.length === 1 ? '1 existing service breaks' : `${names.length} existing services break`;
  return `Warning: namespace/${ns.metadata.name}: ${services} policy level ${ns.spec.policy} (${names.join(', ')}); `
    + `running tasks are not touched, but the next template change must comply (berth describe namespace ${ns.metadata.name})\n`;
}

async function applyObject(ctx: CommandContext, manifest: Manifest): Promise<boolean> {
  const name = encodeURIComponent(manifest.name);
  const path = manifest.kind === 'Namespace' ? `/v1/namespaces/${name}` : `${nsPath(manifest.namespace ?? ctx.namespace)}/${COLLECTION_OF[manifest.kind]}/${name}`;
  const ref = `${manifest.kind.toLowerCase()}/${manifest.name}`;
  // read first: the generation before the PUT is what tells "configured" from "unchanged"
  const previous = await ctx.client.get<Service | Namespace>(path);
  if (!previous.ok && previous.status === 403 && manifest.createOnly) {
    ctx.io.stderr.write(`warning: ${ref}: cannot tell whether it exists (${errorText(previous.error)}); not created\n`);
    return true;
  }
  if (!previous.ok && previous.status !== 404) {
    ctx.io.stderr.write(`error: ${ref}: ${errorText(previous.error)}\n`);
    return false;
  }
  if (manifest.createOnly && previous.ok) return true;
  const stored = await ctx.client.put<Service | Namespace>(path, manifest.object);
  if (!stored.ok && manifest.createOnly && stored.status === 403) {
    // an operator may create services in a namespace it may not create; it then stays implicit, at the default level
    ctx.io.stderr.write(`warning: ${ref}: not created (${errorText(stored.error)}); its services are admitted at the default level\n`);
    return true;
  }
  if (!stored.ok) {
    ctx.io.stderr.write(`error: ${ref}: ${errorText(stored.error)}\n`);
    return false;
  }
  const outcome = applyOutcome(
    stored.status,
    previous.ok ? previous.body.metadata?.generation : undefined,
    stored.body?.metadata?.generation,
  );
  ctx.io.stdout.write(`${ref} ${outcome}\n`);
  if (stored.body?.kind === 'Namespace') ctx.io.stderr.write(violationWarning(stored.body));
  return true;
}
