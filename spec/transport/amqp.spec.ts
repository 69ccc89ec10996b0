/**
 * AMQP-specific behaviour of AmqpTransport against a real RabbitMQ: msgflo 0.12 topology compatibility,
 * discovery across observers (and relay of msgflo-era announcements), settle-once, dead letters, broker
 * errors. The transport conformance suite covers the rest.
 *
 * A raw amqplib client plays the msgflo-era participant/coordinator.
 */
import assert from 'node:assert/strict';
import { connect as rawConnect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { BrokerAuthError, BrokerUnreachableError, QueueNotFoundError, TransportClosedError } from '../../src/errors.js';
import { AmqpTransport } from '../../src/transport/amqp/index.js';
import { connectionSocket } from '../../src/transport/amqp/internals.js';
import type { Delivery, InMessage, TransportEvent } from '../../src/transport/types.js';
import { AMQP_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';

describe('AmqpTransport @broker', function () {
  this.timeout(20000);

  let raw: ChannelModel;
  const transports: AmqpTransport[] = [];
  const queues = new Set<string>();
  const exchanges = new Set<string>();

  /** A fresh channel on the raw client; RabbitMQ closes a channel on any failed operation. */
  async function rawChannel(): Promise<Channel> {
    const ch = await raw.createChannel();
    ch.on('error', () => undefined);
    return ch;
  }

  /** Remember everything createQueue('inqueue'/'outqueue', name) and bindings declare, for after(). */
  function track(name: string, kind: 'inqueue' | 'outqueue' = 'inqueue'): string {
    exchanges.add(name);
    if (kind === 'inqueue') {
      queues.add(name);
      queues.add(`dead-${name}`);
      exchanges.add(`dead-${name}`);
    }
    return name;
  }

  async function transport(url = AMQP_URL): Promise<AmqpTransport> {
    const t = new AmqpTransport(url, { name: 'amqp-spec' });
    transports.push(t);
    await t.connect();
    return t;
  }

  /** Poll a queue with basic.get until a message arrives. */
  async function getOne(queue: string): Promise<GetMessage> {
    const ch = await rawChannel();
    try {
      return await waitFor(async () => {
        const m = await ch.get(queue, { noAck: true });
        return m === false ? undefined : m;
      }, `a message in ${queue}`);
    } finally {
      await ch.close().catch(() => undefined);
    }
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

  describe('connecting', () => {
    it('masks the password in its url', () => {
      const t = new AmqpTransport('amqp://user:s3cret@127.0.0.1:5672/vh', {});
      assert.equal(t.url.includes('s3cret'), false);
      assert.match(t.url, /user:\*\*\*@/);
      assert.equal(t.scheme, 'amqp');
      assert.equal(t.brokerBindings, true);
    });

    it('reports wrong credentials as BrokerAuthError without the password', async () => {
      const u = new URL(AMQP_URL);
      u.username = 'msgflo-nobody';
      u.password = 'wrong-pass-xyz';
      const t = new AmqpTransport(u.toString(), {});
      await assert.rejects(t.connect(), (err: unknown) => {
        assert.ok(err instanceof BrokerAuthError, String(err));
        assert.equal(err.code, 'MSGFLO_ERR_BROKER_AUTH');
        assert.equal(err.message.includes('wrong-pass-xyz'), false);
        assert.match(err.message, /msgflo-nobody:\*\*\*@/);
        return true;
      });
      await t.close();
    });

    it('reports a refused virtual host as BrokerAuthError', async () => {
      const u = new URL(AMQP_URL);
      u.pathname = `/${uniqueName('novhost')}`;
      await assert.rejects(new AmqpTransport(u.toString(), {}).connect(), (err: unknown) => {
        assert.ok(err instanceof BrokerAuthError, String(err));
        assert.match(String((err.cause as Error).message), /virtual host/);
        return true;
      });
    });

    it('reports a closed port as BrokerUnreachableError', async () => {
      const t = new AmqpTransport('amqp://guest:topsecret@127.0.0.1:1', {});
      await assert.rejects(t.connect(), (err: unknown) => {
        assert.ok(err instanceof BrokerUnreachableError, String(err));
        assert.match(err.message, /ECONNREFUSED/);
        assert.equal(err.message.includes('topsecret'), false);
        return true;
      });
      await t.close();
    });

    it('reports an unknown host as BrokerUnreachableError', async () => {
      const t = new AmqpTransport('amqp://guest:guest@host.invalid:5672', {});
      await assert.rejects(t.connect(), BrokerUnreachableError);
    });

    it('closes idempotently, then refuses every operation', async () => {
      const t = await transport();
      await Promise.all([t.close(), t.close()]);
      await t.close();
      await assert.rejects(t.createQueue('inqueue', uniqueName('x')), TransportClosedError);
      await assert.rejects(t.subscribe(uniqueName('x'), () => undefined), TransportClosedError);
      await assert.rejects(t.queueExists('inqueue', 'x'), TransportClosedError);
      await assert.rejects(t.announce({}), TransportClosedError);
      await assert.rejects(t.connect(), TransportClosedError);
    });

    it('emits disconnect when the connection drops, and then refuses operations', async () => {
      const t = await transport();
      const events: TransportEvent[] = [];
      t.on((e) => events.push(e));
      // Pull the socket from under the connection (what a broker crash looks like).
      const model = Reflect.get(Reflect.get(t, 'connection') as object, 'model') as ChannelModel;
      connectionSocket(model)!.destroy(new Error('simulated connection reset'));
      await waitFor(() => events.some((e) => e.type === 'disconnect'), 'a disconnect event');
      await assert.rejects(t.send('outqueue', 'x', 1), TransportClosedError);
    });
  });

  describe('topology', () => {
    it('declares inqueues and outqueues exactly as msgflo, so msgflo-era declarations do not clash (no 406)', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('inqueue', q);
      await t.createQueue('outqueue', out);
      // msgflo-nodejs createQueue, verbatim options.
      const ch = await rawChannel();
      await ch.assertQueue(q, { deadLetterExchange: `dead-${q}` });
      await ch.assertExchange(q, 'fanout', {});
      await ch.bindQueue(q, q, '', {});
      await ch.assertExchange(out, 'fanout', {});
      // msgflo's roundrobin binding asserts the dead-letter exchange with defaults.
      await ch.assertExchange(`dead-${q}`, 'fanout', {});
      await ch.close();
    });

    it('declares persistent:false like msgflo (durable false, autoDelete true)', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('inqueue', q, { persistent: false });
      await t.createQueue('outqueue', out, { persistent: false });
      const ch = await rawChannel();
      await ch.assertQueue(q, { deadLetterExchange: `dead-${q}`, durable: false, autoDelete: true });
      await ch.assertExchange(q, 'fanout', { durable: false, autoDelete: true });
      await ch.assertExchange(out, 'fanout', { durable: false, autoDelete: true });
      await ch.assertExchange(`dead-${q}`, 'fanout', {});
      await ch.close();
    });

    it('accepts queues a msgflo-era participant declared first', async () => {
      const q = track(uniqueName('amqp') + '.IN');
      const ch = await rawChannel();
      await ch.assertQueue(q, { deadLetterExchange: `dead-${q}` });
      await ch.assertExchange(q, 'fanout', {});
      await ch.bindQueue(q, q, '', {});
      await ch.close();
      const t = await transport();
      await t.createQueue('inqueue', q);
      assert.equal(await t.queueExists('inqueue', q), true);
    });

    it('reaches an inqueue through its same-named exchange (msgflo hack) and keeps dead letters', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      await t.send('outqueue', q, { via: 'exchange' });
      const m = await getOne(q);
      assert.deepEqual(JSON.parse(m.content.toString()), { via: 'exchange' });
      assert.equal(await t.queueExists('inqueue', `dead-${q}`), true);
      assert.equal(await t.queueExists('outqueue', `dead-${q}`), true);
    });

    it('removeQueue deletes what createQueue made', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('inqueue', q);
      await t.createQueue('outqueue', out);
      await t.removeQueue('inqueue', q);
      await t.removeQueue('outqueue', out);
      for (const [kind, name] of [
        ['inqueue', q],
        ['outqueue', q],
        ['inqueue', `dead-${q}`],
        ['outqueue', `dead-${q}`],
        ['outqueue', out],
      ] as const) {
        assert.equal(await t.queueExists(kind, name), false, `${kind} ${name} is gone`);
      }
      // Removing again is harmless.
      await t.removeQueue('inqueue', q);
    });

    it('queueExists tells queues from exchanges and survives a 404', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('inqueue', q);
      await t.createQueue('outqueue', out);
      assert.equal(await t.queueExists('inqueue', q), true);
      assert.equal(await t.queueExists('outqueue', out), true);
      assert.equal(await t.queueExists('inqueue', out), false);
      assert.equal(await t.queueExists('outqueue', uniqueName('none')), false);
      await t.createQueue('inqueue', q);
    });

    it('reports a msgflo-incompatible redeclaration and stays usable', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q, { persistent: false });
      await assert.rejects(t.createQueue('inqueue', q), /PRECONDITION|406/);
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('outqueue', out);
      assert.equal(await t.queueExists('outqueue', out), true);
    });
  });

  describe('bindings', () => {
    it('binds in any order: the source exchange and target queue are declared as needed', async () => {
      const t = await transport();
      const src = track(uniqueName('amqp') + '.OUT', 'outqueue');
      const tgt = track(uniqueName('amqp') + '.IN');
      await t.addBinding({ type: 'pubsub', src, tgt });
      // A msgflo-era participant comes up afterwards and declares its ports: no 406.
      const ch = await rawChannel();
      await ch.assertQueue(tgt, { deadLetterExchange: `dead-${tgt}` });
      await ch.assertExchange(src, 'fanout', {});
      await ch.close();
      await t.send('outqueue', src, 'bound');
      assert.equal(JSON.parse((await getOne(tgt)).content.toString()), 'bound');
      assert.deepEqual(await t.listBindings(), [{ type: 'pubsub', src, tgt }]);
      await t.removeBinding({ type: 'pubsub', src, tgt });
      assert.deepEqual(await t.listBindings(), []);
    });

    it('binds to a transient target queue that already exists', async () => {
      const t = await transport();
      const src = track(uniqueName('amqp') + '.OUT', 'outqueue');
      const tgt = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', tgt, { persistent: false });
      await t.addBinding({ type: 'pubsub', src, tgt });
      await t.send('outqueue', src, 'to transient');
      assert.equal(JSON.parse((await getOne(tgt)).content.toString()), 'to transient');
    });

    it('makes roundrobin bindings as msgflo (out-SRC direct exchange, dead-TGT) and undoes them', async () => {
      const t = await transport();
      const src = track(uniqueName('amqp') + '.OUT', 'outqueue');
      const tgt = track(uniqueName('amqp') + '.IN');
      const dlq = track(uniqueName('amqp') + '.DEAD');
      exchanges.add(`out-${src}`);
      const binding = { type: 'roundrobin' as const, src, tgt, deadletter: dlq };
      await t.addBinding(binding);
      assert.equal(await t.queueExists('outqueue', `out-${src}`), true);
      // msgflo declares out-SRC as a direct exchange with default options: compatible.
      const ch = await rawChannel();
      await ch.assertExchange(`out-${src}`, 'direct', {});
      await ch.close();

      await t.send('outqueue', src, 'job');
      assert.equal(JSON.parse((await getOne(tgt)).content.toString()), 'job');
      // A message refused by tgt's consumer reaches the deadletter participant.
      const nacked = new Collector<Promise<void>>();
      const sub = await t.subscribe(tgt, (d) => nacked.push(d.nack('no')));
      await t.send('outqueue', src, 'refused');
      await (await nacked.waitCount(1))[0];
      assert.equal(JSON.parse((await getOne(dlq)).content.toString()), 'refused');
      await sub.cancel();

      assert.deepEqual(await t.listBindings(), [binding]);
      await t.removeBinding(binding);
      assert.deepEqual(await t.listBindings(), []);
      // Nothing else was bound to out-SRC, so it is gone (and with it the SRC -> out-SRC binding).
      assert.equal(await t.queueExists('outqueue', `out-${src}`), false);
      await t.send('outqueue', src, 'after');
      await sleep(200);
      const ch2 = await rawChannel();
      assert.equal(await ch2.get(tgt, { noAck: true }), false);
      await ch2.close();
    });

    it('keeps out-SRC while another roundrobin target is still bound to it', async () => {
      const t = await transport();
      const src = track(uniqueName('amqp') + '.OUT', 'outqueue');
      const a = track(uniqueName('amqp') + '.A');
      const b = track(uniqueName('amqp') + '.B');
      exchanges.add(`out-${src}`);
      await t.addBinding({ type: 'roundrobin', src, tgt: a });
      await t.addBinding({ type: 'roundrobin', src, tgt: b });
      await t.removeBinding({ type: 'roundrobin', src, tgt: a });
      await t.send('outqueue', src, 'to b');
      assert.equal(JSON.parse((await getOne(b)).content.toString()), 'to b');
      assert.deepEqual(await t.listBindings(), [{ type: 'roundrobin', src, tgt: b }]);
    });
  });

  describe('sending', () => {
    it('sends persistent JSON with a message id (the message-id property), at-most-once sends transient without one', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      await t.send('inqueue', q, { a: 1 }, { id: 'id-1', headers: { 'x-extra': 'yes' } });
      const m = await getOne(q);
      assert.equal(m.properties.deliveryMode, 2);
      assert.equal(m.properties.contentType, 'application/json');
      assert.equal(m.properties.messageId, 'id-1');
      assert.equal(m.properties.headers?.['x-msgflo-id'], undefined, 'the id is not repeated in a header');
      assert.equal(String(m.properties.headers?.['x-extra']), 'yes');
      await t.send('inqueue', q, 'quick', { fast: true });
      const f = await getOne(q);
      assert.equal(f.properties.deliveryMode, 1);
      assert.equal(f.properties.messageId, undefined);
      await t.send('inqueue', q, 'generated');
      const g = await getOne(q);
      const g2 = (await t.send('inqueue', q, 'generated'), await getOne(q));
      assert.ok(typeof g.properties.messageId === 'string' && g.properties.messageId.length >= 16, 'an id is generated');
      assert.notEqual(g.properties.messageId, g2.properties.messageId, 'a new id per message');
    });

    it('rejects a send to a missing inqueue with QueueNotFoundError and stays usable', async () => {
      const t = await transport();
      const missing = uniqueName('amqp') + '.NOPE';
      await assert.rejects(t.send('inqueue', missing, 1), (err: unknown) => err instanceof QueueNotFoundError && err.queue === missing);
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      await t.send('inqueue', q, 'ok');
      assert.equal(JSON.parse((await getOne(q)).content.toString()), 'ok');
    });

    it('rejects a send to a missing outqueue (404 closes the channel) and recovers transparently', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const missing = uniqueName('amqp') + '.GONE';
      // Sends in flight on the same channel as the failing one still succeed.
      const results = await Promise.allSettled([
        t.send('inqueue', q, 0),
        t.send('outqueue', missing, 'x'),
        t.send('inqueue', q, 1),
        t.send('inqueue', q, 2),
      ]);
      assert.equal(results[0]!.status, 'fulfilled');
      assert.equal(results[1]!.status, 'rejected');
      assert.ok((results[1] as PromiseRejectedResult).reason instanceof QueueNotFoundError);
      assert.equal(results[2]!.status, 'fulfilled', String((results[2] as PromiseRejectedResult).reason));
      assert.equal(results[3]!.status, 'fulfilled');
      await t.send('inqueue', q, 3);
      const got = new Collector<Delivery>();
      await t.subscribe(q, (d) => {
        void d.ack();
        got.push(d);
      });
      await got.waitCount(4);
      await sleep(200);
      // At least once: a message whose confirm was lost with the channel is published again, so it may
      // arrive twice, recognisably (same id).
      assert.deepEqual([...new Set(got.items.map((d) => d.data))].sort(), [0, 1, 2, 3]);
      const idOf = new Map<unknown, string | undefined>();
      for (const d of got.items) {
        if (idOf.has(d.data)) assert.equal(d.id, idOf.get(d.data), 'a duplicate carries the same id');
        idOf.set(d.data, d.id);
      }
    });

    it('waits for outstanding confirms on close, and survives backpressure', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const big = 'x'.repeat(1024);
      const sends = Array.from({ length: 3000 }, (_, i) => t.send('inqueue', q, { i, big }));
      await t.close();
      await Promise.all(sends);
      const ch = await rawChannel();
      const { messageCount } = await ch.checkQueue(q);
      await ch.purgeQueue(q);
      await ch.close();
      assert.equal(messageCount, 3000);
    });
  });

  describe('receiving', () => {
    it('rejects a subscription to a missing queue and stays usable', async () => {
      const t = await transport();
      await assert.rejects(t.subscribe(uniqueName('amqp') + '.NOPE', () => undefined), QueueNotFoundError);
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, (d) => {
        void d.ack();
        got.push(d);
      });
      await t.send('inqueue', q, 'fine');
      assert.equal((await got.waitCount(1))[0]!.data, 'fine');
    });

    it('gives string headers, the id from msgflo-era messages and non-JSON bodies as text', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, (d) => {
        void d.ack();
        got.push(d);
      });
      const ch = await rawChannel();
      ch.sendToQueue(q, Buffer.from('not json'), { headers: { n: 5, 'x-msgflo-id': 'hdr-id' } });
      await ch.close();
      const [d] = await got.waitCount(1);
      assert.equal(d!.data, 'not json');
      assert.ok(d!.jsonError instanceof Error);
      assert.equal(d!.headers.n, '5');
      assert.equal(d!.id, 'hdr-id');
      assert.equal(d!.redelivered, false);
    });

    it('settles exactly once: a double ack never closes the channel (no 406 unknown delivery tag)', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, got.push, { prefetch: 1 });
      await t.send('inqueue', q, 'one');
      const [d] = await got.waitCount(1);
      const first = d!.ack();
      assert.equal(d!.ack(), first);
      assert.equal(d!.nack('too late'), first);
      await first;
      assert.equal(d!.settled, true);
      // The same channel keeps delivering (prefetch 1: only after the ack went through).
      await t.send('inqueue', q, 'two');
      const [, d2] = await got.waitCount(2);
      assert.equal(d2!.data, 'two');
      await d2!.ack();
      await d2!.ack();
      await t.send('inqueue', q, 'three');
      await (await got.waitCount(3))[2]!.ack();
    });

    it('reports a consumer channel the broker closed as an error event, and stays usable', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const events: TransportEvent[] = [];
      t.on((e) => events.push(e));
      const got = new Collector<Delivery>();
      await t.subscribe(q, got.push);
      await t.send('inqueue', q, 'x');
      const [d] = await got.waitCount(1);
      // Provoke 406 PRECONDITION_FAILED (unknown delivery tag) behind the transport's back.
      const ch = Reflect.get(d!, 'channel') as Channel;
      ch.ack({ fields: { deliveryTag: 9999 } } as unknown as GetMessage);
      await waitFor(() => events.some((e) => e.type === 'error' && /stopped by the broker/.test(e.error.message)), 'an error event');
      assert.equal(events.some((e) => e.type === 'disconnect'), false);
      // The message went back to the queue; a new subscription gets it.
      const again = new Collector<Delivery>();
      await t.subscribe(q, (m) => {
        void m.ack();
        again.push(m);
      });
      const [r] = await again.waitCount(1);
      assert.equal(r!.data, 'x');
    });

    it('reports a consumed queue deleted under it as QueueNotFoundError, and stays usable', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      const events: TransportEvent[] = [];
      t.on((e) => events.push(e));
      await t.subscribe(q, (d) => void d.ack());
      const ch = await rawChannel();
      await ch.deleteQueue(q);
      await ch.close();
      await waitFor(() => events.some((e) => e.type === 'error' && e.error instanceof QueueNotFoundError), 'an error event');
      await t.createQueue('inqueue', q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, (d) => {
        void d.ack();
        got.push(d);
      });
      await t.send('inqueue', q, 'back');
      assert.equal((await got.waitCount(1))[0]!.data, 'back');
      assert.equal(events.some((e) => e.type === 'disconnect'), false);
    });

    it('nack dead-letters a copy with x-msgflo-reason, code and queue headers', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      await t.subscribe(q, (d) => void d.nack('could not parse', 'MSGFLO_ERR_TEST'));
      await t.send('inqueue', q, { broken: true }, { id: 'dl-1', headers: { 'x-trace': 't1' } });
      const m = await getOne(`dead-${q}`);
      assert.deepEqual(JSON.parse(m.content.toString()), { broken: true });
      const h = m.properties.headers ?? {};
      assert.equal(String(h['x-msgflo-reason']), 'could not parse');
      assert.equal(String(h['x-msgflo-code']), 'MSGFLO_ERR_TEST');
      assert.equal(String(h['x-msgflo-queue']), q);
      assert.equal(String(h['x-trace']), 't1');
      assert.equal(m.properties.messageId, 'dl-1');
      // The original was acked: nothing left in the queue.
      const ch = await rawChannel();
      await sleep(100);
      assert.equal((await ch.checkQueue(q)).messageCount, 0);
      await ch.close();
    });

    it('nack without a dead-letter exchange falls back to a plain nack (message leaves the queue)', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      // A msgflo-era queue: dead-letter argument, but nobody declared dead-Q.
      const ch = await rawChannel();
      await ch.assertQueue(q, { deadLetterExchange: `dead-${q}` });
      const got = new Collector<Delivery>();
      await t.subscribe(q, got.push);
      await t.send('inqueue', q, 'refuse me');
      const [d] = await got.waitCount(1);
      await d!.nack('nope');
      await sleep(100);
      assert.equal((await ch.checkQueue(q)).messageCount, 0);
      await ch.close();
      // Still usable afterwards.
      await t.send('inqueue', q, 'next');
      await (await got.waitCount(2))[1]!.ack();
    });

    it('dead-letters a message whose handler throws', async () => {
      const t = await transport();
      const q = track(uniqueName('amqp') + '.IN');
      await t.createQueue('inqueue', q);
      await t.subscribe(q, () => {
        throw new Error('handler blew up');
      });
      await t.send('inqueue', q, 'boom');
      const m = await getOne(`dead-${q}`);
      assert.equal(String(m.properties.headers?.['x-msgflo-reason']), 'handler blew up');
      assert.equal(String(m.properties.headers?.['x-msgflo-code']), 'MSGFLO_ERR_HANDLER');
    });

    it('taps an outqueue with a temporary queue that goes away on cancel', async () => {
      const t = await transport();
      const out = track(uniqueName('amqp') + '.OUT', 'outqueue');
      await t.createQueue('outqueue', out);
      const seen = new Collector<InMessage>();
      const tap = await t.tap('outqueue', out, seen.push);
      await t.send('outqueue', out, 'observed');
      assert.equal((await seen.waitCount(1))[0]!.data, 'observed');
      await tap.cancel();
      await tap.cancel();
      await t.send('outqueue', out, 'unobserved');
      await sleep(200);
      assert.equal(seen.items.length, 1);
      await assert.rejects(t.tap('outqueue', uniqueName('amqp') + '.NOPE', () => undefined), QueueNotFoundError);
    });
  });

  describe('discovery', () => {
    function forRole(role: string, c: Collector<InMessage>) {
      return (m: InMessage) => {
        if ((m.data as { payload?: { role?: string } } | null)?.payload?.role === role) c.push(m);
      };
    }
    function discovery(role: string) {
      return { protocol: 'discovery', command: 'participant', payload: { id: `${role}-1`, role, component: 'C', inports: [], outports: [] } };
    }

    it('shows each announcement to two observers at once, with a TTL', async () => {
      const a = await transport();
      const b = await transport();
      const p = await transport();
      const role = uniqueName('role');
      const seenA = new Collector<InMessage>();
      const seenB = new Collector<InMessage>();
      await a.onDiscovery(forRole(role, seenA));
      await b.onDiscovery(forRole(role, seenB));
      await p.announce(discovery(role), { ttlMs: 5000 });
      const [ma] = await seenA.waitCount(1);
      await seenB.waitCount(1);
      assert.equal(ma!.headers['x-msgflo-via'], 'exchange');
      assert.deepEqual(ma!.data, discovery(role));
      await sleep(300);
      assert.equal(seenA.items.length, 1);
      assert.equal(seenB.items.length, 1);
    });

    it('relays a msgflo-era sendToQueue("fbp") announcement to every observer exactly once', async () => {
      const a = await transport();
      const b = await transport();
      const role = uniqueName('legacy');
      const seenA = new Collector<InMessage>();
      const seenB = new Collector<InMessage>();
      await a.onDiscovery(forRole(role, seenA));
      await b.onDiscovery(forRole(role, seenB));
      const ch = await rawChannel();
      await ch.assertQueue('fbp'); // as msgflo-era participants declare it: plain and durable
      ch.sendToQueue('fbp', Buffer.from(JSON.stringify(discovery(role))));
      await ch.close();
      const [ma] = await seenA.waitCount(1);
      await seenB.waitCount(1);
      assert.equal(ma!.headers['x-msgflo-relayed'], '1');
      await sleep(500);
      assert.equal(seenA.items.length, 1, 'observer A saw it once');
      assert.equal(seenB.items.length, 1, 'observer B saw it once');
    });

    it('stops delivering to an observer after cancel', async () => {
      const a = await transport();
      const role = uniqueName('role');
      const seen = new Collector<InMessage>();
      const sub = await a.onDiscovery(forRole(role, seen));
      await a.announce(discovery(role));
      await seen.waitCount(1);
      await sub.cancel();
      await a.announce(discovery(role));
      await sleep(300);
      assert.equal(seen.items.length, 1);
    });
  });
});
