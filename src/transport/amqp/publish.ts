/**
 * Publishing: what `send` puts on the wire, and the Publisher that carries every publish of a connection over one
 * ConfirmChannel: broker confirms, unroutable returns, backpressure, and recovery of the channel after RabbitMQ
 * closes it (publishing to a missing exchange closes the channel with 404).
 */
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { QueueNotFoundError, TransportClosedError } from '../../errors.js';
import { encodeBody, sendId } from '../../protocol/envelope.js';
import { logger } from '../../util/logger.js';
import type { QueueKind, SendOptions } from '../types.js';
import { isChannelGone, isNotFound } from './errors.js';
import { isBrokerNack, missingExchange, returnReplyText } from './internals.js';

const log = logger('amqp:publish');

/** Publishes lost to a channel close (not caused by themselves) are tried again this many times. */
const MAX_RETRIES = 2;

/** The content type of every body msgflo-ts publishes. */
export const JSON_CONTENT_TYPE = 'application/json';

/**
 * What `send` publishes: to an inqueue through the default exchange (mandatory: a missing queue is reported), to an
 * outqueue through its fanout exchange. At-least-once sends are persistent and confirmed; `fast` ones neither.
 */
export function sendRequest(kind: QueueKind, name: string, data: unknown, options: SendOptions): PublishRequest {
  const fast = options.fast === true;
  const id = sendId(options);
  const toQueue = kind === 'inqueue';
  return {
    exchange: toQueue ? '' : name,
    routingKey: toQueue ? name : '',
    content: encodeBody(data),
    options: {
      contentType: JSON_CONTENT_TYPE,
      deliveryMode: fast ? 1 : 2,
      // The id travels as the message-id property only (readers fall back to an x-msgflo-id header).
      ...(id !== undefined ? { messageId: id } : {}),
      headers: options.headers ?? {},
      mandatory: toQueue,
    },
    confirm: !fast,
    target: name,
  };
}

export interface PublishRequest {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  /** Wait for the broker confirm (at-least-once). false: resolve once written (at-most-once). */
  readonly confirm: boolean;
  /** The msgflo queue name reported by QueueNotFoundError. */
  readonly target: string;
}

export interface PublisherHooks {
  /** Open a fresh confirm channel on the current connection. */
  open(): Promise<ConfirmChannel>;
  /** Whether the connection can still carry messages (false: fail with TransportClosedError). */
  usable(): boolean;
}

interface ReturnSlot {
  returned: boolean;
}

/** What became of one attempt to publish. */
type Outcome = { kind: 'ok' } | { kind: 'retry'; cause: unknown } | { kind: 'fail'; error: unknown };

function returnKey(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${typeof messageId === 'string' ? messageId : ''}`;
}

export class Publisher {
  private readonly hooks: PublisherHooks;
  private channel: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  /** Channels the broker has closed, with the error it gave. */
  private readonly closeErrors = new WeakMap<ConfirmChannel, Error>();
  private readonly closedChannels = new WeakSet<ConfirmChannel>();
  /** Mandatory publishes awaiting their confirm, by exchange+routing key+message id, oldest first. */
  private readonly returnSlots = new Map<string, ReturnSlot[]>();
  /** Set while the channel's write buffer is full: publishes wait for 'drain'. */
  private blocked: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(hooks: PublisherHooks) {
    this.hooks = hooks;
  }

  /**
   * Publish; resolves after the broker confirm (or after the write when `confirm` is false). Rejects with
   * QueueNotFoundError when the exchange is missing or a mandatory message was unroutable.
   */
  publish(request: PublishRequest): Promise<void> {
    const p = this.attempt(request, 0);
    this.inflight.add(p);
    const done = () => {
      this.inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Wait for every publish in flight and every outstanding confirm, then close the channel. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    if (this.opening) await this.opening.catch(() => undefined);
    const ch = this.channel;
    this.channel = undefined;
    if (ch && !this.closedChannels.has(ch)) {
      await ch.waitForConfirms().catch((err: unknown) => log('unconfirmed messages at close: %s', (err as Error).message));
      await Promise.resolve()
        .then(() => ch.close())
        .catch(() => undefined);
    }
  }

  private async attempt(request: PublishRequest, retries: number): Promise<void> {
    if (!this.hooks.usable()) throw new TransportClosedError(`publish to '${request.target}'`);
    const ch = await this.getChannel(request.target);
    while (this.blocked) await this.blocked;
    const outcome = await this.publishOn(ch, request);
    switch (outcome.kind) {
      case 'ok':
        return;
      case 'fail':
        throw outcome.error;
      case 'retry':
        // The channel went away under this publish, again and again: say so by class, for a wrapper to retry.
        if (!this.hooks.usable() || retries >= MAX_RETRIES) throw new TransportClosedError(`publish to '${request.target}'`, { cause: outcome.cause });
        log('retrying publish to %s on a new channel: %s', request.target, (outcome.cause as Error).message);
        return this.attempt(request, retries + 1);
    }
  }

  private publishOn(ch: ConfirmChannel, request: PublishRequest): Promise<Outcome> {
    const { exchange, routingKey, content, options } = request;
    const key = returnKey(exchange, routingKey, options.messageId);
    const slot = options.mandatory ? this.addSlot(key) : undefined;
    return new Promise<Outcome>((resolve) => {
      const onConfirm = (err: unknown): void => {
        if (slot) this.removeSlot(key, slot);
        const outcome = this.judge(ch, request, err, slot);
        if (request.confirm) resolve(outcome);
        else if (outcome.kind !== 'ok') log('fast message to %s lost: %o', request.target, outcome);
      };
      let written: boolean;
      try {
        written = ch.publish(exchange, routingKey, content, options, onConfirm);
      } catch (err) {
        if (slot) this.removeSlot(key, slot);
        // A closed channel throws IllegalOperationError: try again on a fresh one. Anything else (say, headers
        // too large) is the caller's problem.
        const gone = this.closedChannels.has(ch) || isChannelGone(err);
        resolve(gone ? { kind: 'retry', cause: err } : { kind: 'fail', error: err });
        return;
      }
      if (!written) {
        log('write buffer full, waiting for drain');
        const drained = this.waitDrain(ch);
        if (!request.confirm) void drained.then(() => resolve({ kind: 'ok' }));
      } else if (!request.confirm) {
        resolve({ kind: 'ok' });
      }
    });
  }

  /** Interpret a confirm callback. */
  private judge(ch: ConfirmChannel, request: PublishRequest, err: unknown, slot: ReturnSlot | undefined): Outcome {
    if (err === null || err === undefined) {
      if (slot?.returned) return { kind: 'fail', error: new QueueNotFoundError(request.target) };
      return { kind: 'ok' };
    }
    const closeError = this.closeErrors.get(ch);
    if (closeError && isNotFound(closeError)) {
      const missing = missingExchange(closeError);
      if (missing === undefined || missing === request.exchange) {
        return { kind: 'fail', error: new QueueNotFoundError(request.target, { cause: closeError }) };
      }
      // Another publish on the channel killed it; this message was dropped with it.
      return { kind: 'retry', cause: closeError };
    }
    if (isBrokerNack(err)) {
      // basic.nack: the broker could not take the message (e.g. a queue overflow policy).
      return { kind: 'fail', error: new Error(`Broker refused the message for '${request.target}' (${(err as Error).message})`) };
    }
    // 'channel closed': amqplib fails unconfirmed messages when the channel goes (connection lost, …).
    return { kind: 'retry', cause: closeError ?? err };
  }

  private async getChannel(target: string): Promise<ConfirmChannel> {
    if (this.channel && !this.closedChannels.has(this.channel)) return this.channel;
    if (!this.opening) {
      this.opening = this.hooks
        .open()
        .then((ch) => {
          this.wire(ch);
          this.channel = ch;
          return ch;
        })
        .finally(() => {
          this.opening = undefined;
        });
    }
    try {
      return await this.opening;
    } catch (err) {
      if (!this.hooks.usable()) throw new TransportClosedError(`publish to '${target}'`, { cause: err });
      throw err;
    }
  }

  private wire(ch: ConfirmChannel): void {
    ch.on('error', (err: Error) => {
      log('publish channel error: %s', err.message);
      this.closeErrors.set(ch, err);
    });
    ch.on('close', () => {
      log('publish channel closed');
      this.closedChannels.add(ch);
      if (this.channel === ch) this.channel = undefined;
    });
    ch.on('return', (msg: Message) => this.onReturn(msg));
    ch.on('handler-error', (err: Error, event: string) => log('error in %s handler: %s', event, err.message));
  }

  private onReturn(msg: Message): void {
    const { exchange, routingKey } = msg.fields;
    const key = returnKey(exchange, routingKey, msg.properties.messageId);
    const slot = this.returnSlots.get(key)?.find((s) => !s.returned);
    log('returned (%s): exchange=%s routingKey=%s', returnReplyText(msg), exchange, routingKey);
    if (slot) slot.returned = true;
  }

  private addSlot(key: string): ReturnSlot {
    const slot: ReturnSlot = { returned: false };
    const list = this.returnSlots.get(key);
    if (list) list.push(slot);
    else this.returnSlots.set(key, [slot]);
    return slot;
  }

  private removeSlot(key: string, slot: ReturnSlot): void {
    const list = this.returnSlots.get(key);
    if (!list) return;
    const i = list.indexOf(slot);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.returnSlots.delete(key);
  }

  /** Resolves when the channel's write buffer has drained (or the channel closed). */
  private waitDrain(ch: ConfirmChannel): Promise<void> {
    if (this.blocked) return this.blocked;
    const blocked = new Promise<void>((resolve) => {
      const done = (): void => {
        ch.removeListener('drain', done);
        ch.removeListener('close', done);
        if (this.blocked === blocked) this.blocked = undefined;
        resolve();
      };
      ch.on('drain', done);
      ch.on('close', done);
    });
    this.blocked = blocked;
    return blocked;
  }
}
