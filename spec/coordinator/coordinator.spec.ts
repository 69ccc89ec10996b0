import assert from 'node:assert/strict';
import { Coordinator, type CoordinatorEvent } from '../../src/coordinator/coordinator.js';
import { ParticipantRegistry } from '../../src/coordinator/registry.js';
import { ParticipantTimeoutError } from '../../src/errors.js';
import { parseFbp } from '../../src/graph/index.js';
import { defineParticipant } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage, Transport } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { uniqueName } from '../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';

const Repeat = defineParticipant({
  component: 'Repeat',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }],
  process: (port, data, send) => send('out', data),
});

const info = (role: string, id = `${role}-1`, extra: Record<string, unknown> = {}) => ({
  id,
  role,
  component: 'Repeat',
  inports: [{ id: 'in', queue: `${role}.IN` }],
  outports: [{ id: 'out', queue: `${role}.OUT` }],
  ...extra,
});

describe('participant registry (fake clock)', () => {
  it('expires a participant after 3 missed heartbeats of its stated interval', () => {
    const clock = new FakeClock();
    const reg = new ParticipantRegistry({ clock });
    const expired: string[] = [];
    reg.on('expired', (e) => expired.push(e.info.id));
    reg.start(100);
    assert.equal(reg.update(info('a', 'a-1', { heartbeat: 2 })), 'added');
    clock.advance(5900);
    assert.deepEqual(expired, []);
    assert.equal(reg.update(info('a', 'a-1', { heartbeat: 2 })), 'updated');
    clock.advance(6000);
    assert.deepEqual(expired, []);
    clock.advance(200);
    assert.deepEqual(expired, ['a-1']);
    reg.stop();
  });

  it('assumes msgflo-era participants announce every 27 s (60/2.2): expired after ~82 s', () => {
    const clock = new FakeClock();
    const reg = new ParticipantRegistry({ clock });
    reg.start(1000);
    reg.update(info('old'));
    clock.advance(80_000);
    assert.equal(reg.byRole('old').length, 1);
    assert.equal(reg.get('old-1')!.legacy, true);
    clock.advance(3_000);
    assert.equal(reg.byRole('old').length, 0);
    reg.stop();
  });
});

describe('coordinator (in-memory transport)', () => {
  let url: string;
  let transports: Transport[];
  let participants: Participant<'in', 'out'>[];
  let coordinator: Coordinator;
  let events: CoordinatorEvent[];

  async function transport(): Promise<Transport> {
    const t = await connectTransport(url);
    transports.push(t);
    return t;
  }
  async function run(role: string, def = Repeat, heartbeat = 5): Promise<Participant<'in', 'out'>> {
    const p = new Participant(def, await connectTransport(url), { role, heartbeat });
    await p.start();
    participants.push(p);
    return p;
  }

  beforeEach(async () => {
    url = `direct://${uniqueName('coord')}`;
    transports = [];
    participants = [];
    events = [];
    coordinator = new Coordinator({ transport: await transport() });
    coordinator.on('event', (e) => events.push(e));
    await coordinator.start();
  });
  afterEach(async () => {
    await coordinator.stop();
    for (const p of participants) await p.stop();
    for (const t of transports) await t.close();
  });

  it('binds edges once both ends are discovered and sends the IIP after the downstream binding exists', async () => {
    const graph = parseFbp(`
      '{"first": true}' -> IN a(Repeat)
      a OUT -> IN b(Repeat)`);
    await coordinator.setGraph(graph);
    const out = new Collector<InMessage>();
    const obs = await transport();
    await run('a');
    await sleep(50);
    // b not there yet: no binding, and the IIP waits (it would be lost at a.OUT).
    assert.equal(coordinator.bindings().length, 0);
    assert.ok(!events.some((e) => e.type === 'iip-sent'));
    await run('b');
    await obs.tap('outqueue', 'b.OUT', out.push);
    await waitFor(() => events.some((e) => e.type === 'iip-sent'), 'IIP sent');
    assert.deepEqual((await out.waitCount(1))[0]!.data, { first: true });
    assert.deepEqual(
      coordinator.bindings().map((b) => [b.type, b.src, b.tgt]),
      [['pubsub', 'a.OUT', 'b.IN']],
    );
  });

  it('keeps edges of a participant that went away, so its work queues up until it is back', async () => {
    await coordinator.setGraph(parseFbp(`a(Repeat) OUT -> IN b(Repeat)`));
    await run('a');
    const b = await run('b');
    await waitFor(() => coordinator.bindings().length === 1, 'binding');
    await b.stop();
    await waitFor(() => events.some((e) => e.type === 'participant-left'), 'b left');
    await coordinator.reconcile();
    assert.equal(coordinator.bindings().length, 1);
    assert.ok(!events.some((e) => e.type === 'binding-removed'));
    const t = await transport();
    await t.send('outqueue', 'a.OUT', 'while b was away');
    const got = new Collector<InMessage>();
    await t.subscribe('b.IN', (d) => {
      void d.ack();
      got.push(d);
    });
    assert.equal((await got.waitCount(1))[0]!.data, 'while b was away');
  });

  it('ignores invalid discovery messages and keeps working', async () => {
    const t = await transport();
    await t.announce({ protocol: 'discovery', command: 'participant', payload: { id: 'x' } });
    await t.announce('not even an object');
    await waitFor(() => events.filter((e) => e.type === 'invalid-discovery').length === 2, 'two invalid-discovery events');
    const e = events.find((x) => x.type === 'invalid-discovery') as { error: Error };
    assert.match(e.error.message, /missing 'role'/);
    await run('ok');
    await waitFor(() => coordinator.participants().some((p) => p.info.role === 'ok'), 'participant ok');
  });

  it('re-sends IIPs when a role comes back after it left (msgflo#127), and removes bindings on graph change', async () => {
    const graph = parseFbp(`
      '42' -> IN a(Repeat)
      a OUT -> IN b(Repeat)`);
    await coordinator.setGraph(graph);
    await run('b');
    const a1 = await run('a');
    await waitFor(() => events.filter((e) => e.type === 'iip-sent').length === 1, 'first IIP');
    await a1.stop();
    await waitFor(() => events.some((e) => e.type === 'participant-left'), 'a left');
    await run('a');
    await waitFor(() => events.filter((e) => e.type === 'iip-sent').length === 2, 'IIP sent again');
    await coordinator.setGraph(parseFbp(`a(Repeat) OUT -> IN c(Repeat)`));
    await waitFor(() => events.some((e) => e.type === 'binding-removed'), 'binding removed');
    assert.deepEqual(coordinator.bindings(), []);
  });

  it('uses the queue names participants announce, not the role.PORT convention (msgflo#9)', async () => {
    const t = await transport();
    await t.createQueue('inqueue', 'custom/in/topic');
    await t.announce({
      protocol: 'discovery',
      command: 'participant',
      payload: { id: 'dev-1', role: 'dev', component: 'Device', inports: [{ id: 'cmd', queue: 'custom/in/topic' }], outports: [] },
    });
    await coordinator.setGraph(parseFbp(`src(Repeat) OUT -> CMD dev(Device)`));
    await run('src');
    await waitFor(() => coordinator.bindings().length === 1, 'binding');
    assert.equal(coordinator.bindings()[0]!.tgt, 'custom/in/topic');
  });

  it('reports a port the participant does not have, instead of crashing', async () => {
    await coordinator.setGraph(parseFbp(`a(Repeat) NOPE -> IN b(Repeat)`));
    await run('a');
    await run('b');
    await waitFor(() => events.some((e) => e.type === 'problem'), 'problem event');
    const p = events.find((e) => e.type === 'problem') as { message: string };
    assert.match(p.message, /no outport 'NOPE'/i);
  });

  it('waits for participants and names the missing ones on timeout (msgflo#133: no crash)', async () => {
    await run('here');
    await coordinator.waitForParticipants(['here'], { timeoutMs: 1000 });
    await assert.rejects(coordinator.waitForParticipants(['here', 'absent'], { timeoutMs: 100 }), (err: unknown) => {
      assert.ok(err instanceof ParticipantTimeoutError);
      assert.deepEqual(err.roles, ['absent']);
      return true;
    });
  });

  it('lets several coordinators on one broker all see every participant', async () => {
    const other = new Coordinator({ transport: await transport() });
    await other.start();
    await run('shared1');
    await run('shared2');
    await waitFor(() => other.participants().length === 2 && coordinator.participants().length === 2, 'both see both');
    await other.stop();
  });
});
