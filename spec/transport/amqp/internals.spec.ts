/**
 * Every amqplib internal the AMQP adapter relies on (src/transport/amqp/internals.ts), checked against a real
 * amqplib connection to RabbitMQ. Run by `npm run deps:check` after an amqplib upgrade: a failure names the
 * internal that changed, and what the adapter would lose.
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { connect, type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import { isChannelGone } from '../../../src/transport/amqp/errors.js';
import {
  AMQPLIB_CHECKED,
  connectionSocket,
  installedAmqplibVersion,
  isBrokerNack,
  isCheckedAmqplib,
  isHandshakeAccessRefused,
  isVhostRefused,
  missingExchange,
  returnReplyText,
} from '../../../src/transport/amqp/internals.js';
import { AMQP_URL, requireBroker, uniqueName } from '../../helpers/brokers.js';

const version = installedAmqplibVersion();

/** The message of a failed check: which internal broke, where it is used, and what that costs. */
function broke(internal: string, what: string): string {
  return `amqplib ${version} changed an internal msgflo-ts relies on: ${internal} (src/transport/amqp/internals.ts) — ${what}`;
}

/** The error a promise rejects with (fails when it resolves). */
async function rejection(p: Promise<unknown>, internal: string): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail(broke(internal, 'the operation was expected to fail and did not'));
}

describe('amqplib internals (src/transport/amqp/internals.ts) @broker', function () {
  this.timeout(20000);
  let model: ChannelModel;
  const queues: string[] = [];

  before(async function () {
    await requireBroker(this, AMQP_URL);
    model = await connect(AMQP_URL);
    model.on('error', () => undefined);
  });

  after(async () => {
    if (!model) return;
    const ch = await model.createChannel();
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    await model.close().catch(() => undefined);
  });

  /** A confirm channel whose failures are kept, not thrown. */
  async function confirmChannel(on = model): Promise<{ ch: ConfirmChannel; errors: Error[] }> {
    const ch = await on.createConfirmChannel();
    const errors: Error[] = [];
    ch.on('error', (err: Error) => errors.push(err));
    return { ch, errors };
  }

  /** Publish on a confirm channel; resolves with what the confirm callback was given. */
  function confirmOf(ch: ConfirmChannel, exchange: string, routingKey: string, options: { mandatory?: boolean } = {}): Promise<unknown> {
    return new Promise((resolve) => {
      ch.publish(exchange, routingKey, Buffer.from('{}'), options, (err: unknown) => resolve(err));
    });
  }

  it(`the installed amqplib is in the range the internals were checked against (${AMQPLIB_CHECKED.range})`, () => {
    assert.ok(
      isCheckedAmqplib(version),
      `amqplib ${version} is installed, but src/transport/amqp/internals.ts was checked against ${AMQPLIB_CHECKED.range} ` +
        `(${AMQPLIB_CHECKED.versions.join(', ')}): run this spec against it, then add it to AMQPLIB_CHECKED and pin package.json to match`,
    );
    assert.equal(isCheckedAmqplib(AMQPLIB_CHECKED.versions[0]), true);
    assert.equal(isCheckedAmqplib('2.4.0'), false, 'a minor upgrade is outside a ~ range');
    assert.equal(isCheckedAmqplib('3.3.1'), false);
    assert.equal(isCheckedAmqplib('not a version'), false);
  });

  it('connectionSocket: the socket is ChannelModel.connection.stream, and amqplib writes every frame through its write()', async () => {
    const own = await connect(AMQP_URL);
    own.on('error', () => undefined);
    const socket = connectionSocket(own);
    assert.ok(socket, broke('connectionSocket', 'ChannelModel.connection.stream is no longer a stream: writes are not coalesced and close() cannot drop a silent broker'));
    // connection.ts wraps socket.write to cork once per turn; that only works while amqplib looks write up per frame.
    let writes = 0;
    const write = socket.write;
    socket.write = function counted(this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
      writes++;
      return write.apply(this, args);
    } as Duplex['write'];
    const ch = await own.createChannel();
    await ch.checkExchange('amq.fanout');
    assert.ok(writes >= 2, broke('connectionSocket', `amqplib no longer writes frames through stream.write (saw ${writes} writes): coalesceWrites in connection.ts has no effect`));
    // Dropping the socket ends the connection: what close() does when the broker does not answer.
    const closed = new Promise<void>((resolve) => own.once('close', () => resolve()));
    socket.destroy(new Error('dropped by internals.spec'));
    const ended = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    assert.ok(ended, broke('connectionSocket', "destroying ChannelModel.connection.stream no longer closes the connection ('close' event): a close() on a silent broker would hang"));
  });

  it('returnReplyText: a returned message carries the broker reason in fields.replyText', async () => {
    const { ch } = await confirmChannel();
    const returned = new Promise<Message>((resolve) => ch.once('return', resolve));
    await confirmOf(ch, '', uniqueName('internals-nowhere'), { mandatory: true });
    const msg = await returned;
    assert.equal(returnReplyText(msg), 'NO_ROUTE', broke('returnReplyText', 'basic.return reply-text is no longer at message.fields.replyText (only a log line loses its reason)'));
    await ch.close();
  });

  it("isBrokerNack: a basic.nack confirm fails with 'message nacked', a channel close with something else", async () => {
    const full = uniqueName('internals-full');
    queues.push(full);
    const { ch } = await confirmChannel();
    await ch.assertQueue(full, { durable: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    const nacked = await confirmOf(ch, '', full);
    assert.ok(nacked instanceof Error, 'the broker nacks a publish to a full reject-publish queue');
    assert.ok(isBrokerNack(nacked), broke('isBrokerNack', `a basic.nack now fails its confirm with '${(nacked as Error).message}': a refused message would be published again as if its channel had closed`));
    const { ch: doomed, errors } = await confirmChannel();
    const lost = await confirmOf(doomed, uniqueName('internals-no-exchange'), '');
    assert.ok(lost instanceof Error, 'a publish to a missing exchange loses its confirm with the channel');
    assert.equal(isBrokerNack(lost), false, broke('isBrokerNack', 'a channel close now looks like a basic.nack: a message lost with its channel would be refused instead of published again'));
    assert.ok(errors.length > 0);
    await ch.close();
  });

  it('missingExchange: a 404 channel close names the missing exchange in its message', async () => {
    const name = uniqueName('internals-no-exchange');
    const { ch, errors } = await confirmChannel();
    await confirmOf(ch, name, '');
    assert.equal(errors.length, 1, 'the channel closed with an error');
    assert.equal((errors[0] as { code?: unknown }).code, 404, 'amqplib gives the reply code as err.code (documented)');
    assert.equal(missingExchange(errors[0]), name, broke('missingExchange', `the 404 close no longer says "no exchange '${name}'" in its message ('${errors[0]!.message}'): a publish killed by another one's 404 would be refused instead of retried`));
  });

  it('isHandshakeAccessRefused: wrong credentials fail the handshake with 403 ACCESS_REFUSED in the message', async () => {
    const u = new URL(AMQP_URL);
    u.username = 'msgflo-nobody';
    u.password = 'wrong-pass-xyz';
    const err = await rejection(connect(u.toString()), 'isHandshakeAccessRefused');
    assert.ok(isHandshakeAccessRefused(err), broke('isHandshakeAccessRefused', `a refused login now fails with '${String((err as Error)?.message)}': it would be reported as BrokerUnreachableError instead of BrokerAuthError`));
  });

  it("isVhostRefused: a virtual host that does not exist fails with 'Expected ConnectionOpenOk; got <ConnectionClose'", async () => {
    const u = new URL(AMQP_URL);
    u.pathname = `/${uniqueName('internals-novhost')}`;
    const err = await rejection(connect(u.toString()), 'isVhostRefused');
    assert.ok(isVhostRefused(err), broke('isVhostRefused', `a refused virtual host now fails with '${String((err as Error)?.message)}': it would be reported as BrokerUnreachableError instead of BrokerAuthError`));
  });

  it('isChannelGone (errors.ts, on the typed API): an operation on a closed channel throws IllegalOperationError', async () => {
    const ch = await model.createChannel();
    await ch.close();
    let thrown: unknown;
    try {
      ch.publish('', 'x', Buffer.from('{}'));
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown, 'publishing on a closed channel throws');
    assert.ok(isChannelGone(thrown), broke('IllegalOperationError', `a closed channel now throws ${String(thrown)}: a lost channel would not be reported as TransportClosedError`));
  });
});
