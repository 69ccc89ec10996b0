/**
 * closed() and `await using` on a participant, through the public API (the Network and the Coordinator have theirs
 * in spec/coordinator/network.spec.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type Participant, defineParticipant, startNetwork, startParticipant } from '../../src/index.js';

const Echo = defineParticipant({
  component: 'LifeEcho',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }],
  process: (port, data, send) => send('out', data),
});

describe('public API: closed() and await using on a participant', function () {
  this.timeout(10_000);

  it('Symbol.asyncDispose exists (Node\'s own symbol)', () => {
    assert.equal(Symbol.asyncDispose, Symbol.for('nodejs.asyncDispose'));
  });

  it('closed() waits while it runs and resolves once stop() is done', async () => {
    const p = await startParticipant(Echo, `direct://${randomUUID()}`, { role: 'life', env: {} });
    let closed = false;
    void p.closed().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closed, false);
    const stopping = p.stop();
    await p.stop(); // a second stop while stopping returns at once
    await stopping;
    await p.closed();
    assert.equal(closed, true);
    assert.equal(p.running, false);
  });

  it('await using stops it: it says goodbye to the coordinator and closes its connection', async () => {
    const role = `life${randomUUID().slice(0, 8)}`;
    await using network = await startNetwork({ broker: `direct://${randomUUID()}` });
    const left: string[] = [];
    network.on('event', (e) => {
      if (e.type === 'participant-left') left.push(e.participant.role);
    });
    let participant: Participant | undefined;
    {
      await using p = await startParticipant(Echo, network.broker, { role, env: {} });
      participant = p;
      assert.equal(p.running, true);
    }
    assert.equal(participant.running, false);
    await participant.closed();
    const deadline = Date.now() + 5000;
    while (!left.includes(role) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(left, [role]);
  });
});
