/**
 * AMQP topology and bindings exactly as msgflo 0.12 declares them, so msgflo-era participants and ours share a broker without 406s.
 * The transport conformance suite (spec/transport/conformance.ts) covers what every transport does.
 */
import assert from 'node:assert/strict';
import { uniqueName } from '../../helpers/brokers.js';
import { Collector, sleep } from '../../helpers/wait.js';
import { amqpFixture } from './fixture.js';

describe('AmqpTransport topology @broker', function () {
  this.timeout(20000);
  const { transport, track, rawChannel, getOne, exchanges } = amqpFixture();

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
});
