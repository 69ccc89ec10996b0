/**
 * The FBP runtime protocol over WebSocket: an HTTP server (a GET shows where to connect) with a ws endpoint that
 * accepts the `noflo` sub-protocol, handing every frame to FbpRuntime.handle. Binds 127.0.0.1 unless told
 * otherwise. Frames that arrive before the runtime is ready (the broker connection is still being made) wait.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { WebSocket, WebSocketServer } from 'ws';
import { RuntimeListenError } from '../errors.js';
import { requireCjs } from '../util/cjs.js';
import { logger } from '../util/logger.js';
import type { Connection, FbpRuntime } from './runtime.js';

const log = logger('runtime');

/** The runtime protocol's default port. */
export const DEFAULT_RUNTIME_PORT = 3569;
/** Frames larger than this close the connection (ws: 1009). */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface RuntimeServerOptions {
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** When `port` is taken, listen on a free port instead of failing (for the default port). */
  fallbackToFreePort?: boolean;
}

export interface RuntimeAddress {
  host: string;
  port: number;
  /** ws://host:port, as clients connect to it. */
  url: string;
}

/** The URL that opens a runtime in Flowhub (or another IDE at `ide`), with its address, id and secret. */
export function flowhubUrl(options: { ide?: string; address: string; id: string; secret?: string }): string {
  const params = new URLSearchParams({ protocol: 'websocket', address: options.address, id: options.id });
  if (options.secret !== undefined) params.set('secret', options.secret);
  return `${(options.ide ?? 'https://app.flowhub.io').replace(/\/+$/, '')}#runtime/endpoint?${params.toString()}`;
}

function advertisedHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return os.hostname();
  return host.includes(':') ? `[${host}]` : host;
}

export class RuntimeServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private runtime: FbpRuntime | undefined;
  private waiting: Array<() => void> = [];
  private readonly sockets = new Set<WebSocket>();
  address: RuntimeAddress | undefined;
  /** What a GET of / says. */
  homepage = 'msgflo-ts FBP runtime: connect with the FBP runtime protocol over WebSocket (sub-protocol noflo).\n';

  constructor() {
    this.http = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(this.homepage);
    });
    // ws is loaded when a server is made: a program that imports msgflo-ts and never serves does not load it.
    const { WebSocketServer: Server } = requireCjs('ws') as typeof import('ws');
    this.wss = new Server({
      server: this.http,
      maxPayload: MAX_FRAME_BYTES,
      handleProtocols: (protocols) => (protocols.has('noflo') ? 'noflo' : false),
    });
    this.wss.on('connection', (ws) => this.onConnection(ws));
    this.wss.on('error', (err) => log('websocket server error: %s', err.message));
  }

  /** Listen; resolves with the address clients use. */
  async listen(options: RuntimeServerOptions = {}): Promise<RuntimeAddress> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? DEFAULT_RUNTIME_PORT;
    const tryListen = (p: number) =>
      new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => {
          this.http.off('listening', onListening);
          reject(err);
        };
        const onListening = () => {
          this.http.off('error', onError);
          resolve();
        };
        this.http.once('error', onError);
        this.http.once('listening', onListening);
        this.http.listen(p, host);
      });
    try {
      await tryListen(port);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && options.fallbackToFreePort && port !== 0) {
        log('port %d is taken; listening on a free port', port);
        try {
          await tryListen(0);
        } catch (again) {
          throw new RuntimeListenError(host, 0, { cause: again });
        }
      } else {
        throw new RuntimeListenError(host, port, { cause: err });
      }
    }
    const addr = this.http.address() as AddressInfo;
    this.address = { host, port: addr.port, url: `ws://${advertisedHost(host)}:${addr.port}` };
    return this.address;
  }

  /** Hand frames to `runtime` from now on (frames that came earlier are handled now, in order). */
  attach(runtime: FbpRuntime): void {
    this.runtime = runtime;
    for (const w of this.waiting.splice(0)) w();
  }

  private ready(): Promise<FbpRuntime> {
    if (this.runtime) return Promise.resolve(this.runtime);
    return new Promise((resolve) => this.waiting.push(() => resolve(this.runtime!)));
  }

  private onConnection(ws: WebSocket): void {
    this.sockets.add(ws);
    let conn: Connection | undefined;
    let gone = false;
    // Frames are handed over in order, also those that arrive before the runtime is ready.
    let chain: Promise<unknown> = this.ready().then((rt) => {
      if (gone) return;
      conn = rt.connect({
        send: (text) => {
          if (ws.readyState === ws.OPEN) ws.send(text);
        },
      });
    });
    ws.on('message', (data) => {
      const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      // handle() queues per connection and never rejects; only the hand-over waits for readiness.
      chain = chain.then(() => {
        if (conn && this.runtime) void this.runtime.handle(conn, frame.toString('utf8'));
      });
    });
    ws.on('error', (err) => log('client socket error: %s', err.message));
    ws.on('close', () => {
      // What the client asked for goes on; nothing more is sent to it.
      gone = true;
      this.sockets.delete(ws);
      if (conn && this.runtime) this.runtime.disconnect(conn);
    });
  }

  /** Close every client connection and stop listening. */
  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      if (!this.http.listening) return resolve();
      this.http.close(() => resolve());
      this.http.closeAllConnections?.();
    });
  }
}
