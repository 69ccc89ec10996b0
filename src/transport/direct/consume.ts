/**
 * Consuming from the in-memory broker: subscriptions (deliveries settled exactly once, refusals dead-lettered with
 * their reason, as on AMQP), taps and the private queues of observers.
 */
import { QueueNotFoundError } from '../../errors.js';
import { deadLetterFields } from '../../protocol/deadletter.js';
import { decodeBody } from '../../protocol/envelope.js';
import { deadLetterName } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import { prefetchOf } from '../defaults.js';
import { deliver, observe } from '../handlers.js';
import type { Delivery, DeliveryHandler, Headers, InMessage, MessageHandler, QueueKind, SubscribeOptions, Subscription } from '../types.js';
import type { Consumer, MemoryBroker, StoredMessage } from './broker.js';
import type { DirectConnection } from './connection.js';

const log = logger('direct');

let consumerTags = 0;
let privateQueues = 0;

type Settle = (outcome: 'ack' | 'requeue') => void;

export function toInMessage(queue: string, m: StoredMessage): InMessage {
  const { data, jsonError } = decodeBody(m.body, queue);
  return { queue, data, jsonError, raw: m.body, headers: m.headers, id: m.id, redelivered: m.redelivered };
}

/** A delivery settled exactly once: the first ack or nack wins, later ones get its promise and touch nothing. */
class DirectDelivery implements Delivery {
  readonly queue: string;
  readonly data: unknown;
  readonly raw: Buffer;
  readonly jsonError: Error | undefined;
  readonly headers: Headers;
  readonly id: string | undefined;
  readonly redelivered: boolean;
  private settlement: Promise<void> | undefined;

  constructor(
    queue: string,
    private readonly message: StoredMessage,
    private readonly broker: MemoryBroker,
    private readonly settleWith: Settle,
  ) {
    const { data, jsonError } = decodeBody(message.body, queue);
    this.queue = queue;
    this.data = data;
    this.raw = message.body;
    this.jsonError = jsonError;
    this.headers = message.headers;
    this.id = message.id;
    this.redelivered = message.redelivered;
  }

  get settled(): boolean {
    return this.settlement !== undefined;
  }

  ack(): Promise<void> {
    return (this.settlement ??= Promise.resolve().then(() => this.settleWith('ack')));
  }

  /** A copy with the reason goes to `dead-<queue>` (dropped when that does not exist), the original is acked. */
  nack(reason: string, code?: string): Promise<void> {
    return (this.settlement ??= Promise.resolve().then(() => {
      const headers: Record<string, string> = { ...this.message.headers, ...deadLetterFields(this.queue, reason, code) };
      this.broker.publish(deadLetterName(this.queue), { ...this.message, headers, redelivered: false });
      this.settleWith('ack');
    }));
  }
}

export class DirectConsumers {
  constructor(private readonly connection: DirectConnection) {}

  private consume(queue: string, prefetch: number, onMessage: (m: StoredMessage, settle: Settle) => void): Subscription {
    const q = this.connection.broker.queues.get(queue);
    if (!q) throw new QueueNotFoundError(queue);
    const consumer: Consumer = { tag: ++consumerTags, prefetch, inFlight: 0, deliver: onMessage };
    q.addConsumer(consumer);
    const release = this.connection.own(() => q.removeConsumer(consumer));
    return {
      queue,
      cancel: async () => release(),
    };
  }

  subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Subscription {
    this.connection.check('subscribe');
    // 0: unlimited, as AMQP's prefetch.
    const prefetch = prefetchOf(options.prefetch) || Number.POSITIVE_INFINITY;
    const broker = this.connection.broker;
    return this.consume(queue, prefetch, (m, settle) => deliver(handler, new DirectDelivery(queue, m, broker, settle), log));
  }

  /** A private queue bound to `exchange`, consumed without acks; deleted on cancel. */
  privateTap(exchange: string, handler: MessageHandler, reportAs: string): Subscription {
    const broker = this.connection.broker;
    const name = `direct-tap-${++privateQueues}`;
    broker.assertQueue(name);
    broker.exchanges.get(exchange)!.queues.add(name);
    const sub = this.consume(name, Number.POSITIVE_INFINITY, (m, settle) => {
      settle('ack');
      observe(handler, toInMessage(reportAs, m), log);
    });
    return {
      queue: reportAs,
      cancel: async () => {
        await sub.cancel();
        broker.deleteQueue(name);
      },
    };
  }

  tap(_kind: QueueKind, name: string, handler: MessageHandler): Subscription {
    this.connection.check('tap');
    if (!this.connection.broker.exchanges.has(name)) throw new QueueNotFoundError(name);
    return this.privateTap(name, handler, name);
  }
}
