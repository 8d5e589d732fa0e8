/** Helpers for tests that drive the native runtime directly. */
import assert from 'node:assert/strict';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerState, Runtime } from '../../agent/runtime/runtime.js';

/** BUSYBOX is Debian's busybox-static, the only binary the tests' rootfs needs. */
export const BUSYBOX = '/usr/bin/busybox';
const WAIT_POLL_MS = 10;
/** WAIT_EXITED_LIMIT_MS bounds waitExited. */
export const WAIT_EXITED_LIMIT_MS = 15_000;

/** waitExited polls the runtime until container id has exited, failing the test after limitMs. */
export async function waitExited(rt: Runtime, id: string, limitMs = WAIT_EXITED_LIMIT_MS): Promise<ContainerState> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const st = await rt.state(id);
    if (st?.status === 'exited') return st;
    if (Date.now() > deadline) assert.fail(`container ${id} still ${st?.status} after ${limitMs} ms`);
    await sleep(WAIT_POLL_MS);
  }
}

/** addBusybox puts busybox-static and symlinks for applets into rootfs/bin. */
export async function addBusybox(rootfs: string, applets: readonly string[]): Promise<void> {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const applet of applets) await symlink('busybox', join(rootfs, 'bin', applet));
}

/** removeContainers kills and removes every container in ids, ignoring ones already gone. */
export async function removeContainers(rt: Runtime, ids: Iterable<string>): Promise<void> {
  for (const id of ids) {
    await rt.stop(id, 0).catch(() => undefined);
    await rt.remove(id).catch(() => undefined);
  }
}
