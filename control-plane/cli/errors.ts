/**
 * The CLI's error catalogue. Every failure the CLI reports maps to one code and one exit
 * status, so scripts can rely on the DESIGN.md contract: 1 the request failed, 2 bad usage.
 *
 * | code                              | exit | meaning                                             |
 * |-----------------------------------|------|-----------------------------------------------------|
 * | BERTH_ERR_CLI_USAGE               | 2    | unknown verb/flag, missing or malformed argument    |
 * | BERTH_ERR_CLI_FILE                | 2    | a manifest cannot be read, an output file not written |
 * | BERTH_ERR_CLI_MANIFEST            | 2    | invalid YAML/JSON or an unsupported document        |
 * | BERTH_ERR_CLI_CONFIG              | 2    | the config file (or a file it names) is missing or invalid |
 * | BERTH_ERR_CLI_NOT_IMPLEMENTED     | 2    | a verb of the contract that a later issue delivers  |
 * | BERTH_ERR_CLI_UNREACHABLE         | 1    | the control plane cannot be reached                 |
 * | BERTH_ERR_CLI_REQUEST_FAILED      | 1    | the control plane answered with an error            |
 */

/** EXIT_OK is the exit status of a successful command. */
export const EXIT_OK = 0;
/** EXIT_REQUEST_FAILED is the exit status when the control plane refused or could not be reached. */
export const EXIT_REQUEST_FAILED = 1;
/** EXIT_USAGE is the exit status for bad usage, detected before anything is sent. */
export const EXIT_USAGE = 2;

/** CliErrorCode lists every code the CLI can report. */
export type CliErrorCode =
  | 'BERTH_ERR_CLI_USAGE'
  | 'BERTH_ERR_CLI_FILE'
  | 'BERTH_ERR_CLI_MANIFEST'
  | 'BERTH_ERR_CLI_CONFIG'
  | 'BERTH_ERR_CLI_NOT_IMPLEMENTED'
  | 'BERTH_ERR_CLI_UNREACHABLE'
  | 'BERTH_ERR_CLI_REQUEST_FAILED';

const EXIT_BY_CODE: Record<CliErrorCode, number> = {
  BERTH_ERR_CLI_USAGE: EXIT_USAGE,
  BERTH_ERR_CLI_FILE: EXIT_USAGE,
  BERTH_ERR_CLI_MANIFEST: EXIT_USAGE,
  BERTH_ERR_CLI_CONFIG: EXIT_USAGE,
  BERTH_ERR_CLI_NOT_IMPLEMENTED: EXIT_USAGE,
  BERTH_ERR_CLI_UNREACHABLE: EXIT_REQUEST_FAILED,
  BERTH_ERR_CLI_REQUEST_FAILED: EXIT_REQUEST_FAILED,
};

/**
 * CliError aborts a command: main prints `error: <message>` and exits with exitCode.
 * Thrown only from verb handlers, never across the HTTP boundary (the client returns values).
 */
export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly exitCode: number;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = EXIT_BY_CODE[code];
  }
}

/** usageError builds the error for bad usage (exit 2). */
export function usageError(message: string): CliError {
  return new CliError('BERTH_ERR_CLI_USAGE', message);
}
