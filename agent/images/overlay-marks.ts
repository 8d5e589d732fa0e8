/**
 * The two filesystem marks overlayfs reads that Node cannot make by itself: a whiteout
 * (a 0/0 character device) and an opaque directory (xattr trusted.overlay.opaque=y).
 * mknod(1) is in coreutils. setxattr has no Node API and no coreutils tool, so we use
 * setfattr(1) (Debian `attr`) when installed and otherwise perl's syscall() (perl-base is
 * Essential on Debian), and fail with BERTH_ERR_IMAGE_XATTR_UNAVAILABLE if neither works.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AgentError, messageOf } from '../errors.js';

const run = promisify(execFile);

/** OVERLAY_OPAQUE_XATTR is the xattr overlayfs checks to hide a lower directory's content. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

// setxattr(2) syscall numbers; perl's syscall() needs the raw number.
const SETXATTR_SYSCALL: Partial<Record<NodeJS.Architecture, number>> = { x64: 188, arm64: 5, ia32: 226 };

/** makeWhiteout creates the overlayfs whiteout for `path` (which must not exist). */
export async function makeWhiteout(path: string): Promise<void> {
  await run('mknod', ['-m', '0', '--', path, 'c', '0', '0']);
}

/** makeFifo creates a named pipe with the given permission bits. */
export async function makeFifo(path: string, mode: number): Promise<void> {
  await run('mkfifo', ['-m', mode.toString(8), '--', path]);
}

/** markOpaque sets trusted.overlay.opaque=y on a directory. */
export async function markOpaque(dir: string): Promise<void> {
  try {
    await run('setfattr', ['-n', OVERLAY_OPAQUE_XATTR, '-v', 'y', '--', dir]);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AgentError('BERTH_ERR_IMAGE_XATTR_UNAVAILABLE', `setfattr ${OVERLAY_OPAQUE_XATTR} on ${dir}: ${messageOf(err)}`, { cause: err });
    }
  }
  const nr = SETXATTR_SYSCALL[process.arch];
  if (nr === undefined) {
    throw new AgentError('BERTH_ERR_IMAGE_XATTR_UNAVAILABLE', `cannot set ${OVERLAY_OPAQUE_XATTR} on ${dir}: install the attr package (setfattr)`);
  }
  // syscall() may write through its string arguments, so they must be variables, not literals.
  const script = `my ($p, $n, $v) = ($ARGV[0], "${OVERLAY_OPAQUE_XATTR}", "y"); exit(syscall(${nr}, $p, $n, $v, 1, 0) == 0 ? 0 : 1)`;
  try {
    await run('perl', ['-e', script, '--', dir]);
  } catch (err) {
    throw new AgentError('BERTH_ERR_IMAGE_XATTR_UNAVAILABLE',
      `cannot set ${OVERLAY_OPAQUE_XATTR} on ${dir} (no setfattr; perl fallback failed: ${messageOf(err)}); install the attr package`, { cause: err });
  }
}
