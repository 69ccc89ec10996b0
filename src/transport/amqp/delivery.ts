/**
 * Incoming AMQP messages as msgflo-ts InMessage / Delivery, with exactly-once settlement and dead-lettering
 * that records why a message was refused.
 */
import type { Channel, Message, MessageProperties, Options } from 'amqplib';
import { QueueNotFoundError, TransportClosedError } from '../../errors.js';
import { decodeBody, HEADER } from '../../protocol/envelope.js';
import { deadLetterFields } from '../../protocol/deadletter.js';
import { deadLetterName } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import type { Delivery, Headers, InMessage } from '../types.js';
import type { Publisher } from './publisher.js';

const log = logger('amqp:delivery');

/** Dead-letter reasons are cut to this length: AMQP header tables are limited to 64 KiB in all. */

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

/** The fields of an InMessage for an AMQP message received from `queue`. */
export function toInMessage(queue: string, msg: Message): InMessage {
  const { data, jsonError } = decodeBody(msg.content, queue);
  const headers = headersOf(msg.properties);
  const messageId: unknown = msg.properties.messageId;
  return {
    queue,
    data,
    raw: msg.content,
    jsonError,
    headers,
    id: typeof messageId === 'string' && messageId !== '' ? messageId : headers[HEADER.id],
    redelivered: msg.fields.redelivered,
  };
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
  private settlement: Promise<void> | undefined;
  private readonly onSettle: ((settlement: Promise<void>) => void) | undefined;

  /** `onSettle` hears of the (first) settlement, so its subscription can wait for it before closing. */
  constructor(queue: string, msg: Message, channel: Channel, publisher: Publisher, onSettle?: (settlement: Promise<void>) => void) {
    const m = toInMessage(queue, msg);
    this.queue = m.queue;
    this.data = m.data;
    this.raw = m.raw;
    this.jsonError = m.jsonError;
    this.headers = m.headers;
    this.id = m.id;
    this.redelivered = m.redelivered;
    this.msg = msg;
    this.channel = channel;
    this.publisher = publisher;
    this.onSettle = onSettle;
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

  /** The first settlement wins; later calls get its promise and touch nothing. */
  private settle(fn: () => Promise<void>): Promise<void> {
    if (!this.settlement) {
      this.settlement = fn();
      this.settlement.catch(() => undefined);
      this.onSettle?.(this.settlement);
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
