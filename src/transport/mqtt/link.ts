/**
 * One MQTT connection (mqtt.js client) and the topic subscriptions routed through it.
 *
 * Connecting fails fast (no reconnect loop before the first CONNACK) so one-shot tools get a clear error; after
 * the first connection the client reconnects by itself and reports disconnect/reconnect/error events.
 *
 * A link never holds two subscriptions whose filters can match the same topic: MQTT 3.1.1 gives no way to tell
 * which subscription a message arrived for, so the transport opens another link for an overlapping filter.
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import { BrokerAuthError, BrokerUnreachableError, type MsgfloError } from '../../errors.js';
import { logger } from '../../util/logger.js';
import type { TransportEvent } from '../types.js';
import { filtersOverlap, matchingFilter, topicMatches } from './topics.js';

const debug = logger('mqtt');

export type ProtocolVersion = 4 | 5;

/** A message as mqtt.js hands it over. */
export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly packet: IPublishPacket;
}

export type Listener = (message: Received) => void;
/** Removes a listener; the last one to leave unsubscribes the filter. */
export type Unlisten = () => Promise<void>;

export interface LinkOptions {
  /** Broker URL, credentials included (never logged). */
  url: string;
  /** Client id prefix; a random suffix is appended. */
  name: string;
  /** Protocol to use; undefined: MQTT 5, falling back to 3.1.1 when the broker refuses 5. */
  protocolVersion?: ProtocolVersion;
  onEvent(event: TransportEvent): void;
}

const CONNECT_TIMEOUT_MS = 10_000;
const RECONNECT_PERIOD_MS = 1000;
/** CONNACK codes meaning "wrong or missing credentials" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87, 0x8A, 0x8C). */
const AUTH_CODES = new Set([4, 5, 134, 135, 138, 140]);
/** CONNACK codes meaning "this broker does not speak the protocol version asked for". */
const VERSION_CODES = new Set([1, 132]);

interface Route {
  readonly filter: string;
  readonly match: string;
  readonly shared: boolean;
  readonly listeners: Listener[];
  next: number;
  ready: Promise<void>;
}

export class Link {
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  private readonly client: MqttClient;
  /** Routes by subscription filter. No two of them overlap, so a topic matches one route at most. */
  private readonly routes = new Map<string, Route>();
  /** The routes without wildcards, by the topic they match (the common case, found without scanning). */
  private readonly literal = new Map<string, Route>();
  private readonly onEvent: (event: TransportEvent) => void;
  private closing: Promise<void> | undefined;
  private outage = false;
  private outageErrorReported = false;

  private constructor(client: MqttClient, clientId: string, version: ProtocolVersion, onEvent: (event: TransportEvent) => void) {
    this.client = client;
    this.clientId = clientId;
    this.protocolVersion = version;
    this.onEvent = onEvent;
    // From now on, reconnect by ourselves (mqtt.js subscribes again: sessions are not kept, see connectOnce).
    client.options.reconnectPeriod = RECONNECT_PERIOD_MS;
    client.on('message', (topic, payload, packet) => this.dispatch({ topic, payload, packet }));
    client.on('close', () => {
      if (this.closing || this.outage) return;
      this.outage = true;
      this.outageErrorReported = false;
      debug('%s: connection lost', clientId);
      this.emit({ type: 'disconnect' });
    });
    client.on('connect', () => {
      if (!this.outage) return;
      this.outage = false;
      debug('%s: reconnected', clientId);
      this.emit({ type: 'reconnect' });
    });
    client.on('error', (error) => {
      if (this.closing) return;
      debug('%s: %s', clientId, error.message);
      if (this.outage) {
        if (this.outageErrorReported) return;
        this.outageErrorReported = true;
      }
      this.emit({ type: 'error', error });
    });
  }

  /** Connect once; resolves when the broker accepted the connection, rejects with a coded error otherwise. */
  static async open(options: LinkOptions): Promise<Link> {
    const clientId = `${sanitize(options.name)}-${randomBytes(4).toString('hex')}`;
    const versions: ProtocolVersion[] = options.protocolVersion ? [options.protocolVersion] : [5, 4];
    for (let i = 0; ; i++) {
      const version = versions[i]!;
      try {
        const client = await connectOnce(options.url, clientId, version);
        debug('%s connected (MQTT %s)', clientId, version === 5 ? '5' : '3.1.1');
        return new Link(client, clientId, version, options.onEvent);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (i + 1 < versions.length && typeof code === 'number' && VERSION_CODES.has(code)) {
          debug('%s: broker refused MQTT %d, trying %d', clientId, version, versions[i + 1]);
          continue;
        }
        throw connectError(options.url, err);
      }
    }
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** The broker's CONNACK properties (MQTT 5), e.g. `sharedSubscriptionAvailable`. */
  get serverProperties(): Record<string, unknown> {
    return (this.client as unknown as { connackPacket?: { properties?: Record<string, unknown> } }).connackPacket?.properties ?? {};
  }

  get idle(): boolean {
    return this.routes.size === 0;
  }

  /** Whether `filter` can be routed through this link without overlapping another of its subscriptions. */
  canTake(filter: string): boolean {
    if (this.closing) return false;
    if (this.routes.has(filter)) return true;
    for (const route of this.routes.values()) if (filtersOverlap(route.filter, filter)) return false;
    return true;
  }

  /**
   * Deliver messages matching `filter` to `listener`, subscribing with `qos` if this is the first listener.
   * Resolves when the broker granted the subscription. On a shared filter (`$share/…`) with several listeners,
   * each message goes to one of them (they are one group member as far as the broker knows).
   */
  async listen(filter: string, qos: 0 | 1, listener: Listener): Promise<Unlisten> {
    let route = this.routes.get(filter);
    if (route) {
      route.listeners.push(listener);
    } else {
      const r: Route = {
        filter,
        match: matchingFilter(filter),
        shared: filter.startsWith('$share/'),
        listeners: [listener],
        next: 0,
        ready: Promise.resolve(),
      };
      route = r;
      this.add(r);
      r.ready = this.client.subscribeAsync(filter, { qos }).then((granted) => {
        const refused = granted.find((g) => (g.qos & 0x80) !== 0);
        if (refused) throw new Error(`Broker refused the subscription to '${filter}' (code ${refused.qos})`);
        debug('%s subscribed %s', this.clientId, filter);
      });
      r.ready.catch(() => {
        if (this.routes.get(filter) === r) this.remove(r);
      });
    }
    const r = route;
    await r.ready;
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      const i = r.listeners.indexOf(listener);
      if (i >= 0) r.listeners.splice(i, 1);
      if (r.listeners.length > 0 || this.routes.get(filter) !== r) return;
      this.remove(r);
      if (this.closing) return;
      try {
        await this.client.unsubscribeAsync(filter);
        debug('%s unsubscribed %s', this.clientId, filter);
      } catch (err) {
        debug('%s: unsubscribe %s failed: %s', this.clientId, filter, (err as Error).message);
      }
    };
  }

  /** Publish; resolves once sent (QoS 0) or acknowledged by the broker (QoS 1). */
  async publish(topic: string, payload: Buffer, options: IClientPublishOptions): Promise<void> {
    await this.client.publishAsync(topic, payload, options);
  }

  /** Disconnect: gracefully (DISCONNECT) when connected and nothing is in flight, else at once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const client = this.client;
      const outgoing = Object.keys((client as unknown as { outgoing: object }).outgoing ?? {}).length;
      const graceful = client.connected && outgoing === 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.stream?.destroy();
          resolve();
        }, 2000);
        client.end(!graceful, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      debug('%s closed', this.clientId);
    })();
    return this.closing;
  }

  private add(route: Route): void {
    this.routes.set(route.filter, route);
    if (!/[+#]/.test(route.match)) this.literal.set(route.match, route);
  }

  private remove(route: Route): void {
    this.routes.delete(route.filter);
    if (this.literal.get(route.match) === route) this.literal.delete(route.match);
  }

  private dispatch(message: Received): void {
    let route = this.literal.get(message.topic);
    if (!route) {
      for (const r of this.routes.values()) {
        if (r.match !== message.topic && /[+#]/.test(r.match) && topicMatches(r.match, message.topic)) {
          route = r;
          break;
        }
      }
    }
    if (!route) return debug('%s: no subscription for %s', this.clientId, message.topic);
    if (route.shared) {
      const listener = route.listeners[route.next++ % route.listeners.length];
      if (listener) this.call(listener, message);
    } else {
      for (const listener of [...route.listeners]) this.call(listener, message);
    }
  }

  private call(listener: Listener, message: Received): void {
    try {
      listener(message);
    } catch (err) {
      debug('%s: listener for %s threw: %s', this.clientId, message.topic, (err as Error).message);
      this.emit({ type: 'error', error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  private emit(event: TransportEvent): void {
    try {
      this.onEvent(event);
    } catch (err) {
      debug('%s: event listener threw: %s', this.clientId, (err as Error).message);
    }
  }
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'msgflo';
}

/**
 * One connection attempt, without retries. The session is clean and ends with the connection: client ids are
 * random, so a session left behind could never be resumed, and on a broker such as Mosquitto an offline session in
 * a shared-subscription group keeps taking its share of the group's messages until it expires (they are lost).
 */
function connectOnce(url: string, clientId: string, version: ProtocolVersion): Promise<MqttClient> {
  const options: IClientOptions = {
    clientId,
    protocolVersion: version,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    ...credentials(url),
  };
  return new Promise<MqttClient>((resolve, reject) => {
    let client: MqttClient;
    try {
      client = mqtt.connect(url, options);
    } catch (err) {
      reject(err);
      return;
    }
    const settle = (err: Error | undefined) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (!err) return resolve(client);
      client.on('error', () => {});
      client.end(true);
      reject(err);
    };
    const onConnect = () => settle(undefined);
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(new Error('connection closed before the broker answered'));
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}

/** User and password from the URL, percent-decoded (mqtt.js would pass them on encoded). */
function credentials(url: string): Pick<IClientOptions, 'username' | 'password'> {
  try {
    const u = new URL(url);
    const out: Pick<IClientOptions, 'username' | 'password'> = {};
    if (u.username) out.username = decodeURIComponent(u.username);
    if (u.password) out.password = decodeURIComponent(u.password);
    return out;
  } catch {
    return {};
  }
}

function connectError(url: string, err: unknown): MsgfloError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && AUTH_CODES.has(code)) return new BrokerAuthError(url, { cause: err });
  return new BrokerUnreachableError(url, { cause: err });
}
