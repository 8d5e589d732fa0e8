/**
 * Stop signals as templates name them: `SIGTERM`, `TERM` (any case) or a number, normalised to
 * the canonical name, which is what the agent receives. Linux numbering, the agents' platform.
 */

/** SIGNALS lists the standard Linux signals by number (1..31). */
const SIGNALS: readonly string[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];
/** ALIASES are other names of the same signals. */
const ALIASES: Readonly<Record<string, string>> = { SIGIOT: 'SIGABRT', SIGPOLL: 'SIGIO' };

/** canonicalSignal returns the canonical name of a stop signal (`term` → `SIGTERM`, 10 → `SIGUSR1`), or undefined. */
export function canonicalSignal(value: string | number): string | undefined {
  if (typeof value === 'number' || /^[0-9]+$/.test(value.trim())) {
    const n = Number(value);
    return Number.isInteger(n) && n >= 1 && n <= SIGNALS.length ? SIGNALS[n - 1] : undefined;
  }
  const upper = value.trim().toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return SIGNALS.includes(name) ? name : ALIASES[name];
}
