/**
 * A fake control plane for CLI tests: an HTTP or HTTPS server on 127.0.0.1 that answers from a
 * route table keyed by "METHOD url" and records every request (body, bearer token, the client
 * certificate's CN). runBerth drives the CLI in-process with injected streams and environment.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { run } from '../../control-plane/cli/main.js';
import type { CliIO } from '../../control-plane/cli/context.js';

/** Recorded is one request the fake control plane saw. */
export interface Recorded {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
  /** clientCN is the CN of the client certificate presented, if any. */
  clientCN?: string;
}

/** Reply is a canned answer; body is sent as JSON, or raw lines when ndjson is set. */
export interface Reply {
  status: number;
  body?: unknown;
  ndjson?: unknown[];
}

/** FakeApiTls makes the fake serve HTTPS with this key and certificate (PEM), optionally asking for client certificates. */
export interface FakeApiTls {
  key: string;
  cert: string;
  /** ca verifies client certificates; with requireClientCert a connection without one is refused. */
  ca?: string;
  requireClientCert?: boolean;
}

/** FakeApi answers from routes and records requests; an unknown route is a 404 in the API's error format. */
export class FakeApi {
  readonly requests: Recorded[] = [];
  /** routes answer by "METHOD url"; a function may answer asynchronously (sign a request with a real CA). */
  readonly routes = new Map<string, Reply | ((req: Recorded) => Reply | Promise<Reply>)>();
  url = '';
  private server: Server | undefined;

  constructor(private readonly tls?: FakeApiTls) {}

  /** start listens on a free loopback port and sets url. */
  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.answer(req, res);
    this.server = this.tls
      ? createHttpsServer({
        key: this.tls.key, cert: this.tls.cert, ca: this.tls.ca,
        requestCert: this.tls.ca !== undefined, rejectUnauthorized: this.tls.requireClientCert ?? false,
      }, handler)
      : createHttpServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** stop closes the server and its connections. */
  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** reset forgets recorded requests and routes between tests. */
  reset(): void {
    this.requests.length = 0;
    this.routes.clear();
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as Partial<TLSSocket>;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    const recorded: Recorded = { method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: await readJson(req) };
    if (peer?.subject?.CN) recorded.clientCN = String(peer.subject.CN);
    this.requests.push(recorded);
    const route = this.routes.get(`${recorded.method} ${recorded.url}`);
    const reply = typeof route === 'function' ? await route(recorded)
      : route ?? { status: 404, body: { error: { code: 'BERTH_ERR_NOT_FOUND', message: `${recorded.url} not found` } } };
    if (reply.ndjson) {
      res.writeHead(reply.status, { 'content-type': 'application/x-ndjson' });
      res.end(reply.ndjson.map((line) => `${JSON.stringify(line)}\n`).join(''));
      return;
    }
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** BerthResult is one in-process CLI run. */
export interface BerthResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** NOW_MS is the clock runBerth gives the CLI. */
export const NOW_MS = Date.parse('2025-01-01T00:10:00Z');

/** runBerth runs the CLI in-process with only the given environment (no HOME unless given). */
export async function runBerth(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<BerthResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from([options.stdin ?? '']),
    env: options.env ?? {},
    now: () => NOW_MS,
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}
