/**
 * What every verb handler receives: the API client, the resolved namespace, the output
 * streams and the clock. Handlers return an exit status; they never call process.exit.
 */
import type { ApiClient } from './client.js';
import type { Connection } from './config.js';

/** CliIO is the process surface the CLI touches, injectable so tests run it in-process. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  /** now returns the current time in ms since the epoch (AGE columns). */
  now(): number;
}

/** CommandContext is built once from the global flags and handed to a verb. */
export interface CommandContext {
  client: ApiClient;
  namespace: string;
  io: CliIO;
  /** connection is where client points and why (config file, flags, environment); `config view` prints it. */
  connection: Connection;
  /** namespaceFlags lists every -n/--namespace given, in order; `token create` scopes the token to them. */
  namespaceFlags: readonly string[];
}

/** nsPath is the URL path prefix of a namespace. */
export function nsPath(namespace: string): string {
  return `/v1/namespaces/${encodeURIComponent(namespace)}`;
}
