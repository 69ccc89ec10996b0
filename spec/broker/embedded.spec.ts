import assert from 'node:assert/strict';
import net from 'node:net';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/broker/index.js';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function client(url: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 4, ...options });
}

describe('embedded broker (aedes)', () => {
  let broker: EmbeddedBroker | undefined;
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await broker?.close();
    broker = undefined;
  });

  it('starts on 127.0.0.1 and a free port that is neither 1883 nor 5672', async () => {
    broker = await startEmbeddedBroker();
    assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
    assert.ok(broker.port > 0);
    assert.notEqual(broker.port, 1883);
    assert.notEqual(broker.port, 5672);
  });

  it('refuses the ports of real brokers', async () => {
    await assert.rejects(startEmbeddedBroker({ port: 1883 }), /1883/);
    await assert.rejects(startEmbeddedBroker({ port: 5672 }), /5672/);
  });

  it('lets two clients exchange a message', async () => {
    broker = await startEmbeddedBroker();
    const a = await client(broker.url);
    const b = await client(broker.url);
    clients.push(a, b);
    await b.subscribeAsync('greetings', { qos: 1 });
    const got = new Promise<string>((resolve) => b.on('message', (_t, payload) => resolve(payload.toString())));
    await a.publishAsync('greetings', '{"hello":"world"}', { qos: 1 });
    assert.equal(await got, '{"hello":"world"}');
  });

  it('frees its port on close, even with clients connected', async () => {
    broker = await startEmbeddedBroker();
    const { port } = broker;
    clients.push(await client(broker.url));
    const idle = net.connect(port, '127.0.0.1'); // connected, never sends CONNECT
    await new Promise((resolve) => idle.once('connect', resolve));
    idle.on('error', () => {});
    await broker.close();
    await broker.close(); // idempotent
    broker = undefined;
    assert.equal(await portFree(port), true);
  });

  it('speaks MQTT 3.1.1 only: refuses MQTT 5', async () => {
    broker = await startEmbeddedBroker();
    await assert.rejects(client(broker.url, { protocolVersion: 5 }), /Unacceptable protocol version/);
  });

  it('checks credentials when configured', async () => {
    broker = await startEmbeddedBroker({ auth: { username: 'user', password: 'secret' } });
    await assert.rejects(client(broker.url, { username: 'user', password: 'wrong' }), /Bad username or password/);
    await assert.rejects(client(broker.url), /Bad username or password/);
    clients.push(await client(broker.url, { username: 'user', password: 'secret' }));
  });

  it('adds shared subscriptions: members of a group split the messages, other subscribers see all', async () => {
    broker = await startEmbeddedBroker();
    const [m1, m2, plain, pub] = await Promise.all([client(broker.url), client(broker.url), client(broker.url), client(broker.url)]);
    clients.push(m1, m2, plain, pub);
    const counts = { m1: 0, m2: 0, plain: 0 };
    m1.on('message', () => counts.m1++);
    m2.on('message', () => counts.m2++);
    plain.on('message', () => counts.plain++);
    await m1.subscribeAsync('$share/workers/jobs', { qos: 1 });
    await m2.subscribeAsync('$share/workers/jobs', { qos: 1 });
    await plain.subscribeAsync('jobs', { qos: 1 });
    for (let i = 0; i < 10; i++) await pub.publishAsync('jobs', String(i), { qos: 1 });
    await waitFor(() => counts.m1 + counts.m2 === 10 && counts.plain === 10);
    assert.equal(counts.m1, 5);
    assert.equal(counts.m2, 5);

    // A member that leaves no longer gets messages; the group goes on with the others.
    await m1.unsubscribeAsync('$share/workers/jobs');
    for (let i = 0; i < 4; i++) await pub.publishAsync('jobs', String(i), { qos: 1 });
    await waitFor(() => counts.m2 === 9);
    assert.equal(counts.m1, 5);
  });
});

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
