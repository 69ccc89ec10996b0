import assert from 'node:assert/strict';
import { ErrorCodes, MsgfloError, QueueNotFoundError, TransportClosedError } from '../../src/errors.js';
import { ConnectionState, isConnectionLoss } from '../../src/transport/reconnect.js';
import type { TransportEvent } from '../../src/transport/types.js';

function describeEvent(e: TransportEvent): string {
  return e.type === 'reconnect' ? 'reconnect' : `${e.type}${e.error ? `:${e.error.message}` : ''}`;
}

describe('reconnection policy (src/transport/reconnect.ts)', () => {
  let events: string[];
  let state: ConnectionState;
  beforeEach(() => {
    events = [];
    state = new ConnectionState({ emit: (e) => events.push(describeEvent(e)), backoff: { initialMs: 100, maxMs: 1000 } });
  });

  it('says nothing before the first connection: a failed first connect is the caller’s error, not an outage', () => {
    assert.equal(state.phase, 'new');
    assert.equal(state.lost(new Error('refused')), false);
    state.error(new Error('refused'));
    assert.equal(state.reconnected(), false);
    assert.deepEqual(events, []);
    state.opened();
    assert.equal(state.phase, 'open');
    assert.equal(state.isOpen, true);
  });

  it('emits disconnect once per outage and reconnect when it ends', () => {
    state.opened();
    assert.equal(state.lost(new Error('reset')), true);
    assert.equal(state.lost(new Error('again')), false, 'a second loss in the same outage');
    assert.equal(state.lost(), false);
    assert.equal(state.phase, 'lost');
    assert.equal(state.isOpen, false);
    assert.equal(state.reconnected(), true);
    assert.equal(state.reconnected(), false, 'no outage to end');
    assert.equal(state.lost(), true, 'a new outage');
    assert.deepEqual(events, ['disconnect:reset', 'reconnect', 'disconnect']);
  });

  it('reports every error while open, and only the first of each outage', () => {
    state.opened();
    state.error(new Error('a'));
    state.error(new Error('b'));
    state.lost();
    state.error(new Error('c'));
    state.error(new Error('d'));
    state.reconnected();
    state.lost();
    state.error(new Error('e'));
    state.error(new Error('f'));
    assert.deepEqual(events, ['error:a', 'error:b', 'disconnect', 'error:c', 'reconnect', 'disconnect', 'error:e']);
  });

  it('waits longer after each failed attempt, and starts again from the first step in each outage', () => {
    state.opened();
    state.lost();
    const first = [state.nextDelay(), state.nextDelay(), state.nextDelay(), state.nextDelay(), state.nextDelay()];
    assert.equal(state.attempts, 5);
    // initial 100 ms, doubling, at most 1000 ms; ±20% jitter.
    assert.ok(first[0]! >= 80 && first[0]! <= 120, `first step ${first[0]}`);
    assert.ok(first[1]! >= 160 && first[1]! <= 240, `second step ${first[1]}`);
    assert.ok(first[4]! >= 800 && first[4]! <= 1200, `capped step ${first[4]}`);
    state.reconnected();
    assert.equal(state.attempts, 0);
    state.lost();
    const again = state.nextDelay();
    assert.ok(again >= 80 && again <= 120, `a new outage starts with the first step (${again})`);
  });

  it('is silent after close, and closed() resolves once it has ended, with the error that ended it', async () => {
    state.opened();
    let resolved: Error | undefined | 'pending' = 'pending';
    void state.closed().then((e) => {
      resolved = e;
    });
    assert.equal(state.close(), true);
    assert.equal(state.close(), false, 'closing twice');
    assert.equal(state.isClosed, true);
    assert.equal(state.lost(new Error('late')), false);
    state.error(new Error('late'));
    assert.equal(state.reconnected(), false);
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, 'pending', 'closed() waits for ended()');
    state.ended();
    state.ended(new Error('too late to count'));
    assert.equal(await state.closed(), undefined);
    assert.deepEqual(events, []);
  });

  it('gives up with an error: closed() resolves with it', async () => {
    state.opened();
    state.lost();
    const conflict = new Error('taken over');
    state.ended(conflict);
    assert.equal(state.phase, 'closed');
    assert.equal(await state.closed(), conflict);
  });

  it('decides that an error means a lost connection by its code, never by its wording', () => {
    assert.equal(isConnectionLoss(new TransportClosedError('send')), true);
    assert.equal(isConnectionLoss(new MsgfloError(ErrorCodes.TRANSPORT_CLOSED, 'gone')), true);
    assert.equal(isConnectionLoss(new QueueNotFoundError('q')), false);
    assert.equal(isConnectionLoss(new Error('Connection closed: socket ECONNRESET')), false);
    assert.equal(isConnectionLoss(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), false, 'adapters translate socket errors at their boundary');
    assert.equal(isConnectionLoss('closed'), false);
    assert.equal(isConnectionLoss(undefined), false);
  });
});
