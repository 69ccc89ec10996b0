/**
 * AMQP 0-9-1 (RabbitMQ) transport, wire-compatible with msgflo 0.12: the Transport interface over its parts —
 * connection.ts (the connection and its channels), topology.ts (queues, exchanges, bindings), publish.ts (sends,
 * confirms), consume.ts (subscriptions, taps, deliveries), discovery.ts, snoop.ts; what it relies on in amqplib
 * beyond its typed API is in internals.ts.
 */
import type { SnoopChannel } from '../../protocol/snoop.js';
import { deferred } from '../../util/deferred.js';
import { logger } from '../../util/logger.js';
import { CLOSE_TIMEOUT_MS } from '../defaults.js';
import type {
  Binding,
  BindingOptions,
  DeliveryHandler,
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
import { AmqpConnection, type AmqpTransportOptions, waitAtMost } from './connection.js';
import { Consumers } from './consume.js';
import { Discovery } from './discovery.js';
import { sendRequest } from './publish.js';
import { Snoop } from './snoop.js';
import { Topology } from './topology.js';

export type { AmqpTransportOptions } from './connection.js';

const log = logger('amqp');

export class AmqpTransport implements Transport {
  readonly url: string;
  readonly scheme = 'amqp' as const;
  readonly brokerBindings = true;

  private readonly closeTimeoutMs: number;
  private readonly connection: AmqpConnection;
  private readonly topology: Topology;
  private readonly consumers: Consumers;
  private readonly discovery: Discovery;
  private readonly snoop: Snoop;
  private closing: Promise<void> | undefined;
  private readonly ended = deferred<Error | undefined>();

  constructor(url: string, options: AmqpTransportOptions = {}) {
    this.closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.connection = new AmqpConnection(url, options);
    this.url = this.connection.url;
    this.topology = new Topology(this.connection);
    this.consumers = new Consumers(this.connection);
    this.discovery = new Discovery(this.connection, this.topology, this.consumers);
    this.snoop = new Snoop(this.connection, this.topology, this.consumers);
  }

  connect(): Promise<void> {
    return this.connection.connect();
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = this.shutdown();
      void this.closing.then(() => this.ended.resolve(undefined));
    }
    return this.closing;
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }

  /** Consumers first (letting acks/nacks in progress finish), then every outstanding confirm, then topology. */
  private async shutdown(): Promise<void> {
    const ms = this.closeTimeoutMs;
    if (await this.connection.beginClose()) {
      log('closing');
      await waitAtMost(ms, 'cancel consumers', this.consumers.cancelAll());
      await this.connection.drainPublisher(ms);
      await this.topology.close(ms);
    }
    await this.connection.end(ms);
  }

  on(listener: (event: TransportEvent) => void): () => void {
    return this.connection.events.add(listener);
  }

  createQueue(kind: QueueKind, name: string, options?: QueueOptions): Promise<void> {
    return this.topology.createQueue(kind, name, options);
  }

  removeQueue(kind: QueueKind, name: string): Promise<void> {
    return this.topology.removeQueue(kind, name);
  }

  queueExists(kind: QueueKind, name: string): Promise<boolean> {
    return this.topology.queueExists(kind, name);
  }

  addBinding(binding: Binding, options?: BindingOptions): Promise<void> {
    return this.topology.addBinding(binding, options);
  }

  removeBinding(binding: Binding): Promise<void> {
    return this.topology.removeBinding(binding);
  }

  async listBindings(): Promise<Binding[]> {
    return this.topology.listBindings();
  }

  async send(kind: QueueKind, name: string, data: unknown, options: SendOptions = {}): Promise<void> {
    const what = `send to ${kind} '${name}'`;
    const publisher = this.connection.publisher(what);
    try {
      await publisher.publish(sendRequest(kind, name, data, options));
    } catch (err) {
      throw this.connection.wrap(err, what);
    }
  }

  subscribe(queue: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription> {
    return this.consumers.subscribe(queue, handler, options);
  }

  tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    return this.consumers.tap(kind, name, handler);
  }

  announce(message: unknown, options?: { ttlMs?: number }): Promise<void> {
    return this.discovery.announce(message, options);
  }

  onDiscovery(handler: MessageHandler): Promise<Subscription> {
    return this.discovery.onDiscovery(handler);
  }

  publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    return this.snoop.publish(channel, role, data);
  }

  subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    return this.snoop.subscribe(filter, handler);
  }
}
