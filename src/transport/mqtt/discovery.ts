/**
 * Discovery on MQTT: participants announce themselves on the topic `fbp` (QoS 1, an MQTT 5 message expiry for the
 * announcement's time to live), and every observer hears every announcement (a plain subscription, never shared).
 */
import { encodeBody } from '../../protocol/envelope.js';
import type { MessageHandler, Subscription } from '../types.js';
import type { MqttConnection } from './connection.js';
import type { Consumer } from './consume.js';
import { toInMessage } from './message.js';
import type { Publisher } from './publish.js';
import { DISCOVERY_TOPIC } from './topics.js';

export class Discovery {
  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
    private readonly consumer: Consumer,
  ) {}

  async announce(message: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    this.connection.assertOpen('announce');
    const expiry = options.ttlMs !== undefined ? Math.max(1, Math.ceil(options.ttlMs / 1000)) : undefined;
    await this.publisher.publish(DISCOVERY_TOPIC, encodeBody(message), { qos: 1, expiry });
  }

  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    this.connection.assertOpen('listen for discovery');
    return this.consumer.listen(DISCOVERY_TOPIC, DISCOVERY_TOPIC, 1, (received) => handler(toInMessage(DISCOVERY_TOPIC, received)));
  }
}
