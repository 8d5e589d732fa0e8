/** Signals as the runtime takes them: a name (`SIGTERM`, `TERM`, any case) or a number. */
import { constants } from 'node:os';

/** SignalLike names a signal: `SIGUSR1`, `usr1` or 10. */
export type SignalLike = string | number;

/** MAX_SIGNAL is the highest signal number on Linux (SIGRTMAX). */
const MAX_SIGNAL = 64;

/** signalNumber resolves a signal with the host's own numbering; undefined when it is none. */
export function signalNumber(sig: SignalLike): number | undefined {
  if (typeof sig === 'number') return Number.isInteger(sig) && sig >= 1 && sig <= MAX_SIGNAL ? sig : undefined;
  const text = sig.trim().toUpperCase();
  if (/^[0-9]+$/.test(text)) return signalNumber(Number(text));
  const n = (constants.signals as Record<string, number | undefined>)[text.startsWith('SIG') ? text : `SIG${text}`];
  return n !== undefined && n >= 1 ? n : undefined;
}
