/** Discovery on the in-memory broker: announcements fan out on the exchange `fbp` to every observer's own queue. */
import { DISCOVERY_QUEUE } from '../../protocol/naming.js';
import type { MessageHandler, Subscription } from '../types.js';
import type { DirectConnection } from './connection.js';
import type { DirectConsumers } from './consume.js';
import { stored } from './publish.js';

export class DirectDiscovery {
  constructor(
    private readonly connection: DirectConnection,
    private readonly consumers: DirectConsumers,
  ) {}

  announce(message: unknown): void {
    this.connection.check('announce');
    this.connection.broker.assertExchange(DISCOVERY_QUEUE);
    this.connection.broker.publish(DISCOVERY_QUEUE, stored(message));
  }

  onDiscovery(handler: MessageHandler): Subscription {
    this.connection.check('observe discovery');
    this.connection.broker.assertExchange(DISCOVERY_QUEUE);
    return this.consumers.privateTap(DISCOVERY_QUEUE, handler, DISCOVERY_QUEUE);
  }
}
