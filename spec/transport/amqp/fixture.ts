/**
 * What the AMQP specs share: AmqpTransports closed after each test, and a raw amqplib client that plays the
 * msgflo-era participant/coordinator and deletes what the tests declared. Call amqpFixture() inside a describe.
 */
import { connect as rawConnect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { AmqpTransport } from '../../../src/transport/amqp/index.js';
import type { Delivery, Transport } from '../../../src/transport/types.js';
import { AMQP_URL, requireBroker } from '../../helpers/brokers.js';
import { Collector, waitFor } from '../../helpers/wait.js';

/** Subscribe to `queue`, acking and collecting every delivery. */
export async function collectAcked(t: Transport, queue: string): Promise<Collector<Delivery>> {
  const got = new Collector<Delivery>();
  await t.subscribe(queue, (d) => {
    void d.ack();
    got.push(d);
  });
  return got;
}

export interface AmqpFixture {
  /** A fresh channel on the raw client; RabbitMQ closes a channel on any failed operation. */
  rawChannel(): Promise<Channel>;
  /** Remember everything createQueue('inqueue'/'outqueue', name) and bindings declare, for after(). */
  track(name: string, kind?: 'inqueue' | 'outqueue'): string;
  /** Exchanges to delete after the suite (beyond those of track()). */
  readonly exchanges: Set<string>;
  /** A connected AmqpTransport, closed after the test. */
  transport(url?: string): Promise<AmqpTransport>;
  /** Poll a queue with basic.get until a message arrives. */
  getOne(queue: string): Promise<GetMessage>;
}

export function amqpFixture(): AmqpFixture {
  let raw: ChannelModel;
  const transports: AmqpTransport[] = [];
  const queues = new Set<string>();
  const exchanges = new Set<string>();

  async function rawChannel(): Promise<Channel> {
    const ch = await raw.createChannel();
    ch.on('error', () => undefined);
    return ch;
  }

  before(async function () {
    await requireBroker(this, AMQP_URL);
    raw = await rawConnect(AMQP_URL);
    raw.on('error', () => undefined);
  });

  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
  });

  after(async () => {
    if (!raw) return;
    const ch = await rawChannel();
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    for (const x of exchanges) await ch.deleteExchange(x).catch(() => undefined);
    await ch.close().catch(() => undefined);
    await raw.close();
  });

  return {
    rawChannel,
    exchanges,
    track(name, kind = 'inqueue') {
      exchanges.add(name);
      if (kind === 'inqueue') {
        queues.add(name);
        queues.add(`dead-${name}`);
        exchanges.add(`dead-${name}`);
      }
      return name;
    },
    async transport(url = AMQP_URL) {
      const t = new AmqpTransport(url, { name: 'amqp-spec' });
      transports.push(t);
      await t.connect();
      return t;
    },
    async getOne(queue) {
      const ch = await rawChannel();
      try {
        return await waitFor(async () => {
          const m = await ch.get(queue, { noAck: true });
          return m === false ? undefined : m;
        }, `a message in ${queue}`);
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
  };
}
