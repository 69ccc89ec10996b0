/**
 * The aedes internals the embedded broker relies on (src/broker/internals.ts), each exercised against a real aedes
 * instance on an ephemeral port with real mqtt.js clients. A failure names the internal that changed: read its
 * function in internals.ts and the new aedes before allowing that version (package.json, AEDES_CHECKED).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Aedes, type AedesPublishPacket } from 'aedes';
import mqtt from 'mqtt';
import { AEDES_CHECKED, type Deliver, enqueueOutgoing, replaceSubscriptionCalls, subscriberOf, type SubscriptionCalls } from '../../src/broker/internals.js';
import { uniqueName } from '../helpers/brokers.js';
import { installedVersion, inTildeRange } from '../helpers/versions.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Run `check`; if it fails, fail naming the internal. */
async function internal(name: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    throw new Error(`aedes ${installedVersion('aedes')}: the internal ${name} changed (see src/broker/internals.ts): ${(err as Error).message}`, { cause: err });
  }
}

interface Call {
  kind: 'subscribe' | 'unsubscribe';
  topic: string;
  deliver: Deliver;
  withDone: boolean;
}

describe('aedes internals (src/broker/internals.ts)', function () {
  this.timeout(15_000);
  let aedes: Aedes;
  let server: net.Server;
  let url: string;
  let calls: Call[];
  let original: SubscriptionCalls;
  const clients: mqtt.MqttClient[] = [];

  beforeEach(async () => {
    aedes = await Aedes.createBroker();
    calls = [];
    // Pass every call on, recording it.
    original = replaceSubscriptionCalls(aedes, {
      subscribe(topic, deliver, done) {
        calls.push({ kind: 'subscribe', topic, deliver, withDone: typeof done === 'function' });
        original.subscribe(topic, deliver, done);
      },
      unsubscribe(topic, deliver, done) {
        calls.push({ kind: 'unsubscribe', topic, deliver, withDone: typeof done === 'function' });
        original.unsubscribe(topic, deliver, done);
      },
    });
    server = net.createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise((resolve) => server.close(resolve));
  });

  async function client(options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const c = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
    clients.push(c);
    return c;
  }
  const subscribed = (topic: string) => calls.find((c) => c.kind === 'subscribe' && c.topic === topic);

  it(`the installed aedes is in the proven range ${AEDES_CHECKED.range}`, () => {
    const version = installedVersion('aedes');
    assert.ok(
      inTildeRange(version, AEDES_CHECKED.range),
      `aedes ${version} is installed, but src/broker/internals.ts was proven for ${AEDES_CHECKED.range} only: run spec/broker/internals.spec.ts, read what changed, then widen AEDES_CHECKED and package.json`,
    );
  });

  it("replaceSubscriptionCalls (Aedes#subscribe/unsubscribe): a client's SUBSCRIBE, option change and UNSUBSCRIBE go through them", () =>
    internal('Aedes#subscribe / Aedes#unsubscribe as the path of client subscriptions', async () => {
      const topic = uniqueName('internals/sub/');
      const c = await client();
      await c.subscribeAsync(topic, { qos: 1 });
      const sub = subscribed(topic);
      assert.ok(sub, "a client's SUBSCRIBE did not call aedes.subscribe(topic, deliver, done)");
      assert.equal(sub.withDone, true);
      const got = new Promise<string>((resolve) => c.once('message', (_t, payload) => resolve(payload.toString())));
      await (await client()).publishAsync(topic, 'through', { qos: 1 });
      assert.equal(await got, 'through', 'a message did not reach the subscription made through the replaced call');
      await c.subscribeAsync(topic, { qos: 0 });
      const change = calls.find((x) => x.kind === 'unsubscribe' && x.topic === topic);
      assert.ok(change, 'changing the options of a filter did not unsubscribe the old one through aedes.unsubscribe');
      assert.equal(change.deliver, sub.deliver);
      assert.equal(change.withDone, false, 'aedes now passes done when it changes options (broker/shared.ts may rely on it less)');
      calls.length = 0;
      await c.unsubscribeAsync(topic);
      const gone = calls.find((x) => x.kind === 'unsubscribe' && x.topic === topic);
      assert.ok(gone, 'an UNSUBSCRIBE did not call aedes.unsubscribe(topic, deliver, done)');
      assert.equal(gone.withDone, true);
    }));

  it('subscriberOf (Aedes.clients, client.subscriptions[topic].func): finds the client of a deliver function, with its session flag', () =>
    internal('Aedes.clients / client.subscriptions[topic].func', async () => {
      const topic = uniqueName('internals/owner/');
      const clean = await client({ clientId: uniqueName('clean-') });
      const kept = await client({ clientId: uniqueName('kept-'), clean: false });
      await clean.subscribeAsync(topic, { qos: 1 });
      await kept.subscribeAsync(topic, { qos: 1 });
      const [a, b] = calls.filter((c) => c.kind === 'subscribe' && c.topic === topic);
      assert.ok(a && b && a.deliver !== b.deliver, 'each client subscribed its own deliver function');
      assert.deepEqual(pick(subscriberOf(aedes, topic, a.deliver)), { id: clean.options.clientId, clean: true });
      assert.deepEqual(pick(subscriberOf(aedes, topic, b.deliver)), { id: kept.options.clientId, clean: false });
      assert.equal(subscriberOf(aedes, `${topic}/other`, a.deliver), undefined);
    }));

  it("enqueueOutgoing (Aedes.persistence.outgoingEnqueue): a message queued in a kept session is delivered by the client's deliver function", () =>
    internal('Aedes.persistence.outgoingEnqueue', async () => {
      const topic = uniqueName('internals/queue/');
      const id = uniqueName('kept-');
      const kept = await client({ clientId: id, clean: false });
      await kept.subscribeAsync(topic, { qos: 1 });
      const deliver = subscribed(topic)!.deliver;
      // A real packet as aedes hands it to subscriptions.
      let packet: AedesPublishPacket | undefined;
      const capture: Deliver = (p, cb) => {
        packet = p;
        cb();
      };
      await new Promise<void>((resolve) => original.subscribe(`${topic}/capture`, capture, resolve));
      await (await client()).publishAsync(`${topic}/capture`, 'queued', { qos: 1 });
      await waitFor(() => packet, 'a packet from aedes');
      const received: string[] = [];
      kept.on('message', (_t, payload) => received.push(payload.toString()));
      await enqueueOutgoing(aedes, id, packet!);
      await new Promise<void>((resolve) => deliver(packet!, resolve));
      await waitFor(() => received.length === 1, 'the queued message at the kept-session client');
      assert.deepEqual(received, ['queued']);
      await sleep(50);
    }));
});

function pick(info: { id: string; clean: boolean } | undefined): { id: string; clean: boolean } | undefined {
  return info && { id: info.id, clean: info.clean };
}
