import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TransportClosedError } from '../../src/errors.js';
import { DirectTransport } from '../../src/transport/direct/index.js';
import { connectTransport } from '../../src/transport/index.js';
import { ReconnectingTransport } from '../../src/transport/reconnecting.js';
import type { Delivery, InMessage, TransportEvent } from '../../src/transport/types.js';
import { AMQP_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

/** The message id each send attempt on a FlakyTransport was given (undefined: the wrapper left it to the transport). */
const attemptIds: Array<string | undefined> = [];

/** A direct transport whose "connection" can be dropped, as a broker would drop a socket. */
class FlakyTransport extends DirectTransport {
  private lostListeners = new Set<(e: TransportEvent) => void>();
  private dropped = false;
  /** Thrown by the next send instead of sending. */
  failNext: Error | undefined;
  override on(listener: (e: TransportEvent) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }
  async drop(): Promise<void> {
    this.dropped = true;
    await super.close(); // consumers go away: their unacked messages are requeued, as on a real broker
    for (const l of this.lostListeners) l({ type: 'disconnect', error: new Error('connection reset') });
  }
  override async send(...args: Parameters<DirectTransport['send']>): Promise<void> {
    attemptIds.push(args[3]?.id);
    if (this.dropped) throw new TransportClosedError('send');
    const fail = this.failNext;
    this.failNext = undefined;
    if (fail) throw fail;
    return super.send(...args);
  }
}

describe('reconnecting transport (in-memory, connection dropped on purpose)', () => {
  let url: string;
  let connections: FlakyTransport[];
  let transport: ReconnectingTransport;
  let events: string[];

  beforeEach(async () => {
    url = `direct://${uniqueName('rc')}`;
    connections = [];
    events = [];
    const make = async () => {
      const t = new FlakyTransport(url);
      connections.push(t);
      return t;
    };
    transport = new ReconnectingTransport(await make(), make, { backoff: { initialMs: 20, maxMs: 50 }, maxBuffered: 5 });
    transport.on((e) => events.push(e.type));
    await transport.connect();
  });
  afterEach(() => transport.close());

  it('resumes subscriptions, re-declares queues and delivers what was sent while disconnected', async () => {
    await transport.createQueue('inqueue', 'work.IN');
    const got = new Collector<Delivery>();
    await transport.subscribe('work.IN', (d) => {
      void d.ack();
      got.push(d);
    });
    await transport.send('inqueue', 'work.IN', 1);
    await got.waitCount(1);
    await connections[0]!.drop();
    const during = [transport.send('inqueue', 'work.IN', 2), transport.send('inqueue', 'work.IN', 3)];
    assert.equal(transport.connected, false);
    await Promise.all(during);
    await transport.send('inqueue', 'work.IN', 4);
    const items = await got.waitCount(4);
    assert.deepEqual(
      items.map((d) => d.data),
      [1, 2, 3, 4],
    );
    assert.deepEqual(events, ['disconnect', 'reconnect']);
    assert.equal(connections.length, 2);
  });

  it('refuses sends beyond its buffer instead of dropping them silently', async () => {
    await transport.createQueue('inqueue', 'q.IN');
    await connections[0]!.drop();
    // Block reconnection for a moment by making the next connections fail.
    const sends = Array.from({ length: 5 }, (_, i) => transport.send('inqueue', 'q.IN', i));
    await assert.rejects(transport.send('inqueue', 'q.IN', 'one too many'), TransportClosedError);
    await Promise.all(sends);
  });

  it('keeps the message id across a resend', async () => {
    await transport.createQueue('inqueue', 'ids.IN');
    const got = new Collector<InMessage>();
    await transport.subscribe('ids.IN', (d) => {
      void d.ack();
      got.push(d);
    });
    await connections[0]!.drop();
    attemptIds.length = 0;
    await transport.send('inqueue', 'ids.IN', 'x');
    const [m] = await got.waitCount(1);
    assert.ok(attemptIds.length >= 1 && attemptIds[0] !== undefined, 'the wrapper fixed the id before the first attempt');
    assert.ok(attemptIds.every((id) => id === attemptIds[0]), 'every attempt carries that id');
    assert.equal(m!.id, attemptIds[0]);
  });

  it('retries only what failed with TransportClosedError: other errors are the caller’s, whatever their words say', async () => {
    await transport.createQueue('inqueue', 'w.IN');
    const got = new Collector<Delivery>();
    await transport.subscribe('w.IN', (d) => {
      void d.ack();
      got.push(d);
    });
    const wordy = new Error('Connection closed: socket ECONNRESET');
    connections[0]!.failNext = wordy;
    await assert.rejects(transport.send('inqueue', 'w.IN', 'refused'), (err) => err === wordy);
    connections[0]!.failNext = new TransportClosedError('send');
    await transport.send('inqueue', 'w.IN', 'retried');
    assert.deepEqual(
      (await got.waitCount(1)).map((d) => d.data),
      ['retried'],
    );
    assert.deepEqual(events, [], 'a failed operation is not a lost connection');
  });

  it('rejects what still waits when it is closed', async () => {
    await transport.createQueue('inqueue', 'c.IN');
    await connections[0]!.drop();
    const pending = transport.send('inqueue', 'c.IN', 1);
    await transport.close();
    await assert.rejects(pending, TransportClosedError);
  });
});

describe('reconnecting transport on RabbitMQ @broker', function () {
  this.timeout(30_000);
  before(async function () {
    await requireBroker(this, AMQP_URL);
    try {
      await run('rabbitmqctl', ['list_connections', 'name'], { timeout: 15_000 });
    } catch {
      this.skip(); // rabbitmqctl is needed to cut a connection
    }
  });

  it('a consumer and a sender survive their connections being closed by the broker: nothing is lost', async () => {
    const name = uniqueName('rcamqp');
    const queue = `${name}.IN`;
    const consumer = await connectTransport(AMQP_URL, { name: `${name}-consumer` });
    const sender = await connectTransport(AMQP_URL, { name: `${name}-sender` });
    try {
      await consumer.createQueue('inqueue', queue);
      const seen = new Set<number>();
      await consumer.subscribe(queue, (d) => {
        seen.add(d.data as number);
        void d.ack().catch(() => {});
      });
      const total = 2000;
      const sending = (async () => {
        for (let i = 0; i < total; i++) {
          await sender.send('inqueue', queue, i);
          if (i % 200 === 0) await sleep(5);
        }
      })();
      await waitFor(() => seen.size > 300, 'first messages');
      const { stdout } = await run('rabbitmqctl', ['list_connections', 'pid', 'client_properties'], { timeout: 15_000 });
      const pids = stdout
        .split('\n')
        .filter((l) => l.includes(name))
        .map((l) => l.split('\t')[0]!);
      assert.equal(pids.length, 2, stdout);
      for (const pid of pids) await run('rabbitmqctl', ['close_connection', pid, 'msgflo-ts reconnection test'], { timeout: 15_000 });
      await sending;
      await waitFor(() => seen.size === total, `all ${total} messages (have ${seen.size})`, 20_000);
    } finally {
      await consumer.removeQueue('inqueue', queue).catch(() => {});
      await consumer.removeQueue('inqueue', `dead-${queue}`).catch(() => {});
      await consumer.close();
      await sender.close();
    }
  });
});

