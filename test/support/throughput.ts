/**
 * TCP throughput between two network namespaces with the same tool on both paths: host busybox
 * `nc -l` receiving to /dev/null, the sender `dd if=/dev/zero bs=64k | nc`. Both processes join
 * only a network namespace (nsenter --net), so a container path and a host path differ in the
 * network alone (veth, bridge, host-gw route), not in binaries or CPU limits. One untimed round
 * per path counts the bytes received first: busybox nc stops reading when its own stdin ends, so
 * the receiver's stdin is a pipe this process holds open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from './cluster.js';

/** NetPath is one direction: the sender's and receiver's netns files and the receiver's address. */
export interface NetPath {
  from: string;
  to: string;
  address: string;
}

/** ThroughputFigures hold bytes/s per timed round and the medians' ratio container/host. */
export interface ThroughputFigures {
  containerBps: number[];
  hostBps: number[];
  containerMedianBps: number;
  hostMedianBps: number;
  ratio: number;
  note: string;
}

const BLOCK_BYTES = 64 * 1024;
/** TRANSFER_TIMEOUT_MS bounds one transfer (512 MiB at a slow 50 MiB/s takes ~10 s). */
const TRANSFER_TIMEOUT_MS = 120_000;
/** LISTEN_TIMEOUT_MS bounds the wait for the receiver to listen. */
const LISTEN_TIMEOUT_MS = 5_000;
const LISTEN_POLL_MS = 25;
const FIRST_PORT = 15001;

function exited(child: ChildProcess, timeoutMs: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
    });
  });
}

async function waitListening(netns: string, port: number): Promise<void> {
  const deadline = performance.now() + LISTEN_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const r = run('nsenter', [`--net=${netns}`, 'ss', '-Hltn', `sport = :${port}`], 5_000);
    if (r.code === 0 && r.stdout.trim() !== '') return;
    await new Promise((resolve) => setTimeout(resolve, LISTEN_POLL_MS));
  }
  throw new Error(`nc did not listen on port ${port} in ${netns} within ${LISTEN_TIMEOUT_MS} ms`);
}

/** transfer sends bytes over path once; it resolves with the milliseconds from sender spawn to receiver exit and what was counted. */
async function transfer(path: NetPath, bytes: number, port: number, count: boolean): Promise<{ ms: number; received: number }> {
  const receiver = spawn('nsenter', [`--net=${path.to}`, 'busybox', 'nc', '-l', '-p', String(port)],
    { stdio: ['pipe', count ? 'pipe' : 'ignore', 'pipe'] });
  let sender: ChildProcess | undefined;
  let received = 0;
  let errors = '';
  receiver.stdout?.on('data', (d: Buffer) => { received += d.length; });
  receiver.stderr!.setEncoding('utf8').on('data', (d: string) => { errors += d; });
  try {
    await waitListening(path.to, port);
    const blocks = Math.ceil(bytes / BLOCK_BYTES);
    const t0 = performance.now();
    sender = spawn('nsenter', [`--net=${path.from}`, 'sh', '-c', `busybox dd if=/dev/zero bs=${BLOCK_BYTES} count=${blocks} 2>/dev/null | busybox nc ${path.address} ${port}`],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    sender.stderr!.setEncoding('utf8').on('data', (d: string) => { errors += d; });
    const rc = await exited(receiver, TRANSFER_TIMEOUT_MS, `receiver on ${path.address}:${port}`);
    const ms = performance.now() - t0;
    const sc = await exited(sender, TRANSFER_TIMEOUT_MS, `sender to ${path.address}:${port}`);
    if (rc !== 0 || sc !== 0) throw new Error(`transfer to ${path.address}:${port}: receiver exited ${rc}, sender ${sc}: ${errors.trim()}`);
    return { ms, received };
  } finally {
    receiver.stdin?.end();
    if (receiver.exitCode === null) receiver.kill('SIGKILL');
    if (sender && sender.exitCode === null) sender.kill('SIGKILL');
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** measureThroughput checks both paths carry every byte, then times `rounds` interleaved rounds of each (order alternating). */
export async function measureThroughput(o: { container: NetPath; host: NetPath; bytes: number; rounds: number }): Promise<ThroughputFigures> {
  const bytes = Math.ceil(o.bytes / BLOCK_BYTES) * BLOCK_BYTES;
  let port = FIRST_PORT;
  for (const [label, path] of [['container', o.container], ['host', o.host]] as const) {
    const { received } = await transfer(path, bytes, port++, true);
    if (received !== bytes) throw new Error(`${label} path carried ${received} of ${bytes} bytes`);
  }
  const containerBps: number[] = [];
  const hostBps: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? (['container', 'host'] as const) : (['host', 'container'] as const);
    for (const which of order) {
      const { ms } = await transfer(which === 'container' ? o.container : o.host, bytes, port++, false);
      (which === 'container' ? containerBps : hostBps).push(bytes / (ms / 1000));
    }
    process.stdout.write(`  round ${r + 1}/${o.rounds}: container ${(containerBps.at(-1)! / 1048576).toFixed(0)} MiB/s, host ${(hostBps.at(-1)! / 1048576).toFixed(0)} MiB/s\n`);
  }
  const containerMedianBps = median(containerBps);
  const hostMedianBps = median(hostBps);
  return {
    containerBps, hostBps, containerMedianBps, hostMedianBps, ratio: containerMedianBps / hostMedianBps,
    note: `${bytes / 1048576} MiB per transfer, busybox nc over TCP, both ends joined to the namespaces with nsenter --net; timed from sender spawn to receiver exit`,
  };
}
