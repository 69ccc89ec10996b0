/**
 * The MQTT transport's connections ("links", link.ts): the pools they are in, opening and closing them, putting
 * each subscription on a link where it overlaps no other, the claim on an instance's kept session, and the
 * connection events. The reconnection policy of a link is transport/reconnect.ts, as for every transport.
 *
 * - control[0] publishes and follows binding records; the data links carry deliveries (data[0] keeps the
 *   instance's session). Further links in each pool carry subscriptions that overlap those of the others. A slow
 *   handler holding PUBACKs on a data link never delays the records.
 * - With an `instance` (TransportOptions) the first data link has a stable client id and a session the broker
 *   keeps, so a restarted instance gets what arrived for it meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { BrokerUrlError, TransportClosedError, maskUrl } from '../../errors.js';
import { decodeBody, encodeBody } from '../../protocol/envelope.js';
import { readSetting } from '../../settings.js';
import { logger } from '../../util/logger.js';
import { Listeners } from '../listeners.js';
import type { TransportEvent, TransportOptions } from '../types.js';
import { Link, stableClientId, type Listener, type Unlisten } from './link.js';
import { instanceTopic, sharedFilter } from './topics.js';

const debug = logger('mqtt');

const SCHEMES = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:']);

export interface MqttTransportOptions extends TransportOptions {
  /** Sends kept while the connection is down (default MAX_BUFFERED_SENDS); beyond that they are refused. */
  maxBuffered?: number;
  /** With an `instance`: seconds the broker keeps its session (default MSGFLO_MQTT_SESSION_EXPIRY, else 3600). */
  sessionExpirySeconds?: number;
  /** With an `instance`: how long a message of the resumed session waits for a subscription to claim it (tests). */
  orphanGraceMs?: number;
}

export type Pool = 'control' | 'data';

/** Where a subscription goes, and how. */
export interface ListenOn {
  pool: Pool;
  manualAck?: boolean;
  /** For a data link it opens: the Receive Maximum it asks for (prefetchOf). */
  prefetch?: number;
}

/** What the connections need of the rest of the transport. */
export interface ConnectionHooks {
  /** A link came back. Called synchronously, before any message of the new connection is handled. */
  reconnected(link: Link): void;
  /** Publish at QoS 1 (a claim on a kept session). */
  publish(topic: string, payload: Buffer): Promise<void>;
}

/** This process's claim on an instance's kept session (see watchClaims). */
interface InstanceClaim {
  readonly token: string;
  readonly since: number;
  link: Link | undefined;
  /** Set once a newer claim was heard: why we gave the session up. */
  lost: string | undefined;
}

export class MqttConnection {
  /** The broker URL without its password. */
  readonly url: string;
  readonly name: string;
  private readonly brokerUrl: string;
  private readonly instance: string | undefined;
  private readonly sessionExpiry: number;
  private readonly orphanGraceMs: number | undefined;
  private state: 'new' | 'open' | 'closed' = 'new';
  private connecting: Promise<void> | undefined;
  readonly pools: Record<Pool, Link[]> = { control: [], data: [] };
  private readonly linkOpening: Record<Pool, Promise<void> | undefined> = { control: undefined, data: undefined };
  /** Shared-subscription groups used by this transport (to drop a kept session's leftover subscriptions). */
  readonly groups = new Set<string>();
  private readonly listeners = new Listeners<TransportEvent>(debug);
  /** When one of our links last came back after losing its connection (ms since the epoch; 0: never). */
  lastReconnect = 0;

  constructor(
    url: string,
    options: MqttTransportOptions,
    private readonly hooks: ConnectionHooks,
  ) {
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
    this.orphanGraceMs = options.orphanGraceMs;
    this.sessionExpiry = Math.floor(options.sessionExpirySeconds ?? readSetting(options.env ?? process.env, 'mqttSessionExpiry'));
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  assertOpen(what: string): void {
    if (this.state !== 'open') throw new TransportClosedError(what);
  }

  /** The link that publishes. */
  get primary(): Link {
    const link = this.pools.control[0];
    if (!link || this.state !== 'open') throw new TransportClosedError('publish');
    return link;
  }

  /** Whether deliveries use a session the broker keeps after the connection ends. */
  sessionKept(): boolean {
    return this.instance !== undefined && this.sessionExpiry > 0 && this.pools.data[0]?.keepsSession === true;
  }

  /** Deliveries received and not yet acknowledged to the broker, over all links. */
  get unacknowledged(): number {
    return [...this.pools.control, ...this.pools.data].reduce((n, l) => n + l.unacknowledged, 0);
  }

  on(listener: (event: TransportEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  emit(event: TransportEvent): void {
    this.listeners.emit(event);
  }

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

  /** No more operations from now on. Resolves, once a connection under way has settled, with whether one was made. */
  async stop(): Promise<boolean> {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    await this.connecting?.catch(() => undefined);
    return wasOpen || this.pools.control.length > 0;
  }

  /** Close every link (after stop()), once those being opened are. */
  async closeLinks(): Promise<void> {
    await Promise.all(Object.values(this.linkOpening).map((p) => p?.catch(() => undefined)));
    await Promise.all([...this.pools.control, ...this.pools.data].map((l) => l.close()));
  }

  /** Subscribe `filter` on a link of the pool where it overlaps nothing else, opening one if needed. */
  async listen(filter: string, qos: 0 | 1, listener: Listener, on: ListenOn = { pool: 'control' }): Promise<{ unlisten: Unlisten; link: Link }> {
    for (;;) {
      this.assertOpen(`subscribe to '${filter}'`);
      const link = this.pools[on.pool].find((l) => l.canTake(filter));
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
      // MQTT 5 forbids a Receive Maximum of 0: a prefetch of 0 means one at a time here.
      ...(on.pool === 'data' && on.prefetch !== undefined ? { receiveMaximum: Math.max(1, on.prefetch) } : {}),
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
      else this.hooks.publish(instanceTopic(link.clientId), encodeBody({ token: claim.token, since: claim.since, pid: process.pid })).catch(() => undefined);
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

  private onLinkEvent(event: TransportEvent, link: Link): void {
    if (event.type === 'reconnect') this.lastReconnect = Date.now();
    // Synchronous on purpose: the records views must expect the broker's resend before any message of the new
    // connection is handled (a record that came before their resync began would be taken for gone).
    if (event.type === 'reconnect' && this.state === 'open') this.hooks.reconnected(link);
    this.emit(event);
  }
}
