/**
 * The MQTT transport (mqtt.js): any MQTT 3.1.1 or 5 broker, and the embedded aedes broker; QoS 1, at least once.
 * This class only puts the parts together, one per concern of the Transport interface: connection.ts, publish.ts,
 * consume.ts (follower.ts), topology.ts (records.ts, bridge.ts), discovery.ts, snoop.ts; what it uses of mqtt.js
 * beyond the documented API is in internals.ts.
 */
import type { SnoopChannel } from '../../protocol/snoop.js';
import { deferred } from '../../util/deferred.js';
import { logger } from '../../util/logger.js';
import { MAX_BUFFERED_SENDS } from '../defaults.js';
import type * as T from '../types.js';
import { Bridges } from './bridge.js';
import { MqttConnection, type MqttTransportOptions } from './connection.js';
import { Consumer, type MqttSubscription } from './consume.js';
import { Discovery } from './discovery.js';
import type { ProtocolVersion } from './link.js';
import { Publisher } from './publish.js';
import { RecordViews } from './records.js';
import { Snoop } from './snoop.js';
import { Topology } from './topology.js';

export type { MqttTransportOptions } from './connection.js';
export type { MqttSubscription } from './consume.js';

const debug = logger('mqtt');

/** How long close() waits for unconfirmed publishes: not the shared CLOSE_TIMEOUT_MS, as a launched participant is killed 5 s after SIGTERM. */
const CLOSE_GRACE_MS = 5000;

export class MqttTransport implements T.Transport {
  readonly url: string;
  readonly scheme = 'mqtt' as const;
  readonly brokerBindings = false;
  private readonly connection: MqttConnection;
  private readonly publisher: Publisher;
  private readonly records: RecordViews;
  private readonly bridges: Bridges;
  private readonly topology: Topology;
  private readonly consumer: Consumer;
  private readonly discovery: Discovery;
  private readonly snoop: Snoop;
  private closing: Promise<void> | undefined;
  private readonly ended = deferred<Error | undefined>();

  constructor(url: string, options: MqttTransportOptions = {}) {
    this.connection = new MqttConnection(url, options, {
      reconnected: (link) => this.records.resync(link),
      publish: (topic, payload) => this.publisher.publish(topic, payload, { qos: 1 }),
    });
    this.url = this.connection.url;
    this.publisher = new Publisher(this.connection, options.maxBuffered ?? MAX_BUFFERED_SENDS);
    this.records = new RecordViews(this.connection, this.publisher);
    this.bridges = new Bridges(this.connection, this.publisher);
    this.topology = new Topology(this.connection, this.publisher, this.records, this.bridges);
    this.consumer = new Consumer(this.connection, this.publisher, this.records);
    this.discovery = new Discovery(this.connection, this.publisher, this.consumer);
    this.snoop = new Snoop(this.connection, this.publisher, this.consumer);
  }

  /** Sends not done yet (QoS 1: not acknowledged by the broker; QoS 0: not written to the connection yet). */
  get sendsInFlight(): number {
    return this.publisher.inFlight;
  }

  /** 5 or 4 (3.1.1), once connected. */
  get protocolVersion(): ProtocolVersion | undefined {
    return this.connection.pools.control[0]?.protocolVersion;
  }

  /** The client id of the connection that carries deliveries (stable with an `instance`), once one is open. */
  get deliveryClientId(): string | undefined {
    return this.connection.pools.data[0]?.clientId;
  }

  /** Deliveries received and not yet acknowledged to the broker (tests, debugging). */
  get unacknowledged(): number {
    return this.connection.unacknowledged;
  }

  connect(): Promise<void> {
    return this.connection.connect();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (await this.connection.stop()) {
        this.bridges.clear();
        this.consumer.silenceAll();
        // Unconfirmed publishes: give them a moment, then fail them.
        await this.publisher.drain(CLOSE_GRACE_MS);
        await this.connection.closeLinks();
        this.publisher.failPending();
        this.records.close();
        debug('closed %s', this.url);
      }
      this.ended.resolve(undefined);
    })();
    return this.closing;
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }

  on(listener: (event: T.TransportEvent) => void): () => void {
    return this.connection.on(listener);
  }

  createQueue(kind: T.QueueKind, name: string, options?: T.QueueOptions): Promise<void> {
    return this.topology.createQueue(kind, name, options);
  }

  removeQueue(kind: T.QueueKind, name: string): Promise<void> {
    return this.topology.removeQueue(kind, name);
  }

  queueExists(kind: T.QueueKind, name: string): Promise<boolean> {
    return this.topology.queueExists(kind, name);
  }

  send(kind: T.QueueKind, name: string, data: unknown, options?: T.SendOptions): Promise<void> {
    return this.publisher.send(kind, name, data, options);
  }

  subscribe(queue: string, handler: T.DeliveryHandler, options?: T.SubscribeOptions): Promise<MqttSubscription> {
    return this.consumer.subscribe(queue, handler, options);
  }

  tap(kind: T.QueueKind, name: string, handler: T.MessageHandler): Promise<T.Subscription> {
    return this.consumer.tap(kind, name, handler);
  }

  announce(message: unknown, options?: { ttlMs?: number }): Promise<void> {
    return this.discovery.announce(message, options);
  }

  onDiscovery(handler: T.MessageHandler): Promise<T.Subscription> {
    return this.discovery.onDiscovery(handler);
  }

  publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    return this.snoop.publishSnoop(channel, role, data);
  }

  subscribeSnoop(filter: T.SnoopFilter, handler: T.SnoopHandler): Promise<T.Subscription> {
    return this.snoop.subscribeSnoop(filter, handler);
  }

  addBinding(binding: T.Binding, options?: T.BindingOptions): Promise<void> {
    return this.topology.addBinding(binding, options);
  }

  removeBinding(binding: T.Binding): Promise<void> {
    return this.topology.removeBinding(binding);
  }

  listBindings(): Promise<T.Binding[]> {
    return this.topology.listBindings();
  }
}
