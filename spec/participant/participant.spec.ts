import assert from 'node:assert/strict';
import { ErrorCodes, type MsgfloError } from '../../src/errors.js';
import { defineParticipant } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { parseDiscovery } from '../../src/protocol/discovery.js';
import { DirectTransport } from '../../src/transport/direct/index.js';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage, Transport } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { uniqueName } from '../helpers/brokers.js';
import { Collector, sleep } from '../helpers/wait.js';

const misbehaving = defineParticipant({
  component: 'Misbehaving',
  inports: [
    { id: 'in', type: 'any' },
    { id: 'obj', type: 'object', schema: { type: 'object', required: ['n'], properties: { n: { type: 'number' } } } },
  ],
  outports: [{ id: 'out', type: 'any' }],
  process: async (port, data, send) => {
    if (port === 'obj') return send('out', data);
    switch ((data as { mode?: string }).mode) {
      case 'twice':
        send('out', 1);
        send('out', 2);
        return;
      case 'never':
        return;
      case 'throw':
        throw new Error('boom');
      case 'reject':
        return Promise.reject(new Error('rejected'));
      case 'badport':
        (send as (p: string, d: unknown) => void)('nope', 1);
        return;
      case 'hang':
        return new Promise(() => {});
      default:
        send('out', data);
    }
  },
});

describe('participant (in-memory transport)', () => {
  let url: string;
  let transports: Transport[];
  let participant: Participant<'in' | 'obj', 'out'>;
  let observer: Transport;
  let out: Collector<InMessage>;
  let errors: Collector<InMessage>;
  let dead: Collector<InMessage>;
  let role: string;

  beforeEach(async () => {
    url = `direct://${uniqueName('p')}`;
    role = uniqueName('mis');
    transports = [];
    const t = await connectTransport(url);
    participant = new Participant(misbehaving, t, { role, handlerTimeoutMs: 300 });
    await participant.start();
    observer = await connectTransport(url);
    transports.push(observer);
    out = new Collector();
    errors = new Collector();
    dead = new Collector();
    await observer.tap('outqueue', `${role}.OUT`, out.push);
    await observer.tap('outqueue', `${role}.ERROR`, errors.push);
    await observer.subscribe(`dead-${role}.IN`, (d) => {
      void d.ack();
      dead.push(d);
    });
    await observer.subscribe(`dead-${role}.OBJ`, (d) => {
      void d.ack();
      dead.push(d);
    });
  });
  afterEach(async () => {
    await participant.stop();
    for (const t of transports) await t.close();
  });

  it('announces a msgflo-compatible discovery message with its heartbeat', async () => {
    const info = parseDiscovery({ protocol: 'discovery', command: 'participant', payload: participant.info() }).payload;
    assert.equal(info.role, role);
    assert.match(info.id, new RegExp(`^${role}-[0-9a-f-]{36}$`));
    assert.deepEqual(
      info.inports.map((p) => [p.id, p.queue]),
      [
        ['in', `${role}.IN`],
        ['obj', `${role}.OBJ`],
      ],
    );
    assert.deepEqual(
      info.outports.map((p) => [p.id, p.queue]),
      [
        ['out', `${role}.OUT`],
        ['error', `${role}.ERROR`],
      ],
    );
    assert.equal(info.heartbeat, 5);
  });

  it('passes data through and acks', async () => {
    await observer.send('inqueue', `${role}.IN`, { hello: 1 });
    assert.deepEqual((await out.waitCount(1))[0]!.data, { hello: 1 });
  });

  it('survives a handler that sends twice, never sends, throws, rejects, uses a bad port or hangs', async () => {
    for (const mode of ['twice', 'never', 'throw', 'reject', 'badport', 'hang']) {
      await observer.send('inqueue', `${role}.IN`, { mode });
    }
    await errors.waitCount(4, 5000, 'error outputs');
    const reasons = (await dead.waitCount(4)).map((m) => m.headers['x-msgflo-reason']!);
    assert.ok(reasons.some((r) => r.includes('boom')));
    assert.ok(reasons.some((r) => r.includes('rejected')));
    assert.ok(reasons.some((r) => r.includes(ErrorCodes.UNKNOWN_PORT)));
    assert.ok(reasons.some((r) => r.includes('did not finish')));
    // 'twice' sent both outputs; and the participant still works afterwards.
    await observer.send('inqueue', `${role}.IN`, 'after');
    const values = (await out.waitCount(3)).map((m) => m.data);
    assert.deepEqual(values, [1, 2, 'after']);
    const errorPayload = errors.items[0]!.data as { code: string; port: string; data: unknown };
    assert.equal(errorPayload.port, 'in');
    assert.ok(errorPayload.code.startsWith('MSGFLO_ERR_'));
  });

  it('dead-letters data that fails the port schema, and bodies that are not JSON on typed ports', async () => {
    await observer.send('inqueue', `${role}.OBJ`, { n: 'not a number' });
    const [d] = await dead.waitCount(1);
    assert.equal(d!.headers['x-msgflo-code'], ErrorCodes.SCHEMA);
    await observer.send('inqueue', `${role}.OBJ`, { n: 3 });
    assert.deepEqual((await out.waitCount(1))[0]!.data, { n: 3 });
  });

  it('finishes in-flight work on stop, then says goodbye', async () => {
    const leaves = new Collector<InMessage>();
    await observer.onDiscovery((m) => {
      const d = m.data as { command: string; payload: { leaving?: boolean; role: string } };
      if (d.command === 'participant' && d.payload.leaving === true && d.payload.role === role) leaves.push(m);
    });
    await observer.send('inqueue', `${role}.IN`, 'last');
    await sleep(5);
    await participant.stop();
    assert.deepEqual((await out.waitCount(1))[0]!.data, 'last');
    await leaves.waitCount(1);
  });
});

describe('participant heartbeats (fake clock)', () => {
  it('re-announces every heartbeat interval and stops on stop()', async () => {
    const clock = new FakeClock();
    const url = `direct://${uniqueName('hb')}`;
    const t = await connectTransport(url);
    const obs = await connectTransport(url);
    const seen = new Collector<InMessage>();
    await obs.onDiscovery(seen.push);
    const p = new Participant(misbehaving, t, { role: 'hb', heartbeat: 2, clock });
    await p.start();
    await seen.waitCount(1);
    clock.advance(2000);
    clock.advance(2000);
    await seen.waitCount(3);
    await p.stop();
    clock.advance(10_000);
    await sleep(20);
    // 3 announcements + 1 goodbye, nothing after stop.
    assert.equal(seen.items.length, 4);
    assert.equal(clock.pending, 0);
    await obs.close();
  });

  it('derives the interval from MSGFLO_DISCOVERY_PERIOD like msgflo (period/2.2)', async () => {
    const t = await connectTransport(`direct://${uniqueName('hb')}`);
    const p = new Participant(misbehaving, t, { role: 'x', env: { MSGFLO_DISCOVERY_PERIOD: '22' } });
    assert.equal(p.heartbeat, 10);
    await t.close();
  });
});

describe('participant outputs and timeouts (in-memory transport)', () => {
  const open: Array<{ stop(): Promise<void> } | Transport> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await ('stop' in o ? o.stop() : o.close());
  });

  /** Start `participant` and an observer on the same in-memory broker (`url`); both are stopped after the test. */
  async function started(participant: Participant, url: string): Promise<Transport> {
    await participant.start();
    open.push(participant);
    const observer = await connectTransport(url);
    open.push(observer);
    return observer;
  }

  it('marks at-least-once outputs with the id of their input (x-msgflo-parent); at-most-once outputs carry no ids', async () => {
    const url = `direct://${uniqueName('p')}`;
    const role = uniqueName('two');
    const definition = defineParticipant({
      component: 'Two',
      inports: [{ id: 'in', type: 'any' }],
      outports: [
        { id: 'out', type: 'any' },
        { id: 'tele', type: 'any', fast: true },
      ],
      process: (_port, data, send) => {
        send('out', data);
        send('tele', data);
      },
    });
    const observer = await started(new Participant(definition, await connectTransport(url), { role }), url);
    const out = new Collector<InMessage>();
    const tele = new Collector<InMessage>();
    await observer.tap('outqueue', `${role}.OUT`, out.push);
    await observer.tap('outqueue', `${role}.TELE`, tele.push);
    await observer.send('inqueue', `${role}.IN`, { n: 1 }, { id: 'input-1' });
    const [o] = await out.waitCount(1);
    const [t] = await tele.waitCount(1);
    assert.equal(o!.headers['x-msgflo-parent'], 'input-1');
    assert.ok(o!.id && o!.id !== 'input-1', 'the output has an id of its own');
    assert.equal(t!.id, undefined);
    assert.equal(t!.headers['x-msgflo-parent'], undefined);
  });

  it('times the handler, not the wait for its outputs to be confirmed', async () => {
    const url = `direct://${uniqueName('p')}`;
    const role = uniqueName('slow');
    /** Confirms every send only after 600 ms, as a busy broker would. */
    class SlowConfirms extends DirectTransport {
      override async send(...args: Parameters<DirectTransport['send']>): Promise<void> {
        await sleep(600);
        return super.send(...args);
      }
    }
    const slow = new SlowConfirms(url);
    await slow.connect();
    const definition = defineParticipant({
      component: 'Quick',
      inports: [{ id: 'in', type: 'any' }],
      outports: [{ id: 'out', type: 'any' }],
      process: (_port, data, send) => send('out', data),
    });
    const participant = new Participant(definition, slow, { role, handlerTimeoutMs: 200 });
    const observer = await started(participant, url);
    const out = new Collector<InMessage>();
    const dead = new Collector<InMessage>();
    await observer.tap('outqueue', `${role}.OUT`, out.push);
    await observer.subscribe(`dead-${role}.IN`, (d) => {
      void d.ack();
      dead.push(d);
    });
    const failed: string[] = [];
    participant.on('failed', (_port, err) => failed.push(err.message));
    await observer.send('inqueue', `${role}.IN`, 'x');
    await out.waitCount(1, 5000);
    // A timed-out input would be failed once its send settled, reported (another slow send), then dead-lettered.
    await sleep(1500);
    assert.deepEqual(failed, []);
    assert.equal(dead.items.length, 0);
  });
});

describe('participant start: coded errors', () => {
  it('a second start() is a usage error (MSGFLO_ERR_USAGE)', async () => {
    const t = await connectTransport(`direct://${uniqueName('twice')}`);
    const p = new Participant(misbehaving, t, { role: uniqueName('twice') });
    try {
      await p.start();
      await assert.rejects(p.start(), (err: MsgfloError) => err.code === ErrorCodes.USAGE && /is already started/.test(err.message));
    } finally {
      await p.stop();
      await t.close();
    }
  });

  it('a start() of its own that throws is MSGFLO_ERR_HANDLER, naming the participant', async () => {
    const t = await connectTransport(`direct://${uniqueName('nostart')}`);
    const role = uniqueName('nostart');
    const failing = defineParticipant({
      component: 'FailsToStart',
      inports: [{ id: 'in', type: 'any' }],
      outports: [{ id: 'out', type: 'any' }],
      process: () => {},
      start: () => {
        throw new TypeError('no config');
      },
    });
    const p = new Participant(failing, t, { role });
    try {
      await assert.rejects(
        p.start(),
        (err: MsgfloError) => err.code === ErrorCodes.HANDLER && err.message.startsWith(`Participant '${role}' failed to start: start() threw: no config`),
      );
    } finally {
      await p.stop();
      await t.close();
    }
  });
});
