/**
 * Discovery on AMQP: announcements go to the fanout exchange `fbp` (with a TTL, so nothing piles up), which every
 * observer's own queue is bound to, and to msgflo's plain queue `fbp` bound to it. msgflo-era participants send
 * to the queue `fbp` directly: whichever observer's relay consumer takes such a message republishes it onto the
 * exchange, so every observer sees every announcement once.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import { reasonOf } from '../../errors.js';
import { encodeBody, HEADER, newMessageId } from '../../protocol/envelope.js';
import { DISCOVERY_QUEUE } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import { DEFAULT_PREFETCH, DISCOVERY_TTL_MS } from '../defaults.js';
import { observe } from '../handlers.js';
import type { MessageHandler, Subscription } from '../types.js';
import type { AmqpConnection } from './connection.js';
import { type Consumers, copyProperties, toInMessage } from './consume.js';
import { JSON_CONTENT_TYPE, type Publisher } from './publish.js';
import { discoverySteps, type Topology } from './topology.js';

const log = logger('amqp');

export class Discovery {
  constructor(
    private readonly connection: AmqpConnection,
    private readonly topology: Topology,
    private readonly consumers: Consumers,
  ) {}

  async announce(message: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    const what = 'announce on fbp';
    await this.topology.declareOnce(what, 'discovery exchange', discoverySteps);
    const publisher = this.connection.publisher(what);
    const id = newMessageId();
    const ttl = Math.max(0, Math.round(options.ttlMs ?? DISCOVERY_TTL_MS));
    try {
      await publisher.publish({
        exchange: DISCOVERY_QUEUE,
        routingKey: '',
        content: encodeBody(message),
        options: {
          contentType: JSON_CONTENT_TYPE,
          messageId: id,
          expiration: String(ttl),
          headers: { [HEADER.via]: 'exchange', [HEADER.id]: id },
        },
        confirm: true,
        target: DISCOVERY_QUEUE,
      });
    } catch (err) {
      throw this.connection.wrap(err, what);
    }
  }

  /** Every discovery message reaches every observer once (see the top of this file). */
  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    const what = 'observe discovery';
    await this.topology.declareOnce(what, 'discovery exchange', discoverySteps);
    const publisher = this.connection.publisher(what);
    const sub = await this.consumers.ownQueue({
      exchange: DISCOVERY_QUEUE,
      purpose: what,
      onMessage: (msg) => observe(handler, toInMessage(DISCOVERY_QUEUE, msg), log),
      setup: async (ch, s) => {
        await ch.prefetch(DEFAULT_PREFETCH);
        const { consumerTag } = await ch.consume(
          DISCOVERY_QUEUE,
          (msg: ConsumeMessage | null) => {
            if (msg === null) log('broker cancelled the discovery relay consumer');
            else relay(ch, publisher, msg);
          },
          { noAck: false },
        );
        s.addConsumer(consumerTag);
      },
    });
    log('observing discovery');
    return sub;
  }
}

/** Republish a msgflo-era discovery message from queue `fbp` onto exchange `fbp`; ack the rest. */
function relay(ch: Channel, publisher: Publisher, msg: ConsumeMessage): void {
  const headers = msg.properties.headers ?? {};
  const settle = (op: 'ack' | 'nack'): void => {
    try {
      if (op === 'ack') ch.ack(msg);
      else ch.nack(msg, false, false);
    } catch (err) {
      log('cannot %s discovery message (channel closed): %s', op, (err as Error).message);
    }
  };
  if (HEADER.via in headers || HEADER.relayed in headers) {
    settle('ack');
    return;
  }
  log('relaying msgflo-era discovery message');
  publisher
    .publish({
      exchange: DISCOVERY_QUEUE,
      routingKey: '',
      content: msg.content,
      options: {
        ...copyProperties(msg.properties),
        expiration: String(DISCOVERY_TTL_MS),
        headers: { ...headers, [HEADER.relayed]: '1' },
      },
      confirm: true,
      target: DISCOVERY_QUEUE,
    })
    .then(
      () => settle('ack'),
      (err: unknown) => {
        // Heartbeats repeat, so dropping one is better than requeueing it in a loop.
        log('relay failed, dropping the message: %s', reasonOf(err));
        settle('nack');
      },
    );
}
