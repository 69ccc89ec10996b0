/**
 * The snoop channel on AMQP: the transient topic exchange `msgflo.snoop` (spy and trace are live views, not data),
 * routing key `<channel>.<role>`. Publishes are at most once; each watcher reads a bounded queue of its own.
 */
import { reasonOf } from '../../errors.js';
import { decodeBody, encodeBody } from '../../protocol/envelope.js';
import { parseSnoopRoutingKey, SNOOP_EXCHANGE, snoopBindingKey, snoopRoutingKey, type SnoopChannel } from '../../protocol/snoop.js';
import { logger } from '../../util/logger.js';
import { SNOOP_BACKLOG } from '../defaults.js';
import type { SnoopFilter, SnoopHandler, Subscription } from '../types.js';
import type { AmqpConnection } from './connection.js';
import type { Consumers } from './consume.js';
import { JSON_CONTENT_TYPE } from './publish.js';
import type { Step, Topology } from './topology.js';

const log = logger('amqp');

/** Snoop messages older than this are dropped from a watcher's queue. */
const SNOOP_TTL_MS = 60_000;
/** Snoop messages a watcher has unacknowledged at a time. */
const SNOOP_PREFETCH = 500;

function snoopSteps(): Step[] {
  return [
    {
      what: `assert topic exchange '${SNOOP_EXCHANGE}'`,
      run: (ch) => ch.assertExchange(SNOOP_EXCHANGE, 'topic', { durable: false, autoDelete: false }),
    },
  ];
}

export class Snoop {
  constructor(
    private readonly connection: AmqpConnection,
    private readonly topology: Topology,
    private readonly consumers: Consumers,
  ) {}

  async publish(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    const what = 'publish on the snoop channel';
    await this.topology.declareOnce(what, 'snoop exchange', snoopSteps);
    const publisher = this.connection.publisher(what);
    try {
      await publisher.publish({
        exchange: SNOOP_EXCHANGE,
        routingKey: snoopRoutingKey(channel, role),
        content: encodeBody(data),
        options: { contentType: JSON_CONTENT_TYPE, deliveryMode: 1, expiration: String(SNOOP_TTL_MS) },
        confirm: false,
        target: SNOOP_EXCHANGE,
      });
    } catch (err) {
      throw this.connection.wrap(err, what);
    }
  }

  /**
   * An exclusive, server-named queue of this watcher's own, bound to the snoop exchange for each channel and role
   * asked for. Bounded (oldest dropped first, and after a minute) and consumed with acks under a prefetch, so a
   * watcher that falls behind loses its own oldest lines at the broker and never holds a publisher back.
   */
  async subscribe(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    const what = 'subscribe to the snoop channel';
    await this.topology.declareOnce(what, 'snoop exchange', snoopSteps);
    const roles: Array<string | undefined> = filter.roles ? [...filter.roles] : [undefined];
    const sub = await this.consumers.ownQueue({
      exchange: SNOOP_EXCHANGE,
      purpose: what,
      routingKeys: filter.channels.flatMap((channel) => roles.map((role) => snoopBindingKey(channel, role))),
      arguments: { 'x-max-length': SNOOP_BACKLOG, 'x-overflow': 'drop-head', 'x-message-ttl': SNOOP_TTL_MS },
      prefetch: SNOOP_PREFETCH,
      onMessage: (msg, ch) => {
        try {
          const where = parseSnoopRoutingKey(msg.fields.routingKey);
          if (where) {
            const { data, jsonError } = decodeBody(msg.content);
            handler({ ...where, data, raw: msg.content, jsonError });
          }
        } catch (err) {
          log('snoop handler failed: %s', reasonOf(err));
        } finally {
          try {
            ch.ack(msg);
          } catch {
            // the channel is gone; the queue goes with it
          }
        }
      },
    });
    log('listening to the snoop channel (%s)', filter.channels.join(', '));
    return sub;
  }
}
