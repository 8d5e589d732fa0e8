/** Durations written by people (`90s`, `10m`, `2h`, `7d`, `1h30m`) and "since" times built from them. */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
};

// One or more <number><unit> parts, Go style; `ms` is listed before `m` so the alternation takes it whole.
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
// A full RFC 3339 date-time: a date alone or a time without a zone is too ambiguous to accept.
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** DURATION_SYNTAX describes what parseDuration accepts, for error messages. */
export const DURATION_SYNTAX = 'a duration like 90s, 10m, 2h, 7d or 1h30m';

/**
 * parseDuration reads `90s`, `10m`, `2h`, `7d`, `500ms` or a sequence like `1h30m` and returns
 * milliseconds; anything else (no unit, a sign, spaces, an empty string) is undefined.
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) ms += Number(amount) * UNIT_MS[unit!]!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/**
 * parseSince reads a lower time bound: a duration before nowMs (`10m` = ten minutes ago) or an
 * RFC 3339 time (`2025-01-01T00:00:00Z`); undefined when the text is neither.
 */
export function parseSince(text: string, nowMs: number): Date | undefined {
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(nowMs - ms);
  if (!RFC3339_RE.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}
