#!/usr/bin/env node
/**
 * berth: the command-line client of the control plane (DESIGN.md, "The berth CLI").
 * Exit codes: 0 success, 1 the request failed, 2 bad usage. Everything runs through run(),
 * which never calls process.exit, so tests drive it in-process.
 */
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { applyCommand } from './apply.js';
import { composeConvertCommand, type ConvertOptions } from './compose/command.js';
import { ApiClient, DEFAULT_SERVER } from './client.js';
import { clientOptions, DEFAULT_NAMESPACE, plaintextCredentialWarning, resolveConnection } from './config.js';
import { configViewCommand } from './config-view.js';
import { configCreateUserCommand, type CreateUserOptions } from './config-user.js';
import { canICommand, whoamiCommand, type CanIOptions } from './auth.js';
import { tokenCreateCommand, tokenListCommand, tokenRevokeCommand, type TokenCreateOptions } from './token.js';
import type { CliIO, CommandContext } from './context.js';
import { CliError, EXIT_OK, EXIT_REQUEST_FAILED, EXIT_USAGE, usageError } from './errors.js';
import { getCommand, type GetOptions } from './get.js';
import { deleteCommand, scaleCommand } from './mutate.js';
import { createKeyedCommand, deleteKeyedCommand, getKeyedCommand, keyedResource, rotateKeyCommand, type CreateKeyedOptions } from './secrets.js';
import { deleteVolumeCommand, getVolumesCommand, isVolumesResource } from './volumes.js';
import { describeCommand } from './describe.js';
import { execCommand, type ExecOptions } from './exec.js';
import { logsCommand, type LogsOptions } from './logs.js';
import { eventsCommand, type EventsOptions } from './events.js';
import { auditCommand, type AuditOptions } from './audit.js';
import { nodeVerbCommand, type NodeVerbOptions } from './nodes-admin.js';
import { rolloutCommand, type RolloutOptions } from './rollout.js';
import { berthVersion } from '../../common/version.js';
import { versionCommand } from './version.js';

export { DEFAULT_NAMESPACE };

/** LATER_VERBS are in the CLI contract but delivered by later issues; they exit 2 with a clear message. */
const LATER_VERBS: [name: string, summary: string][] = [
  ['top', 'resource usage of tasks or nodes'],
];

interface GlobalOptions {
  config?: string;
  server?: string;
  token?: string;
  /** namespace collects every -n: verbs use the last, `token create` all of them as scopes. */
  namespace?: string[];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** buildProgram wires the verbs; outcome receives each action's exit status. */
function buildProgram(io: CliIO, outcome: { code: number }): Command {
  const program = new Command('berth');
  // settings below are inherited by every subcommand created after them
  program
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showSuggestionAfterError(true)
    .description('berth: drive a berth cluster through its control plane')
    .version(berthVersion(), '--client-version', 'print the client version only')
    .option('--config <file>', 'config file: server, CA, credential (env: BERTH_CONFIG, default ~/.berth/config if it exists)')
    .option('--server <url>', `control plane API address (env: BERTH_SERVER, default: the config's, else ${DEFAULT_SERVER})`)
    .option('--token <token>', 'bearer token for the API, instead of the config\'s credential (env: BERTH_TOKEN)')
    .option('-n, --namespace <ns>', `namespace (default: the config's, else ${DEFAULT_NAMESPACE}); token create and config create-user: repeat to scope`, collect);

  const context = (cmd: Command): CommandContext => {
    const opts = cmd.optsWithGlobals<GlobalOptions>();
    const namespaceFlags = opts.namespace ?? [];
    const connection = resolveConnection({
      flags: { config: opts.config, server: opts.server, token: opts.token, namespace: namespaceFlags.at(-1) },
      env: io.env,
      home: io.env.HOME,
    });
    const warning = plaintextCredentialWarning(connection);
    if (warning) io.stderr.write(`${warning}\n`);
    return { client: new ApiClient(clientOptions(connection)), namespace: connection.namespace, io, connection, namespaceFlags };
  };
  const act = <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const ctx = context(cmd);
      try {
        outcome.code = await fn(ctx, ...(args.slice(0, -1) as A));
      } finally {
        await ctx.client.close();
      }
    };

  program.command('apply')
    .description('create or update objects from YAML or JSON (FILE or - for stdin), or from a compose file')
    .option('-f, --filename <file>', 'manifest file, or - for stdin (repeatable)', collect, [])
    .option('--strict', 'compose files: refuse unsupported fields instead of warning about them')
    .action(act((ctx, opts: { filename: string[]; strict?: boolean }) => applyCommand(ctx, opts.filename, { strict: opts.strict })));

  const compose = program.command('compose').description('compose files (docker stack deploy\'s fields) as berth objects');
  compose.command('convert')
    .description('print the objects a compose file becomes (namespace: -n, else the project name); sends nothing')
    .option('-f, --filename <file>', 'compose file, or - for stdin')
    .option('-o, --output <format>', 'yaml | json', 'yaml')
    .option('--strict', 'refuse unsupported fields instead of warning about them')
    .action(act((ctx, opts: ConvertOptions) => composeConvertCommand(ctx, opts)));

  program.command('get')
    .description('list services, tasks, nodes or namespaces, or show one by NAME')
    .argument('<resource>', 'services | tasks | nodes | images | namespaces | volumes')
    .argument('[name]', 'one object by name')
    .option('-o, --output <format>', 'table | wide | json | yaml', 'table')
    .option('-w, --watch', 'stream changes as they happen')
    .option('--timeout <seconds>', '-w: stop after this many seconds')
    .option('--service <name>', 'tasks of this service only')
    .option('--node <name>', 'tasks, images or volumes on this node only')
    .option('-A, --all-namespaces', 'list across every namespace')
    .option('--reveal', 'secret: print its values (needs operator or admin; audited)')
    .action(act((ctx, resource: string, name: string | undefined, opts: GetOptions & { reveal?: boolean }) => {
      const keyed = keyedResource(resource);
      if (keyed) return getKeyedCommand(ctx, keyed, name, opts);
      if (opts.reveal) throw usageError('--reveal applies to "get secret NAME" only');
      return isVolumesResource(resource) ? getVolumesCommand(ctx, name, opts) : getCommand(ctx, resource, name, opts);
    }));

  program.command('describe')
    .description('show spec, status, conditions, tasks and images of a service, task or node; a namespace\'s policy and violations')
    .argument('<resource>', 'service | task | node | namespace')
    .argument('<name>', 'object name')
    .action(act((ctx, resource: string, name: string) => describeCommand(ctx, resource, name)));

  program.command('delete')
    .description('delete a service (its tasks are stopped), remove a node (its tasks are replaced elsewhere) or delete an empty namespace\'s policy object')
    .argument('<resource>', 'service | node | namespace | volume')
    .argument('<name>', 'service, node, namespace or volume name')
    .option('--force', 'remove a node even while its agent is connected')
    .option('--node <name>', 'volume: the node to delete it from (needed when several nodes have one by that name)')
    .action(act((ctx, resource: string, name: string, o: { force?: boolean; node?: string }) => {
      if (isVolumesResource(resource)) return deleteVolumeCommand(ctx, name, o);
      const keyed = keyedResource(resource);
      if (keyed && o.node === undefined && !o.force) return deleteKeyedCommand(ctx, keyed, name);
      if (o.node !== undefined) throw usageError('--node applies to "delete volume" only');
      return deleteCommand(ctx, resource, name, o);
    }));

  program.command('scale')
    .description('set the number of replicas of a service')
    .argument('<service>', 'service name')
    .argument('<replicas>', 'non-negative integer')
    .action(act((ctx, service: string, replicas: string) => scaleCommand(ctx, service, replicas)));

  program.command('exec')
    .description('run a command in a task\'s container; its exit code becomes berth\'s')
    .usage('[-i] [-t] [options] TASK -- COMMAND [ARG...]')
    .argument('<task>', 'task name')
    .argument('<command...>', 'command and arguments (put them after --)')
    .option('--timeout <seconds>', 'kill the command after this many seconds (default 30; not with -i/-t)')
    .option('-i, --stdin', 'pass our stdin to the command')
    .option('-t, --tty', 'run the command on a terminal in the container (raw mode here when stdin is a terminal)')
    .action(act((ctx, task: string, command: string[], opts: ExecOptions) => execCommand(ctx, task, command, opts)));

  program.command('logs')
    .description('print a task\'s log, or every task\'s of a service (each line after [TASK]); -f follows')
    .usage('[options] TASK|service/NAME')
    .argument('<target>', 'task name, or service/NAME')
    .option('-f, --follow', 'keep printing what is written (a service: also its tasks started later) until interrupted')
    .option('--tail <lines>', 'only the last N lines (default: all)')
    .option('--since <duration>', 'only lines written in the last DURATION (30s, 5m, 1h)')
    .option('--timestamps', 'put the RFC 3339 time each line was written before it')
    .option('--previous', 'the log of the task\'s previous container (before its last restart)')
    .action(act((ctx, target: string, opts: LogsOptions) => logsCommand(ctx, target, opts)));

  program.command('rollout')
    .description('follow (status), list (history) or undo a service\'s rolling update')
    .argument('<action>', 'status | history | undo')
    .argument('<service>', 'service name')
    .option('--timeout <seconds>', 'status: give up after this many seconds (default 600)')
    .option('--to-revision <n>', 'undo: go back to this revision (default: the previous one)')
    .action(act((ctx, action: string, service: string, opts: RolloutOptions) => rolloutCommand(ctx, action, service, opts)));

  // Node lifecycle: cordon / uncordon / drain and events.
  for (const [verb, summary] of [
    ['cordon', 'mark a node unschedulable (its tasks keep running)'],
    ['uncordon', 'mark a node schedulable again (ends a drain)'],
    ['drain', 'cordon a node and move its tasks elsewhere, then wait until it is empty'],
  ] as const) {
    program.command(verb)
      .description(summary)
      .argument('<node>', 'node name')
      .option('--timeout <seconds>', 'drain: give up waiting after this many seconds (default 300)')
      .action(act((ctx, node: string, opts: NodeVerbOptions) => nodeVerbCommand(ctx, verb, node, opts)));
  }

  program.command('create')
    .description('create a secret or config from literal values and files')
    .argument('<resource>', 'secret | config')
    .argument('<name>', 'its name')
    .option('--from-literal <KEY=VALUE>', 'a key and its value (repeatable)', collect, [] as string[])
    .option('--from-file <[KEY=]PATH>', 'a key holding the file\'s bytes; the key defaults to the file name (repeatable)', collect, [] as string[])
    .action(act((ctx, resource: string, name: string, o: CreateKeyedOptions) => {
      const keyed = keyedResource(resource);
      if (!keyed) throw usageError(`create supports "secret" and "config", got "${resource}" (services: berth apply -f)`);
      return createKeyedCommand(ctx, keyed, name, o);
    }));

  const secrets = program.command('secrets').description('cluster-wide secret administration');
  secrets.command('rotate-key')
    .description('make a new data key and re-seal every secret with it (admin)')
    .action(act((ctx) => rotateKeyCommand(ctx)));

  program.command('events')
    .description('list recent events (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE), or stream them with -w')
    .option('-w, --watch', 'stream new events as they happen')
    .option('-A, --all-namespaces', 'events of every namespace')
    .option('-o, --output <format>', 'table | json', 'table')
    .option('--timeout <seconds>', '-w: stop after this many seconds')
    .action(act((ctx, opts: EventsOptions) => eventsCommand(ctx, opts)));

  program.command('audit')
    .description('list audit records (TIME, USER, ROLE, SOURCE, VERB, RESOURCE, NAMESPACE/NAME, CODE), oldest first')
    .option('--since <when>', 'records since a duration ago (90s, 10m, 2h, 7d) or an RFC 3339 time')
    .option('--user <name>', 'records of this identity only')
    .option('--limit <n>', 'at most the newest N records (server default 1000)')
    .option('-o, --output <format>', 'table | json', 'table')
    .action(act((ctx, opts: AuditOptions) => auditCommand(ctx, opts)));

  const token = program.command('token').description('create, list and revoke bearer tokens');
  token.command('create')
    .description('create a token and print only the token on stdout (a summary goes to stderr)')
    .usage('--role ROLE [--namespace NS]... [--ttl DURATION] [--name NAME] [--description TEXT]')
    .requiredOption('--role <role>', 'viewer | operator | admin | agent (agent: a join token for a node)')
    .option('--name <name>', 'a name to recognise the token by')
    .option('--ttl <duration>', 'lifetime: 30s, 10m, 24h, 7d (default: the server\'s)')
    .option('--description <text>', 'what the token is for')
    .addHelpText('after', '\n--namespace NS (the global -n), repeated, limits the token to those namespaces; only namespaces\ngiven on the command line count, never the config file\'s default.')
    .action(act((ctx, opts: TokenCreateOptions) => tokenCreateCommand(ctx, opts)));
  token.command('list')
    .description('list tokens: ID, NAME, ROLE, NAMESPACES, EXPIRES, AGE (never the secrets)')
    .option('-o, --output <format>', 'table | json', 'table')
    .action(act((ctx, opts: { output?: string }) => tokenListCommand(ctx, opts)));
  token.command('revoke')
    .description('revoke a token by its ID; requests with it are refused from then on')
    .argument('<id>', 'token ID (from token list)')
    .action(act((ctx, id: string) => tokenRevokeCommand(ctx, id)));

  const auth = program.command('auth').description('what the server makes of your credential');
  auth.command('can-i')
    .description('ask whether you may do VERB on RESOURCE: prints yes (exit 0) or no (exit 1, the reason on stderr)')
    .argument('<verb>', 'get | list | create | update | delete | exec | logs | ...')
    .argument('<resource>', 'services | tasks | nodes | secrets | tokens | ...')
    .option('-A, --all-namespaces', 'ask about every namespace instead of -n\'s')
    .action(act((ctx, verb: string, resource: string, opts: CanIOptions) => canICommand(ctx, verb, resource, opts)));
  auth.command('whoami')
    .description('print who the server takes you for: name, role, namespaces, how you authenticated')
    .option('-o, --output <format>', 'text | json', 'text')
    .action(act((ctx, opts: { output?: string }) => whoamiCommand(ctx, opts)));

  const config = program.command('config').description('the client configuration');
  config.command('view')
    .description('print the resolved config (server, CA, credential, namespace) with secrets redacted')
    .option('-o, --output <format>', 'yaml | json', 'yaml')
    .action(act((ctx, opts: { output?: string }) => configViewCommand(ctx, opts)));
  config.command('create-user')
    .description('write a config file for a person with a client certificate: the key is made here, the server (admins) signs it')
    .usage('NAME --role ROLE [--namespace NS]... [--ttl DURATION] --output FILE [--force]')
    .argument('<name>', 'the user\'s name (the certificate\'s CN)')
    .requiredOption('--role <role>', 'viewer | operator | admin')
    .option('--ttl <duration>', 'lifetime: 10m, 24h, 90d (default: the server\'s, 30 days; at most a year)')
    .requiredOption('--output <file>', 'the config file to write (mode 0600)')
    .option('--force', 'replace the file if it exists')
    .addHelpText('after', '\n--namespace NS (the global -n), repeated, limits the certificate to those namespaces (the first becomes\nthe file\'s default); without any, the role holds in every namespace. Nothing is printed on stdout.')
    .action(act((ctx, name: string, opts: CreateUserOptions) => configCreateUserCommand(ctx, name, opts)));

  program.command('version')
    .description('print the client and server versions')
    .action(act((ctx) => versionCommand(ctx)));

  for (const [name, summary] of LATER_VERBS) {
    program.command(name)
      .description(`${summary} (not implemented yet)`)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(() => {
        throw new CliError('BERTH_ERR_CLI_NOT_IMPLEMENTED', `${name}: not implemented yet`);
      });
  }
  return program;
}

/** exitForCommander maps commander's own exits: help and version are success, everything else is usage. */
function exitForCommander(err: CommanderError): number {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
  return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
}

/** run executes one berth invocation (argv without node and the script) and resolves to its exit status. */
export async function run(argv: string[], io: CliIO): Promise<number> {
  const outcome = { code: EXIT_OK };
  try {
    const program = buildProgram(io, outcome);
    await program.parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (err) {
    if (err instanceof CommanderError) return exitForCommander(err);
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`error: unexpected: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return EXIT_REQUEST_FAILED;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: CliIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, now: () => Date.now() };
  // a closed pipe (berth get tasks | head) is not an error worth a stack trace
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
  });
  const code = await run(process.argv.slice(2), io);
  process.exitCode = code;
}
