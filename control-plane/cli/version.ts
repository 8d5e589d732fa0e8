/**
 * `berth version`: the client's version (from package.json) and the server's (GET /v1/version).
 */
import { berthVersion } from '../../common/version.js';
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED } from './errors.js';


/** versionCommand prints the client version, then asks the server for its own. */
export async function versionCommand(ctx: CommandContext): Promise<number> {
  ctx.io.stdout.write(`Client Version: ${berthVersion()}\n`);
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
