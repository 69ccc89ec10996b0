/**
 * The embedded MQTT broker (aedes) that msgflo-ts starts when no broker is configured.
 *
 * aedes 1.2 speaks MQTT 3.1 and 3.1.1 only (a CONNECT with protocol level 5 is refused with "unacceptable
 * protocol version") and has no shared subscriptions of its own; shared.ts adds them, so that instances of one
 * role share work on the embedded broker as they do on Mosquitto.
 *
 * Only this folder imports aedes (what it uses beyond aedes's documented API: internals.ts). It also imports `ws`,
 * for MQTT over WebSocket (browser participants).
 */
import http from 'node:http';
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Aedes } from 'aedes';
import type { AedesOptions } from 'aedes';
import { InvalidArgumentError } from '../errors.js';
import { logger } from '../util/logger.js';
import { installSharedSubscriptions } from './shared.js';

const debug = logger('broker');

/** Ports the embedded broker never takes: they belong to a real Mosquitto / RabbitMQ on this machine. */
export const RESERVED_PORTS: readonly number[] = [1883, 5672];

export interface EmbeddedBrokerOptions {
  /** Interface to bind; default 127.0.0.1 (never all interfaces unless asked). */
  host?: string;
  /** TCP port; default 0 (a free port chosen by the OS). 1883 and 5672 are refused. */
  port?: number;
  /** When given, clients must present these credentials (CONNACK "bad user name or password" otherwise). */
  auth?: { username: string; password: string };
  /** Also serve MQTT over WebSocket on this port (0: a free one); off when absent. */
  wsPort?: number;
}

export interface EmbeddedBroker {
  /** `mqtt://HOST:PORT` of the running broker (no credentials in it). */
  readonly url: string;
  readonly port: number;
  /** `ws://HOST:PORT` when MQTT over WebSocket was asked for (`wsPort`). */
  readonly wsUrl: string | undefined;
  /** Disconnect every client and free the port. Idempotent. */
  close(): Promise<void>;
}

/** Start an in-process MQTT broker on 127.0.0.1 and a free port. */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  for (const p of options.wsPort === undefined ? [port] : [port, options.wsPort]) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) {
      throw new InvalidArgumentError(`Embedded broker: invalid port ${String(p)}`, 'Use a whole number from 0 to 65535 (0: any free port).');
    }
    if (RESERVED_PORTS.includes(p)) {
      throw new InvalidArgumentError(
        `Embedded broker: refusing port ${p}, which belongs to a real broker (Mosquitto 1883, RabbitMQ 5672)`,
        'Use port 0 (any free port) or another one.',
      );
    }
  }

  const aedesOptions: AedesOptions = {};
  if (options.auth) aedesOptions.authenticate = checkCredentials(options.auth);
  const aedes = await Aedes.createBroker(aedesOptions);
  installSharedSubscriptions(aedes);

  const sockets = new Set<net.Socket>();
  // TCP_NODELAY: with Nagle on, a PUBACK followed by the next PUBLISH to the same client waits for the client's delayed
  // ACK, and QoS 1 request/reply stalls ~40 ms per round trip (as with Mosquitto without set_tcp_nodelay). aedes
  // writes through mqtt-packet, which corks the socket per tick, so small writes are still coalesced.
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  aedes.on('clientError', (client, err) => debug('client %s error: %s', client.id, err.message));
  aedes.on('connectionError', (client, err) => debug('connection error (%s): %s', client?.id, err.message));

  try {
    await listen(server, port, host);
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw err;
  }
  const address = server.address() as net.AddressInfo;
  const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `mqtt://${urlHost}:${address.port}`;
  debug('embedded broker listening on %s', url);

  let web: { http: http.Server; wss: WebSocketServer; url: string } | undefined;
  if (options.wsPort !== undefined) {
    const httpServer = http.createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect with an MQTT client\n');
    });
    const wss = new WebSocketServer({ server: httpServer, handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false) });
    wss.on('connection', (socket) => {
      const stream = createWebSocketStream(socket);
      stream.on('error', (err) => debug('websocket stream error: %s', err.message));
      aedes.handle(stream);
    });
    try {
      await listen(httpServer, options.wsPort, host);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw err;
    }
    const wsAddress = httpServer.address() as net.AddressInfo;
    web = { http: httpServer, wss, url: `ws://${urlHost}:${wsAddress.port}` };
    debug('embedded broker serves MQTT over WebSocket on %s', web.url);
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    wsUrl: web?.url,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        if (web) {
          for (const client of web.wss.clients) client.terminate();
          web.wss.close();
          await new Promise<void>((resolve) => web!.http.close(() => resolve()));
        }
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        // Connections that never sent CONNECT are not aedes clients yet: drop them too, or close() would wait.
        for (const socket of sockets) socket.destroy();
        await serverClosed;
        debug('embedded broker %s closed', url);
      })();
      return closing;
    },
  };
}

/** Listen on `host:port`; a port in use or a host that is not ours is the caller's to fix (MSGFLO_ERR_USAGE). */
function listen(server: net.Server | http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: Error) =>
      reject(
        new InvalidArgumentError(`Embedded broker: cannot listen on ${host}:${port} (${err.message})`, 'Use port 0 (any free port), or stop what uses that port.', {
          cause: err,
        }),
      );
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

function checkCredentials(expected: { username: string; password: string }): NonNullable<AedesOptions['authenticate']> {
  const wantUser = Buffer.from(expected.username);
  const wantPass = Buffer.from(expected.password);
  const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
  return (_client, username, password, done) => {
    const ok = username !== undefined && password !== undefined && same(Buffer.from(username), wantUser) && same(password, wantPass);
    if (ok) return done(null, true);
    // 4 = "bad user name or password" (MQTT 3.1.1 CONNACK return code).
    const err = Object.assign(new Error('bad user name or password'), { returnCode: 4 as const });
    done(err, false);
  };
}
