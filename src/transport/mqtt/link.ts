/**
 * One MQTT connection (mqtt.js client) and the topic subscriptions routed through it.
 *
 * Connecting fails fast (no reconnect loop before the first CONNACK) so one-shot tools get a clear error; after
 * the first connection the client reconnects by itself (with backoff) and reports disconnect/reconnect/error events.
 *
 * A link never holds two subscriptions whose filters can match the same topic: MQTT 3.1.1 gives no way to tell
 * which subscription a message arrived for, so the transport opens another link for an overlapping filter.
 *
 * **Acknowledgements.** mqtt.js acknowledges a QoS 1 PUBLISH (PUBACK) as soon as it has handed the message over. A
 * listener may instead settle messages itself (`{manualAck: true}`): the link then holds the PUBACK back until
 * `Received.settle()` is called. Until then the broker keeps the message as in flight for this session: it counts
 * against the window the client allows (MQTT 5 Receive Maximum), and it is sent again (DUP) when a kept session
 * reconnects. A PUBACK held when the connection drops is never sent on the next connection: the broker sends the
 * message again and that copy is settled instead. (mqtt.js has no public hook that PUBACKs later without stalling
 * its packet pipeline, so the link intercepts the client's outgoing PUBACK packets; see `holdAcks`.)
 *
 * **Kept sessions.** With a stable client id and `sessionExpirySeconds`, the session (its subscriptions, its
 * queued and in-flight messages) outlives the connection and the process. A process that takes the session back
 * receives what was queued for it right after CONNACK, before it has subscribed again: such messages are held
 * (unacknowledged) as orphans and handed to the first subscription that matches them; those that nobody claims
 * within ORPHAN_GRACE_MS are acknowledged and dropped, and reported through `onOrphan` (e.g. a subscription the
 * session still had for a binding removed meanwhile).
 */
import { randomBytes } from 'node:crypto';
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import { BrokerAuthError, BrokerUnreachableError, InstanceConflictError, type MsgfloError } from '../../errors.js';
import { Backoff } from '../../util/backoff.js';
import { requireCjs } from '../../util/cjs.js';
import { debugEnabled, logger } from '../../util/logger.js';
import type { TransportEvent } from '../types.js';
import { gatherWrites } from './gather.js';
import { filtersOverlap, matchingFilter, topicMatches } from './topics.js';

const mqtt = requireCjs('mqtt') as typeof import('mqtt');

const debug = logger('mqtt');
/** Per message (DEBUG=msgflo:mqtt:flow): deliveries, PUBACKs held and sent. */
const flow = logger('mqtt:flow');

export type ProtocolVersion = 4 | 5;

/** A message as mqtt.js hands it over. */
export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly packet: IPublishPacket;
  /**
   * For a listener with `manualAck`: acknowledge the message to the broker (PUBACK, once every manual listener that
   * got it has settled). Idempotent. A no-op for other listeners and for QoS 0.
   */
  readonly settle: () => void;
}

export type Listener = (message: Received) => void;
/** Removes a listener; the last one to leave unsubscribes the filter. */
export type Unlisten = () => Promise<void>;

export interface ListenOptions {
  /** The listener settles each message itself (`Received.settle`); until then the broker gets no PUBACK. */
  manualAck?: boolean;
}

export interface LinkOptions {
  /** Broker URL, credentials included (never logged). */
  url: string;
  /** Client id prefix; a random suffix is appended (unless `clientId` is given). */
  name: string;
  /** The exact client id (stable: a kept session is found again by it). */
  clientId?: string;
  /**
   * Keep the session after the connection ends: `clean: false`, and on MQTT 5 a Session Expiry Interval of this many
   * seconds. Undefined: a clean session that ends with the connection.
   */
  sessionExpirySeconds?: number;
  /** MQTT 5 Receive Maximum: QoS 1 messages the broker may have in flight (unacknowledged) to this client. */
  receiveMaximum?: number;
  /** Protocol to use; undefined: MQTT 5, falling back to 3.1.1 when the broker refuses 5. */
  protocolVersion?: ProtocolVersion;
  onEvent(event: TransportEvent, link: Link): void;
  /** A message no subscription claimed within the grace period (kept sessions only); it has been acknowledged. */
  onOrphan?(topic: string, link: Link): void;
  /** How long a kept session's message may wait for a subscription that claims it (default ORPHAN_GRACE_MS). */
  orphanGraceMs?: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** Reconnection backoff: first retry after about this long, doubling up to RECONNECT_MAX_MS. */
const RECONNECT_INITIAL_MS = 500;
const RECONNECT_MAX_MS = 10_000;
/** How long a message of a kept session may wait for a subscription that claims it. */
export const ORPHAN_GRACE_MS = 20_000;
/** CONNACK codes meaning "wrong or missing credentials" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87, 0x8A, 0x8C). */
const AUTH_CODES = new Set([4, 5, 134, 135, 138, 140]);
/** CONNACK codes meaning "this broker does not speak the protocol version asked for". */
const VERSION_CODES = new Set([1, 132]);
/** MQTT 5 PUBACK reason: the broker accepted the message, but no subscription matched it. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
/** MQTT 5 DISCONNECT reason: another connection with our client id took the session. */
const SESSION_TAKEN_OVER = 0x8e;

interface RouteListener {
  readonly fn: Listener;
  readonly manual: boolean;
}

interface Route {
  readonly filter: string;
  readonly qos: 0 | 1;
  readonly match: string;
  readonly shared: boolean;
  readonly listeners: RouteListener[];
  next: number;
  ready: Promise<void>;
}

/** A received QoS 1 message whose PUBACK waits for its listeners. */
interface Hold {
  readonly messageId: number;
  readonly generation: number;
  /** Manual listeners that have not settled yet. */
  remaining: number;
  /** mqtt.js wanted to send this PUBACK (kept here until `remaining` is 0). */
  puback: { cmd: 'puback'; messageId: number } | undefined;
  /** Counted among the messages handed to manual listeners and not settled yet (see `busy`). */
  counted: boolean;
}

interface Waiting {
  readonly message: Omit<Received, 'settle'>;
  readonly hold: Hold;
}

interface Orphan {
  readonly message: Omit<Received, 'settle'>;
  readonly hold: Hold;
  readonly at: number;
}

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

export class Link {
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  /** Whether the session outlives the connection (stable client id, clean: false). */
  readonly keepsSession: boolean;
  private readonly client: MqttClient;
  /** Routes by subscription filter. No two of them overlap, so a topic matches one route at most. */
  private readonly routes = new Map<string, Route>();
  /** The routes without wildcards, by the topic they match (the common case, found without scanning). */
  private readonly literal = new Map<string, Route>();
  private readonly options: LinkOptions;
  private closing: Promise<void> | undefined;
  private isOpen = false;
  private outage = false;
  private outageErrorReported = false;
  private takenOver = false;
  private readonly backoff = new Backoff({ initialMs: RECONNECT_INITIAL_MS, maxMs: RECONNECT_MAX_MS });
  /** Incremented when a connection ends: holds of an earlier connection never send their PUBACK. */
  private generation = 0;
  private readonly holds = new Map<number, Hold>();
  private orphans: Orphan[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  /**
   * Messages handed to manual listeners and not settled yet, and those waiting for one of them to be settled: at most
   * `receiveMaximum` are handed over at a time, whatever the broker sends (Mosquitto 2.0 honours the client's Receive
   * Maximum only for its first window). Waiting ones are not acknowledged: after a lost connection the broker sends
   * them again and they are dropped here.
   */
  private busy = 0;
  private waiting: Waiting[] = [];
  private pumping = false;
  /** When the broker last accepted a new connection of this link after the first one (ms since the epoch; 0: never). */
  reconnectedAt = 0;
  /** Our QoS 1 publishes whose PUBACK said "no matching subscribers", by packet id (read by publish()). */
  private readonly unheard = new Set<number>();
  private readonly sendPacket: SendPacket;

  /**
   * Hooks into a client whose connection is under way, before any packet of it is handled: a kept session's messages
   * come right after CONNACK, and must meet our dispatch and our hold on PUBACKs. Events wait for `opened()`.
   */
  private constructor(client: MqttClient, clientId: string, version: ProtocolVersion, options: LinkOptions) {
    this.client = client;
    this.clientId = clientId;
    this.protocolVersion = version;
    this.options = options;
    this.keepsSession = options.sessionExpirySeconds !== undefined;
    this.sendPacket = this.holdAcks();
    client.on('message', (topic, payload, packet) => this.dispatch({ topic, payload, packet }));
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) {
        this.unheard.add(packet.messageId);
      }
      // mqtt.js says 'connect' only once it has resent what it kept and had it acknowledged: the CONNACK is earlier.
      if (packet.cmd === 'connack' && this.isOpen) this.reconnectedAt = Date.now();
    });
    client.on('close', () => {
      this.generation++;
      this.holds.clear();
      this.unheard.clear();
      this.busy = 0;
      this.waiting = [];
      this.orphans = [];
      if (this.closing || !this.isOpen) return;
      // The next attempt waits longer (mqtt.js reads the period when it schedules the attempt after this one).
      if (!this.takenOver) client.options.reconnectPeriod = this.backoff.next();
      if (this.outage) return;
      this.outage = true;
      this.outageErrorReported = false;
      debug('%s: connection lost', clientId);
      this.emit({ type: 'disconnect' });
    });
    client.on('connect', () => {
      if (!this.isOpen) return;
      this.backoff.reset();
      client.options.reconnectPeriod = this.backoff.next();
      if (!this.outage) return;
      this.outage = false;
      debug('%s: reconnected (session %s)', clientId, this.sessionPresent ? 'kept' : 'new');
      // mqtt.js subscribes again only when the broker says it lost the session. A kept session's subscriptions may
      // still be broken: Mosquitto 2.0 restores shared subscriptions from its persistence file in a state that
      // delivers nothing. Make them again (the same subscription made again replaces itself, and repairs those).
      if (this.keepsSession && this.sessionPresent) {
        for (const route of this.routes.values()) {
          this.subscribe(route.filter, route.qos, true).catch((err: Error) => debug('%s: subscribing %s again failed: %s', clientId, route.filter, err.message));
        }
      }
      // Synchronous: listeners prepare (e.g. for the retained records the broker sends again) before any message
      // of the new connection is handled.
      this.emit({ type: 'reconnect' });
    });
    client.on('disconnect', (packet: { reasonCode?: number }) => {
      if (packet.reasonCode !== SESSION_TAKEN_OVER || this.closing || !this.isOpen) return;
      this.giveUp('the broker says another connection took the session');
    });
    client.on('error', (error) => {
      if (this.closing || !this.isOpen) return;
      debug('%s: %s', clientId, error.message);
      if (this.outage) {
        if (this.outageErrorReported) return;
        this.outageErrorReported = true;
      }
      this.emit({ type: 'error', error });
    });
  }

  /**
   * Another connection uses our client id and took our session: reconnecting would take it back, and the other
   * would take it back again, forever. Stop reconnecting, drop the connection, and report InstanceConflictError.
   */
  giveUp(why: string): void {
    if (this.takenOver || this.closing) return;
    this.takenOver = true;
    this.client.options.reconnectPeriod = 0;
    debug('%s: %s; not reconnecting', this.clientId, why);
    this.client.end(true);
    this.emit({ type: 'error', error: new InstanceConflictError(this.clientId) });
  }

  /** Connect once; resolves when the broker accepted the connection, rejects with a coded error otherwise. */
  static async open(options: LinkOptions): Promise<Link> {
    const clientId = options.clientId ?? `${sanitize(options.name)}-${randomBytes(4).toString('hex')}`;
    const versions: ProtocolVersion[] = options.protocolVersion ? [options.protocolVersion] : [5, 4];
    for (let i = 0; ; i++) {
      const version = versions[i]!;
      try {
        const link = await connectOnce(options, clientId, version, (client) => new Link(client, clientId, version, options));
        link.opened();
        debug('%s connected (MQTT %s, %s session)', clientId, version === 5 ? '5' : '3.1.1', link.keepsSession ? 'kept' : 'clean');
        return link;
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

  /** The first connection is up: from now on, reconnect by ourselves and report connection events. */
  private opened(): void {
    this.isOpen = true;
    // mqtt.js subscribes again by itself when the broker did not keep the session.
    this.client.options.reconnectPeriod = this.backoff.next();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Whether the broker resumed a session it kept for us (last CONNACK). */
  get sessionPresent(): boolean {
    return (this.client as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent === true;
  }

  /** The broker's CONNACK properties (MQTT 5), e.g. `sharedSubscriptionAvailable`. */
  get serverProperties(): Record<string, unknown> {
    return (this.client as unknown as { connackPacket?: { properties?: Record<string, unknown> } }).connackPacket?.properties ?? {};
  }

  get idle(): boolean {
    return this.routes.size === 0;
  }

  /** Messages received and not yet acknowledged (held PUBACKs and orphans), for tests and debugging. */
  get unacknowledged(): number {
    return this.holds.size + this.orphans.length;
  }

  /** The filters subscribed through this link. */
  filters(): string[] {
    return [...this.routes.keys()];
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
  async listen(filter: string, qos: 0 | 1, listener: Listener, options: ListenOptions = {}): Promise<Unlisten> {
    const entry: RouteListener = { fn: listener, manual: options.manualAck === true };
    let route = this.routes.get(filter);
    if (route) {
      route.listeners.push(entry);
    } else {
      const r: Route = {
        filter,
        qos,
        match: matchingFilter(filter),
        shared: filter.startsWith('$share/'),
        listeners: [entry],
        next: 0,
        ready: Promise.resolve(),
      };
      route = r;
      this.add(r);
      r.ready = this.subscribe(filter, qos, true);
      r.ready.catch(() => {
        if (this.routes.get(filter) === r) this.remove(r);
      });
    }
    const r = route;
    await r.ready;
    if (this.orphans.length > 0) setImmediate(() => this.claimOrphans());
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      const i = r.listeners.indexOf(entry);
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

  /**
   * Subscribe a filter of this link again (e.g. after a reconnection that kept the session, to have the broker send
   * its retained messages again). Resolves when granted.
   */
  async resubscribe(filter: string, qos: 0 | 1): Promise<void> {
    if (!this.routes.has(filter)) return;
    await this.subscribe(filter, qos, true);
  }

  /** Unsubscribe a filter that no route of this link uses (a leftover of a kept session). */
  async unsubscribeStale(filter: string): Promise<void> {
    if (this.routes.has(filter) || this.closing || !this.client.connected) return;
    await this.client.unsubscribeAsync(filter).catch(() => undefined);
    debug('%s unsubscribed leftover %s', this.clientId, filter);
  }

  /**
   * Publish; resolves once sent (QoS 0) or acknowledged by the broker (QoS 1), with whether the broker said that no
   * subscription matched (MQTT 5 PUBACK reason 0x10: the message went nowhere).
   */
  publish(topic: string, payload: Buffer, options: IClientPublishOptions): Promise<boolean> {
    return new Promise((resolve, reject) => this.publishThen(topic, payload, options, (err, unheard) => (err ? reject(err) : resolve(unheard))));
  }

  /** publish() with a callback instead of a promise (one allocation fewer per message, for the hot path). */
  publishThen(topic: string, payload: Buffer, options: IClientPublishOptions, done: (err: Error | undefined, unheard: boolean) => void): void {
    this.client.publish(topic, payload, options, (err, packet) => {
      if (err) return done(err, false);
      const id = packet?.messageId;
      const unheard = id !== undefined && options.qos === 1 && this.unheard.delete(id);
      if (flow.enabled) flow('%s: published %s #%s%s', this.clientId, topic, id, unheard ? ' (no matching subscribers)' : '');
      done(undefined, unheard);
    });
  }

  /**
   * Disconnect: gracefully (DISCONNECT) when connected and nothing is in flight, else at once. A kept session stays
   * on the broker with what this link had not acknowledged.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
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

  /**
   * SUBSCRIBE `filter`. `again`: even if mqtt.js thinks it is subscribed already (it would send nothing), e.g. to
   * repair a kept session's subscription or to have the broker send the retained messages again.
   */
  private subscribe(filter: string, qos: 0 | 1, again = false): Promise<void> {
    const request = again
      ? // The object form with `resubscribe: true` makes mqtt.js send the SUBSCRIBE whatever it remembers.
        this.client.subscribeAsync({ [filter]: { qos, ...(this.protocolVersion === 5 ? { nl: false, rap: false, rh: 0 } : {}) }, resubscribe: true } as never)
      : this.client.subscribeAsync(filter, { qos });
    return request.then((granted) => {
      if (granted.length === 0) throw new Error(`Broker did not answer the subscription to '${filter}'`);
      const refused = granted.find((g) => (g.qos & 0x80) !== 0);
      if (refused) throw new Error(`Broker refused the subscription to '${filter}' (code ${refused.qos})`);
      debug('%s subscribed %s', this.clientId, filter);
    });
  }

  /**
   * Route mqtt.js's outgoing PUBACKs through the holds: a PUBACK whose message has unsettled manual listeners waits
   * for them. Returns the client's original packet sender.
   */
  private holdAcks(): SendPacket {
    const client = this.client as unknown as { _sendPacket: SendPacket };
    const original = client._sendPacket.bind(this.client) as SendPacket;
    client._sendPacket = (packet, cb, ...rest) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined) {
        const hold = this.holds.get(packet.messageId);
        if (hold && hold.remaining > 0) {
          hold.puback = packet as Hold['puback'];
          // The packet pipeline goes on at once: the PUBACK follows when the message is settled.
          cb?.();
          return;
        }
        if (hold) this.holds.delete(packet.messageId);
      }
      original(packet, cb, ...rest);
    };
    return original;
  }

  /** A hold for a QoS 1 message (undefined for QoS 0, which has no PUBACK). */
  private newHold(packet: IPublishPacket): Hold | undefined {
    if (packet.qos === 0 || packet.messageId === undefined) return undefined;
    const hold: Hold = { messageId: packet.messageId, generation: this.generation, remaining: 0, puback: undefined, counted: false };
    this.holds.set(packet.messageId, hold);
    return hold;
  }

  /** One manual listener settled: send the PUBACK once all have (if mqtt.js asked for it and we are still connected). */
  private release(hold: Hold): void {
    if (hold.remaining <= 0) return;
    if (--hold.remaining > 0) return;
    if (this.holds.get(hold.messageId) === hold) this.holds.delete(hold.messageId);
    if (hold.counted && hold.generation === this.generation) {
      hold.counted = false;
      this.busy--;
      if (this.waiting.length > 0) setImmediate(() => this.pump());
    }
    if (hold.puback && hold.generation === this.generation && this.client.connected && !this.closing) {
      if (flow.enabled) flow('%s: puback #%d', this.clientId, hold.messageId);
      this.sendPacket(hold.puback, () => undefined);
    } else if (flow.enabled) {
      flow('%s: settled #%d, no puback (%s)', this.clientId, hold.messageId, hold.puback ? 'connection gone' : 'not asked yet');
    }
  }

  private add(route: Route): void {
    this.routes.set(route.filter, route);
    if (!/[+#]/.test(route.match)) this.literal.set(route.match, route);
  }

  private remove(route: Route): void {
    this.routes.delete(route.filter);
    if (this.literal.get(route.match) === route) this.literal.delete(route.match);
  }

  private routeOf(topic: string): Route | undefined {
    const route = this.literal.get(topic);
    if (route) return route;
    for (const r of this.routes.values()) {
      if (r.match !== topic && /[+#]/.test(r.match) && topicMatches(r.match, topic)) return r;
    }
    return undefined;
  }

  private dispatch(message: Omit<Received, 'settle'>): void {
    const route = this.routeOf(message.topic);
    if (flow.enabled) flow('%s: got %s #%s%s%s', this.clientId, message.topic, message.packet.messageId, message.packet.dup ? ' dup' : '', route ? '' : ' (no route)');
    if (route) return this.deliver(route, message, this.newHold(message.packet));
    if (this.keepsSession && message.packet.qos > 0) {
      // A kept session's message that came before we subscribed again: wait for its subscription.
      const hold = this.newHold(message.packet)!;
      hold.remaining = 1;
      this.orphans.push({ message, hold, at: Date.now() });
      this.sweeper ??= setInterval(() => this.sweepOrphans(), Math.min(1000, this.options.orphanGraceMs ?? 1000)).unref();
      return;
    }
    debug('%s: no subscription for %s', this.clientId, message.topic);
  }

  private deliver(route: Route, message: Omit<Received, 'settle'>, hold: Hold | undefined): void {
    const max = this.options.receiveMaximum;
    if (hold && max !== undefined && route.listeners.some((l) => l.manual) && (this.busy >= max || (this.waiting.length > 0 && !this.pumping))) {
      // Unacknowledged, it waits for a handler to be free (see `busy`).
      hold.remaining = 1;
      this.waiting.push({ message, hold });
      return;
    }
    // A copy: a listener may add or remove listeners while called.
    const targets = route.shared ? [route.listeners[route.next++ % Math.max(1, route.listeners.length)]].filter((l) => l !== undefined) : route.listeners.slice();
    if (hold) {
      hold.remaining = 0;
      for (const t of targets) if (t.manual) hold.remaining++;
      if (hold.remaining === 0) {
        // Nobody settles it: acknowledged now (or when mqtt.js asks, right after this).
        hold.remaining = 1;
        this.release(hold);
      } else {
        hold.counted = true;
        this.busy++;
      }
    }
    for (const target of targets) {
      let settled = false;
      const settle =
        target.manual && hold
          ? () => {
              if (settled) return;
              settled = true;
              this.release(hold);
            }
          : noop;
      this.call(target.fn, { topic: message.topic, payload: message.payload, packet: message.packet, settle });
    }
  }

  /** Hand waiting messages to their listeners while fewer than `receiveMaximum` are unsettled. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const max = this.options.receiveMaximum ?? Infinity;
      while (this.waiting.length > 0 && this.busy < max) {
        const { message, hold } = this.waiting.shift()!;
        if (hold.generation !== this.generation) continue;
        const route = this.routeOf(message.topic);
        if (route) this.deliver(route, message, hold);
        else this.release(hold); // its subscription is gone meanwhile: acknowledged and dropped, as on arrival
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Hand orphans to the routes that now match them. */
  private claimOrphans(): void {
    if (this.orphans.length === 0) return;
    const left: Orphan[] = [];
    for (const orphan of this.orphans) {
      const route = orphan.hold.generation === this.generation ? this.routeOf(orphan.message.topic) : undefined;
      if (route) this.deliver(route, orphan.message, orphan.hold);
      else if (orphan.hold.generation === this.generation) left.push(orphan);
    }
    this.orphans = left;
  }

  /** Acknowledge and drop the orphans nobody claimed in time. */
  private sweepOrphans(): void {
    this.claimOrphans();
    const now = Date.now();
    const grace = this.options.orphanGraceMs ?? ORPHAN_GRACE_MS;
    const expired = this.orphans.filter((o) => now - o.at >= grace);
    if (expired.length === 0) {
      if (this.orphans.length === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
      return;
    }
    this.orphans = this.orphans.filter((o) => now - o.at < grace);
    const topics = new Set<string>();
    for (const o of expired) {
      this.release(o.hold);
      topics.add(o.message.topic);
    }
    debug('%s: %d message(s) of the kept session claimed by no subscription, dropped (%s)', this.clientId, expired.length, [...topics].join(', '));
    for (const topic of topics) this.options.onOrphan?.(topic, this);
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
      this.options.onEvent(event, this);
    } catch (err) {
      debug('%s: event listener threw: %s', this.clientId, (err as Error).message);
    }
  }
}

function noop(): void {}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'msgflo';
}

/** A client id made of parts (e.g. role and instance), with characters every broker accepts. */
export function stableClientId(...parts: string[]): string {
  return parts.map(sanitize).join('-');
}

/**
 * One connection attempt, without retries. A clean session ends with the connection; a kept one (stable client id,
 * `sessionExpirySeconds`) stays on the broker and is resumed by the next connection with that id.
 */
const noLog = (): void => {};

function connectOnce(options: LinkOptions, clientId: string, version: ProtocolVersion, hook: (client: MqttClient) => Link): Promise<Link> {
  const keep = options.sessionExpirySeconds !== undefined;
  const properties: NonNullable<IClientOptions['properties']> = {};
  if (version === 5 && keep) properties.sessionExpiryInterval = options.sessionExpirySeconds!;
  if (version === 5 && options.receiveMaximum !== undefined) properties.receiveMaximum = options.receiveMaximum;
  const clientOptions: IClientOptions = {
    clientId,
    protocolVersion: version,
    clean: !keep,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // mqtt.js logs several times per message; even switched off, each call costs (its arguments are collected).
    ...(debugEnabled('mqttjs:client') ? {} : { log: noLog }),
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...credentials(options.url),
  };
  return new Promise<Link>((resolve, reject) => {
    let client: MqttClient;
    let link: Link;
    try {
      client = mqtt.connect(options.url, clientOptions);
      // Each packet as one buffer (see gather.ts); the socket exists already, its first packet (CONNECT) is written.
      if (client.stream) gatherWrites(client.stream);
      // Synchronously, before the connection can deliver anything.
      link = hook(client);
    } catch (err) {
      reject(err);
      return;
    }
    const settle = (err: Error | undefined) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (!err) return resolve(link);
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
