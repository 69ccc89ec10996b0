/**
 * The MQTT transport (mqtt.js): any MQTT 3.1.1 or 5 broker, and the embedded aedes broker.
 *
 * - A queue is the topic of the same name; bodies are plain JSON (msgflo-era participants read them as such).
 * - QoS 1 by default (`fast`: QoS 0). On MQTT 5, headers and the message id travel as user properties; on 3.1.1
 *   they are not carried (no message id: duplicates cannot be recognised there).
 * - At least once: a delivery is acknowledged to the broker (PUBACK) only once it is settled — acked, or nacked
 *   and its dead letter confirmed — so the broker keeps what a participant had not finished and, with a kept
 *   session, sends it again. A send resolves once the broker acknowledged it (QoS 1); sends made while the
 *   connection is down wait for it (at most `maxBuffered`, then they are refused with TransportClosedError).
 * - Deliveries come through their own connection ("data" link), apart from the one that publishes and follows
 *   binding records ("control" link): a slow handler holding PUBACKs never delays the records. With an
 *   `instance` (TransportOptions) the data link has a stable client id and a session the broker keeps, so a
 *   restarted instance gets what arrived for it meanwhile.
 * - A binding is a retained record on the broker (`msgflo/bindings/<tgt>/<src>`). Subscribers of `tgt` follow the
 *   records and subscribe each `src` themselves, so an edge outlives the process that made it (msgflo#24/#181).
 *   With `{bridge: true}` this transport also forwards src→tgt itself, as msgflo did, for participants that do
 *   not read records.
 * - `subscribe(queue, h, {group})` uses the shared subscription `$share/<group>/…` when the broker has them, so
 *   instances of one role share work.
 * - A nack publishes the message to `dead-<queue>` with its reason.
 */
import { deferred } from '../../util/deferred.js';
import { randomBytes } from 'node:crypto';
import type { IClientPublishOptions } from 'mqtt';
import { BrokerUrlError, TransportClosedError, codeOf, maskUrl, reasonOf } from '../../errors.js';
import { decodeBody, encodeBody, HEADER, sendId } from '../../protocol/envelope.js';
import { type SnoopChannel, parseSnoopTopic, snoopFilter, snoopTopic } from '../../protocol/snoop.js';
import { Backoff, delay } from '../../util/backoff.js';
import { logger } from '../../util/logger.js';
import type { TransportOptions } from '../types.js';
import type {
  Binding,
  BindingOptions,
  DeliveryHandler,
  Headers,
  InMessage,
  MessageHandler,
  QueueKind,
  QueueOptions,
  SendOptions,
  SnoopFilter,
  SnoopHandler,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportEvent,
} from '../types.js';
import { QueueFollower, type FollowerHost } from './follower.js';
import { Link, stableClientId, type Listener, type ProtocolVersion, type Received, type Unlisten } from './link.js';
import { deadLetter, MqttDelivery, mqttSafeProperties, toInMessage, userProperties } from './message.js';
import { RecordView, type RecordListener } from './records.js';
import {
  ALL_BINDINGS_FILTER,
  DISCOVERY_TOPIC,
  bindingOf,
  bindingRecordTopic,
  deadLetterTopic,
  encodeMarker,
  encodeRecord,
  followingTopic,
  instanceTopic,
  markerTopic,
  sharedFilter,
  validTopicName,
  type BindingRecord,
} from './topics.js';

const debug = logger('mqtt');

const SCHEMES = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:']);
/** How long a sync marker may take to come back before we answer with what we have. */
const SYNC_TIMEOUT_MS = 3000;
/** After the first marker of a new subscription: retained messages that a broker streams late (aedes). */
const SYNC_SETTLE_MS = 20;
/** How long the shared-subscription probe waits for its message (MQTT 3.1.1 brokers only). */
const SHARE_PROBE_MS = 500;
/** After a reconnection, how long a message no subscription took is published again (see publishUntilHeard). */
const UNHEARD_GRACE_MS = 30_000;
/** After a reconnect, before checking binding records again. */
const RESYNC_DELAY_MS = 200;
/** How long close() waits for unconfirmed publishes. */
const CLOSE_GRACE_MS = 5000;
/** Sends kept while the connection is down, by default (as the AMQP transport). */
export const DEFAULT_MAX_BUFFERED = 10_000;
/** Seconds the broker keeps an instance's session after its connection ends, by default. */
export const DEFAULT_SESSION_EXPIRY_S = 3600;
/** Inputs in flight per participant by default (MQTT 5 Receive Maximum of the data link). */
const DEFAULT_PREFETCH = 50;

export interface MqttTransportOptions extends TransportOptions {
  /** Sends kept while the connection is down (default 10,000); beyond that they are refused. */
  maxBuffered?: number;
  /** With an `instance`: seconds the broker keeps its session (default MSGFLO_MQTT_SESSION_EXPIRY, else 3600). */
  sessionExpirySeconds?: number;
  /** With an `instance`: how long a message of the resumed session waits for a subscription to claim it (tests). */
  orphanGraceMs?: number;
}

/** A subscription that can also stop taking messages while leaving them with the broker (see `pause`). */
export interface MqttSubscription extends Subscription {
  pause(): Promise<void>;
}

type Pool = 'control' | 'data';

interface ListenOn {
  pool: Pool;
  manualAck?: boolean;
  /** For the first data link: the Receive Maximum it asks for. */
  prefetch?: number;
}

type State = 'new' | 'open' | 'closed';

/** This process's claim on an instance's kept session (see watchClaims). */
interface InstanceClaim {
  readonly token: string;
  readonly since: number;
  link: Link | undefined;
  /** Set once a newer claim was heard: why we gave the session up. */
  lost: string | undefined;
}

/** A live view of binding records, the link its subscription is on, and its readiness. */
interface ViewEntry {
  readonly view: RecordView;
  link: Link | undefined;
  ready: Promise<{ unlisten: Unlisten; link: Link }>;
}

interface Bridge {
  readonly unlistens: Promise<Unlisten>[];
}

export class MqttTransport implements Transport {
  readonly url: string;
  readonly scheme = 'mqtt' as const;
  readonly brokerBindings = false;

  private readonly brokerUrl: string;
  private readonly name: string;
  private readonly instance: string | undefined;
  private readonly sessionExpiry: number;
  private readonly maxBuffered: number;
  private readonly orphanGraceMs: number | undefined;
  private state: State = 'new';
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly ended = deferred<Error | undefined>();
  /**
   * control[0] publishes; the data links carry deliveries (data[0] keeps the instance's session). Further links in
   * each pool carry subscriptions that overlap those of the others.
   */
  private readonly pools: Record<Pool, Link[]> = { control: [], data: [] };
  private readonly linkOpening: Record<Pool, Promise<void> | undefined> = { control: undefined, data: undefined };
  /** Shared-subscription groups used by this transport (to drop a kept session's leftover subscriptions). */
  private readonly groups = new Set<string>();
  private readonly listeners = new Set<(event: TransportEvent) => void>();
  private readonly pending = new Set<{ promise: Promise<void>; reject(err: Error): void }>();
  /** Sync markers awaited, by token: the filter whose listener must see it, and what to call then. */
  private readonly markers = new Map<string, { filter: string; seen: () => void }>();
  private readonly bridges = new Map<string, Bridge>();
  /** Live subscriptions: each entry silences one (on close, where the connection ends them anyway). */
  private readonly subscriptions = new Set<() => void>();
  /** Live views of binding records by filter, shared by the followers of one queue. */
  private readonly views = new Map<string, ViewEntry>();
  private sharedSupport: Promise<boolean> | undefined;
  /** When one of our links last came back after losing its connection (ms since the epoch; 0: never). */
  private lastReconnect = 0;

  constructor(url: string, options: MqttTransportOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new BrokerUrlError(url, 'not a URL');
    }
    if (!SCHEMES.has(parsed.protocol)) throw new BrokerUrlError(url, `'${parsed.protocol}' is not an MQTT scheme (mqtt, mqtts, ws, wss)`);
    this.brokerUrl = url;
    this.url = maskUrl(url);
    this.name = options.name ?? 'msgflo';
    this.instance = options.instance;
    this.maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.orphanGraceMs = options.orphanGraceMs;
    const env = options.env ?? process.env;
    const fromEnv = Number(env.MSGFLO_MQTT_SESSION_EXPIRY);
    this.sessionExpiry = Math.floor(
      options.sessionExpirySeconds ?? (env.MSGFLO_MQTT_SESSION_EXPIRY !== undefined && fromEnv >= 0 ? fromEnv : DEFAULT_SESSION_EXPIRY_S),
    );
  }

  /** Sends not done yet (QoS 1: not acknowledged by the broker; QoS 0: not written to the connection yet). */
  get sendsInFlight(): number {
    return this.pending.size;
  }

  /** 5 or 4 (3.1.1), once connected. */
  get protocolVersion(): ProtocolVersion | undefined {
    return this.pools.control[0]?.protocolVersion;
  }

  /** The client id of the connection that carries deliveries (stable with an `instance`), once one is open. */
  get deliveryClientId(): string | undefined {
    return this.pools.data[0]?.clientId;
  }

  /** Deliveries received and not yet acknowledged to the broker (tests, debugging). */
  get unacknowledged(): number {
    return [...this.pools.control, ...this.pools.data].reduce((n, l) => n + l.unacknowledged, 0);
  }

  // ---- lifetime -------------------------------------------------------------------------------------------

  connect(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new TransportClosedError('connect'));
    if (this.state === 'open') return Promise.resolve();
    this.connecting ??= (async () => {
      try {
        const link = await Link.open({ url: this.brokerUrl, name: this.name, onEvent: (e, l) => this.onLinkEvent(e, l) });
        if (this.state === 'closed') {
          await link.close();
          throw new TransportClosedError('connect');
        }
        this.pools.control = [link];
        this.state = 'open';
        debug('connected to %s as %s', this.url, link.clientId);
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasOpen = this.state === 'open';
      this.state = 'closed';
      await this.connecting?.catch(() => undefined);
      if (!wasOpen && this.pools.control.length === 0) return;
      this.bridges.clear();
      for (const silence of this.subscriptions) silence();
      this.subscriptions.clear();
      // Unconfirmed publishes: give them a moment, then fail them.
      const inFlight = [...this.pending];
      if (inFlight.length > 0) {
        await within(CLOSE_GRACE_MS, Promise.allSettled(inFlight.map((p) => p.promise)), undefined);
      }
      await Promise.all(Object.values(this.linkOpening).map((p) => p?.catch(() => undefined)));
      await Promise.all([...this.pools.control, ...this.pools.data].map((l) => l.close()));
      for (const p of this.pending) p.reject(new TransportClosedError('confirm a publish'));
      this.pending.clear();
      for (const marker of this.markers.values()) marker.seen();
      debug('closed %s', this.url);
      this.ended.resolve(undefined);
    })();
    return this.closing;
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }

  on(listener: (event: TransportEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- queues (MQTT topics need no declaration) ------------------------------------------------------------

  async createQueue(_kind: QueueKind, name: string, _options?: QueueOptions): Promise<void> {
    this.assertOpen('create a queue');
    this.assertTopic(name);
  }

  async removeQueue(_kind: QueueKind, _name: string): Promise<void> {
    this.assertOpen('remove a queue');
  }

  async queueExists(_kind: QueueKind, _name: string): Promise<boolean> {
    this.assertOpen('check a queue');
    return true;
  }

  // ---- messages -------------------------------------------------------------------------------------------

  async send(_kind: QueueKind, name: string, data: unknown, options: SendOptions = {}): Promise<void> {
    this.assertOpen(`send to '${name}'`);
    this.assertTopic(name);
    const headers: Headers = {};
    const given = options.headers;
    // Only a bridge may say a message was relayed (followers drop relayed copies of what they read directly).
    if (given) for (const k in given) if (k !== HEADER.via && k !== HEADER.relayed) headers[k] = given[k]!;
    const id = sendId(options);
    if (id !== undefined) headers[HEADER.id] = id;
    return this.publish(name, encodeBody(data), { qos: options.fast ? 0 : 1, headers, untilHeard: !options.fast });
  }

  async subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<MqttSubscription> {
    this.assertOpen(`subscribe to '${queue}'`);
    this.assertTopic(queue);
    const group = options.group !== undefined ? groupName(options.group) : undefined;
    const share = group !== undefined && (await this.sharedSubscriptions());
    this.assertOpen(`subscribe to '${queue}'`);
    if (share) this.groups.add(group);
    const filterFor = (topic: string) => (share ? sharedFilter(group, topic) : topic);
    const on: ListenOn = { pool: 'data', manualAck: true, prefetch: options.prefetch ?? DEFAULT_PREFETCH };
    const sendNack = (m: InMessage, reason: string, code: string | undefined) => this.sendDeadLetter(m, reason, code);
    const follower = new QueueFollower(this.followerHost(on), queue, filterFor, (received) => {
      const delivery = new MqttDelivery(queue, received, sendNack);
      try {
        handler(delivery);
      } catch (err) {
        debug('%s: handler threw: %s', queue, reasonOf(err));
        if (!delivery.settled) void delivery.nack(reasonOf(err), codeOf(err)).catch(() => undefined);
      }
    });
    const sub = await this.track(queue, follower);
    return {
      ...sub,
      // With a session the broker keeps: stop taking messages but stay subscribed, so that what is unsettled and
      // what arrives from now on waits in the session for this instance's return. Otherwise: unsubscribe.
      pause: async () => {
        if (this.sessionKept()) follower.pause();
        else await sub.cancel();
      },
    };
  }

  async tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen(`tap '${name}'`);
    this.assertTopic(name);
    const deliver = (received: Received) => handler(toInMessage(name, received));
    if (kind === 'inqueue') {
      // What reaches an inqueue includes what arrives through its bindings.
      return this.track(name, new QueueFollower(this.followerHost({ pool: 'control' }), name, (t) => t, deliver));
    }
    return this.trackListen(name, name, 1, deliver);
  }

  async announce(message: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    this.assertOpen('announce');
    const expiry = options.ttlMs !== undefined ? Math.max(1, Math.ceil(options.ttlMs / 1000)) : undefined;
    await this.publish(DISCOVERY_TOPIC, encodeBody(message), { qos: 1, expiry });
  }

  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    this.assertOpen('listen for discovery');
    return this.trackListen(DISCOVERY_TOPIC, DISCOVERY_TOPIC, 1, (received) => handler(toInMessage(DISCOVERY_TOPIC, received)));
  }

  // ---- snoop channel ---------------------------------------------------------------------------------------

  /** QoS 0, not retained: `msgflo/snoop/<channel>/<role>`. */
  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    this.assertOpen('publish on the snoop channel');
    await this.publish(snoopTopic(channel, role), encodeBody(data), { qos: 0 });
  }

  /** Plain (never shared) QoS 0 subscriptions: every watcher gets every line; the broker drops what a slow one misses. */
  async subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    this.assertOpen('subscribe to the snoop channel');
    const subs: Subscription[] = [];
    const deliver = (r: Received) => {
      const where = parseSnoopTopic(r.topic);
      if (!where) return;
      const { data, jsonError } = decodeBody(r.payload);
      try {
        handler({ ...where, data, raw: r.payload, jsonError });
      } catch (err) {
        debug('snoop handler failed: %s', reasonOf(err));
      }
    };
    try {
      const roles: Array<string | undefined> = filter.roles ? [...filter.roles] : [undefined];
      for (const channel of filter.channels) {
        for (const role of roles) {
          const f = snoopFilter(channel, role);
          subs.push(await this.trackListen(f, f, 0, deliver));
        }
      }
    } catch (err) {
      for (const s of subs) await s.cancel().catch(() => undefined);
      throw err;
    }
    return {
      queue: 'snoop',
      cancel: async () => {
        for (const s of subs) await s.cancel().catch(() => undefined);
      },
    };
  }

  // ---- bindings -------------------------------------------------------------------------------------------

  async addBinding(binding: Binding, options: BindingOptions = {}): Promise<void> {
    this.assertOpen('add a binding');
    this.assertBinding(binding);
    const bridged = options.bridge === true;
    const records = recordsOf(binding, bridged);
    // Wait (bounded) until a reader of the target says it follows the new record, when asked to.
    const confirmMs = !bridged && options.confirmMs ? options.confirmMs : 0;
    let confirmed: Promise<boolean> = Promise.resolve(true);
    let stopWaiting: Unlisten | undefined;
    if (confirmMs > 0) {
      let resolveConfirmed!: (ok: boolean) => void;
      confirmed = new Promise((r) => (resolveConfirmed = r));
      stopWaiting = (await this.listen(followingTopic(binding.tgt, binding.src), 1, () => resolveConfirmed(true))).unlisten;
      setTimeout(() => resolveConfirmed(false), confirmMs).unref();
    }
    try {
      await Promise.all(records.map((r) => this.publish(bindingRecordTopic(r.tgt, r.src), encodeRecord(r), { qos: 1, retain: true })));
      debug('binding %s -> %s recorded%s', binding.src, binding.tgt, bridged ? ' (bridged)' : '');
      if (bridged) await this.startBridge(records);
      if (!(await confirmed)) debug('binding %s -> %s: no reader of the target confirmed within %d ms', binding.src, binding.tgt, confirmMs);
    } finally {
      await stopWaiting?.();
    }
  }

  async removeBinding(binding: Binding): Promise<void> {
    this.assertOpen('remove a binding');
    this.assertBinding(binding);
    const records = recordsOf(binding, false);
    for (const r of records) await this.stopBridge(r);
    await Promise.all(records.map((r) => this.publish(bindingRecordTopic(r.tgt, r.src), Buffer.alloc(0), { qos: 1, retain: true })));
    debug('binding %s -> %s removed', binding.src, binding.tgt);
  }

  async listBindings(): Promise<Binding[]> {
    this.assertOpen('list bindings');
    // A permanent view of every record (made once), then a marker so that recent changes have arrived too.
    const { records } = await this.watchRecords(ALL_BINDINGS_FILTER, noop);
    const view = this.views.get(ALL_BINDINGS_FILTER)?.view;
    await this.sync(ALL_BINDINGS_FILTER, false);
    return (view?.current() ?? records).filter((r) => r.deadletterOf === undefined).map(bindingOf);
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private emit(event: TransportEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        debug('event listener threw: %s', (err as Error).message);
      }
    }
  }

  private onLinkEvent(event: TransportEvent, link: Link): void {
    if (event.type === 'reconnect') this.lastReconnect = Date.now();
    // Synchronous on purpose: the records views must expect the broker's resend before any message of the new
    // connection is handled (a record that came before beginResync() would be taken for gone).
    if (event.type === 'reconnect' && this.state === 'open') this.resyncRecords(link);
    this.emit(event);
  }

  private assertOpen(what: string): void {
    if (this.state !== 'open') throw new TransportClosedError(what);
  }

  private assertTopic(name: string): void {
    if (!validTopicName(name)) throw new TypeError(`'${name}' cannot be an MQTT topic (empty, or contains + # or NUL)`);
  }

  private assertBinding(binding: Binding): void {
    this.assertTopic(binding.src);
    this.assertTopic(binding.tgt);
    if (binding.deadletter !== undefined) this.assertTopic(binding.deadletter);
  }

  private get primary(): Link {
    const link = this.pools.control[0];
    if (!link || this.state !== 'open') throw new TransportClosedError('publish');
    return link;
  }

  /** Whether deliveries use a session the broker keeps after the connection ends. */
  private sessionKept(): boolean {
    return this.instance !== undefined && this.sessionExpiry > 0 && this.pools.data[0]?.keepsSession === true;
  }

  /**
   * Publish through the primary link; tracked so close() can wait for it. While the connection is down mqtt.js keeps
   * the publish and sends it on the next connection (QoS 1: resolved by its PUBACK then); at most `maxBuffered`
   * sends wait like that, further ones are refused.
   */
  private publish(
    topic: string,
    payload: Buffer,
    options: { qos: 0 | 1; retain?: boolean; headers?: Headers; expiry?: number; untilHeard?: boolean },
  ): Promise<void> {
    const link = this.primary;
    if (!link.connected && this.pending.size >= this.maxBuffered) {
      return Promise.reject(
        new TransportClosedError(`publish to '${topic}' (${this.pending.size} sends already wait for the broker to come back)`),
      );
    }
    const opts: IClientPublishOptions = { qos: options.qos, retain: options.retain === true };
    if (link.protocolVersion === 5) {
      const properties: NonNullable<IClientPublishOptions['properties']> = {};
      if (options.headers && Object.keys(options.headers).length > 0) properties.userProperties = mqttSafeProperties(options.headers);
      if (options.expiry !== undefined) properties.messageExpiryInterval = options.expiry;
      if (Object.keys(properties).length > 0) opts.properties = properties;
    }
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry = { promise, reject };
    // Tracked before publishing: mqtt.js calls back synchronously for a QoS 0 message written at once.
    this.pending.add(entry);
    const succeed = () => {
      this.pending.delete(entry);
      resolve();
    };
    const fail = (err: Error) => {
      this.pending.delete(entry);
      reject(err);
    };
    try {
      link.publishThen(topic, payload, opts, (err, unheard) => {
        if (err) fail(err);
        else if (unheard && options.untilHeard) this.publishAgainUntilHeard(link, topic, payload, opts).then(succeed, fail);
        else succeed();
      });
    } catch (err) {
      fail(err as Error);
    }
    return promise;
  }

  /**
   * After the broker said nobody took a message meant for a participant (`untilHeard`). A broker that restarted from
   * its persistence file may have sessions whose subscriptions do not work until their clients subscribe again
   * (Mosquitto 2.0 restores shared subscriptions that way): it then answers "no matching subscribers" and the message
   * is gone. So, for a while after one of our connections came back (UNHEARD_GRACE_MS), such a publish is made again
   * (with its id: nobody got it) until some subscription takes it or the while is over; at other times "no
   * subscribers" is what it says (an unbound outport).
   */
  private async publishAgainUntilHeard(link: Link, topic: string, payload: Buffer, opts: IClientPublishOptions): Promise<void> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 2000 });
    for (;;) {
      const since = Date.now() - Math.max(this.lastReconnect, link.reconnectedAt);
      if (since > UNHEARD_GRACE_MS || this.state !== 'open') return;
      const wait = backoff.next();
      debug('%s: no subscriber took the message, %d ms after a reconnection; again in %d ms', topic, since, wait);
      await delay(wait);
      if (!(await link.publish(topic, payload, opts))) return;
    }
  }

  /** Subscribe `filter` on a link of the pool where it overlaps nothing else, opening one if needed. */
  private async listen(filter: string, qos: 0 | 1, listener: Listener, on: ListenOn = { pool: 'control' }): Promise<{ unlisten: Unlisten; link: Link }> {
    for (;;) {
      this.assertOpen(`subscribe to '${filter}'`);
      const pool = this.pools[on.pool];
      const link = pool.find((l) => l.canTake(filter));
      if (link) {
        const unlisten = await link.listen(filter, qos, listener, { manualAck: on.manualAck === true });
        return {
          link,
          unlisten: async () => {
            await unlisten();
            this.dropIdleLink(on.pool, link);
          },
        };
      }
      this.linkOpening[on.pool] ??= this.addLink(on).finally(() => {
        this.linkOpening[on.pool] = undefined;
      });
      await this.linkOpening[on.pool];
    }
  }

  private async addLink(on: ListenOn): Promise<void> {
    const pool = this.pools[on.pool];
    const version = this.pools.control[0]?.protocolVersion;
    // The first data link of an instance keeps its session under a stable client id; every other link is clean.
    const keep = on.pool === 'data' && pool.length === 0 && this.instance !== undefined;
    const clientId = keep ? stableClientId(this.name, this.instance!) : undefined;
    const claim = clientId !== undefined ? await this.watchClaims(clientId) : undefined;
    const link = await Link.open({
      url: this.brokerUrl,
      name: on.pool === 'data' ? `${this.name}-data` : this.name,
      ...(clientId !== undefined ? { clientId, sessionExpirySeconds: this.sessionExpiry } : {}),
      ...(on.pool === 'data' && on.prefetch !== undefined ? { receiveMaximum: Math.max(1, Math.min(65535, on.prefetch)) } : {}),
      ...(version !== undefined ? { protocolVersion: version } : {}),
      onEvent: (e, l) => this.onLinkEvent(e, l),
      onOrphan: (topic, l) => this.dropLeftover(topic, l),
      ...(this.orphanGraceMs !== undefined ? { orphanGraceMs: this.orphanGraceMs } : {}),
    });
    if (this.state !== 'open') {
      await link.close();
      return;
    }
    debug('opened %s link %s%s', on.pool, link.clientId, keep ? ` (session kept ${this.sessionExpiry} s, ${link.sessionPresent ? 'resumed' : 'new'})` : '');
    pool.push(link);
    if (claim) {
      claim.link = link;
      if (claim.lost) link.giveUp(claim.lost);
      else this.publish(instanceTopic(link.clientId), encodeBody({ token: claim.token, since: claim.since, pid: process.pid }), { qos: 1 }).catch(() => undefined);
    }
  }

  /**
   * Hear which processes take the session of `clientId` from now on. The newest one keeps it: a process that hears
   * of a newer claim than its own gives its connection up (MSGFLO_ERR_INSTANCE_CONFLICT) instead of taking the
   * session back, which the broker would let it do, again and again. (MQTT 5 brokers may also say so with a
   * DISCONNECT "session taken over"; Mosquitto 2.0 just closes the connection.)
   */
  private async watchClaims(clientId: string): Promise<InstanceClaim> {
    const claim: InstanceClaim = { token: randomBytes(8).toString('hex'), since: Date.now(), link: undefined, lost: undefined };
    await this.listen(instanceTopic(clientId), 1, (m) => {
      const other = decodeBody(m.payload).data as { token?: unknown; since?: unknown; pid?: unknown } | null;
      if (typeof other?.token !== 'string' || typeof other.since !== 'number' || other.token === claim.token) return;
      const newer = other.since > claim.since || (other.since === claim.since && other.token > claim.token);
      if (!newer || claim.lost) return;
      claim.lost = `another process${typeof other.pid === 'number' ? ` (pid ${other.pid})` : ''} took this instance's session`;
      claim.link?.giveUp(claim.lost);
    });
    return claim;
  }

  private dropIdleLink(pool: Pool, link: Link): void {
    const links = this.pools[pool];
    if (link === links[0] || !link.idle || this.state !== 'open') return;
    this.pools[pool] = links.filter((l) => l !== link);
    void link.close();
  }

  /**
   * A kept session delivered messages on `topic` that no subscription of ours claimed: it still has a subscription
   * we no longer make (e.g. to the source of a binding removed while the instance was away). Drop it.
   */
  private dropLeftover(topic: string, link: Link): void {
    const filters = [topic, ...[...this.groups].map((g) => sharedFilter(g, topic))];
    for (const f of filters) void link.unsubscribeStale(f);
  }

  private followerHost(on: ListenOn): FollowerHost {
    return {
      protocolVersion: this.primary.protocolVersion,
      listen: async (filter, qos, listener) => (await this.listen(filter, qos, listener, on)).unlisten,
      watchRecords: (filter, listener) => this.watchRecords(filter, listener),
      announceFollowing: (tgt, src) => {
        this.publish(followingTopic(tgt, src), encodeBody({ tgt, src }), { qos: 1 }).catch((err: Error) =>
          debug('cannot announce that %s follows %s: %s', tgt, src, err.message),
        );
      },
    };
  }

  private async track(queue: string, follower: QueueFollower): Promise<Subscription> {
    const silence = () => follower.silence();
    this.subscriptions.add(silence);
    try {
      await follower.start();
    } catch (err) {
      this.subscriptions.delete(silence);
      throw err;
    }
    return {
      queue,
      cancel: async () => {
        if (!this.subscriptions.delete(silence)) return;
        await follower.cancel();
      },
    };
  }

  private async trackListen(queue: string, filter: string, qos: 0 | 1, deliver: (r: Received) => void): Promise<Subscription> {
    let active = true;
    const { unlisten } = await this.listen(filter, qos, (r) => {
      if (active) deliver(r);
    });
    const silence = () => {
      active = false;
    };
    this.subscriptions.add(silence);
    return {
      queue,
      cancel: async () => {
        active = false;
        if (!this.subscriptions.delete(silence)) return;
        await unlisten();
      },
    };
  }

  /**
   * Wait until everything retained under `filter` has reached our listeners: publish a marker that matches the
   * filter and wait for it to come back (the broker delivers it after what it queued before). `initial` adds a
   * short settle for brokers that stream retained messages after answering the subscription (aedes).
   */
  private async sync(filter: string, initial: boolean): Promise<boolean> {
    const token = randomBytes(8).toString('hex');
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => {
      this.markers.set(token, { filter, seen: () => resolve(true) });
      timer = setTimeout(() => resolve(false), SYNC_TIMEOUT_MS);
    });
    let ok: boolean;
    try {
      await this.publish(markerTopic(filter, token), encodeMarker(token), { qos: 1 });
      ok = await back;
      if (!ok) debug('sync marker on %s did not come back within %d ms', filter, SYNC_TIMEOUT_MS);
    } finally {
      clearTimeout(timer);
      this.markers.delete(token);
    }
    if (initial) await delay(SYNC_SETTLE_MS);
    return ok;
  }

  /**
   * After `link` reconnected: have the broker send the retained records of every view on that link again (subscribe
   * again: a kept session would not send them by itself) and drop the records not sent again before a marker —
   * removed meanwhile, or lost with a broker that restarted without persistence.
   *
   * Must be called synchronously from the reconnect event (see onLinkEvent): records the broker sends right after
   * CONNACK must find the view already expecting them.
   */
  private resyncRecords(link: Link): void {
    const mine = [...this.views].filter(([, entry]) => entry.link === link);
    for (const [, { view }] of mine) view.beginResync();
    if (mine.length === 0) return;
    void (async () => {
      await delay(RESYNC_DELAY_MS); // mqtt.js subscribes again first when the broker lost the session
      for (const [filter, { view }] of mine) {
        if (this.state !== 'open') return;
        let complete = false;
        try {
          await link.resubscribe(filter, 1);
          complete = await this.sync(filter, true);
        } catch (err) {
          debug('resync of %s failed: %s', filter, (err as Error).message);
        }
        if (this.state !== 'open') return;
        view.endResync(complete);
      }
    })();
  }

  /** A marker reached the listener of `filter` (another listener seeing it proves nothing about this one). */
  private markerSeen(token: string, filter: string): void {
    const marker = this.markers.get(token);
    if (marker?.filter === filter) marker.seen();
  }

  /**
   * Join the live view of the binding records under `filter`, subscribing it (and waiting for its retained
   * records) on first use. The subscription ends when the last one stops, except for the view of all records,
   * which listBindings keeps.
   */
  private async watchRecords(filter: string, listener: RecordListener): Promise<{ records: BindingRecord[]; stop: Unlisten }> {
    let entry = this.views.get(filter);
    if (!entry) {
      const view = new RecordView(filter, (token) => this.markerSeen(token, filter));
      const e: ViewEntry = { view, link: undefined, ready: Promise.resolve(undefined as never) };
      e.ready = (async () => {
        const listening = await this.listen(filter, 1, (m) => view.handle(m));
        e.link = listening.link;
        await this.sync(filter, true);
        return listening;
      })();
      entry = e;
      this.views.set(filter, e);
      e.ready.catch(() => {
        if (this.views.get(filter) === e) this.views.delete(filter);
      });
    }
    const { view, ready } = entry;
    const { unlisten } = await ready;
    const records = view.join(listener);
    let stopped = false;
    return {
      records,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        view.leave(listener);
        if (view.size > 0 || filter === ALL_BINDINGS_FILTER || this.views.get(filter)?.view !== view) return;
        this.views.delete(filter);
        await unlisten();
      },
    };
  }

  /** Whether `$share/…` works: MQTT 5 says so in CONNACK; on 3.1.1 we try once. */
  private sharedSubscriptions(): Promise<boolean> {
    this.sharedSupport ??= (async () => {
      const link = this.primary;
      if (link.protocolVersion === 5) return link.serverProperties.sharedSubscriptionAvailable !== false;
      const topic = `msgflo/probe/${link.clientId}`;
      let arrived!: () => void;
      const got = new Promise<boolean>((resolve) => {
        arrived = () => resolve(true);
      });
      const { unlisten } = await this.listen(sharedFilter('msgflo-probe', topic), 1, () => arrived());
      try {
        await this.publish(topic, encodeBody({ probe: 'shared-subscriptions' }), { qos: 1 });
        return await within(SHARE_PROBE_MS, got, false);
      } finally {
        await unlisten();
      }
    })().then((ok) => {
      debug(ok ? 'broker has shared subscriptions' : 'broker has no shared subscriptions: every member of a group gets every message');
      return ok;
    });
    this.sharedSupport.catch(() => {
      this.sharedSupport = undefined;
    });
    return this.sharedSupport;
  }

  private async sendDeadLetter(message: InMessage, reason: string, code: string | undefined): Promise<void> {
    if (this.state !== 'open') throw new TransportClosedError(`dead-letter a message from '${message.queue}'`);
    const withHeaders = this.primary.protocolVersion === 5;
    const dead = deadLetter(message, reason, code, withHeaders);
    await this.publish(deadLetterTopic(message.queue), dead.payload, { qos: 1, headers: dead.headers, untilHeard: true });
    debug('%s: message dead-lettered: %s', message.queue, reason);
  }

  private async startBridge(records: BindingRecord[]): Promise<void> {
    for (const record of records) {
      const key = bridgeKey(record);
      if (this.bridges.has(key)) continue;
      const bridge: Bridge = { unlistens: [] };
      this.bridges.set(key, bridge);
      const unlisten = this.listen(record.src, 1, (m) => {
        if (this.bridges.get(key) === bridge) this.relay(record, m);
      }).then((l) => l.unlisten);
      bridge.unlistens.push(unlisten);
      try {
        await unlisten;
      } catch (err) {
        this.bridges.delete(key);
        throw err;
      }
      debug('bridging %s -> %s', record.src, record.tgt);
    }
  }

  private async stopBridge(record: BindingRecord): Promise<void> {
    const key = bridgeKey(record);
    const bridge = this.bridges.get(key);
    if (!bridge) return;
    this.bridges.delete(key);
    await Promise.all(bridge.unlistens.map(async (u) => (await u.catch(() => undefined))?.()));
    debug('bridge %s -> %s stopped', record.src, record.tgt);
  }

  /** Forward one message src→tgt unchanged (body, id, headers), marking it as relayed. */
  private relay(record: BindingRecord, m: Received): void {
    if (this.state !== 'open') return;
    const headers: Headers = { ...userProperties(m.packet), [HEADER.via]: record.src, [HEADER.relayed]: 'bridge' };
    this.publish(record.tgt, m.payload, { qos: m.packet.qos === 0 ? 0 : 1, headers, untilHeard: m.packet.qos !== 0 }).catch((err: unknown) => {
      debug('bridge %s -> %s: %s', record.src, record.tgt, (err as Error).message);
      if (this.state === 'open') this.emit({ type: 'error', error: err as Error });
    });
  }
}

function noop(): void {}

/** `promise`, or `fallback` after `ms` (the timer does not outlive the answer). */
async function within<T, F>(ms: number, promise: Promise<T>, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The records a binding is stored as: itself, and for a roundrobin deadletter, `dead-<tgt>` → deadletter. */
function recordsOf(binding: Binding, bridged: boolean): BindingRecord[] {
  const main: BindingRecord = { type: binding.type, src: binding.src, tgt: binding.tgt };
  if (binding.deadletter !== undefined) main.deadletter = binding.deadletter;
  if (bridged) main.bridged = true;
  const records = [main];
  if (binding.type === 'roundrobin' && binding.deadletter !== undefined) {
    const dead: BindingRecord = { type: 'pubsub', src: deadLetterTopic(binding.tgt), tgt: binding.deadletter, deadletterOf: binding.tgt };
    if (bridged) dead.bridged = true;
    records.push(dead);
  }
  return records;
}

function bridgeKey(record: BindingRecord): string {
  return `${record.src}\u0000${record.tgt}`;
}

/** A shared-subscription group is one topic level: other characters are replaced. */
function groupName(group: string): string {
  return group.replace(/[/+#]/g, '_') || '_';
}
