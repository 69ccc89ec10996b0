/**
 * The embedded MQTT broker (aedes) that msgflo-ts starts when no broker is configured.
 *
 * aedes 1.2 speaks MQTT 3.1 and 3.1.1 only (a CONNECT with protocol level 5 is refused with "unacceptable
 * protocol version") and has no shared subscriptions of its own: a `$share/<group>/<topic>` filter would be
 * taken literally and never match anything. This module adds shared subscriptions (see `installSharedSubscriptions`),
 * so that instances of one role share work on the embedded broker as they do on Mosquitto.
 *
 * Only this folder imports aedes. It also imports `ws`, for MQTT over WebSocket (browser participants).
 */
import http from 'node:http';
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Aedes } from 'aedes';
import type { AedesOptions, AedesPublishPacket } from 'aedes';
import { logger } from '../util/logger.js';

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
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Embedded broker: invalid port ${String(port)}`);
  }
  if (RESERVED_PORTS.includes(port) || (options.wsPort !== undefined && RESERVED_PORTS.includes(options.wsPort))) {
    throw new Error(
      `Embedded broker: refusing port ${RESERVED_PORTS.includes(port) ? port : options.wsPort}, which belongs to a real broker (Mosquitto 1883, RabbitMQ 5672); use port 0 (any free port) or another one`,
    );
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
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
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
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(options.wsPort, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
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

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;
type SubscribeFn = (topic: string, func: Deliver, done: () => void) => void;

/** What the shared-subscription shim reads of an aedes client. */
interface SessionClient {
  readonly id: string;
  readonly clean: boolean;
  readonly subscriptions: Record<string, { func: Deliver } | undefined> | undefined;
}

interface ShareGroup {
  readonly topic: string;
  readonly members: Deliver[];
  next: number;
  readonly dispatch: Deliver;
}

/**
 * Shared subscriptions (`$share/<group>/<filter>`, MQTT 5 §4.8.2, also honoured for 3.1.1 clients as Mosquitto
 * does) on top of aedes.
 *
 * aedes subscribes each client filter with `broker.subscribe(filter, deliver)`. For a `$share/…` filter we instead
 * record the client's deliver function as a member of the group and subscribe one dispatcher per (group, filter)
 * to the real filter; the dispatcher hands each message to one member, round robin. A client that disconnects is
 * unsubscribed by aedes, which removes it from the group (its share goes to the members that are connected).
 * Retained messages are not sent to shared subscriptions (aedes looks them up under the literal `$share/…` filter
 * and finds none), as the MQTT 5 specification requires.
 *
 * A member with a kept session (clean: false) gets each QoS 1 message through its session's outgoing queue, as
 * aedes does for ordinary subscriptions (it would otherwise refuse to send it: "no such packet"): until the client
 * acknowledges it, the message stays there, and aedes sends it again when the client comes back with that id.
 */
function installSharedSubscriptions(aedes: Aedes): void {
  const subscribe: SubscribeFn = aedes.subscribe.bind(aedes);
  const unsubscribe: SubscribeFn = aedes.unsubscribe.bind(aedes);
  const groups = new Map<string, ShareGroup>();
  const owners = new WeakMap<Deliver, SessionClient>();

  /** The client whose subscription to `shareTopic` delivers through `member`. */
  const ownerOf = (member: Deliver, shareTopic: string): SessionClient | undefined => {
    const known = owners.get(member);
    if (known) return known;
    const clients = (aedes as unknown as { clients: Record<string, SessionClient> }).clients;
    for (const client of Object.values(clients)) {
      if (client.subscriptions?.[shareTopic]?.func === member) {
        owners.set(member, client);
        return client;
      }
    }
    return undefined;
  };
  const persistence = (aedes as unknown as { persistence: { outgoingEnqueue(sub: { clientId: string }, packet: AedesPublishPacket): Promise<void> } })
    .persistence;

  aedes.subscribe = (topic: string, func: Deliver, done: () => void) => {
    const shared = parseShared(topic);
    if (!shared) return subscribe(topic, func, done);
    let group = groups.get(topic);
    if (!group) {
      const g: ShareGroup = {
        topic: shared.filter,
        members: [],
        next: 0,
        dispatch: (packet, callback) => {
          if (g.members.length === 0) return callback();
          const member = g.members[g.next % g.members.length]!;
          g.next = (g.next + 1) % g.members.length;
          const owner = packet.qos > 0 ? ownerOf(member, topic) : undefined;
          if (!owner || owner.clean !== false || !owner.id) return member(packet, callback);
          persistence.outgoingEnqueue({ clientId: owner.id }, packet).then(
            () => member(packet, callback),
            (err: Error) => {
              debug('cannot queue a message for %s: %s', owner.id, err.message);
              callback();
            },
          );
        },
      };
      group = g;
      groups.set(topic, g);
      g.members.push(func);
      debug('shared subscription %s opened', topic);
      return subscribe(shared.filter, g.dispatch, done);
    }
    if (!group.members.includes(func)) group.members.push(func);
    setImmediate(done);
  };

  aedes.unsubscribe = (topic: string, func: Deliver, done: () => void) => {
    const group = groups.get(topic);
    if (!group) return unsubscribe(topic, func, done);
    const i = group.members.indexOf(func);
    if (i >= 0) group.members.splice(i, 1);
    if (group.members.length > 0) return setImmediate(done ?? noop);
    groups.delete(topic);
    debug('shared subscription %s closed', topic);
    unsubscribe(group.topic, group.dispatch, done ?? noop);
  };
}

function noop(): void {}

/** `$share/<group>/<filter>` → its parts, or undefined for an ordinary filter (or a malformed share). */
function parseShared(topic: string): { group: string; filter: string } | undefined {
  if (!topic.startsWith('$share/')) return undefined;
  const rest = topic.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const group = rest.slice(0, slash);
  const filter = rest.slice(slash + 1);
  if (!filter || /[+#]/.test(group)) return undefined;
  return { group, filter };
}
