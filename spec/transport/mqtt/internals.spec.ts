/**
 * The mqtt.js internals the MQTT adapter relies on (src/transport/mqtt/internals.ts), each exercised against a real
 * mqtt.js client, on the embedded broker and on Mosquitto. A failure names the internal that changed: read its
 * function in internals.ts and the new mqtt.js before allowing that version (package.json, MQTT_CHECKED).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../src/broker/index.js';
import {
  MQTT_CHECKED,
  holdPubacks,
  setReconnectDelay,
  socketOf,
  subscribeAnyway,
  unconfirmedCount,
  type PubackPacket,
} from '../../../src/transport/mqtt/internals.js';
import { within } from '../../../src/util/within.js';
import { MQTT_URL, requireBroker, uniqueName } from '../../helpers/brokers.js';
import { installedVersion, inTildeRange } from '../../helpers/versions.js';
import { sleep, waitFor } from '../../helpers/wait.js';

/** Run `check`; if it fails, fail naming the internal (and what the adapter needs of it). */
async function internal(name: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    throw new Error(`mqtt.js ${installedVersion('mqtt')}: the internal ${name} changed (see src/transport/mqtt/internals.ts): ${(err as Error).message}`, { cause: err });
  }
}

interface Proxy {
  readonly url: string;
  /** Drop every connection (as a broker that went away would). */
  cut(): void;
  /** Hold back (true) or pass on (false) what the broker sends to the client. */
  holdDownstream(on: boolean): void;
  close(): Promise<void>;
}

/** A TCP proxy to the broker: the client's connection can be cut or its answers held back. */
async function proxyTo(brokerUrl: string): Promise<Proxy> {
  const target = new URL(brokerUrl);
  const pairs = new Set<{ client: net.Socket; broker: net.Socket }>();
  let held = false;
  const waiting: Array<() => void> = [];
  const server = net.createServer((client) => {
    const broker = net.connect(Number(target.port || 1883), target.hostname);
    const pair = { client, broker };
    pairs.add(pair);
    client.on('data', (d) => broker.write(d));
    broker.on('data', (d) => (held ? waiting.push(() => client.write(d)) : client.write(d)));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      broker.destroy();
    };
    client.on('close', end).on('error', end);
    broker.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    for (const { client, broker } of pairs) {
      client.destroy();
      broker.destroy();
    }
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    cut,
    holdDownstream(on) {
      held = on;
      if (!on) for (const write of waiting.splice(0)) write();
    },
    async close() {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('mqtt.js internals (src/transport/mqtt/internals.ts)', () => {
  it(`the installed mqtt is in the proven range ${MQTT_CHECKED.range}`, () => {
    const version = installedVersion('mqtt');
    assert.ok(
      inTildeRange(version, MQTT_CHECKED.range),
      `mqtt ${version} is installed, but src/transport/mqtt/internals.ts was proven for ${MQTT_CHECKED.range} only: run spec/transport/mqtt/internals.spec.ts, read what changed, then widen MQTT_CHECKED and package.json`,
    );
  });
});

let embedded: EmbeddedBroker | undefined;
const targets = [
  { label: 'the embedded broker', version: 4 as const, url: () => embedded!.url, setup: async () => void (embedded = await startEmbeddedBroker()), teardown: async () => embedded?.close() },
  { label: 'Mosquitto @broker', version: 5 as const, url: () => MQTT_URL, setup: async (ctx: Mocha.Context) => requireBroker(ctx, MQTT_URL), teardown: async () => undefined },
];

for (const target of targets) {
  describe(`mqtt.js internals on ${target.label}`, function () {
    this.timeout(15_000);
    const clients: mqtt.MqttClient[] = [];
    const proxies: Proxy[] = [];

    before(async function () {
      await target.setup(this);
    });
    after(async () => {
      await target.teardown();
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
      await Promise.all(proxies.splice(0).map((p) => p.close()));
    });

    async function client(options: mqtt.IClientOptions = {}, url = target.url()): Promise<mqtt.MqttClient> {
      const c = mqtt.connect(url, { protocolVersion: target.version, reconnectPeriod: 0, ...options });
      clients.push(c);
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      return c;
    }
    async function proxy(): Promise<Proxy> {
      const p = await proxyTo(target.url());
      proxies.push(p);
      return p;
    }

    it('holdPubacks (MqttClient._sendPacket): a held PUBACK is not sent until released, and later messages still arrive', () =>
      internal('MqttClient._sendPacket', async () => {
        const topic = uniqueName('internals/hold/');
        const c = await client();
        const held: PubackPacket[] = [];
        const release = holdPubacks(c, (packet) => {
          held.push(packet);
          return true;
        });
        const sent: number[] = [];
        c.on('packetsend', (packet) => {
          if (packet.cmd === 'puback') sent.push(packet.messageId!);
        });
        let received = 0;
        c.on('message', () => received++);
        await c.subscribeAsync(topic, { qos: 1 });
        const publisher = await client();
        await publisher.publishAsync(topic, 'one', { qos: 1 });
        await publisher.publishAsync(topic, 'two', { qos: 1 });
        await waitFor(() => received === 2, 'both messages, the first PUBACK held (the packet pipeline goes on)');
        await waitFor(() => held.length === 2, 'mqtt.js to hand both PUBACKs to _sendPacket');
        await sleep(100);
        assert.deepEqual(sent, [], 'a held PUBACK was sent anyway');
        release(held[0]!);
        await waitFor(() => sent.length === 1, 'the released PUBACK to be sent');
        assert.equal(sent[0], held[0]!.messageId);
      }));

    it('setReconnectDelay (MqttClient.options.reconnectPeriod): the next attempt waits that long, subscriptions are made again, 0 stops', () =>
      internal('MqttClient.options.reconnectPeriod', async () => {
        const p = await proxy();
        const topic = uniqueName('internals/reconnect/');
        const c = await client({}, p.url);
        setReconnectDelay(c, 300);
        await c.subscribeAsync(topic, { qos: 1 }); // recorded for resubscription only while the delay is above 0
        let closedAt = 0;
        let attemptAt = 0;
        c.once('close', () => (closedAt = Date.now()));
        c.once('reconnect', () => (attemptAt = Date.now()));
        const back = new Promise<void>((resolve) => c.once('connect', () => resolve()));
        p.cut();
        assert.ok(await within(5000, back.then(() => true), false), 'mqtt.js did not reconnect within 5 s, with a delay of 300 ms set');
        const waited = attemptAt - closedAt;
        assert.ok(waited >= 250 && waited < 3000, `the attempt came ${waited} ms after the connection ended, not after about 300 ms`);
        const got = new Promise<string>((resolve) => c.on('message', (_t, payload) => resolve(payload.toString())));
        const publisher = await client();
        await waitFor(async () => {
          await publisher.publishAsync(topic, 'after', { qos: 1 });
          return (await Promise.race([got, sleep(200).then(() => undefined)])) === 'after';
        }, 'a message on the subscription mqtt.js made again after reconnecting');

        setReconnectDelay(c, 0);
        let attempted = false;
        c.once('reconnect', () => (attempted = true));
        p.cut();
        await sleep(800);
        assert.equal(attempted, false, 'mqtt.js reconnected with a delay of 0');
      }));

    it('unconfirmedCount (MqttClient.outgoing): a QoS 1 publish counts until its PUBACK arrives', () =>
      internal('MqttClient.outgoing', async () => {
        const p = await proxy();
        const c = await client({}, p.url);
        assert.equal(unconfirmedCount(c), 0);
        p.holdDownstream(true);
        let confirmed = false;
        c.publish(uniqueName('internals/outgoing/'), 'x', { qos: 1 }, () => (confirmed = true));
        await waitFor(() => unconfirmedCount(c) === 1, 'the publish to count while its PUBACK is held back');
        assert.equal(confirmed, false);
        p.holdDownstream(false);
        await waitFor(() => confirmed, 'the PUBACK');
        assert.equal(unconfirmedCount(c), 0);
      }));

    it('subscribeAnyway (subscribe({…, resubscribe: true})): SUBSCRIBE is sent again and the broker resends the retained message', () =>
      internal('subscribe resubscribe flag', async () => {
        const topic = uniqueName('internals/retained/');
        const publisher = await client();
        await publisher.publishAsync(topic, 'kept', { qos: 1, retain: true });
        try {
          const c = await client();
          const subscribes: unknown[] = [];
          c.on('packetsend', (packet) => packet.cmd === 'subscribe' && subscribes.push(packet));
          let retained = 0;
          c.on('message', (_t, payload) => payload.toString() === 'kept' && retained++);
          await subscribeAnyway(c, topic, 1, target.version === 5);
          await waitFor(() => retained === 1, 'the retained message');
          const granted = await subscribeAnyway(c, topic, 1, target.version === 5);
          assert.equal(subscribes.length, 2, 'the second SUBSCRIBE was not sent');
          assert.equal(granted.length, 1);
          assert.equal(granted[0]!.qos, 1);
          await waitFor(() => retained === 2, 'the retained message sent again');
        } finally {
          await publisher.publishAsync(topic, '', { qos: 1, retain: true });
        }
      }));

    it('socketOf (MqttClient.stream): the socket is there when connect() returns, and each packet is written corked', () =>
      internal('MqttClient.stream', async () => {
        const c = mqtt.connect(target.url(), { protocolVersion: target.version, reconnectPeriod: 0 });
        clients.push(c);
        const socket = socketOf(c);
        assert.ok(socket, 'no socket right after mqtt.connect(): gather.ts would be off');
        await new Promise<void>((resolve) => c.once('connect', () => resolve()));
        let depth = 0;
        let corked = 0;
        let loose = 0;
        const { cork, uncork, write } = socket;
        socket.cork = () => {
          depth++;
          cork.call(socket);
        };
        socket.uncork = () => {
          depth--;
          uncork.call(socket);
        };
        socket.write = ((...args: Parameters<typeof write>) => {
          if (depth > 0) corked++;
          else loose++;
          return write.apply(socket, args);
        }) as typeof write;
        await c.publishAsync(uniqueName('internals/cork/'), 'x', { qos: 1 });
        assert.ok(corked > 0, 'mqtt.js wrote the PUBLISH without corking the socket');
        assert.equal(loose, 0, 'mqtt.js wrote part of a packet outside cork/uncork');
      }));

    it('the CONNACK (session flag, properties) reaches packetreceive before connect (link.ts reads it there)', async () => {
      const c = mqtt.connect(target.url(), { protocolVersion: target.version, reconnectPeriod: 0 });
      clients.push(c);
      const order: string[] = [];
      c.on('packetreceive', (packet) => packet.cmd === 'connack' && order.push(`connack:${String((packet as { sessionPresent?: unknown }).sessionPresent)}`));
      await new Promise<void>((resolve) => c.once('connect', () => resolve(void order.push('connect'))));
      assert.deepEqual(order, ['connack:false', 'connect']);
    });
  });
}
