/**
 * The frames of the interactive exec WebSocket (`GET /v1/namespaces/:ns/tasks/:name/exec`), shared
 * by the route and the CLI. Every frame is binary; its first byte is the channel, the rest the
 * payload (kubectl's channel protocol, with berth's own status, resize and signal channels):
 *
 * | channel | direction        | payload                                                          |
 * |---------|------------------|------------------------------------------------------------------|
 * | 0       | client → server  | stdin bytes; an empty payload closes stdin (EOF)                 |
 * | 1       | server → client  | stdout (with a tty: everything the terminal shows)               |
 * | 2       | server → client  | stderr (never with a tty)                                        |
 * | 3       | server → client  | the last frame, JSON: `{"exitCode":N}` or `{"error":{"code","message"}}` |
 * | 4       | client → server  | JSON `{"rows":R,"cols":C}`: the terminal's new size              |
 * | 5       | client → server  | a signal name (`SIGINT`, `TERM`) for the command                 |
 *
 * After the status frame the server closes the socket with 1000. Pure: no I/O here.
 */

/** EXEC_CHANNEL numbers the frames' channels. */
export const EXEC_CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, signal: 5 } as const;

/** ExecStatus is the payload of the status frame. */
export type ExecStatus = { exitCode: number } | { error: { code: string; message: string } };

/** ExecFrame is one decoded frame. */
export type ExecFrame =
  | { channel: 0 | 1 | 2; data: Buffer }
  | { channel: 3; status: ExecStatus }
  | { channel: 4; rows: number; cols: number }
  | { channel: 5; signal: string };

/** MAX_TERMINAL_SIZE is the largest rows or cols a terminal has (16 bits). */
export const MAX_TERMINAL_SIZE = 65_535;

/** frame prefixes payload with its channel byte. */
export function frame(channel: number, payload: Uint8Array | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  out.set(body, 1);
  return out;
}

/** decodeFrame reads one frame; a malformed one is a string saying why (the peer broke the protocol). */
export function decodeFrame(raw: Buffer): ExecFrame | string {
  if (raw.length === 0) return 'an empty frame has no channel';
  const channel = raw[0]!;
  const body = raw.subarray(1);
  switch (channel) {
    case EXEC_CHANNEL.stdin:
    case EXEC_CHANNEL.stdout:
    case EXEC_CHANNEL.stderr:
      return { channel, data: body };
    case EXEC_CHANNEL.status: {
      const parsed = parseJson(body) as { exitCode?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
      if (typeof parsed?.exitCode === 'number') return { channel, status: { exitCode: parsed.exitCode } };
      if (typeof parsed?.error?.code === 'string' && typeof parsed.error.message === 'string') {
        return { channel, status: { error: { code: parsed.error.code, message: parsed.error.message } } };
      }
      return 'a status frame must be {"exitCode":N} or {"error":{"code","message"}}';
    }
    case EXEC_CHANNEL.resize: {
      const parsed = parseJson(body) as { rows?: unknown; cols?: unknown } | undefined;
      const ok = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_TERMINAL_SIZE;
      if (!ok(parsed?.rows) || !ok(parsed?.cols)) return `a resize frame must be {"rows":R,"cols":C} with 1..${MAX_TERMINAL_SIZE}`;
      return { channel, rows: parsed.rows, cols: parsed.cols };
    }
    case EXEC_CHANNEL.signal: {
      const signal = body.toString('utf8');
      if (!/^[A-Za-z0-9+]{1,16}$/.test(signal)) return 'a signal frame must hold a signal name such as SIGINT';
      return { channel, signal };
    }
    default:
      return `unknown channel ${channel}`;
  }
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}
