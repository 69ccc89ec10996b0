/**
 * AMQP sends: persistent JSON with a message id, at-most-once sends, missing queues and exchanges, confirms awaited on close.
 * The transport conformance suite (spec/transport/conformance.ts) covers what every transport does.
 */
import assert from 'node:assert/strict';
import { QueueNotFoundError } from '../../../src/errors.js';
import { uniqueName } from '../../helpers/brokers.js';
import { sleep } from '../../helpers/wait.js';
import { amqpFixture, collectAcked } from './fixture.js';

describe('AmqpTransport publish @broker', function () {
  this.timeout(20000);
  const { transport, track, rawChannel, getOne } = amqpFixture();

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
    const got = await collectAcked(t, q);
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
