/**
 * The suite's safety net: every fault registers a synchronous "undo" while it is active, so a
 * crash, Ctrl-C or a test timeout never leaves a process SIGSTOPped, a host cut off, a tmpfs
 * full or the etcd proxy cut. Undos are idempotent and synchronous because they may run from a
 * signal handler or an exit hook, where nothing asynchronous completes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/cluster.js';

/** SafetyNet holds the undo of every active fault and the cluster to remove on an abort. */
export class SafetyNet {
  private readonly undos = new Map<number, { what: string; undo: () => void }>();
  private nextId = 1;
  private clusterName: string | undefined;
  private installed = false;
  private readonly handlers: { signal: NodeJS.Signals | 'uncaughtException' | 'unhandledRejection'; fn: (err: unknown) => void }[] = [];

  /** register keeps undo until the returned function is called (when the fault healed normally). */
  register(what: string, undo: () => void): () => void {
    const id = this.nextId++;
    this.undos.set(id, { what, undo });
    return () => { this.undos.delete(id); };
  }

  /** active lists what is still registered (faults not healed). */
  active(): string[] {
    return [...this.undos.values()].map((u) => u.what);
  }

  /** undoAll runs every registered undo (each at most once), newest first; errors are reported, not thrown. */
  undoAll(report: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
    const entries = [...this.undos.entries()].reverse();
    this.undos.clear();
    for (const [, { what, undo }] of entries) {
      try {
        undo();
        report(`chaos: undid ${what}`);
      } catch (err) {
        report(`chaos: could not undo ${what}: ${(err as Error).message}`);
      }
    }
  }

  /** ownCluster makes an abort also remove this local cluster (local-cluster down). */
  ownCluster(name: string | undefined): void {
    this.clusterName = name;
  }

  /**
   * installSignalHandlers makes SIGINT and SIGTERM (exit 128 + the signal number) and an uncaught
   * exception (exit 3) undo every fault and remove the owned cluster. uninstall() removes them.
   */
  installSignalHandlers(): void {
    if (this.installed) return;
    this.installed = true;
    for (const [signal, num] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
      const fn = (): void => {
        process.stderr.write(`chaos: ${signal}: undoing faults and removing the cluster\n`);
        this.abort();
        process.exit(128 + num);
      };
      process.on(signal, fn);
      this.handlers.push({ signal, fn });
    }
    // A bug in the harness (an exception in a watch or timer callback) must not leave a host
    // cut off or a process stopped either.
    for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
      const fn = (err: unknown): void => {
        process.stderr.write(`chaos: ${ev}: ${(err as Error)?.stack ?? String(err)}\nchaos: undoing faults and removing the cluster\n`);
        this.abort();
        process.exit(3);
      };
      process.on(ev, fn);
      this.handlers.push({ signal: ev, fn });
    }
  }

  /** uninstall removes the signal handlers. */
  uninstall(): void {
    for (const { signal, fn } of this.handlers) process.off(signal as NodeJS.Signals, fn);
    this.handlers.length = 0;
    this.installed = false;
  }

  /** abort undoes every fault and removes the owned cluster, synchronously. */
  abort(): void {
    this.undoAll();
    if (this.clusterName) {
      spawnSync(join(REPO_ROOT, 'deploy', 'local-cluster'), ['down', '--name', this.clusterName], { stdio: 'inherit', timeout: 180_000 });
      this.clusterName = undefined;
    }
  }
}

/** signalPid sends signal to pid, ignoring a process that is already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
