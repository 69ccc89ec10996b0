import assert from 'node:assert/strict';
import { connectTransport } from '../../src/transport/index.js';
import type { SnoopReceived, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { Collector, sleep } from '../helpers/wait.js';

/** The snoop channel of every transport: fan-out to every subscriber, filtered by channel and role. */
function snoopSuite(name: string, url: () => Promise<string>, teardown?: () => Promise<void>) {
  describe(`snoop channel: ${name}`, () => {
    let base: string;
    const open: Transport[] = [];
    const connect = async () => {
      const t = await connectTransport(base, { name: 'snoop-spec' });
      open.push(t);
      return t;
    };

    before(async function () {
      base = await url.call(this);
    });
    after(async () => {
      await teardown?.();
    });
    afterEach(async () => {
      for (const t of open.splice(0)) await t.close().catch(() => {});
    });

    it('gives every subscriber every message of every publisher', async () => {
      const [p1, p2, w1, w2] = [await connect(), await connect(), await connect(), await connect()];
      const roles = [uniqueName('r'), uniqueName('r')];
      const c1 = new Collector<SnoopReceived>();
      const c2 = new Collector<SnoopReceived>();
      await w1.subscribeSnoop({ channels: ['spy', 'trace'], roles }, c1.push);
      await w2.subscribeSnoop({ channels: ['spy', 'trace'], roles }, c2.push);
      await sleep(50);
      for (let i = 0; i < 5; i++) {
        await p1.publishSnoop('spy', roles[0]!, { n: i });
        await p2.publishSnoop('trace', roles[1]!, { n: i });
      }
      for (const c of [c1, c2]) {
        await c.waitCount(10, 5000, 'snoop messages');
        assert.deepEqual(
          c.items.filter((m) => m.channel === 'spy').map((m) => [m.role, m.data]),
          [0, 1, 2, 3, 4].map((n) => [roles[0], { n }]),
        );
        assert.deepEqual(
          c.items.filter((m) => m.channel === 'trace').map((m) => [m.role, m.data]),
          [0, 1, 2, 3, 4].map((n) => [roles[1], { n }]),
        );
      }
    });

    it('filters by channel and by role', async () => {
      const [p, w] = [await connect(), await connect()];
      const mine = uniqueName('mine');
      const other = uniqueName('other');
      const got = new Collector<SnoopReceived>();
      await w.subscribeSnoop({ channels: ['control'], roles: [mine] }, got.push);
      await sleep(50);
      await p.publishSnoop('control', other, { x: 'other role' });
      await p.publishSnoop('spy', mine, { x: 'other channel' });
      await p.publishSnoop('control', mine, { x: 'yes' });
      await got.waitCount(1);
      await sleep(100);
      assert.deepEqual(got.items.map((m) => [m.channel, m.role, m.data]), [['control', mine, { x: 'yes' }]]);
    });

    it('stops delivering after cancel', async () => {
      const [p, w] = [await connect(), await connect()];
      const role = uniqueName('c');
      const got = new Collector<SnoopReceived>();
      const sub = await w.subscribeSnoop({ channels: ['spy'], roles: [role] }, got.push);
      await sleep(50);
      await p.publishSnoop('spy', role, 1);
      await got.waitCount(1);
      await sub.cancel();
      await p.publishSnoop('spy', role, 2);
      await sleep(150);
      assert.equal(got.items.length, 1);
    });
  });
}

snoopSuite('direct (in-memory)', async () => `direct://${uniqueName('snoop')}`);

let embedded: { url: string; close(): Promise<void> } | undefined;
snoopSuite(
  'embedded MQTT broker',
  async () => {
    const { startEmbeddedBroker } = await import('../../src/broker/index.js');
    embedded = await startEmbeddedBroker();
    return embedded.url;
  },
  async () => {
    await embedded?.close();
  },
);

snoopSuite('Mosquitto @broker', async function (this: Mocha.Context) {
  await requireBroker(this, MQTT_URL);
  return MQTT_URL;
});

snoopSuite('RabbitMQ @broker', async function (this: Mocha.Context) {
  await requireBroker(this, AMQP_URL);
  return AMQP_URL;
});
