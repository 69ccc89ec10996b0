/**
 * AMQP consumers: headers and ids of msgflo-era messages, settle-once on the channel, consumer channels the broker closes, dead letters with their reason in headers, taps.
 * The transport conformance suite (spec/transport/conformance.ts) covers what every transport does.
 */
import assert from 'node:assert/strict';
import type { Channel, GetMessage } from 'amqplib';
import { QueueNotFoundError } from '../../../src/errors.js';
import type { Delivery, InMessage, TransportEvent } from '../../../src/transport/types.js';
import { uniqueName } from '../../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../../helpers/wait.js';
import { amqpFixture, collectAcked } from './fixture.js';

describe('AmqpTransport consume @broker', function () {
  this.timeout(20000);
  const { transport, track, rawChannel, getOne } = amqpFixture();

  it('rejects a subscription to a missing queue and stays usable', async () => {
    const t = await transport();
    await assert.rejects(t.subscribe(uniqueName('amqp') + '.NOPE', () => undefined), QueueNotFoundError);
    const q = track(uniqueName('amqp') + '.IN');
    await t.createQueue('inqueue', q);
    const got = await collectAcked(t, q);
    await t.send('inqueue', q, 'fine');
    assert.equal((await got.waitCount(1))[0]!.data, 'fine');
  });

  it('gives string headers, the id from msgflo-era messages and non-JSON bodies as text', async () => {
    const t = await transport();
    const q = track(uniqueName('amqp') + '.IN');
    await t.createQueue('inqueue', q);
    const got = await collectAcked(t, q);
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
    const got = await collectAcked(t, q);
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
