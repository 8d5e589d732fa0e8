/** The berth version, read once from package.json next to the compiled tree. */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** berthVersion returns package.json's version, or "unknown" when it cannot be read. */
export function berthVersion(): string {
  if (cached === undefined) {
    try {
      // dist/control-plane/version.js → ../../package.json is the package root.
      cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
