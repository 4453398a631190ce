import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { WebSocketServer } from 'ws';
import { bearerOf, type TokenRegistry } from './auth.ts';
import type { AppRouter } from './router.ts';
import type { RpcContext } from './trpc.ts';

/** Loopback only unless told otherwise: nothing listens on 0.0.0.0 by default. @default '127.0.0.1' */
export const DEFAULT_RPC_HOST = '127.0.0.1';
/** WebSocket frame cap (spec §9.20). @default 64 MiB */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Path of the tRPC WebSocket endpoint. @default '/rpc' */
export const RPC_PATH = '/rpc';

export interface RpcServerOptions {
  readonly router: AppRouter;
  readonly tokens: TokenRegistry;
  /** Allow queries and subscriptions without a token (dashboards). Mutations never are. @default false */
  readonly publicReads?: boolean;
  /** @default DEFAULT_RPC_HOST */
  readonly host?: string;
  /** 0 picks a free port. @default 0 */
  readonly port?: number;
  /** @default DEFAULT_MAX_FRAME_BYTES */
  readonly maxFrameBytes?: number;
  /** Extra plain HTTP routes (health, static files); return false to fall through to 404. */
  readonly http?: (req: IncomingMessage, res: import('node:http').ServerResponse) => boolean;
}

export interface RpcServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Terminates every open WebSocket (clients reconnect); used by chaos tests. */
  dropAll(): void;
  close(): Promise<void>;
}

/**
 * The backend's tRPC WebSocket endpoint. Tokens come from the `Authorization: Bearer` header of
 * the upgrade (Node clients, GPU nodes) or, for browsers that cannot set headers, from tRPC
 * `connectionParams.token`. A presented but wrong token is refused at the upgrade (HTTP 401);
 * a connection without any token is only accepted when public reads are on.
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    if (options.http?.(req, res)) return;
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== RPC_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      return;
    }
    const presented = bearerOf(req.headers.authorization);
    if (presented !== null && !options.tokens.authenticate(presented)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const handler = applyWSSHandler({
    wss,
    router: options.router,
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 10_000 },
    createContext: ({ req, info }): RpcContext => {
      const header = bearerOf(req.headers.authorization);
      const param = typeof info.connectionParams?.token === 'string' ? info.connectionParams.token : null;
      const principal = options.tokens.authenticate(header ?? param);
      if ((header ?? param) && !principal) throw new Error('invalid token');
      return { principal, publicReads: options.publicReads ?? false };
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? DEFAULT_RPC_HOST, () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `ws://${host}:${port}${RPC_PATH}`,
    port,
    server,
    dropAll: () => {
      for (const c of wss.clients) c.terminate();
    },
    close: async () => {
      handler.broadcastReconnectNotification();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
