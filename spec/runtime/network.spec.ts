/**
 * The live network through the FBP runtime protocol, in-process on the in-memory broker with real participants:
 * start/stop, network:data for IIPs and edges (and the edges network:edges selects), exported ports with
 * runtime:packet, participants that come late or expire, debug mode, traces.
 */
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/util/clock.js';
import { waitFor } from '../helpers/wait.js';
import type { FbpClient, Message } from './client.js';
import { Drop, Failing, Repeat, Uppercase, startHarness, type Harness } from './harness.js';

describe('FBP runtime: the live network (in-process)', function () {
  this.timeout(20_000);
  let h: Harness;
  let c: FbpClient;
  let clients: FbpClient[];

  const open = async (options: Parameters<typeof startHarness>[0] = {}) => {
    h = await startHarness(options);
    c = h.client();
    clients = [c];
    c.send('runtime', 'getruntime', {});
    await c.expect('runtime', 'runtime');
  };
  afterEach(async () => {
    const problems = clients.flatMap((x) => x.problems);
    await h.close();
    assert.deepEqual(problems, [], 'frames that break the fbp-protocol schemas');
    assert.equal(h.runtime.invalidOutputs, 0);
  });

  /** hello(Repeat) OUT -> IN world(Drop), 'Hello, world!' -> IN hello: the fbp-test network. */
  async function helloWorld(graph = 'bar'): Promise<void> {
    await c.request('graph', 'clear', { id: graph, main: true });
    await c.request('graph', 'addnode', { id: 'Hello', component: 'Repeat', metadata: {}, graph });
    await c.request('graph', 'addnode', { id: 'World', component: 'Drop', metadata: {}, graph });
    await c.request('graph', 'addedge', { src: { node: 'Hello', port: 'out' }, tgt: { node: 'World', port: 'in' }, graph });
    await c.request('graph', 'addinitial', { src: { data: 'Hello, world!' }, tgt: { node: 'Hello', port: 'in' }, graph });
  }
  const dataOf = (m: Message) => m.payload;

  it('network:start binds the edges and sends the IIPs, reported as network:data; stop unbinds; start again resends', async () => {
    await open();
    await helloWorld();
    await h.participant(Repeat, 'Hello');
    await h.participant(Drop, 'World');
    assert.deepEqual(h.coordinator.bindings(), [], 'no edge is bound before network:start');

    c.send('network', 'start', { graph: 'bar' });
    const started = await c.expect('network', 'started');
    assert.equal(started.payload.started, true);
    assert.deepEqual(dataOf(await c.expect('network', 'data')), { id: 'DATA -> IN Hello()', graph: 'bar', tgt: { node: 'Hello', port: 'in' }, data: 'Hello, world!' });
    assert.deepEqual(dataOf(await c.expect('network', 'data')), {
      id: 'Hello() OUT -> IN World()',
      graph: 'bar',
      src: { node: 'Hello', port: 'out' },
      tgt: { node: 'World', port: 'in' },
      data: 'Hello, world!',
    });
    const connect = c.all('network', 'connect');
    assert.deepEqual(connect.map((m) => m.payload.id), ['Hello() OUT -> IN World()']);
    assert.deepEqual((await c.request('network', 'getstatus', { graph: 'bar' }, 'status')).payload, { graph: 'bar', running: false, started: true });

    const stopped = await c.request('network', 'stop', { graph: 'bar' }, 'stopped');
    assert.equal(stopped.payload.started, false);
    assert.equal(typeof stopped.payload.uptime, 'number');
    await c.expect('network', 'disconnect');
    assert.deepEqual((await c.request('network', 'getstatus', { graph: 'bar' }, 'status')).payload, { graph: 'bar', running: false, started: false });
    assert.deepEqual(h.coordinator.bindings(), []);

    c.skipAll();
    await c.request('network', 'start', { graph: 'bar' }, 'started');
    assert.equal((await c.expect('network', 'data')).payload.id, 'DATA -> IN Hello()');
    assert.equal((await c.expect('network', 'data')).payload.id, 'Hello() OUT -> IN World()');
  });

  it('network:edges selects the edges whose packets are reported', async () => {
    await open();
    await c.request('graph', 'clear', { id: 'g' });
    for (const [id, component] of [['a', 'Repeat'], ['b', 'Uppercase'], ['d', 'Drop']]) await c.request('graph', 'addnode', { id, component, graph: 'g' });
    await c.request('graph', 'addedge', { src: { node: 'a', port: 'out' }, tgt: { node: 'b', port: 'in' }, graph: 'g' });
    await c.request('graph', 'addedge', { src: { node: 'b', port: 'out' }, tgt: { node: 'd', port: 'in' }, graph: 'g' });
    await c.request('graph', 'addinport', { public: 'in', node: 'a', port: 'in', graph: 'g' });
    const selection = { graph: 'g', edges: [{ src: { node: 'b', port: 'out' }, tgt: { node: 'd', port: 'in' } }] };
    assert.deepEqual((await c.request('network', 'edges', selection)).payload, selection);
    await h.participant(Repeat, 'a');
    await h.participant(Uppercase, 'b');
    await h.participant(Drop, 'd');
    await c.request('network', 'start', { graph: 'g' }, 'started');
    await c.request('runtime', 'packet', { graph: 'g', port: 'in', event: 'data', payload: 'x' }, 'packetsent');
    const data = await c.expect('network', 'data');
    assert.deepEqual([data.payload.id, data.payload.data], ['b() OUT -> IN d()', 'X']);
    assert.deepEqual(c.all('network', 'data').map((m) => m.payload.id), ['b() OUT -> IN d()']);
  });

  it('exported ports: runtime:ports, runtime:packet in (packetsent) and out; errors for a stopped network or an unknown port', async () => {
    await open();
    await c.request('graph', 'clear', { id: 'fixture.x' });
    await c.request('graph', 'addnode', { id: 'up', component: 'Uppercase', graph: 'fixture.x' });
    await c.request('graph', 'addnode', { id: 'rep', component: 'Repeat', graph: 'fixture.x' });
    await c.request('graph', 'addedge', { src: { node: 'up', port: 'out' }, tgt: { node: 'rep', port: 'in' }, graph: 'fixture.x' });
    await c.request('graph', 'addinport', { public: 'in', node: 'up', port: 'in', graph: 'fixture.x' });
    await c.request('graph', 'addoutport', { public: 'out', node: 'rep', port: 'out', graph: 'fixture.x' });
    const ports = await c.expect('runtime', 'ports', { match: (m) => m.payload.outPorts.length === 1 });
    assert.equal(ports.payload.graph, 'fixture.x');
    assert.deepEqual(ports.payload.inPorts.map((p: { id: string; type: string }) => [p.id, p.type]), [['in', 'any']]);
    assert.deepEqual(ports.payload.outPorts.map((p: { id: string; type: string }) => [p.id, p.type]), [['out', 'any']]);
    c.send('runtime', 'packet', { graph: 'fixture.x', port: 'in', event: 'data', payload: 'early' });
    assert.match((await c.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: graph 'fixture.x' is not running/);
    await c.request('network', 'start', { graph: 'fixture.x' }, 'started');
    // The participants come after start: the packet waits for them.
    c.send('runtime', 'packet', { graph: 'fixture.x', port: 'in', event: 'data', payload: 'hello' });
    await h.participant(Uppercase, 'up');
    await h.participant(Repeat, 'rep');
    assert.deepEqual((await c.expect('runtime', 'packetsent')).payload, { graph: 'fixture.x', port: 'in', event: 'data', payload: 'hello' });
    assert.deepEqual((await c.expect('runtime', 'packet')).payload, { port: 'out', event: 'data', graph: 'fixture.x', payload: 'HELLO' });
    await c.request('runtime', 'packet', { graph: 'fixture.x', port: 'in', event: 'begingroup', payload: 'g' }, 'packetsent');
    c.send('runtime', 'packet', { graph: 'fixture.x', port: 'nope', event: 'data', payload: 1 });
    assert.match((await c.expect('runtime', 'error')).payload.message, /has no exported inport 'nope'; it has: in/);
    assert.equal(c.all('runtime', 'packet').length, 1);
  });

  it('runtime:packet to a participant that never comes: a timeout error naming it', async () => {
    await open({ runtime: { packetTimeoutMs: 300 } });
    await c.request('graph', 'clear', { id: 'g' });
    await c.request('graph', 'addnode', { id: 'ghost', component: 'Repeat', graph: 'g' });
    await c.request('graph', 'addinport', { public: 'in', node: 'ghost', port: 'in', graph: 'g' });
    await c.request('network', 'start', { graph: 'g' }, 'started');
    c.send('runtime', 'packet', { graph: 'g', port: 'in', event: 'data', payload: 1 });
    assert.match((await c.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_PARTICIPANT_TIMEOUT: No discovery message from 'ghost'/);
  });

  it('a participant discovered after the graph was built shows up connected, and gets its IIP', async () => {
    await open();
    await helloWorld('late');
    await c.request('network', 'start', { graph: 'late' }, 'started');
    assert.deepEqual((await c.request('network', 'getstatus', { graph: 'late' }, 'status')).payload, { graph: 'late', running: true, started: true });
    await h.participant(Drop, 'World');
    await h.participant(Repeat, 'Hello');
    assert.match((await c.expect('network', 'output', { match: (m) => /Hello/.test(m.payload.message) })).payload.message, /participant Hello \(Repeat\) is up/);
    assert.deepEqual((await c.expect('network', 'icon')).payload, { id: 'Hello', icon: 'file-word-o', graph: 'late' });
    assert.equal((await c.expect('network', 'connect')).payload.id, 'Hello() OUT -> IN World()');
    assert.equal((await c.expect('network', 'data')).payload.id, 'DATA -> IN Hello()');
    assert.equal((await c.expect('network', 'data')).payload.id, 'Hello() OUT -> IN World()');
    await waitFor(() => !h.runtime.live.running, 'running: false once the IIP went out');
  });

  it('a participant that stops heartbeating is reported expired (network:error), and connected again when back', async () => {
    const clock = new FakeClock(Date.now());
    await open({ clock });
    await helloWorld('exp');
    await h.participant(Repeat, 'Hello', { heartbeat: 1 });
    await h.participant(Drop, 'World', { heartbeat: 1 });
    await c.request('network', 'start', { graph: 'exp' }, 'started');
    await c.expect('network', 'connect');
    clock.advance(4000);
    const err = await c.expect('network', 'error');
    assert.equal(err.payload.graph, 'exp');
    assert.match(err.payload.message, /participant (Hello|World) .* expired: no heartbeat/);
    // Heartbeats go on in real time: the participants are back at the next one.
    await c.expect('network', 'output', { match: (m) => /is up/.test(m.payload.message), timeoutMs: 5000 });
  });

  it('network:debug reports what participants send on their error outport as network:processerror', async () => {
    await open();
    await h.participant(Failing, 'f');
    await c.request('graph', 'clear', { id: 'dbg' });
    await c.request('graph', 'addnode', { id: 'f', component: 'Failing', graph: 'dbg' });
    await c.request('graph', 'addinport', { public: 'in', node: 'f', port: 'in', graph: 'dbg' });
    const status = await c.request('network', 'debug', { graph: 'dbg', enable: true }, 'status');
    assert.equal(status.payload.debug, true);
    await c.request('network', 'start', { graph: 'dbg' }, 'started');
    await c.request('runtime', 'packet', { graph: 'dbg', port: 'in', event: 'data', payload: 'boom' }, 'packetsent');
    const pe = await c.expect('network', 'processerror');
    assert.equal(pe.payload.id, 'f');
    assert.equal(pe.payload.graph, 'dbg');
    assert.match(pe.payload.error, /^MSGFLO_ERR_HANDLER: .*cannot handle "boom"/);
  });

  it('trace: start records the packets of every edge (also unselected ones), dump returns a Flowtrace; clear, stop', async () => {
    await open();
    await helloWorld('tr');
    await c.request('network', 'edges', { graph: 'tr', edges: [] });
    assert.deepEqual((await c.request('trace', 'start', { graph: 'tr', buffersize: 100_000 })).payload, { graph: 'tr', buffersize: 100_000 });
    await h.participant(Repeat, 'Hello');
    await h.participant(Drop, 'World');
    await c.request('network', 'start', { graph: 'tr' }, 'started');
    const dumpOf = async () => JSON.parse((await c.request('trace', 'dump', { graph: 'tr', type: 'flowtrace.json' })).payload.flowtrace);
    const trace = await waitFor(async () => {
      const t = await dumpOf();
      return t.events.some((e: { command: string; payload: { id?: string } }) => e.command === 'data' && e.payload.id === 'Hello() OUT -> IN World()') && t;
    }, 'the edge packet in the trace');
    assert.equal(trace.header.main, 'tr');
    assert.deepEqual(Object.keys(trace.header.graphs), ['tr']);
    assert.equal(trace.header.metadata.type, 'msgflo');
    const kinds = trace.events.map((e: { protocol: string; command: string; payload: { id?: string } }) => `${e.protocol}:${e.command}${e.payload.id ? ` ${e.payload.id}` : ''}`);
    assert.ok(kinds.includes('network:started'), kinds.join(', '));
    assert.ok(kinds.includes('network:data DATA -> IN Hello()'), kinds.join(', '));
    // Not selected with network:edges: traced, not sent to clients.
    assert.deepEqual(c.all('network', 'data').map((m) => m.payload.id), ['DATA -> IN Hello()']);
    await c.request('trace', 'clear', { graph: 'tr' });
    assert.deepEqual((await dumpOf()).events, []);
    await c.request('trace', 'stop', { graph: 'tr' });
    await c.request('network', 'stop', { graph: 'tr' }, 'stopped');
    assert.deepEqual((await dumpOf()).events, []);
  });

  it('graph:clear of another graph makes it the live one: the previous network stops', async () => {
    await open();
    await helloWorld('one');
    await h.participant(Repeat, 'Hello');
    await h.participant(Drop, 'World');
    await c.request('network', 'start', { graph: 'one' }, 'started');
    await c.expect('network', 'connect');
    await c.request('graph', 'clear', { id: 'two' });
    await waitFor(() => h.coordinator.bindings().length === 0, 'edges of the previous graph unbound');
    assert.deepEqual((await c.request('network', 'getstatus', { graph: 'one' }, 'status')).payload, { graph: 'one', running: false, started: false });
    const r = await c.request('runtime', 'getruntime', {}, 'runtime');
    assert.equal(r.payload.graph, 'two');
  });
});
