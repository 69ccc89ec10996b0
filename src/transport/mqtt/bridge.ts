/**
 * Bridges for msgflo-era participants: a binding added with `{bridge: true}` is also forwarded src→tgt by this
 * transport, as msgflo did, for participants that do not read binding records. A bridge lives as long as the
 * transport that made it. What it forwards is marked as relayed (HEADER.via/relayed, MQTT 5), so that msgflo-ts
 * followers that read the source directly drop the copy (follower.ts).
 */
import { HEADER } from '../../protocol/envelope.js';
import { logger } from '../../util/logger.js';
import type { Headers } from '../types.js';
import type { MqttConnection } from './connection.js';
import type { Received, Unlisten } from './link.js';
import { userProperties } from './message.js';
import type { Publisher } from './publish.js';
import type { BindingRecord } from './topics.js';

const debug = logger('mqtt');

interface Bridge {
  readonly unlistens: Promise<Unlisten>[];
}

export class Bridges {
  private readonly bridges = new Map<string, Bridge>();

  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
  ) {}

  /** Forward each record's src to its tgt (those not bridged yet); resolves once their sources are subscribed. */
  async start(records: BindingRecord[]): Promise<void> {
    for (const record of records) {
      const key = bridgeKey(record);
      if (this.bridges.has(key)) continue;
      const bridge: Bridge = { unlistens: [] };
      this.bridges.set(key, bridge);
      const unlisten = this.connection
        .listen(record.src, 1, (m) => {
          if (this.bridges.get(key) === bridge) this.relay(record, m);
        })
        .then((l) => l.unlisten);
      bridge.unlistens.push(unlisten);
      try {
        await unlisten;
      } catch (err) {
        this.bridges.delete(key);
        throw err;
      }
      debug('bridging %s -> %s', record.src, record.tgt);
    }
  }

  async stop(record: BindingRecord): Promise<void> {
    const key = bridgeKey(record);
    const bridge = this.bridges.get(key);
    if (!bridge) return;
    this.bridges.delete(key);
    await Promise.all(bridge.unlistens.map(async (u) => (await u.catch(() => undefined))?.()));
    debug('bridge %s -> %s stopped', record.src, record.tgt);
  }

  /** The transport is closing: forward nothing more (its connections end the subscriptions). */
  clear(): void {
    this.bridges.clear();
  }

  /** Forward one message src→tgt unchanged (body, id, headers), marking it as relayed. */
  private relay(record: BindingRecord, m: Received): void {
    if (!this.connection.isOpen) return;
    const headers: Headers = { ...userProperties(m.packet), [HEADER.via]: record.src, [HEADER.relayed]: 'bridge' };
    this.publisher.publish(record.tgt, m.payload, { qos: m.packet.qos === 0 ? 0 : 1, headers, untilHeard: m.packet.qos !== 0 }).catch((err: unknown) => {
      debug('bridge %s -> %s: %s', record.src, record.tgt, (err as Error).message);
      if (this.connection.isOpen) this.connection.emit({ type: 'error', error: err as Error });
    });
  }
}

/** One bridge per source and target (a record's other fields do not make another bridge). */
function bridgeKey(record: BindingRecord): string {
  return `${record.src}\u0000${record.tgt}`;
}
