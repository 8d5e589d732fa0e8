/**
 * `berth version`: the client's version (from package.json) and the server's (GET /v1/version).
 */
import { readFileSync } from 'node:fs';
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED } from './errors.js';

/** clientVersion reads the package version; the compiled file sits at dist/control-plane/cli/. */
export function clientVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'berth' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate: layouts differ between the source tree and dist/
    }
  }
  return 'unknown';
}

/** versionCommand prints the client version, then asks the server for its own. */
export async function versionCommand(ctx: CommandContext): Promise<number> {
  ctx.io.stdout.write(`Client Version: ${clientVersion()}\n`);
  const result = await ctx.client.get<Record<string, unknown>>('/v1/version');
  if (!result.ok) {
    ctx.io.stderr.write(`error: ${errorText(result.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const body = result.body ?? {};
  const version = typeof body.version === 'string' ? body.version : JSON.stringify(body);
  ctx.io.stdout.write(`Server Version: ${version}\n`);
  return EXIT_OK;
}
