/**
 * The snoop channel on MQTT (spy/trace lines and their control messages): `msgflo/snoop/<channel>/<role>`, QoS 0,
 * never retained. Every watcher has a plain (never shared) subscription and gets every line; the broker drops what a
 * slow one misses, so snooping never slows the publishers down.
 */
import { reasonOf } from '../../errors.js';
import { decodeBody, encodeBody } from '../../protocol/envelope.js';
import { type SnoopChannel, parseSnoopTopic, snoopFilter, snoopTopic } from '../../protocol/snoop.js';
import { logger } from '../../util/logger.js';
import type { SnoopFilter, SnoopHandler, Subscription } from '../types.js';
import type { MqttConnection } from './connection.js';
import type { Consumer } from './consume.js';
import type { Received } from './link.js';
import type { Publisher } from './publish.js';

const debug = logger('mqtt');

export class Snoop {
  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
    private readonly consumer: Consumer,
  ) {}

  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    this.connection.assertOpen('publish on the snoop channel');
    await this.publisher.publish(snoopTopic(channel, role), encodeBody(data), { qos: 0 });
  }

  async subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    this.connection.assertOpen('subscribe to the snoop channel');
    const subs: Subscription[] = [];
    const deliver = (r: Received) => {
      const where = parseSnoopTopic(r.topic);
      if (!where) return;
      const { data, jsonError } = decodeBody(r.payload);
      try {
        handler({ ...where, data, raw: r.payload, jsonError });
      } catch (err) {
        debug('snoop handler failed: %s', reasonOf(err));
      }
    };
    try {
      const roles: Array<string | undefined> = filter.roles ? [...filter.roles] : [undefined];
      for (const channel of filter.channels) {
        for (const role of roles) {
          const f = snoopFilter(channel, role);
          subs.push(await this.consumer.listen(f, f, 0, deliver));
        }
      }
    } catch (err) {
      for (const s of subs) await s.cancel().catch(() => undefined);
      throw err;
    }
    return {
      queue: 'snoop',
      cancel: async () => {
        for (const s of subs) await s.cancel().catch(() => undefined);
      },
    };
  }
}
