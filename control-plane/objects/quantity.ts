/** Parsing of resource quantities as users write them (DESIGN.md "Quantities"). */

/** Parsed is a quantity parse outcome: the normalised number or why it was refused. */
export type Parsed = { ok: true; value: number } | { ok: false; message: string };

const MEMORY_SUFFIX_BYTES: Record<string, number> = {
  '': 1,
  K: 1e3, M: 1e6, G: 1e9, T: 1e12,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
};

/** parseCpu turns cores (0.25) or millicores ("250m") into a number of cores. */
export function parseCpu(v: unknown): Parsed {
  if (typeof v === 'number') {
    return Number.isFinite(v) && v >= 0 ? { ok: true, value: v } : { ok: false, message: 'must be a number of cores >= 0' };
  }
  if (typeof v !== 'string') return { ok: false, message: 'must be a number of cores or a string like "250m"' };
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(v.trim());
  if (!m) return { ok: false, message: `invalid cpu quantity "${v}" (use cores like 0.5 or millicores like "500m")` };
  const n = Number(m[1]);
  return { ok: true, value: m[2] === 'm' ? n / 1000 : n };
}

/** parseMemory turns bytes or a suffixed size ("64Mi", "1G") into a whole number of bytes. */
export function parseMemory(v: unknown): Parsed {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0 ? { ok: true, value: v } : { ok: false, message: 'must be a whole number of bytes >= 0' };
  }
  if (typeof v !== 'string') return { ok: false, message: 'must be bytes or a string like "64Mi"' };
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(v.trim());
  if (!m) return { ok: false, message: `invalid memory quantity "${v}" (use bytes or a Ki/Mi/Gi/K/M/G suffix)` };
  const bytes = Number(m[1]) * MEMORY_SUFFIX_BYTES[m[2] ?? '']!;
  if (!Number.isSafeInteger(bytes)) return { ok: false, message: `memory quantity "${v}" is not a whole number of bytes` };
  return { ok: true, value: bytes };
}
