/**
 * `berth-control-plane snapshot save|restore`: the command line around save.ts and restore.ts.
 * The etcd to use follows from the control plane's own settings (--data-dir, --etcd,
 * --etcd-client-port, --etcd-peer-port), read from the same config file the server reads, so a
 * backup job on a configured host needs no flags but the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parse } from 'yaml';
import { DEFAULT_CONTROL_PLANE_CONFIG_FILE, isEtcdUrl } from '../config-check.js';
import { DEFAULT_DATA_DIR, DEFAULT_ETCD_CLIENT_PORT, DEFAULT_ETCD_PEER_PORT } from './data-dir.js';
import { SnapshotError } from './errors.js';
import { restoreSnapshot, type RestoredSnapshot } from './restore.js';
import { saveSnapshot, type SavedSnapshot } from './save.js';

/** SnapshotSettings are the control-plane settings a snapshot command needs. */
export interface SnapshotSettings {
  dataDir: string;
  etcd?: string[];
  etcdClientPort: number;
  etcdPeerPort: number;
  sealingKeyFile?: string;
}

type Flags = { config?: string; dataDir?: string; etcd?: string; etcdClientPort?: number; etcdPeerPort?: number; sealingKeyFile?: string };

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number 1-65535');
  return n;
}

function endpoints(v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const url of list) {
    if (!isEtcdUrl(url)) throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `etcd: ${JSON.stringify(url)} is not an http(s)://HOST:PORT URL`);
  }
  return list;
}

/** fileSetting reads key (kebab-case or camelCase) from a parsed config file as text. */
function fileSetting(doc: Record<string, unknown>, kebab: string, file: string): string | undefined {
  const camel = kebab.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const v = doc[kebab] ?? doc[camel];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `${file}: ${kebab}: must be a string or a number`);
  return String(v);
}

/**
 * settle merges flags, the config file (the server's: --config, else the default file when it
 * exists; keys other than the five here are the server's business) and the defaults.
 */
export function settle(flags: Flags): SnapshotSettings {
  const file = flags.config ?? (existsSync(DEFAULT_CONTROL_PLANE_CONFIG_FILE) ? DEFAULT_CONTROL_PLANE_CONFIG_FILE : undefined);
  let doc: Record<string, unknown> = {};
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `cannot read the config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `${file}: must be a mapping of flag names to values`);
    }
    doc = (parsed ?? {}) as Record<string, unknown>;
  }
  const fromFile = (kebab: string, conv: (s: string) => number): number | undefined => {
    const s = fileSetting(doc, kebab, file!);
    if (s === undefined) return undefined;
    try {
      return conv(s);
    } catch (err) {
      throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `${file}: ${kebab}: ${(err as Error).message}`);
    }
  };
  const etcd = flags.etcd ?? fileSetting(doc, 'etcd', file!);
  const sealingKeyFile = flags.sealingKeyFile ?? fileSetting(doc, 'sealing-key-file', file!);
  return {
    dataDir: flags.dataDir ?? fileSetting(doc, 'data-dir', file!) ?? DEFAULT_DATA_DIR,
    ...(etcd !== undefined ? { etcd: endpoints(etcd) } : {}),
    etcdClientPort: flags.etcdClientPort ?? fromFile('etcd-client-port', port) ?? DEFAULT_ETCD_CLIENT_PORT,
    etcdPeerPort: flags.etcdPeerPort ?? fromFile('etcd-peer-port', port) ?? DEFAULT_ETCD_PEER_PORT,
    ...(sealingKeyFile !== undefined ? { sealingKeyFile } : {}),
  };
}

function output(): Option {
  return new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text');
}

function commonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', `the control plane's config file; only data-dir, etcd, etcd-client-port, etcd-peer-port and sealing-key-file are read (default: ${DEFAULT_CONTROL_PLANE_CONFIG_FILE} if it exists)`)
    .option('--data-dir <dir>', `the control plane's state directory (default ${DEFAULT_DATA_DIR})`)
    .addOption(output())
    .option('--force', 'replace what is already there (restore moves it aside)', false);
}

function printSaved(s: SavedSnapshot, format: string): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ file: s.file, endpoint: s.endpoint, leader: s.leader, sizeBytes: s.sizeBytes, ...s.status })}\n`);
    return;
  }
  process.stdout.write(`snapshot saved: ${s.file}\n  from      ${s.endpoint}${s.leader ? ' (leader)' : ''}\n  size      ${s.sizeBytes} bytes\n` +
    `  revision  ${s.status.revision}\n  keys      ${s.status.totalKey}\n  hash      ${s.status.hash}\n`);
}

function printRestored(r: RestoredSnapshot, dataDir: string, format: string): void {
  for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ file: r.file, etcdDir: r.etcdDir, movedAside: r.movedAside ?? null, ...r.status, warnings: r.warnings })}\n`);
    return;
  }
  process.stdout.write(`snapshot restored: ${r.file} -> ${r.etcdDir}\n  revision  ${r.status.revision}\n  keys      ${r.status.totalKey}\n` +
    (r.movedAside ? `  previous  ${r.movedAside}\n` : '') + `next: start berth-control-plane --data-dir ${dataDir} (with the same --etcd-peer-port)\n`);
}

/** snapshotProgram builds the `snapshot` command; its actions throw SnapshotError on failure. */
export function snapshotProgram(): Command {
  const program = new Command('berth-control-plane snapshot')
    .description('save or restore the cluster state (etcd) with etcdctl; see README, "Backup and restore"')
    .exitOverride()
    .showHelpAfterError();
  commonOptions(program.command('save').argument('<file>', 'where to write the snapshot (0600)')
    .description('take a consistent snapshot of etcd (the embedded one of --data-dir, or --etcd) into FILE')
    .option('--etcd <urls>', 'external etcd endpoints, comma-separated; the leader (else any healthy member) is used')
    .option('--etcd-client-port <n>', `embedded etcd client port, when no running etcd of --data-dir is found (default ${DEFAULT_ETCD_CLIENT_PORT})`, port))
    .action(async (file: string, flags: Flags & { force: boolean; output: string }) => {
      const s = settle(flags);
      const saved = await saveSnapshot({ file, ...(s.etcd ? { etcd: s.etcd } : {}), dataDir: s.dataDir, etcdClientPort: s.etcdClientPort, force: flags.force,
        note: (line) => process.stderr.write(`note: ${line}\n`) });
      printSaved(saved, flags.output);
    });
  commonOptions(program.command('restore').argument('<file>', 'a snapshot written by `snapshot save` (or etcdctl snapshot save)')
    .description('restore FILE as the embedded etcd of --data-dir (the control plane must be stopped); the next start uses it')
    .option('--etcd-peer-port <n>', `the embedded etcd peer port the control plane runs with (default ${DEFAULT_ETCD_PEER_PORT})`, port)
    .option('--sealing-key-file <file>', 'the key file the next start opens the CA with, checked to exist (default <data-dir>/sealing.key)')
    .option('--etcd <urls>', 'refused: an external etcd cluster is restored with etcdctl on each member (README)'))
    .action(async (file: string, flags: Flags & { force: boolean; output: string }) => {
      const s = settle(flags);
      if (flags.etcd !== undefined) {
        throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE',
          'restore writes the embedded etcd\'s data dir; restore an external etcd cluster member by member with etcdctl snapshot restore (README, "Backup and restore")');
      }
      const restored = await restoreSnapshot({ file, dataDir: s.dataDir, etcdPeerPort: s.etcdPeerPort, force: flags.force,
        ...(s.sealingKeyFile ? { sealingKeyFile: s.sealingKeyFile } : {}) });
      if (s.etcd) restored.warnings.push(`the config file names an external etcd (${s.etcd.join(',')}): a control plane started with it ignores the restored embedded data`);
      printRestored(restored, s.dataDir, flags.output);
    });
  return program;
}

/** runSnapshotCommand runs `snapshot ...` with argv (the words after `snapshot`) and returns the exit status. */
export async function runSnapshotCommand(argv: string[]): Promise<number> {
  const program = snapshotProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the problem (or the help that was asked for).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof SnapshotError) {
      process.stderr.write(`error: ${err.code}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`error: BERTH_ERR_SNAPSHOT_FAILED: ${(err as Error).message}\n`);
    return 1;
  }
}
