/**
 * Small helpers shared by the local HTTP stand-ins (stub vLLM, judge provider stand-in): bounded
 * body reading and JSON replies (bearer checks: `bearerMatches` in rpc/auth.ts). Kept dependency-free on purpose so the
 * stand-ins behave like plain `node:http` servers and tests exercise real sockets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Request bodies above this size are rejected with 413 before being buffered.
 * @default 1 MiB
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** An oversized body is drained (discarded) up to this multiple of the cap before the socket is dropped. */
const DISCARD_FACTOR = 8;

/** Thrown by {@link readJsonBody}; carries the HTTP status the caller should answer with. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}


/** Reads and parses a JSON body, refusing (413) anything larger than `maxBytes`. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume(); // drain so the socket can answer
    throw new HttpError(413, `request body exceeds ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    // Past the cap we discard (never buffer) the rest so the client can read our 413 instead of a
    // reset; past a hard bound we stop reading altogether.
    if (total > maxBytes * DISCARD_FACTOR) break;
    if (total <= maxBytes) chunks.push(buf);
  }
  if (total > maxBytes) throw new HttpError(413, `request body exceeds ${maxBytes} bytes`);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

/** OpenAI-style error envelope, which both vLLM and OpenRouter use. */
export function sendOpenAiError(res: ServerResponse, status: number, message: string, type: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { message, type, code: status } }, headers);
}

export interface ListeningServer {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts `handler` on host:port and resolves once listening. Handler exceptions become 500s
 * (or the {@link HttpError} status) so a bug never leaves a socket hanging.
 */
export async function listen(
  host: string,
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<ListeningServer> {
  const server: Server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof HttpError) {
        // The connection may still be streaming an oversized body; close it after answering.
        if (error.status === 413) res.setHeader('connection', 'close');
        sendOpenAiError(res, error.status, error.message, error.status === 413 ? 'request_too_large' : 'invalid_request_error');
      } else {
        sendOpenAiError(res, 500, 'internal error', 'internal_error');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    // Idempotent: tests and shutdown paths may both close the same server.
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      })),
  };
}

/** Injected latency for the stand-ins. */
export function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
