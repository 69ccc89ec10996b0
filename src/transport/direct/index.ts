/**
 * In-memory transport (`direct://NAME`) with the same semantics as the AMQP one, for tests and single-process use:
 * the Transport interface over connection.ts, topology.ts, publish.ts, consume.ts, discovery.ts and snoop.ts, on
 * the process-wide broker of broker.ts. Every transport made for one NAME in a process talks to the same broker.
 */
import type { SnoopChannel } from '../../protocol/snoop.js';
import type {
  Binding,
  DeliveryHandler,
  MessageHandler,
  QueueKind,
  SendOptions,
  SnoopFilter,
  SnoopHandler,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportEvent,
  TransportOptions,
} from '../types.js';
import { DirectConnection } from './connection.js';
import { DirectConsumers } from './consume.js';
import { DirectDiscovery } from './discovery.js';
import { send } from './publish.js';
import { DirectSnoop } from './snoop.js';
import { DirectTopology } from './topology.js';

export class DirectTransport implements Transport {
  readonly url: string;
  readonly scheme = 'direct' as const;
  readonly brokerBindings = true;
  private readonly connection: DirectConnection;
  private readonly topology: DirectTopology;
  private readonly consumers: DirectConsumers;
  private readonly discovery: DirectDiscovery;
  private readonly snoop: DirectSnoop;

  constructor(url: string, _options: TransportOptions = {}) {
    this.url = url;
    this.connection = new DirectConnection(url);
    this.topology = new DirectTopology(this.connection);
    this.consumers = new DirectConsumers(this.connection);
    this.discovery = new DirectDiscovery(this.connection, this.consumers);
    this.snoop = new DirectSnoop(this.connection);
  }

  connect(): Promise<void> {
    return this.connection.connect();
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.connection.closed();
  }

  /** An in-memory connection is never lost: there are no connection events. */
  on(_listener: (event: TransportEvent) => void): () => void {
    return () => {};
  }

  async createQueue(kind: QueueKind, name: string): Promise<void> {
    this.topology.createQueue(kind, name);
  }

  async removeQueue(kind: QueueKind, name: string): Promise<void> {
    this.topology.removeQueue(kind, name);
  }

  async queueExists(kind: QueueKind, name: string): Promise<boolean> {
    return this.topology.queueExists(kind, name);
  }

  async addBinding(binding: Binding): Promise<void> {
    this.topology.addBinding(binding);
  }

  async removeBinding(binding: Binding): Promise<void> {
    this.topology.removeBinding(binding);
  }

  async listBindings(): Promise<Binding[]> {
    return this.topology.listBindings();
  }

  async send(kind: QueueKind, name: string, data: unknown, options?: SendOptions): Promise<void> {
    send(this.connection, kind, name, data, options);
  }

  async subscribe(queue: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription> {
    return this.consumers.subscribe(queue, handler, options);
  }

  async tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    return this.consumers.tap(kind, name, handler);
  }

  async announce(message: unknown): Promise<void> {
    this.discovery.announce(message);
  }

  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    return this.discovery.onDiscovery(handler);
  }

  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    this.snoop.publish(channel, role, data);
  }

  async subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    return this.snoop.subscribe(filter, handler);
  }
}
