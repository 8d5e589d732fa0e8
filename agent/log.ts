/** Minimal levelled logger for the agent: one line per event on stderr, no dependencies. */

/** LogLevel orders messages; anything below the configured level is dropped. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Logger is what agent modules receive; tests pass `silentLogger`. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** isLogLevel tells whether a string names a level (for flag validation). */
export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(ORDER, s);
}

/** createLogger writes `time level msg k=v ...` lines at or above `level` to `out`. */
export function createLogger(level: LogLevel, out: NodeJS.WritableStream = process.stderr): Logger {
  const emit = (at: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[at] < ORDER[level]) return;
    let line = `${new Date().toISOString()} ${at.toUpperCase()} ${msg}`;
    for (const [k, v] of Object.entries(fields ?? {})) {
      line += ` ${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`;
    }
    out.write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** silentLogger drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
