import assert from 'node:assert/strict';
import { assign, setup } from 'xstate';
import { ErrorCodes, type MsgfloError } from '../../src/errors.js';
import { defineParticipant, defineStatechartParticipant, type PortEvent } from '../../src/participant/definition.js';
import { ChartBehaviour } from '../../src/participant/chart.js';
import { Participant } from '../../src/participant/participant.js';
import { SnoopLease, setSnoop } from '../../src/participant/snoop.js';
import { parseSpyMessage, parseTraceMessage } from '../../src/protocol/snoop.js';
import { FunctionChart, stripTrace } from '../../src/statechart/index.js';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage, SnoopReceived, Transport } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { uniqueName } from '../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';
import { SEED_SPY_START_B, seedMachine } from '../statechart/seed.js';

/** A counter chart: `add` adds to a total (guarded: only numbers), `reset` empties it; after 1 s idle it reports. */
const counter = defineStatechartParticipant({
  component: 'Counter',
  inports: [
    { id: 'add', type: 'number', schema: { type: 'number' } },
    { id: 'reset', type: 'bang' },
    { id: 'fail', type: 'any' },
  ],
  outports: [{ id: 'total', type: 'number' }, { id: 'idle', type: 'number' }],
  machine: ({ send }) =>
    setup({
      types: { context: {} as { total: number }, events: {} as PortEvent<'add' | 'reset' | 'fail'> },
      guards: { positive: ({ event }) => (event.data as number) > 0 },
    }).createMachine({
      id: 'counter',
      context: { total: 0 },
      initial: 'counting',
      states: {
        counting: {
          after: { 1000: 'idle' },
          on: {
            add: [
              {
                guard: 'positive',
                target: 'counting',
                reenter: true,
                actions: [assign({ total: ({ context, event }) => context.total + (event.data as number) }), send('total', ({ context }) => context.total)],
              },
              { actions: send('total', () => 'ignored: not positive') },
            ],
            reset: { actions: [assign({ total: 0 }), send('total', 0)] },
            fail: {
              actions: () => {
                throw new Error('the chart broke');
              },
            },
          },
        },
        idle: {
          entry: send('idle', ({ context }) => context.total),
          on: { add: { target: 'counting', actions: assign({ total: ({ context, event }) => context.total + (event.data as number) }) } },
        },
      },
    }),
});

describe('statechart participants (in-memory transport)', () => {
  let url: string;
  let role: string;
  let clock: FakeClock;
  let participant: Participant<'add' | 'reset' | 'fail', 'total' | 'idle'>;
  let observer: Transport;
  let total: Collector<InMessage>;
  let idle: Collector<InMessage>;
  let errors: Collector<InMessage>;
  let dead: Collector<InMessage>;

  beforeEach(async () => {
    url = `direct://${uniqueName('sc')}`;
    role = uniqueName('counter');
    clock = new FakeClock(0);
    participant = new Participant(counter, await connectTransport(url), { role, clock, env: {} });
    await participant.start();
    observer = await connectTransport(url);
    total = new Collector();
    idle = new Collector();
    errors = new Collector();
    dead = new Collector();
    await observer.tap('outqueue', `${role}.TOTAL`, total.push);
    await observer.tap('outqueue', `${role}.IDLE`, idle.push);
    await observer.tap('outqueue', `${role}.ERROR`, errors.push);
    for (const port of ['ADD', 'RESET', 'FAIL']) {
      await observer.subscribe(`dead-${role}.${port}`, (d) => {
        void d.ack();
        dead.push(d);
      });
    }
  });
  afterEach(async () => {
    await participant.stop();
    await observer.close();
  });

  it('turns inport messages into events and outport sends into messages, guards included', async () => {
    await observer.send('inqueue', `${role}.ADD`, 2);
    await observer.send('inqueue', `${role}.ADD`, 3);
    await observer.send('inqueue', `${role}.ADD`, -1);
    await observer.send('inqueue', `${role}.RESET`, null);
    const values = (await total.waitCount(4)).map((m) => m.data);
    assert.deepEqual(values, [2, 5, 'ignored: not positive', 0]);
    assert.equal(dead.items.length, 0);
  });

  it('runs delayed transitions on the participant clock, their sends tied to no input', async () => {
    await observer.send('inqueue', `${role}.ADD`, 4);
    await total.waitCount(1);
    clock.advance(999);
    await sleep(10);
    assert.equal(idle.items.length, 0);
    clock.advance(1);
    assert.deepEqual((await idle.waitCount(1))[0]!.data, 4);
    assert.equal(participant.chartState, 'idle');
    // In 'idle', add goes back to counting.
    await observer.send('inqueue', `${role}.ADD`, 1);
    await waitFor(() => participant.chartState === 'counting', 'counting again');
    clock.advance(1000);
    assert.deepEqual((await idle.waitCount(2))[1]!.data, 5);
  });

  it('sends a chart error to the error port and dead-letters the input; the chart carries on where it was', async () => {
    await observer.send('inqueue', `${role}.ADD`, 10);
    await total.waitCount(1);
    await observer.send('inqueue', `${role}.FAIL`, { why: 'test' });
    const [d] = await dead.waitCount(1);
    assert.equal(d!.headers['x-msgflo-code'], ErrorCodes.HANDLER);
    assert.match(d!.headers['x-msgflo-reason']!, /the chart broke/);
    const [e] = await errors.waitCount(1);
    assert.deepEqual((e!.data as { port: string; data: unknown }).port, 'fail');
    assert.deepEqual((e!.data as { port: string; data: unknown }).data, { why: 'test' });
    await observer.send('inqueue', `${role}.ADD`, 1);
    assert.deepEqual((await total.waitCount(2))[1]!.data, 11, 'the context survived the failed event');
  });

  it('reports a delayed transition that throws on the error port, and keeps running', async () => {
    const fragile = defineStatechartParticipant({
      component: 'Fragile',
      inports: [{ id: 'poke' }],
      outports: [{ id: 'out' }],
      machine: ({ send }) =>
        setup({}).createMachine({
          id: 'fragile',
          initial: 'waiting',
          states: {
            waiting: {
              after: {
                100: {
                  target: 'done',
                  actions: () => {
                    throw new Error('late failure');
                  },
                },
              },
              on: { poke: { actions: send('out', 'poked') } },
            },
            done: {},
          },
        }),
    });
    const r = uniqueName('fragile');
    const c = new FakeClock(0);
    const p = new Participant(fragile, await connectTransport(url), { role: r, clock: c, env: {} });
    await p.start();
    const errs = new Collector<InMessage>();
    const outs = new Collector<InMessage>();
    await observer.tap('outqueue', `${r}.ERROR`, errs.push);
    await observer.tap('outqueue', `${r}.OUT`, outs.push);
    c.advance(100);
    const [e] = await errs.waitCount(1);
    assert.equal((e!.data as { port: string }).port, 'AFTER_100MS');
    assert.match((e!.data as { message: string }).message, /late failure/);
    assert.equal(p.chartState, 'waiting');
    await observer.send('inqueue', `${r}.POKE`, null);
    assert.equal((await outs.waitCount(1))[0]!.data, 'poked');
    await p.stop();
  });

  it('fails start() with MSGFLO_ERR_HANDLER when the entry actions of the initial state throw', async () => {
    const broken = defineStatechartParticipant({
      component: 'Broken',
      inports: [{ id: 'poke' }],
      outports: [{ id: 'out' }],
      machine: () =>
        setup({}).createMachine({
          id: 'broken',
          initial: 'first',
          states: {
            first: {
              entry: () => {
                throw new Error('no first state');
              },
            },
          },
        }),
    });
    const r = uniqueName('broken');
    const p = new Participant(broken, await connectTransport(url), { role: r, env: {} });
    await assert.rejects(p.start(), (err: MsgfloError) => err.code === ErrorCodes.HANDLER && err.message.startsWith(`Participant '${r}' failed to start: its chart threw: `) && /no first state/.test(err.message));
    await p.stop();
  });

  it('dead-letters data that fails the port schema without giving it to the chart', async () => {
    await observer.send('inqueue', `${role}.ADD`, 'three');
    const [d] = await dead.waitCount(1);
    assert.equal(d!.headers['x-msgflo-code'], ErrorCodes.SCHEMA);
    await observer.send('inqueue', `${role}.ADD`, 3);
    assert.deepEqual((await total.waitCount(1))[0]!.data, 3);
  });
});

const producer = defineStatechartParticipant({
  component: 'Producer',
  inports: [{ id: 'A' }, { id: 'B' }, { id: 'C' }],
  outports: [],
  machine: () => seedMachine(),
});

async function snoopCollector(t: Transport, channels: Array<'spy' | 'trace'>, roles?: string[]) {
  const got = new Collector<SnoopReceived>();
  await t.subscribeSnoop!({ channels, roles }, got.push);
  return got;
}

const spyLines = (c: Collector<SnoopReceived>, role?: string) =>
  c.items.filter((m) => m.channel === 'spy' && (!role || m.role === role)).flatMap((m) => parseSpyMessage(m.data)!.lines);
const traceLines = (c: Collector<SnoopReceived>, role?: string) =>
  c.items.filter((m) => m.channel === 'trace' && (!role || m.role === role)).flatMap((m) => parseTraceMessage(m.data)!.records.map((r) => r.line));

describe('spy and trace on the snoop channel (in-memory transport)', () => {
  let url: string;
  let watcher: Transport;
  const participants: Array<{ stop(): Promise<void> }> = [];

  beforeEach(async () => {
    url = `direct://${uniqueName('snoop')}`;
    watcher = await connectTransport(url);
  });
  afterEach(async () => {
    for (const p of participants.splice(0)) await p.stop();
    await watcher.close();
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function start(role: string, options: { spy?: boolean; trace?: boolean } = {}, def: unknown = producer): Promise<Participant<any, any>> {
    const p = new Participant(def as typeof producer, await connectTransport(url), { role, env: {}, snoop: options });
    participants.push(p);
    await p.start();
    return p;
  }

  it("publishes the seed chart's spy for start then B exactly, and its trace", async () => {
    const got = await snoopCollector(watcher, ['spy', 'trace']);
    const p = await start('producer', { spy: true, trace: true });
    await p.send('B', null);
    await waitFor(() => spyLines(got).length >= SEED_SPY_START_B.length, 'spy lines');
    assert.deepEqual(spyLines(got), SEED_SPY_START_B);
    await waitFor(() => traceLines(got).length >= 2, 'trace lines');
    assert.deepEqual(stripTrace(traceLines(got)), ['[producer] e->start_at() top->c1', '[producer] e->B() c1->c1']);
  });

  it('is off by default, switched on and off at run time by a lease, and replays the start when switched on', async () => {
    const got = await snoopCollector(watcher, ['spy', 'trace']);
    const role = uniqueName('p');
    const p = await start(role);
    await p.send('A', null);
    await sleep(20);
    assert.equal(got.items.length, 0, 'nothing while off');
    const lease = await SnoopLease.hold(watcher, { spy: true, trace: false, roles: [role] });
    await waitFor(() => spyLines(got).includes('START'), 'the start, replayed');
    await waitFor(() => p.snoop.spy, 'spy switched on');
    await p.send('A', null);
    await waitFor(() => spyLines(got).includes('A:c2'), 'live spy');
    assert.equal(traceLines(got).length, 0, 'trace was not asked for');
    await lease.release();
    await waitFor(() => !p.snoop.spy, 'spy switched off');
    const before = got.items.length;
    await p.send('A', null);
    await sleep(20);
    assert.equal(got.items.length, before);
  });

  it('lets a participant that starts later get the leases held already', async () => {
    const got = await snoopCollector(watcher, ['spy']);
    const lease = await SnoopLease.hold(watcher, { spy: true, trace: true });
    const role = uniqueName('late');
    const p = await start(role);
    await waitFor(() => p.snoop.spy && p.snoop.trace, 'the lease, answered to the query');
    await waitFor(() => spyLines(got, role).includes('START'), 'start lines');
    await lease.release();
  });

  it('expires a lease that is not renewed', async () => {
    const role = uniqueName('exp');
    const p = await start(role);
    await setSnoop(watcher, { spy: true, trace: true, roles: [role], leaseMs: 1000 });
    await waitFor(() => p.snoop.spy, 'spy on');
    await waitFor(() => !p.snoop.spy, 'spy off after the lease', 3000);
  });

  it('logs an event the chart does not handle in the spy, and acks it', async () => {
    const got = await snoopCollector(watcher, ['spy']);
    const p = await start(uniqueName('ign'), { spy: true });
    await p.send('C', null);
    await waitFor(() => spyLines(got).includes('C:producer_outer'), 'the ignored event');
    assert.deepEqual(spyLines(got).slice(-3), ['C:c1', 'C:producer_outer', '<- Queued:(0) Deferred:(0)']);
  });

  it('several producers, several watchers: every watcher sees every line of every producer', async () => {
    const watchers = [watcher, await connectTransport(url), await connectTransport(url)];
    const collectors = [];
    for (const w of watchers) collectors.push(await snoopCollector(w, ['spy', 'trace']));
    const roles = [uniqueName('a'), uniqueName('b'), uniqueName('c')];
    const ps = [];
    for (const r of roles) ps.push(await start(r, { spy: true, trace: true }));
    for (const p of ps) await p.send('B', null);
    for (const c of collectors) {
      for (const r of roles) {
        await waitFor(() => spyLines(c, r).length === SEED_SPY_START_B.length, `spy of ${r}`);
        assert.deepEqual(spyLines(c, r), SEED_SPY_START_B);
        assert.equal(traceLines(c, r).length, 2);
      }
    }
    for (const w of watchers.slice(1)) await w.close();
  });

  it('a function-form participant spies as a one-state chart', async () => {
    const got = await snoopCollector(watcher, ['spy']);
    const fn = defineParticipant({ component: 'Echo', inports: [{ id: 'in' }], outports: [{ id: 'out' }], process: (port, data, send) => send('out', data) });
    const p = await start(uniqueName('fn'), { spy: true }, fn);
    await p.send('in', 1);
    await waitFor(() => spyLines(got).length >= 8, 'spy');
    assert.deepEqual(spyLines(got), [
      'START',
      'SEARCH_FOR_SUPER_SIGNAL:ready',
      'ENTRY_SIGNAL:ready',
      'INIT_SIGNAL:ready',
      '<- Queued:(0) Deferred:(0)',
      'in:ready',
      'in:ready:HOOK',
      '<- Queued:(0) Deferred:(0)',
    ]);
  });

  it('never waits for the snoop channel: a stuck channel drops lines, inputs still flow', async () => {
    const inner = await connectTransport(url);
    // A transport whose snoop publishes never complete (a broker that stopped reading).
    const stuck: Transport = Object.create(inner) as Transport;
    stuck.publishSnoop = () => new Promise<void>(() => {});
    const echo = defineParticipant({ component: 'Echo', inports: [{ id: 'in' }], outports: [{ id: 'out' }], process: (port, data, send) => send('out', data) });
    const role = uniqueName('stuck');
    const p = new Participant(echo, stuck, { role, env: {}, snoop: { spy: true, trace: true } });
    participants.push(p);
    await p.start();
    const out = new Collector<InMessage>();
    await watcher.tap('outqueue', `${role}.OUT`, out.push);
    for (let i = 0; i < 400; i++) await p.send('in', i);
    await out.waitCount(400);
    assert.ok(p.snoop.stats.dropped > 0, 'lines were dropped rather than waited for');
    assert.equal(p.snoop.stats.published, 256);
  });
});

describe('chart behaviours that load their engine first', () => {
  it('start once, however many inputs come while the engine loads, and never build before it is loaded', async () => {
    let loaded = false;
    let builds = 0;
    const calls: unknown[] = [];
    const behaviour = new ChartBehaviour(
      ({ host, observer }) => {
        assert.ok(loaded, 'built before its engine was loaded');
        builds++;
        return new FunctionChart('c', (_type, data) => void calls.push(data), host, observer);
      },
      () => sleep(50).then(() => void (loaded = true)),
    );
    const meta = { id: undefined, headers: {}, redelivered: false, role: 'c' };
    await Promise.all([behaviour.handle({ type: 'in', data: 1, meta }, () => {}), behaviour.handle({ type: 'in', data: 2, meta }, () => {})]);
    assert.equal(builds, 1);
    assert.deepEqual(calls, [1, 2]);
  });
});
