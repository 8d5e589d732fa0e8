/**
 * `berth config view`: the connection the CLI would use, as a config document with the secrets
 * (token, inline client key) redacted, and comments saying where each setting came from.
 */
import { viewConfig, type Connection } from './config.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, usageError } from './errors.js';
import { formatDocument } from './format.js';

/** configOrigins are the `# ...` lines over the YAML: which file, and where server, CA, credential and namespace came from (pure). */
export function configOrigins(connection: Connection): string {
  const o = connection.origin;
  const credential = o.token !== undefined ? `token (${o.token})`
    : o.clientCertificate !== undefined ? `client certificate (${o.clientCertificate})`
      : 'none';
  return [
    `# config file: ${connection.configPath !== undefined ? `${connection.configPath} (${o.config})` : 'none'}`,
    `# server: ${o.server}`,
    `# certificate authority: ${o.ca ?? 'the system\'s CAs'}`,
    `# credential: ${credential}`,
    `# namespace: ${o.namespace}`,
  ].join('\n') + '\n';
}

/** configViewCommand prints the resolved config (-o yaml with origin comments, or -o json). */
export async function configViewCommand(ctx: CommandContext, opts: { output?: string }): Promise<number> {
  const output = opts.output ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw usageError(`unknown output format "${output}" (use yaml or json)`);
  const view = viewConfig(ctx.connection);
  ctx.io.stdout.write(output === 'json' ? formatDocument(view, 'json') : configOrigins(ctx.connection) + formatDocument(view, 'yaml'));
  return EXIT_OK;
}
