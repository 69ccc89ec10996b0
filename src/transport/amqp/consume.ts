/**
 * Consuming: subscriptions to inqueues (deliveries settled exactly once, refusals dead-lettered with their reason),
 * taps, and the private queues of observers (discovery, snoop). Each consumer has a channel of its own, so its
 * prefetch and its failures stay its own.
 */
import type { Channel, ConsumeMessage, Message, MessageProperties, Options } from 'amqplib';
import { QueueNotFoundError, TransportClosedError } from '../../errors.js';
import { deadLetterFields } from '../../protocol/deadletter.js';
import { decodeBody, HEADER } from '../../protocol/envelope.js';
import { deadLetterName } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import { prefetchOf } from '../defaults.js';
import { deliver, observe } from '../handlers.js';
import type { Delivery, DeliveryHandler, Headers, InMessage, MessageHandler, QueueKind, SubscribeOptions, Subscription } from '../types.js';
import { type AmqpConnection, quietly } from './connection.js';
import { isNotFound } from './errors.js';
import type { Publisher } from './publish.js';

const log = logger('amqp');

// ── messages ────────────────────────────────────────────────────────────────────────────────────────────────

function headerValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return '';
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? '';
  } catch {
    return String(value);
  }
}

/** AMQP headers as strings (numbers and tables such as x-death are stringified). */
export function headersOf(properties: MessageProperties): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(properties.headers ?? {})) out[k] = headerValue(v);
  return out;
}

/** A message's id: the message-id property, else (msgflo-era senders) the x-msgflo-id header. */
function idOf(msg: Message, headers: Headers): string | undefined {
  const messageId: unknown = msg.properties.messageId;
  return typeof messageId === 'string' && messageId !== '' ? messageId : headers[HEADER.id];
}

/** The fields of an InMessage for an AMQP message received from `queue`. */
export function toInMessage(queue: string, msg: Message): InMessage {
  const { data, jsonError } = decodeBody(msg.content, queue);
  const headers = headersOf(msg.properties);
  return { queue, data, raw: msg.content, jsonError, headers, id: idOf(msg, headers), redelivered: msg.fields.redelivered };
}

/** The properties of `msg` worth keeping on a copy (never userId: RabbitMQ checks it against the login). */
export function copyProperties(properties: MessageProperties): Options.Publish {
  const out: Options.Publish = {};
  const keep = ['contentType', 'contentEncoding', 'deliveryMode', 'priority', 'correlationId', 'replyTo', 'messageId', 'timestamp', 'type', 'appId'] as const;
  for (const k of keep) {
    const v: unknown = properties[k];
    if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** Run a synchronous channel operation (ack/nack), turning "channel closed" into TransportClosedError. */
function onChannel(what: string, op: () => void): void {
  try {
    op();
  } catch (err) {
    throw new TransportClosedError(what, { cause: err });
  }
}

/** A delivery settled exactly once: the first ack or nack wins, later ones get its promise and touch nothing. */
export class AmqpDelivery implements Delivery {
  readonly queue: string;
  readonly data: unknown;
  readonly raw: Buffer;
  readonly jsonError: Error | undefined;
  readonly headers: Headers;
  readonly id: string | undefined;
  readonly redelivered: boolean;

  private readonly msg: Message;
  private readonly channel: Channel;
  private readonly publisher: Publisher;
  private readonly subscription: ChannelSubscription;
  private settlement: Promise<void> | undefined;

  constructor(queue: string, msg: Message, channel: Channel, publisher: Publisher, subscription: ChannelSubscription) {
    const { data, jsonError } = decodeBody(msg.content, queue);
    this.queue = queue;
    this.data = data;
    this.raw = msg.content;
    this.jsonError = jsonError;
    this.headers = headersOf(msg.properties);
    this.id = idOf(msg, this.headers);
    this.redelivered = msg.fields.redelivered;
    this.msg = msg;
    this.channel = channel;
    this.publisher = publisher;
    this.subscription = subscription;
  }

  get settled(): boolean {
    return this.settlement !== undefined;
  }

  ack(): Promise<void> {
    return this.settle(async () => {
      onChannel(`ack a message from '${this.queue}'`, () => this.channel.ack(this.msg));
    });
  }

  nack(reason: string, code?: string): Promise<void> {
    return this.settle(() => this.deadLetter(reason, code));
  }

  private settle(fn: () => Promise<void>): Promise<void> {
    if (!this.settlement) {
      this.settlement = fn();
      this.settlement.catch(() => undefined);
      // Its subscription waits for it before closing the channel.
      this.subscription.track(this.settlement);
    }
    return this.settlement;
  }

  /**
   * Publish a copy carrying the reason to `dead-<queue>` (confirmed), then ack the original. Without that
   * exchange, fall back to a plain nack (the broker's own dead-lettering, or a drop).
   */
  private async deadLetter(reason: string, code: string | undefined): Promise<void> {
    const dead = deadLetterName(this.queue);
    const headers: Record<string, unknown> = { ...(this.msg.properties.headers ?? {}), ...deadLetterFields(this.queue, reason, code) };
    try {
      await this.publisher.publish({
        exchange: dead,
        routingKey: this.msg.fields.routingKey,
        content: this.msg.content,
        options: { ...copyProperties(this.msg.properties), headers },
        confirm: true,
        target: dead,
      });
    } catch (err) {
      if (err instanceof TransportClosedError) throw err;
      if (err instanceof QueueNotFoundError) log('no exchange %s: nacking without a reason', dead);
      else log('dead-letter copy to %s failed (%s): nacking', dead, (err as Error).message);
      onChannel(`nack a message from '${this.queue}'`, () => this.channel.nack(this.msg, false, false));
      return;
    }
    onChannel(`ack a dead-lettered message from '${this.queue}'`, () => this.channel.ack(this.msg));
  }
}

// ── consumers ───────────────────────────────────────────────────────────────────────────────────────────────

/** A consumer (or several) on a channel of its own; cancel() stops them and closes the channel. */
export class ChannelSubscription implements Subscription {
  readonly queue: string;
  private readonly channel: Channel;
  private readonly consumerTags: string[] = [];
  /** ack/nack in progress (a nack publishes first): cancel() lets them finish before closing the channel. */
  private readonly settling = new Set<Promise<void>>();
  private readonly cleanup: ((ch: Channel) => Promise<unknown>) | undefined;
  private readonly onDone: (sub: ChannelSubscription) => void;
  private cancelling: Promise<void> | undefined;
  private channelClosed = false;

  constructor(queue: string, channel: Channel, onDone: (sub: ChannelSubscription) => void, cleanup?: (ch: Channel) => Promise<unknown>) {
    this.queue = queue;
    this.channel = channel;
    this.onDone = onDone;
    this.cleanup = cleanup;
    channel.on('close', () => {
      this.channelClosed = true;
    });
  }

  addConsumer(tag: string): void {
    this.consumerTags.push(tag);
  }

  track(settlement: Promise<void>): void {
    this.settling.add(settlement);
    const done = (): void => {
      this.settling.delete(settlement);
    };
    settlement.then(done, done);
  }

  get cancelled(): boolean {
    return this.cancelling !== undefined;
  }

  cancel(): Promise<void> {
    if (!this.cancelling) {
      this.cancelling = (async () => {
        log('cancel subscription on %s', this.queue);
        // Never send on a channel the broker has closed: a frame on it is a connection error (504).
        for (const tag of this.consumerTags) if (!this.channelClosed) await quietly(() => this.channel.cancel(tag));
        await Promise.allSettled([...this.settling]);
        const cleanup = this.cleanup;
        if (cleanup && !this.channelClosed) await quietly(() => cleanup(this.channel));
        if (!this.channelClosed) await quietly(() => this.channel.close());
        this.onDone(this);
      })();
    }
    return this.cancelling;
  }
}

/** A queue of an observer's own: exclusive, server-named, deleted again on cancel, bound to an exchange. */
export interface OwnQueue {
  /** The exchange it is bound to (named by QueueNotFoundError, and the subscription's `queue`). */
  readonly exchange: string;
  /** What it is for (logs, errors). */
  readonly purpose: string;
  /** Routing keys it is bound with (default: one binding with ''). */
  readonly routingKeys?: readonly string[];
  /** Queue arguments (say, a length limit). */
  readonly arguments?: Record<string, unknown>;
  /** Consume with acks under this prefetch (onMessage acks); absent: without acks. */
  readonly prefetch?: number;
  onMessage(msg: ConsumeMessage, ch: Channel): void;
  /** More consumers on the same channel, started after the first. */
  setup?(ch: Channel, sub: ChannelSubscription): Promise<void>;
}

export class Consumers {
  private readonly connection: AmqpConnection;
  private readonly subscriptions = new Set<ChannelSubscription>();
  private readonly release = (sub: ChannelSubscription): void => {
    this.subscriptions.delete(sub);
  };

  constructor(connection: AmqpConnection) {
    this.connection = connection;
  }

  async subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    const what = `subscribe to '${queue}'`;
    const publisher = this.connection.publisher(what);
    const prefetch = prefetchOf(options.prefetch);
    const ch = await this.connection.openChannel(`consume ${queue}`);
    const sub = new ChannelSubscription(queue, ch, this.release);
    ch.on('error', (err: Error) => {
      // The broker closed this consumer's channel (the connection itself is fine, or we would not be open).
      if (sub.cancelled || !this.connection.isOpen || !this.subscriptions.has(sub)) return;
      this.connection.events.emit({ type: 'error', error: new Error(`The consumer of '${queue}' was stopped by the broker: ${err.message}`, { cause: err }) });
      // amqplib emits 'error' before it marks the channel closed: release the subscription afterwards.
      setImmediate(() => void sub.cancel());
    });
    try {
      await ch.prefetch(prefetch);
      const { consumerTag } = await ch.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) return this.consumerCancelled(sub);
          deliver(handler, new AmqpDelivery(queue, msg, ch, publisher, sub), log);
        },
        { noAck: false },
      );
      sub.addConsumer(consumerTag);
    } catch (err) {
      if (!this.connection.isClosed(ch)) await quietly(() => ch.close());
      if (isNotFound(err)) throw new QueueNotFoundError(queue, { cause: err });
      throw this.connection.wrap(err, what);
    }
    this.subscriptions.add(sub);
    log('subscribed to %s (prefetch %d)', queue, prefetch);
    return sub;
  }

  /** The broker cancelled a consumer (its queue was deleted): report it and release the channel. */
  private consumerCancelled(sub: ChannelSubscription): void {
    if (sub.cancelled) return;
    log('broker cancelled the consumer of %s', sub.queue);
    this.connection.events.emit({ type: 'error', error: new QueueNotFoundError(sub.queue) });
    setImmediate(() => void sub.cancel());
  }

  async tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    const sub = await this.ownQueue({
      exchange: name,
      purpose: `tap ${kind} '${name}'`,
      onMessage: (msg) => observe(handler, toInMessage(name, msg), log),
    });
    log('tapping %s %s', kind, name);
    return sub;
  }

  /** Consume a new queue of this observer's own (see OwnQueue). */
  async ownQueue(spec: OwnQueue): Promise<Subscription> {
    const { exchange, purpose } = spec;
    this.connection.assertOpen(purpose);
    const ch = await this.connection.openChannel(purpose);
    let own = '';
    const sub = new ChannelSubscription(exchange, ch, this.release, async (c) => {
      if (own && !this.connection.isClosed(c)) await c.deleteQueue(own);
    });
    try {
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false, ...(spec.arguments ? { arguments: spec.arguments } : {}) });
      own = queue;
      for (const key of spec.routingKeys ?? ['']) await ch.bindQueue(queue, exchange, key);
      if (spec.prefetch !== undefined) await ch.prefetch(spec.prefetch);
      const { consumerTag } = await ch.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) log('broker cancelled the consumer of %s', purpose);
          else spec.onMessage(msg, ch);
        },
        { noAck: spec.prefetch === undefined },
      );
      sub.addConsumer(consumerTag);
      if (spec.setup) await spec.setup(ch, sub);
    } catch (err) {
      if (!this.connection.isClosed(ch)) {
        await quietly(() => (own ? ch.deleteQueue(own) : undefined));
        await quietly(() => ch.close());
      }
      if (isNotFound(err)) throw new QueueNotFoundError(exchange, { cause: err });
      throw this.connection.wrap(err, purpose);
    }
    this.subscriptions.add(sub);
    return sub;
  }

  /** Cancel every consumer, letting the settlements in progress finish. */
  async cancelAll(): Promise<void> {
    await Promise.allSettled([...this.subscriptions].map((s) => s.cancel()));
  }
}
