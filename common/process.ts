/** Process helpers shared by the control plane and the agent. */

/** processAlive tells whether pid exists (EPERM still means it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
