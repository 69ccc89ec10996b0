/**
 * One MQTT connection (mqtt.js client) and the topic subscriptions routed through it: its lifecycle and dispatch.
 *
 * Connecting fails fast (no reconnect loop before the first CONNACK) so one-shot tools get a clear error; after
 * the first connection the client reconnects by itself, with the delays the shared ConnectionState (transport/reconnect.ts) gives, and the link
 * reports disconnect/reconnect/error events.
 *
 * What a link does with a received message is split by concern: which subscription it belongs to (link-routes.ts),
 * when its PUBACK goes out and how many are unsettled at a time (link-acks.ts), and what a kept session delivers
 * before its subscriptions are made again (link-orphans.ts).
 *
 * **Kept sessions.** With a stable client id and `sessionExpirySeconds`, the session (its subscriptions, its
 * queued and in-flight messages) outlives the connection and the process.
 */
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import { InstanceConflictError, SubscriptionRefusedError } from '../../errors.js';
import { logger } from '../../util/logger.js';
import type { TransportEvent } from '../types.js';
import { holdPubacks, setReconnectDelay, socketOf, subscribeAnyway, unconfirmedCount, type PubackPacket } from './internals.js';
import { AckWindow, type Hold } from './link-acks.js';
import { ConnectionState } from '../reconnect.js';
import { connectError, connectOnce, randomClientId, versionRefused, type OpenOptions, type ProtocolVersion } from './link-open.js';
import { Orphans } from './link-orphans.js';
import { Routes, type Arrival, type ListenOptions, type Listener, type Received, type Route, type RouteListener, type Unlisten } from './link-routes.js';

export type { ProtocolVersion } from './link-open.js';
export { stableClientId } from './link-open.js';
export type { Listener, Received, Unlisten } from './link-routes.js';

const debug = logger('mqtt');
/** Per message (DEBUG=msgflo:mqtt:flow): deliveries and publishes. */
const flow = logger('mqtt:flow');

export interface LinkOptions extends OpenOptions {
  /** Client id prefix; a random suffix is appended (unless `clientId` is given). */
  name: string;
  /** The exact client id (stable: a kept session is found again by it). */
  clientId?: string;
  /** Protocol to use; undefined: MQTT 5, falling back to 3.1.1 when the broker refuses 5. */
  protocolVersion?: ProtocolVersion;
  onEvent(event: TransportEvent, link: Link): void;
  /** A message no subscription claimed within the grace period (kept sessions only); it has been acknowledged. */
  onOrphan?(topic: string, link: Link): void;
  /** How long a kept session's message may wait for a subscription that claims it (default ORPHAN_GRACE_MS). */
  orphanGraceMs?: number;
}

/** MQTT 5 PUBACK reason: the broker accepted the message, but no subscription matched it. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
/** MQTT 5 DISCONNECT reason: another connection with our client id took the session. */
const SESSION_TAKEN_OVER = 0x8e;

export class Link {
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  /** Whether the session outlives the connection (stable client id, clean: false). */
  readonly keepsSession: boolean;
  /** When the broker last accepted a new connection of this link after the first one (ms since the epoch; 0: never). */
  reconnectedAt = 0;
  private readonly client: MqttClient;
  private readonly options: LinkOptions;
  private readonly routes = new Routes();
  private readonly acks: AckWindow;
  private readonly orphans: Orphans;
  private closing: Promise<void> | undefined;
  private isOpen = false;
  /** The reconnection policy every transport follows (transport/reconnect.ts); mqtt.js does the reconnecting. */
  private readonly state = new ConnectionState({ emit: (event) => this.emit(event) });
  private takenOver = false;
  /** The last CONNACK that accepted a connection (its session flag and MQTT 5 properties). */
  private connack: { sessionPresent?: boolean; properties?: Record<string, unknown> } | undefined;
  /** Our QoS 1 publishes whose PUBACK said "no matching subscribers", by packet id (read by publish()). */
  private readonly unheard = new Set<number>();

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
    let sendPuback: (packet: PubackPacket) => void = () => undefined;
    this.acks = new AckWindow(
      {
        clientId,
        canSend: () => client.connected && !this.closing,
        send: (packet) => sendPuback(packet),
        // A subscription gone meanwhile: acknowledged and dropped, as on arrival.
        redeliver: (message, hold) => this.claim(message, hold) || this.acks.release(hold),
      },
      options.receiveMaximum,
    );
    this.orphans = new Orphans(
      {
        generation: () => this.acks.generation,
        claim: (message, hold) => this.claim(message, hold),
        release: (hold) => this.acks.release(hold),
        dropped: (topics, count) => {
          debug('%s: %d message(s) of the kept session claimed by no subscription, dropped (%s)', clientId, count, topics.join(', '));
          for (const topic of topics) this.options.onOrphan?.(topic, this);
        },
      },
      options.orphanGraceMs,
    );
    sendPuback = holdPubacks(client, (packet) => this.acks.intercept(packet));
    client.on('message', (topic, payload, packet) => this.dispatch({ topic, payload, packet }));
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) {
        this.unheard.add(packet.messageId);
      }
      if (packet.cmd !== 'connack') return;
      if ((packet.reasonCode ?? packet.returnCode ?? 0) === 0) this.connack = packet;
      // mqtt.js says 'connect' only once it has resent what it kept and had it acknowledged: the CONNACK is earlier.
      if (this.isOpen) this.reconnectedAt = Date.now();
    });
    client.on('close', () => {
      this.acks.reset();
      this.unheard.clear();
      this.orphans.clear();
      if (this.closing || !this.isOpen) return;
      // The next attempt waits longer (mqtt.js reads the delay when it schedules the attempt after this one).
      // The first close of an outage reports it (once) and starts the backoff over; each one sets the next delay.
      if (this.state.lost()) debug('%s: connection lost', clientId);
      if (!this.takenOver) setReconnectDelay(client, this.state.nextDelay());
    });
    client.on('connect', () => {
      if (!this.isOpen) return;
      if (this.state.phase !== 'lost') return;
      debug('%s: reconnected (session %s)', clientId, this.sessionPresent ? 'kept' : 'new');
      // mqtt.js subscribes again only when the broker says it lost the session. A kept session's subscriptions may
      // still be broken: Mosquitto 2.0 restores shared subscriptions from its persistence file in a state that
      // delivers nothing. Make them again (the same subscription made again replaces itself, and repairs those).
      if (this.keepsSession && this.sessionPresent) {
        for (const route of this.routes.all()) {
          this.subscribe(route.filter, route.qos).catch((err: Error) => debug('%s: subscribing %s again failed: %s', clientId, route.filter, err.message));
        }
      }
      // Synchronous: listeners prepare (e.g. for the retained records the broker sends again) before any message
      // of the new connection is handled. The backoff starts over; mqtt.js reads the delay for the next outage now.
      this.state.reconnected();
      setReconnectDelay(client, this.state.nextDelay());
    });
    client.on('disconnect', (packet: { reasonCode?: number }) => {
      if (packet.reasonCode !== SESSION_TAKEN_OVER || this.closing || !this.isOpen) return;
      this.giveUp('the broker says another connection took the session');
    });
    client.on('error', (error) => {
      if (this.closing || !this.isOpen) return;
      debug('%s: %s', clientId, error.message);
      this.state.error(error);
    });
  }

  /**
   * Another connection uses our client id and took our session: reconnecting would take it back, and the other
   * would take it back again, forever. Stop reconnecting, drop the connection, and report InstanceConflictError.
   */
  giveUp(why: string): void {
    if (this.takenOver || this.closing) return;
    this.takenOver = true;
    setReconnectDelay(this.client, 0);
    debug('%s: %s; not reconnecting', this.clientId, why);
    this.client.end(true);
    this.emit({ type: 'error', error: new InstanceConflictError(this.clientId) });
  }

  /** Connect once; resolves when the broker accepted the connection, rejects with a coded error otherwise. */
  static async open(options: LinkOptions): Promise<Link> {
    const clientId = options.clientId ?? randomClientId(options.name);
    const versions: ProtocolVersion[] = options.protocolVersion ? [options.protocolVersion] : [5, 4];
    for (let i = 0; ; i++) {
      const version = versions[i]!;
      try {
        const link = await connectOnce(options, clientId, version, (client) => new Link(client, clientId, version, options));
        link.opened();
        debug('%s connected (MQTT %s, %s session)', clientId, version === 5 ? '5' : '3.1.1', link.keepsSession ? 'kept' : 'clean');
        return link;
      } catch (err) {
        if (i + 1 < versions.length && versionRefused(err)) {
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
    this.state.opened();
    setReconnectDelay(this.client, this.state.nextDelay());
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Whether the broker resumed a session it kept for us (last CONNACK). */
  get sessionPresent(): boolean {
    return this.connack?.sessionPresent === true;
  }

  /** The broker's CONNACK properties (MQTT 5), e.g. `sharedSubscriptionAvailable`. */
  get serverProperties(): Record<string, unknown> {
    return this.connack?.properties ?? {};
  }

  get idle(): boolean {
    return this.routes.size === 0;
  }

  /** Messages received and not yet acknowledged (held PUBACKs and orphans), for tests and debugging. */
  get unacknowledged(): number {
    return this.acks.size + this.orphans.size;
  }

  /** Whether `filter` can be routed through this link without overlapping another of its subscriptions. */
  canTake(filter: string): boolean {
    return !this.closing && this.routes.canTake(filter);
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
      const r = Routes.make(filter, qos, entry);
      route = r;
      this.routes.add(r);
      r.ready = this.subscribe(filter, qos);
      r.ready.catch(() => {
        if (this.routes.get(filter) === r) this.routes.remove(r);
      });
    }
    const r = route;
    await r.ready;
    this.orphans.claimSoon();
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      const i = r.listeners.indexOf(entry);
      if (i >= 0) r.listeners.splice(i, 1);
      if (r.listeners.length > 0 || this.routes.get(filter) !== r) return;
      this.routes.remove(r);
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
    if (!this.routes.get(filter)) return;
    await this.subscribe(filter, qos);
  }

  /** Unsubscribe a filter that no route of this link uses (a leftover of a kept session). */
  async unsubscribeStale(filter: string): Promise<void> {
    if (this.routes.get(filter) || this.closing || !this.client.connected) return;
    await this.client.unsubscribeAsync(filter).catch(() => undefined);
    debug('%s unsubscribed leftover %s', this.clientId, filter);
  }

  /**
   * Publish; `done` once sent (QoS 0) or acknowledged by the broker (QoS 1), with whether the broker said that no
   * subscription matched (MQTT 5 PUBACK reason 0x10: the message went nowhere). A callback, not a promise: one
   * allocation fewer per message, on the hot path.
   */
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
      this.orphans.stop();
      const client = this.client;
      const graceful = client.connected && unconfirmedCount(client) === 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socketOf(client)?.destroy();
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
   * SUBSCRIBE `filter`, even if mqtt.js thinks it is subscribed already (it would send nothing): e.g. to repair a
   * kept session's subscription or to have the broker send the retained messages again.
   */
  private async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    const granted = await subscribeAnyway(this.client, filter, qos, this.protocolVersion === 5);
    const refused = granted.find((g) => (g.qos & 0x80) !== 0);
    if (refused) throw new SubscriptionRefusedError(filter, refused.qos);
    debug('%s subscribed %s', this.clientId, filter);
  }

  private dispatch(message: Arrival): void {
    const route = this.routes.of(message.topic);
    if (flow.enabled) flow('%s: got %s #%s%s%s', this.clientId, message.topic, message.packet.messageId, message.packet.dup ? ' dup' : '', route ? '' : ' (no route)');
    if (route) return this.deliver(route, message, this.acks.hold(message.packet));
    if (this.keepsSession && message.packet.qos > 0) {
      // A kept session's message that came before we subscribed again: wait for its subscription.
      this.orphans.add(message, this.acks.hold(message.packet)!);
      return;
    }
    debug('%s: no subscription for %s', this.clientId, message.topic);
  }

  /** Deliver a message that was held back to the route that matches it now; false when none does. */
  private claim(message: Arrival, hold: Hold): boolean {
    const route = this.routes.of(message.topic);
    if (route) this.deliver(route, message, hold);
    return route !== undefined;
  }

  private deliver(route: Route, message: Arrival, hold: Hold | undefined): void {
    if (hold && this.options.receiveMaximum !== undefined && route.listeners.some((l) => l.manual) && this.acks.full()) {
      // Unacknowledged, it waits for a handler to be free (see AckWindow).
      this.acks.wait(message, hold);
      return;
    }
    const targets = Routes.targets(route);
    if (hold) {
      let manual = 0;
      for (const t of targets) if (t.manual) manual++;
      this.acks.handed(hold, manual);
    }
    for (const target of targets) {
      let settled = false;
      const settle =
        target.manual && hold
          ? () => {
              if (settled) return;
              settled = true;
              this.acks.release(hold);
            }
          : noop;
      this.call(target.fn, { topic: message.topic, payload: message.payload, packet: message.packet, settle });
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
      this.options.onEvent(event, this);
    } catch (err) {
      debug('%s: event listener threw: %s', this.clientId, (err as Error).message);
    }
  }
}

function noop(): void {}
