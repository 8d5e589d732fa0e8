/**
 * The seed busybox image every test deploys, built once by deploy/build-busybox-image.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './cluster.js';

/** SEED_DIR is where deploy/build-busybox-image writes by default. */
export const SEED_DIR = '/var/lib/berth/seed';
/** SEED_ARCHIVE is the oci-archive tarball of the seed busybox image. */
export const SEED_ARCHIVE = join(SEED_DIR, 'busybox.tar');

/** ensureSeedImage builds the seed image unless it is already there; it throws on failure. */
export function ensureSeedImage(): void {
  if (existsSync(SEED_ARCHIVE) && existsSync(join(SEED_DIR, 'busybox', 'index.json'))) return;
  const r = spawnSync('bash', [join(REPO_ROOT, 'deploy', 'build-busybox-image')], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`build-busybox-image exited ${r.status}: ${r.stderr}`);
}
