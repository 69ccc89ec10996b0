/**
 * AMQP discovery: the `fbp` exchange with a TTL, and the relay of msgflo-era announcements sent to the queue `fbp`.
 * The transport conformance suite (spec/transport/conformance.ts) covers what every transport does.
 */
import assert from 'node:assert/strict';
import type { InMessage } from '../../../src/transport/types.js';
import { uniqueName } from '../../helpers/brokers.js';
import { Collector, sleep } from '../../helpers/wait.js';
import { amqpFixture } from './fixture.js';

describe('AmqpTransport discovery @broker', function () {
  this.timeout(20000);
  const { transport, rawChannel } = amqpFixture();

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
});
