/** Helpers for tests that drive the native runtime directly. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerState, Runtime } from '../../agent/runtime/runtime.js';

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
