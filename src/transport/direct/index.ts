import { deferred } from '../../util/deferred.js';
import { QueueNotFoundError, TransportClosedError } from '../../errors.js';
import { deadLetterFields } from '../../protocol/deadletter.js';
import { HEADER, decodeBody, encodeBody, sendId } from '../../protocol/envelope.js';
import { DISCOVERY_QUEUE, deadLetterName } from '../../protocol/naming.js';
import type { SnoopChannel } from '../../protocol/snoop.js';
import type { TransportOptions } from '../types.js';
import type {
  Binding,
  Delivery,
  DeliveryHandler,
  InMessage,
  MessageHandler,
  QueueKind,
  SendOptions,
  SnoopFilter,
  SnoopHandler,
  SnoopReceived,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportEvent,
} from '../types.js';
import { bindingKey } from '../bindings.js';
import { type Consumer, type MemoryBroker, type SnoopListener, type StoredMessage, memoryBroker } from './broker.js';

/** Messages a snoop subscriber may have waiting before it loses the oldest (as a bounded broker queue would). */
const SNOOP_BACKLOG = 10_000;

let consumerTags = 0;
let privateQueues = 0;


/** In-memory transport (`direct://NAME`) with the same semantics as the AMQP one, for tests and single-process use. */
export class DirectTransport implements Transport {
  readonly url: string;
  readonly scheme = 'direct' as const;
  readonly brokerBindings = true;
  private readonly broker: MemoryBroker;
  private connected = false;
  private isClosed = false;
  private readonly ended = deferred<Error | undefined>();
  private readonly cleanups = new Set<() => void>();
  private readonly bindings = new Map<string, Binding>();

  constructor(url: string, _options: TransportOptions = {}) {
    this.url = url;
    this.broker = memoryBroker(new URL(url).host || 'default');
  }

  async connect(): Promise<void> {
    if (this.isClosed) throw new TransportClosedError('connect');
    this.connected = true;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.connected = false;
    for (const cleanup of [...this.cleanups]) cleanup();
    this.cleanups.clear();
    this.ended.resolve(undefined);
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }

  on(_listener: (event: TransportEvent) => void): () => void {
    return () => {};
  }

  private check(what: string): void {
    if (!this.connected) throw new TransportClosedError(what);
  }

  async createQueue(kind: QueueKind, name: string): Promise<void> {
    this.check('create a queue');
    this.broker.assertExchange(name);
    if (kind === 'inqueue') {
      this.broker.assertQueue(name);
      this.broker.exchanges.get(name)!.queues.add(name);
      const dead = deadLetterName(name);
      this.broker.assertExchange(dead);
      this.broker.assertQueue(dead);
      this.broker.exchanges.get(dead)!.queues.add(dead);
    }
  }

  async removeQueue(kind: QueueKind, name: string): Promise<void> {
    this.check('remove a queue');
    if (kind === 'inqueue') this.broker.deleteQueue(name);
    this.broker.deleteExchange(name);
  }

  async queueExists(kind: QueueKind, name: string): Promise<boolean> {
    this.check('check a queue');
    return kind === 'inqueue' ? this.broker.queues.has(name) : this.broker.exchanges.has(name);
  }

  private stored(data: unknown, options: SendOptions = {}): StoredMessage {
    const id = sendId(options);
    const headers: Record<string, string> = { ...options.headers };
    if (id !== undefined) headers[HEADER.id] = id;
    return { body: encodeBody(data), headers, id, redelivered: false };
  }

  async send(kind: QueueKind, name: string, data: unknown, options?: SendOptions): Promise<void> {
    this.check('send');
    const message = this.stored(data, options);
    if (kind === 'inqueue') {
      const q = this.broker.queues.get(name);
      if (!q) throw new QueueNotFoundError(name);
      q.push(message);
    } else if (!this.broker.publish(name, message)) {
      throw new QueueNotFoundError(name);
    }
  }

  private toMessage(queue: string, m: StoredMessage): InMessage {
    const { data, jsonError } = decodeBody(m.body, queue);
    return { queue, data, jsonError, raw: m.body, headers: m.headers, id: m.id, redelivered: m.redelivered };
  }

  private consume(queue: string, prefetch: number, onMessage: (m: StoredMessage, settle: (o: 'ack' | 'requeue') => void) => void): Subscription {
    const q = this.broker.queues.get(queue);
    if (!q) throw new QueueNotFoundError(queue);
    const consumer: Consumer = { tag: ++consumerTags, prefetch, inFlight: 0, deliver: onMessage };
    q.addConsumer(consumer);
    const cleanup = () => q.removeConsumer(consumer);
    this.cleanups.add(cleanup);
    return {
      queue,
      cancel: async () => {
        this.cleanups.delete(cleanup);
        cleanup();
      },
    };
  }

  async subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.check('subscribe');
    return this.consume(queue, options.prefetch ?? 50, (m, settle) => {
      let settled: Promise<void> | undefined;
      const delivery: Delivery = {
        ...this.toMessage(queue, m),
        get settled() {
          return settled !== undefined;
        },
        ack: () => (settled ??= Promise.resolve().then(() => settle('ack'))),
        nack: (reason: string, code?: string) =>
          (settled ??= Promise.resolve().then(() => {
            const headers: Record<string, string> = { ...m.headers, ...deadLetterFields(queue, reason, code) };
            this.broker.publish(deadLetterName(queue), { ...m, headers, redelivered: false });
            settle('ack');
          })),
      };
      handler(delivery);
    });
  }

  /** A private queue bound to `exchange`, consumed without acks; deleted on cancel. */
  private privateTap(exchange: string, handler: MessageHandler, reportAs: string): Subscription {
    const name = `direct-tap-${++privateQueues}`;
    this.broker.assertQueue(name);
    this.broker.exchanges.get(exchange)!.queues.add(name);
    const sub = this.consume(name, Number.POSITIVE_INFINITY, (m, settle) => {
      settle('ack');
      handler(this.toMessage(reportAs, m));
    });
    return {
      queue: reportAs,
      cancel: async () => {
        await sub.cancel();
        this.broker.deleteQueue(name);
      },
    };
  }

  async tap(_kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    this.check('tap');
    if (!this.broker.exchanges.has(name)) throw new QueueNotFoundError(name);
    return this.privateTap(name, handler, name);
  }

  async addBinding(binding: Binding): Promise<void> {
    this.check('bind');
    await this.createQueue('outqueue', binding.src);
    await this.createQueue('inqueue', binding.tgt);
    this.broker.exchanges.get(binding.src)!.queues.add(binding.tgt);
    if (binding.type === 'roundrobin' && binding.deadletter) {
      await this.createQueue('inqueue', binding.deadletter);
      this.broker.exchanges.get(deadLetterName(binding.tgt))!.queues.add(binding.deadletter);
    }
    this.bindings.set(bindingKey(binding), binding);
  }

  async removeBinding(binding: Binding): Promise<void> {
    this.check('unbind');
    this.broker.exchanges.get(binding.src)?.queues.delete(binding.tgt);
    if (binding.deadletter) this.broker.exchanges.get(deadLetterName(binding.tgt))?.queues.delete(binding.deadletter);
    this.bindings.delete(bindingKey(binding));
  }

  async listBindings(): Promise<Binding[]> {
    return [...this.bindings.values()];
  }

  async announce(message: unknown): Promise<void> {
    this.check('announce');
    this.broker.assertExchange(DISCOVERY_QUEUE);
    this.broker.publish(DISCOVERY_QUEUE, this.stored(message));
  }

  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    this.check('observe discovery');
    this.broker.assertExchange(DISCOVERY_QUEUE);
    return this.privateTap(DISCOVERY_QUEUE, handler, DISCOVERY_QUEUE);
  }

  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    this.check('publish on the snoop channel');
    const body = encodeBody(data);
    for (const listener of this.broker.snoopListeners) listener(channel, role, body);
  }

  async subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    this.check('subscribe to the snoop channel');
    const channels = new Set<string>(filter.channels);
    const roles = filter.roles ? new Set(filter.roles) : undefined;
    const backlog: SnoopReceived[] = [];
    let scheduled = false;
    let active = true;
    const flush = () => {
      scheduled = false;
      for (const m of backlog.splice(0)) {
        if (!active) return;
        try {
          handler(m);
        } catch {
          // a subscriber's failure is its own
        }
      }
    };
    const listener: SnoopListener = (channel, role, body) => {
      if (!channels.has(channel) || (roles && !roles.has(role))) return;
      const { data, jsonError } = decodeBody(body);
      backlog.push({ channel: channel as SnoopChannel, role, data, raw: body, jsonError });
      if (backlog.length > SNOOP_BACKLOG) backlog.shift();
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };
    this.broker.snoopListeners.add(listener);
    const cleanup = () => {
      active = false;
      this.broker.snoopListeners.delete(listener);
    };
    this.cleanups.add(cleanup);
    return {
      queue: 'snoop',
      cancel: async () => {
        this.cleanups.delete(cleanup);
        cleanup();
      },
    };
  }
}
