/**
 * The AMQP adapter's boundary: amqplib failures that mean a lost channel or connection become TransportClosedError
 * (what ReconnectingTransport retries, by class), decided by class and code; the broker refusing an operation
 * stays as it is.
 */
import assert from 'node:assert/strict';
import { TransportClosedError } from '../../../src/errors.js';
import { closedOr, isChannelGone } from '../../../src/transport/amqp/errors.js';
import { isConnectionLoss } from '../../../src/transport/reconnect.js';
import { requireCjs } from '../../../src/util/cjs.js';

const { IllegalOperationError } = requireCjs('amqplib') as typeof import('amqplib');

function withCode(message: string, code: number | string): Error {
  return Object.assign(new Error(message), { code });
}

describe('AMQP errors at the adapter boundary (src/transport/amqp/errors.ts)', () => {
  it('turns an operation on a closed channel, and socket errors, into TransportClosedError', () => {
    for (const err of [
      new IllegalOperationError('Channel closed', ''),
      withCode('read ECONNRESET', 'ECONNRESET'),
      withCode('write EPIPE', 'EPIPE'),
      withCode('Cannot call write after a stream was destroyed', 'ERR_STREAM_DESTROYED'),
    ]) {
      assert.equal(isChannelGone(err), true, err.message);
      const out = closedOr(err, 'send', true);
      assert.ok(out instanceof TransportClosedError, err.message);
      assert.equal(out.cause, err);
      assert.equal(isConnectionLoss(out), true);
    }
  });

  it('keeps what the broker refused as it is while the connection is open, whatever its words', () => {
    const refused = withCode('Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "inequivalent arg"', 406);
    assert.equal(closedOr(refused, 'create a queue', true), refused);
    const wordy = new Error('Channel ended, no reply will be forthcoming (connection closed)');
    assert.equal(closedOr(wordy, 'bind', true), wordy, 'decided by class and code, not by the message');
    assert.equal(isConnectionLoss(closedOr(wordy, 'bind', true)), false);
  });

  it('turns any failure into TransportClosedError once the connection is no longer open', () => {
    const refused = withCode('Channel ended, no reply will be forthcoming', 404);
    const out = closedOr(refused, 'bind', false);
    assert.ok(out instanceof TransportClosedError);
    assert.match(out.message, /Cannot bind/);
    const already = new TransportClosedError('send');
    assert.equal(closedOr(already, 'other', false), already, 'never wrapped twice');
  });
});
