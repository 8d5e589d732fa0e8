/**
 * The cuttable TCP proxy as a process, for deploy/local-cluster's `--etcd-proxy` (one control
 * plane replica reaches etcd through it):
 *
 *   node dist/test/support/tcp-proxy-main.js --listen HOST:PORT --upstream H:P[,H:P...] [--label TEXT]
 *
 * SIGUSR1 cuts every connection and refuses new ones, SIGUSR2 restores, SIGTERM/SIGINT exit.
 * Each change is logged on stdout with a timestamp, so a fault shows in the cluster's logs.
 * `--label` is only there so the process can be found by its command line (local-cluster's sweep).
 */
import { CuttableProxy, parseHostPort } from './tcp-proxy.js';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function say(message: string): void {
  process.stdout.write(`${new Date().toISOString()} tcp-proxy: ${message}\n`);
}

async function main(argv: string[]): Promise<void> {
  const listenFlag = flag(argv, '--listen');
  const upstreamFlag = flag(argv, '--upstream');
  if (!listenFlag || !upstreamFlag) {
    process.stderr.write('usage: tcp-proxy-main --listen HOST:PORT --upstream H:P[,H:P...] [--label TEXT]\n');
    process.exit(2);
  }
  const proxy = new CuttableProxy(parseHostPort(listenFlag), upstreamFlag.split(',').filter(Boolean).map(parseHostPort));
  await proxy.restore();
  say(`listening on ${listenFlag}, upstreams ${upstreamFlag}`);
  // Signals arrive in any order; chain the transitions so a cut and a restore never interleave.
  let chain: Promise<void> = Promise.resolve();
  const then = (what: string, step: () => Promise<void>): void => {
    chain = chain.then(step).then(() => say(what), (err: unknown) => say(`${what} failed: ${(err as Error).message}`));
  };
  process.on('SIGUSR1', () => then('cut: connections dropped, new ones refused', () => proxy.cut()));
  process.on('SIGUSR2', () => then('restored', () => proxy.restore()));
  // While cut nothing else keeps the event loop alive, and signal handlers do not: without this
  // timer the process would exit at the first cut.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const exit = (): void => { clearInterval(keepAlive); void proxy.cut().finally(() => process.exit(0)); };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`tcp-proxy: ${(err as Error).message}\n`);
  process.exit(1);
});
