/** The berth version, read once from the package.json at the root of the package. */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** berthVersion returns package.json's version, or "unknown" when it cannot be read. */
export function berthVersion(): string {
  if (cached === undefined) {
    cached = 'unknown';
    // Compiled, this file is dist/common/version.js; from source (tsx, tests) it is common/version.ts.
    for (const rel of ['../../package.json', '../package.json']) {
      try {
        const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'berth' && pkg.version) { cached = pkg.version; break; }
      } catch {
        // not at this level; try the next
      }
    }
  }
  return cached;
}
