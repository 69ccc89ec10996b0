/**
 * MQTT-specific behaviour of MqttTransport, against the real Mosquitto (MSGFLO_TEST_MQTT) and the embedded broker.
 * What every transport must do is in the conformance suite; this file covers what only MQTT has: binding
 * records that outlive their maker, bridges, shared subscriptions, dead letters on a topic, protocol fallback.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../src/broker/index.js';
import { BrokerAuthError, BrokerUnreachableError, ErrorCodes, TransportClosedError } from '../../../src/errors.js';
import { MqttTransport } from '../../../src/transport/mqtt/index.js';
import type { Binding, Delivery, InMessage, TransportEvent } from '../../../src/transport/types.js';
import { MQTT_URL, requireBroker, uniqueName } from '../../helpers/brokers.js';

async function waitFor(condition: () => boolean, ms = 4000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

interface Target {
  label: string;
  url: () => string;
  version: 4 | 5;
  setup(ctx: Mocha.Context): Promise<void>;
  teardown(): Promise<void>;
}

let embedded: EmbeddedBroker | undefined;
const targets: Target[] = [
  {
    label: 'Mosquitto',
    url: () => MQTT_URL,
    version: 5,
    setup: (ctx) => requireBroker(ctx, MQTT_URL),
    teardown: async () => {},
  },
  {
    label: 'embedded broker',
    url: () => embedded!.url,
    version: 4,
    setup: async () => {
      embedded = await startEmbeddedBroker();
    },
    teardown: async () => {
      await embedded?.close();
      embedded = undefined;
    },
  },
];

for (const target of targets) {
  describe(`MqttTransport on ${target.label} @broker`, function () {
    this.timeout(15000);
    const open: MqttTransport[] = [];
    const records: Binding[] = [];
    const rawClients: mqtt.MqttClient[] = [];

    before(async function () {
      await target.setup(this);
    });
    after(async () => {
      await target.teardown();
    });

    async function transport(name = 'spec'): Promise<MqttTransport> {
      const t = new MqttTransport(target.url(), { name });
      open.push(t);
      await t.connect();
      return t;
    }
    /** A msgflo-era participant: plain mqtt.js, reads the topic, nothing else. */
    async function rawClient(): Promise<mqtt.MqttClient> {
      const c = await mqtt.connectAsync(target.url(), { protocolVersion: 4, reconnectPeriod: 0 });
      rawClients.push(c);
      return c;
    }
    /** What a msgflo-era participant subscribed to `topic` receives (bodies as text). */
    async function rawSubscriber(topic: string): Promise<string[]> {
      const raw = await rawClient();
      await raw.subscribeAsync(topic, { qos: 1 });
      const got: string[] = [];
      raw.on('message', (_t, p) => got.push(p.toString()));
      return got;
    }
    async function bind(t: MqttTransport, binding: Binding, bridge = false): Promise<void> {
      records.push(binding);
      await t.addBinding(binding, { bridge });
    }

    afterEach(async () => {
      // Retained binding records outlive the test: clear every one we made.
      if (records.length > 0) {
        const cleaner = new MqttTransport(target.url(), { name: 'cleaner' });
        await cleaner.connect();
        for (const b of records.splice(0)) await cleaner.removeBinding(b);
        await cleaner.close();
      }
      await Promise.all(open.splice(0).map((t) => t.close()));
      await Promise.all(rawClients.splice(0).map((c) => c.endAsync(true)));
    });

    it(`connects with MQTT ${target.version === 5 ? '5' : '3.1.1'} and describes itself`, async () => {
      const t = await transport();
      assert.equal(t.scheme, 'mqtt');
      assert.equal(t.brokerBindings, false);
      assert.equal(t.protocolVersion, target.version);
      assert.equal(await t.queueExists('inqueue', uniqueName('nothing')), true);
      await t.createQueue('inqueue', uniqueName('q'));
      await t.removeQueue('inqueue', uniqueName('q'));
    });

    it('delivers JSON bodies with id and headers (headers on MQTT 5 only)', async () => {
      const t = await transport();
      const q = uniqueName('q');
      const got: Delivery[] = [];
      await t.subscribe(q, (d) => {
        got.push(d);
        void d.ack();
      });
      await t.send('inqueue', q, { n: 1 }, { id: 'id-1', headers: { 'x-trace': 'abc' } });
      await t.send('inqueue', q, 'text', { fast: true });
      await t.send('inqueue', q, 'generated');
      await waitFor(() => got.length === 3);
      assert.equal(got[0]!.queue, q);
      assert.deepEqual(got[0]!.data, { n: 1 });
      assert.equal(got[0]!.raw.toString(), '{"n":1}');
      const text = got.find((d) => d.data === 'text')!;
      const generated = got.find((d) => d.data === 'generated')!;
      assert.ok(text && generated);
      if (target.version === 5) {
        assert.equal(got[0]!.id, 'id-1');
        assert.deepEqual(got[0]!.headers, { 'x-trace': 'abc' });
        assert.equal(text.id, undefined, 'at-most-once sends carry no id');
        assert.ok(generated.id, 'an id is generated');
      } else {
        assert.equal(got[0]!.id, undefined);
        assert.deepEqual(got[0]!.headers, {});
      }
    });

    it('delivers plain JSON to a msgflo-era client and reads what it publishes', async () => {
      const t = await transport();
      const raw = await rawClient();
      const q = uniqueName('q');
      await raw.subscribeAsync(q, { qos: 1 });
      const seen = new Promise<string>((resolve) => raw.on('message', (_t, p) => resolve(p.toString())));
      await t.send('outqueue', q, { a: [1, 2] });
      assert.equal(await seen, '{"a":[1,2]}');

      const got: Delivery[] = [];
      const q2 = uniqueName('q');
      await t.subscribe(q2, (d) => got.push(d));
      await raw.publishAsync(q2, 'not json', { qos: 0 });
      await waitFor(() => got.length === 1);
      assert.equal(got[0]!.data, 'not json');
      assert.ok(got[0]!.jsonError instanceof Error);
    });

    it('keeps no record of a send once it is done, QoS 0 and QoS 1 (a QoS 0 send can be done before publish returns)', async () => {
      const t = await transport();
      const q = uniqueName('q');
      let got = 0;
      await t.subscribe(q, (d) => {
        got++;
        void d.ack();
      });
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) sends.push(t.send('inqueue', q, { i }, { fast: i % 2 === 0 }));
      assert.ok(t.sendsInFlight > 0, 'QoS 1 sends wait for their PUBACK');
      await Promise.all(sends);
      assert.equal(t.sendsInFlight, 0);
      await waitFor(() => got === 300);
    });

    it('keeps an edge working after the process that made it has closed (msgflo#181)', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('b.IN')];
      const maker = await transport('maker');
      await bind(maker, { type: 'pubsub', src, tgt });
      await maker.close();

      const consumer = await transport('consumer');
      const got: Delivery[] = [];
      await consumer.subscribe(tgt, (d) => {
        got.push(d);
        void d.ack();
      });
      const producer = await transport('producer');
      await producer.send('outqueue', src, { via: 'record' });
      await waitFor(() => got.length === 1, 4000, 'message through the binding record');
      assert.equal(got[0]!.queue, tgt);
      assert.deepEqual(got[0]!.data, { via: 'record' });

      // A binding made while the consumer runs is followed too.
      const src2 = uniqueName('c.OUT');
      const maker2 = await transport('maker2');
      await bind(maker2, { type: 'pubsub', src: src2, tgt });
      await maker2.close();
      await sleep(200); // the new record reaches the consumer, which subscribes the new source
      await producer.send('outqueue', src2, { via: 'live record' });
      await waitFor(() => got.length === 2, 4000, 'message through the live binding record');
      assert.deepEqual(got[1]!.data, { via: 'live record' });
    });

    it('stops delivering when the binding is removed, and lists current bindings', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('b.IN')];
      const t = await transport();
      const other = await transport('other');
      const binding: Binding = { type: 'pubsub', src, tgt };
      await bind(t, binding);
      assert.deepEqual(
        (await other.listBindings()).filter((b) => b.tgt === tgt),
        [binding],
      );

      const got: Delivery[] = [];
      await other.subscribe(tgt, (d) => got.push(d));
      await t.send('outqueue', src, 1);
      await waitFor(() => got.length === 1);

      await t.removeBinding(binding);
      assert.deepEqual((await other.listBindings()).filter((b) => b.tgt === tgt), []);
      await sleep(200); // the removal reaches the subscriber asynchronously
      await t.send('outqueue', src, 2);
      await t.send('inqueue', tgt, 3);
      await waitFor(() => got.length === 2);
      await sleep(200);
      assert.deepEqual(
        got.map((d) => d.data),
        [1, 3],
      );
    });

    it('bridges src to tgt for msgflo-era participants, without duplicates for msgflo-ts ones', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('b.IN')];
      const coordinator = await transport('coordinator');
      const rawGot = await rawSubscriber(tgt);
      const participant = await transport('participant');
      const got: Delivery[] = [];
      await participant.subscribe(tgt, (d) => got.push(d), { group: 'b' });

      const binding: Binding = { type: 'pubsub', src, tgt };
      await bind(coordinator, binding, true);
      await sleep(200);
      const producer = await transport('producer');
      await producer.send('outqueue', src, { n: 1 }, { id: 'm1' });
      await waitFor(() => rawGot.length === 1 && got.length === 1, 4000, 'bridged copies');
      assert.equal(rawGot[0], '{"n":1}');
      assert.deepEqual(got[0]!.data, { n: 1 });
      if (target.version === 5) assert.equal(got[0]!.id, 'm1', 'the bridge keeps the id');
      await sleep(300);
      assert.equal(got.length, 1, 'no duplicate through the bridge');
      assert.equal(rawGot.length, 1);

      // The bridge lives as long as the transport that made it.
      await coordinator.close();
      await producer.send('outqueue', src, { n: 2 });
      await sleep(300);
      assert.equal(rawGot.length, 1, 'no bridge once its maker closed');
    });

    it('removeBinding stops the bridge', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('b.IN')];
      const coordinator = await transport('coordinator');
      const rawGot = await rawSubscriber(tgt);
      const binding: Binding = { type: 'pubsub', src, tgt };
      await bind(coordinator, binding, true);
      await coordinator.send('outqueue', src, 1);
      await waitFor(() => rawGot.length === 1);
      await coordinator.removeBinding(binding);
      await coordinator.send('outqueue', src, 2);
      await sleep(300);
      assert.deepEqual(rawGot, ['1']);
    });

    it('shares work among the members of a group (shared subscriptions)', async () => {
      const q = uniqueName('w.IN');
      const [w1, w2, producer] = await Promise.all([transport('w1'), transport('w2'), transport('producer')]);
      const got1: unknown[] = [];
      const got2: unknown[] = [];
      await w1.subscribe(q, (d) => got1.push(d.data), { group: 'w' });
      await w2.subscribe(q, (d) => got2.push(d.data), { group: 'w' });
      const observer: unknown[] = [];
      await producer.tap('outqueue', q, (m) => observer.push(m.data));
      for (let i = 0; i < 20; i++) await producer.send('inqueue', q, i);
      await waitFor(() => got1.length + got2.length === 20 && observer.length === 20, 4000, '20 messages');
      await sleep(200);
      assert.equal(got1.length + got2.length, 20, 'each message goes to one member');
      assert.ok(got1.length > 0 && got2.length > 0, `both members work (${got1.length}/${got2.length})`);
      assert.deepEqual([...got1, ...got2].sort((a, b) => (a as number) - (b as number)), [...Array(20).keys()]);
    });

    it('gives a crashed member no more work: the group goes on with the others', async () => {
      const q = uniqueName('w.IN');
      // A member in another process, killed without a goodbye (no DISCONNECT).
      const moduleUrl = new URL('../../../src/transport/mqtt/index.ts', import.meta.url).href;
      const script = `
        const { MqttTransport } = await import(${JSON.stringify(moduleUrl)});
        const t = new MqttTransport(${JSON.stringify(target.url())}, { name: 'doomed' });
        await t.connect();
        await t.subscribe(${JSON.stringify(q)}, (d) => void d.ack(), { group: 'w' });
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
          child.once('exit', (code) => reject(new Error(`member process exited early (${code})`)));
        });
        const [survivor, producer] = await Promise.all([transport('survivor'), transport('producer')]);
        const got: unknown[] = [];
        await survivor.subscribe(q, (d) => got.push(d.data), { group: 'w' });
        child.kill('SIGKILL');
        await exited;
        await sleep(300); // the broker sees the connection drop
        for (let i = 0; i < 10; i++) await producer.send('inqueue', q, i);
        await waitFor(() => got.length === 10, 4000, `all 10 messages at the survivor (got ${got.length})`);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    it('shares the sources of binding records within the group too', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('w.IN')];
      const [w1, w2, producer] = await Promise.all([transport('w1'), transport('w2'), transport('producer')]);
      await bind(producer, { type: 'roundrobin', src, tgt });
      const got: unknown[] = [];
      await w1.subscribe(tgt, (d) => got.push(['w1', d.data]), { group: 'w' });
      await w2.subscribe(tgt, (d) => got.push(['w2', d.data]), { group: 'w' });
      for (let i = 0; i < 10; i++) await producer.send('outqueue', src, i);
      await waitFor(() => got.length === 10);
      await sleep(200);
      assert.equal(got.length, 10);
    });

    it('routes overlapping subscriptions of one transport exactly (tap and shared subscription)', async () => {
      const q = uniqueName('q');
      const t = await transport();
      const deliveries: unknown[] = [];
      const taps: unknown[] = [];
      await t.subscribe(q, (d) => deliveries.push(d.data), { group: 'g' });
      await t.tap('outqueue', q, (m) => taps.push(m.data));
      for (let i = 0; i < 5; i++) await t.send('inqueue', q, i);
      await waitFor(() => deliveries.length === 5 && taps.length === 5);
      await sleep(200);
      assert.deepEqual(deliveries, [0, 1, 2, 3, 4]);
      assert.deepEqual(taps, [0, 1, 2, 3, 4]);
    });

    it('puts a dead letter on the wire as MQTT 5 user properties, or as a JSON wrapper on MQTT 3.1.1', async () => {
      // That a nack dead-letters once, with reason, code, queue, body and id, is in the conformance suite.
      const q = uniqueName('q');
      const t = await transport();
      const dead: InMessage[] = [];
      await t.tap('outqueue', `dead-${q}`, (m) => dead.push(m));
      await t.subscribe(q, (d) => void d.nack('does not compute', ErrorCodes.SCHEMA));
      await t.send('inqueue', q, { bad: true }, { id: 'dead-1' });
      await waitFor(() => dead.length === 1);
      if (target.version === 5) {
        assert.deepEqual(dead[0]!.data, { bad: true });
        assert.equal(dead[0]!.headers['x-msgflo-reason'], 'does not compute');
        assert.equal(dead[0]!.headers['x-msgflo-code'], ErrorCodes.SCHEMA);
        assert.equal(dead[0]!.headers['x-msgflo-queue'], q);
        assert.equal(dead[0]!.id, 'dead-1');
      } else {
        assert.deepEqual(dead[0]!.data, {
          'x-msgflo-reason': 'does not compute',
          'x-msgflo-code': ErrorCodes.SCHEMA,
          'x-msgflo-queue': q,
          data: { bad: true },
        });
      }
    });

    it('roundrobin deadletter: what the target refuses reaches the deadletter queue', async () => {
      const [src, tgt, dl] = [uniqueName('a.OUT'), uniqueName('b.IN'), uniqueName('dl.IN')];
      const t = await transport();
      await bind(t, { type: 'roundrobin', src, tgt, deadletter: dl });
      assert.deepEqual(
        (await t.listBindings()).filter((b) => b.tgt === tgt || b.tgt === dl),
        [{ type: 'roundrobin', src, tgt, deadletter: dl }],
      );
      await t.subscribe(tgt, (d) => void d.nack('no'));
      const dead: Delivery[] = [];
      await t.subscribe(dl, (d) => dead.push(d));
      await t.send('outqueue', src, 'job');
      await waitFor(() => dead.length === 1);
      assert.equal(dead[0]!.queue, dl);
    });

    it('cancel() unsubscribes the queue and its sources', async () => {
      const [src, tgt] = [uniqueName('a.OUT'), uniqueName('b.IN')];
      const t = await transport();
      await bind(t, { type: 'pubsub', src, tgt });
      const got: unknown[] = [];
      const sub = await t.subscribe(tgt, (d) => got.push(d.data));
      await t.send('outqueue', src, 1);
      await waitFor(() => got.length === 1);
      await sub.cancel();
      await sub.cancel();
      await t.send('outqueue', src, 2);
      await t.send('inqueue', tgt, 3);
      await sleep(300);
      assert.deepEqual(got, [1]);
    });

    it('refuses to list bindings or connect again once closed (the rest of close() is in the conformance suite)', async () => {
      const t = await transport();
      await t.close();
      await assert.rejects(t.listBindings(), TransportClosedError);
      await assert.rejects(t.connect(), TransportClosedError);
    });

    it('fails fast with BrokerUnreachableError when nothing listens', async () => {
      const port = await freePort();
      const t = new MqttTransport(`mqtt://user:secret@127.0.0.1:${port}`, {});
      assert.equal(t.url, `mqtt://user:***@127.0.0.1:${port}`);
      const started = Date.now();
      const err = await t.connect().then(
        () => assert.fail('connected'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BrokerUnreachableError, String(err));
      assert.equal(err.code, ErrorCodes.BROKER_UNREACHABLE);
      assert.doesNotMatch(err.message, /secret/);
      assert.ok(Date.now() - started < 2000, 'no reconnect loop before the first connection');
    });
  });
}

describe('MqttTransport credentials @broker', function () {
  this.timeout(15000);

  it('refused credentials on the embedded broker give BrokerAuthError', async () => {
    const broker = await startEmbeddedBroker({ auth: { username: 'u', password: 'p@ss/word' } });
    try {
      const bad = new MqttTransport(broker.url.replace('mqtt://', 'mqtt://u:wrong@'), {});
      await assert.rejects(bad.connect(), BrokerAuthError);
      const none = new MqttTransport(broker.url, {});
      await assert.rejects(none.connect(), BrokerAuthError);
      const good = new MqttTransport(broker.url.replace('mqtt://', `mqtt://u:${encodeURIComponent('p@ss/word')}@`), {});
      await good.connect();
      await good.close();
    } finally {
      await broker.close();
    }
  });

  describe('on a Mosquitto with a password file', () => {
    let mosquitto: PrivateMosquitto | undefined;
    before(async function () {
      mosquitto = await startPrivateMosquitto({ user: 'user', password: 'secret' });
      if (!mosquitto) this.skip();
    });
    after(async () => {
      await mosquitto?.stop();
    });

    it('gives BrokerAuthError for wrong or missing credentials, and connects with MQTT 5 with the right ones', async () => {
      const { port } = mosquitto!;
      await assert.rejects(new MqttTransport(`mqtt://user:wrong@127.0.0.1:${port}`, {}).connect(), BrokerAuthError);
      await assert.rejects(new MqttTransport(`mqtt://127.0.0.1:${port}`, {}).connect(), BrokerAuthError);
      const good = new MqttTransport(`mqtt://user:secret@127.0.0.1:${port}`, {});
      await good.connect();
      assert.equal(good.protocolVersion, 5);
      await good.close();
    });
  });
});

describe('MqttTransport connection events @broker', function () {
  this.timeout(15000);

  it('reports disconnect and reconnect, subscribes again, and drops binding records the broker lost', async () => {
    let broker = await startEmbeddedBroker();
    const { port } = broker;
    const t = new MqttTransport(broker.url, { name: 'events' });
    const events: TransportEvent['type'][] = [];
    t.on((e) => events.push(e.type));
    try {
      await t.connect();
      const [src, q] = [uniqueName('a.OUT'), uniqueName('q')];
      const binding: Binding = { type: 'pubsub', src, tgt: q };
      await t.addBinding(binding);
      const got: unknown[] = [];
      await t.subscribe(q, (d) => got.push(d.data));
      await broker.close(); // the embedded broker keeps nothing: the record is gone with it
      await waitFor(() => events.includes('disconnect'), 4000, 'disconnect event');
      broker = await startEmbeddedBroker({ port });
      await waitFor(() => events.includes('reconnect'), 6000, 'reconnect event');
      await sleep(500);
      assert.deepEqual(await t.listBindings(), []);
      await t.send('outqueue', src, 'unbound');
      await t.send('inqueue', q, 'after');
      await waitFor(() => got.length === 1, 4000, 'delivery after reconnect');
      // Made again (as a coordinator does when it reconciles), the binding works again.
      await t.addBinding(binding);
      await sleep(200);
      await t.send('outqueue', src, 'bound again');
      await waitFor(() => got.length === 2, 4000, 'delivery through the binding made again');
      assert.deepEqual(got, ['after', 'bound again']);
    } finally {
      await t.close();
      await broker.close();
    }
  });

  it('MQTT 5: reports disconnect and reconnect, and subscribes again when the broker lost the session', async function () {
    const mosquitto = await startPrivateMosquitto();
    if (!mosquitto) return this.skip();
    const t = new MqttTransport(mosquitto.url, { name: 'events5' });
    const events: TransportEvent['type'][] = [];
    t.on((e) => events.push(e.type));
    try {
      await t.connect();
      assert.equal(t.protocolVersion, 5);
      const [src, q] = [uniqueName('a.OUT'), uniqueName('q')];
      await t.addBinding({ type: 'pubsub', src, tgt: q });
      const got: unknown[] = [];
      await t.subscribe(q, (d) => got.push(d.data), { group: 'g' });
      await mosquitto.stop();
      await waitFor(() => events.includes('disconnect'), 4000, 'disconnect event');
      await mosquitto.start(); // persistence off: sessions and retained records are gone
      await waitFor(() => events.includes('reconnect'), 6000, 'reconnect event');
      await sleep(300);
      await t.send('inqueue', q, 'after');
      await waitFor(() => got.length === 1, 4000, 'delivery after reconnect');
      assert.deepEqual(got, ['after']);
    } finally {
      await t.close();
      await mosquitto.stop();
    }
  });

  it('rejects URLs that are not MQTT', () => {
    assert.throws(() => new MqttTransport('amqp://localhost', {}), /not an MQTT scheme/);
    assert.throws(() => new MqttTransport('not a url', {}), /not a URL/);
  });
});

interface PrivateMosquitto {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A Mosquitto of our own on a free port (optionally with one user), or undefined when it is not installed. */
async function startPrivateMosquitto(auth?: { user: string; password: string }): Promise<PrivateMosquitto | undefined> {
  const binary = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) => existsSync(p));
  if (!binary) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-mosq-'));
  chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user 'mosquitto'
  const port = await freePort();
  let conf = `listener ${port} 127.0.0.1\npersistence false\n`;
  if (auth) {
    // A plain-text password file, hashed in place by mosquitto_passwd -U.
    const pw = path.join(dir, 'pw');
    writeFileSync(pw, `${auth.user}:${auth.password}\n`);
    const hashed = await new Promise<boolean>((resolve) => {
      const p = spawn('mosquitto_passwd', ['-U', pw], { stdio: 'ignore' });
      p.on('error', () => resolve(false));
      p.on('exit', (code) => resolve(code === 0));
    });
    if (!hashed) {
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
    conf += `allow_anonymous false\npassword_file ${pw}\n`;
  } else {
    conf += 'allow_anonymous true\n';
  }
  writeFileSync(path.join(dir, 'mosquitto.conf'), conf);

  let child: ChildProcess | undefined;
  const reachable = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  const handle: PrivateMosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      child = spawn(binary, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
      const end = Date.now() + 5000;
      while (!(await reachable())) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`private mosquitto on port ${port} did not start`);
        await sleep(50);
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
    },
  };
  try {
    await handle.start();
  } catch {
    await handle.stop();
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return handle;
}
