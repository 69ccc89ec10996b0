/**
 * The FBP runtime protocol, handled in-process (FbpRuntime.handle) on the in-memory broker with real
 * participants: secret, bad input, every graph command, components. Every frame both ways is checked against the
 * fbp-protocol schemas by the test client.
 */
import assert from 'node:assert/strict';
import { FbpClient } from './client.js';
import { Drop, Repeat, SECRET, startHarness, type Harness } from './harness.js';

describe('FBP runtime protocol (in-process)', function () {
  this.timeout(20_000);
  let h: Harness;
  let c: FbpClient;
  const clients: FbpClient[] = [];
  const client = (secret?: string) => {
    const x = h.client(secret);
    clients.push(x);
    return x;
  };

  beforeEach(async () => {
    h = await startHarness();
    clients.length = 0;
    c = client();
  });
  afterEach(async () => {
    const problems = clients.flatMap((x) => x.problems);
    await h.close();
    assert.deepEqual(problems, [], 'frames that break the fbp-protocol schemas');
    assert.equal(h.runtime.invalidOutputs, 0, "the runtime's own output check failed");
  });

  describe('runtime:getruntime and the secret', () => {
    it('describes the runtime and what the client may do', async () => {
      const r = await c.request('runtime', 'getruntime', {}, 'runtime');
      assert.equal(r.payload.type, 'msgflo');
      assert.equal(r.payload.version, '0.8');
      assert.equal(r.payload.id, h.runtime.id);
      for (const cap of ['protocol:runtime', 'protocol:graph', 'protocol:component', 'protocol:network', 'protocol:trace', 'component:getsource', 'network:data']) {
        assert.ok(r.payload.capabilities.includes(cap), cap);
      }
      assert.ok(!r.payload.capabilities.includes('component:setsource'), 'setsource is not offered');
      assert.deepEqual(r.payload.allCapabilities, r.payload.capabilities);
    });

    it('without the secret: no capabilities and an error; nothing changes', async () => {
      const anon = client('wrong');
      anon.send('runtime', 'getruntime', {});
      const r = await anon.expect('runtime', 'runtime');
      assert.deepEqual(r.payload.capabilities, []);
      assert.ok(r.payload.allCapabilities.includes('protocol:graph'));
      assert.match((await anon.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_RUNTIME_SECRET: /);
      anon.send('graph', 'clear', { id: 'g' });
      assert.match((await anon.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_RUNTIME_SECRET: /);
      anon.send('graph', 'clear', { id: 'g' }, { secret: false });
      assert.match((await anon.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_RUNTIME_SECRET: /);
      assert.equal(h.runtime.graphs.size, 0);
      // A client without the secret gets no broadcasts either.
      await c.request('graph', 'clear', { id: 'g2' });
      c.send('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'g2' });
      await c.expect('graph', 'addnode');
      assert.equal(anon.all('graph', 'addnode').length, 0);
    });

    it('accepts the secret in payload.secret (fbp-client) and never sends it back', async () => {
      c.send('graph', 'clear', { id: 'legacy', name: 'L' }, { legacySecret: true });
      const r = await c.expect('graph', 'clear');
      assert.deepEqual(r.payload, { id: 'legacy', name: 'L' });
    });

    it('answers a request with responseTo = its requestId', async () => {
      c.send('runtime', 'getruntime', {}, { requestId: 'req-1' });
      const r = await c.expect('runtime', 'runtime');
      assert.equal(r.responseTo, 'req-1');
    });
  });

  describe('bad input: an error reply, and the runtime keeps serving', () => {
    it('a frame that is not JSON, not an object, or without protocol/command', async () => {
      c.sendRaw('this is { not json');
      assert.match((await c.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: frame is not JSON/);
      c.sendRaw('[1,2,3]');
      assert.match((await c.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: a message must be a JSON object/);
      c.sendRaw(JSON.stringify({ protocol: 'graph', payload: {} }));
      assert.match((await c.expect('runtime', 'error')).payload.message, /MSGFLO_ERR_PROTOCOL/);
      await c.request('runtime', 'getruntime', {}, 'runtime');
    });

    it('an unknown sub-protocol or command, or one this runtime does not offer', async () => {
      c.sendRaw(JSON.stringify({ protocol: 'nope', command: 'x', payload: {}, secret: SECRET }));
      assert.match((await c.expect('runtime', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: unknown sub-protocol 'nope'/);
      c.sendRaw(JSON.stringify({ protocol: 'graph', command: 'explode', payload: {}, secret: SECRET }));
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: unknown command graph:explode/);
      c.send('network', 'persist', {});
      assert.match((await c.expect('network', 'error')).payload.message, /network:persist is not supported/);
      c.send('component', 'source', { name: 'X', language: 'javascript', code: 'process.exit()' });
      assert.match((await c.expect('component', 'error')).payload.message, /component:source is not supported/);
    });

    it('a message that breaks its schema (the problems are named)', async () => {
      await c.request('graph', 'clear', { id: 'g' });
      c.sendRaw(JSON.stringify({ protocol: 'graph', command: 'addnode', payload: { id: 7, component: 'core/Repeat', graph: 'g' }, secret: SECRET }));
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_PROTOCOL: invalid graph:addnode: \/payload\/id must be string/);
      c.sendRaw(JSON.stringify({ protocol: 'graph', command: 'addnode', payload: { id: 'a', component: 'core/Repeat', graph: 'g', color: 'red' }, secret: SECRET }));
      assert.match((await c.expect('graph', 'error')).payload.message, /unexpected key 'color'/);
      assert.equal(h.runtime.graphs.get('g')!.nodes.length, 0);
    });

    it("the exact errors for a missing or unknown graph ('No graph specified', 'Requested graph not found')", async () => {
      c.sendRaw(JSON.stringify({ protocol: 'graph', command: 'addnode', payload: { id: 'a', component: 'core/Repeat' }, secret: SECRET }));
      assert.deepEqual((await c.expect('graph', 'error')).payload, { message: 'No graph specified' });
      c.send('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'nope' });
      assert.deepEqual((await c.expect('graph', 'error')).payload, { message: 'Requested graph not found' });
      for (const [protocol, command, payload] of [
        ['network', 'start', { graph: 'nope' }],
        ['network', 'getstatus', { graph: 'nope' }],
        ['trace', 'dump', { graph: 'nope', type: 'flowtrace.json' }],
        ['runtime', 'packet', { graph: 'nope', port: 'in', event: 'data', payload: 1 }],
      ] as const) {
        c.send(protocol, command, payload);
        assert.deepEqual((await c.expect(protocol, 'error')).payload, { message: 'Requested graph not found' }, `${protocol}:${command}`);
      }
    });

    it('a node with an unknown component, an edge to a port or node that does not exist, a duplicate', async () => {
      await c.request('graph', 'clear', { id: 'g' });
      c.send('graph', 'addnode', { id: 'x', component: 'NoSuchThing', graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_UNKNOWN_COMPONENT: Unknown component 'NoSuchThing' \(used by node 'x'\)\. Known components: .*core\/Repeat/);
      await c.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'g' });
      await c.request('graph', 'addnode', { id: 'b', component: 'core/Drop', graph: 'g' });
      c.send('graph', 'addnode', { id: 'a', component: 'core/Drop', graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_GRAPH_INVALID: Node 'a' already exists/);
      c.send('graph', 'addnode', { id: 'has space', component: 'core/Drop', graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /must not be empty or contain whitespace/);
      c.send('graph', 'addedge', { src: { node: 'a', port: 'nope' }, tgt: { node: 'b', port: 'in' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_UNKNOWN_PORT: node 'a' \(core\/Repeat\) has no outport 'nope'\. Known: out, error/);
      c.send('graph', 'addedge', { src: { node: 'a', port: 'out' }, tgt: { node: 'b', port: 'out' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /has no inport 'out'\. Known: in/);
      c.send('graph', 'addedge', { src: { node: 'a', port: 'out' }, tgt: { node: 'ghost', port: 'in' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /node 'ghost' does not exist in graph 'g'/);
      c.send('graph', 'addinitial', { src: { data: 1 }, tgt: { node: 'b', port: 'nope' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /MSGFLO_ERR_UNKNOWN_PORT/);
      c.send('graph', 'removeedge', { src: { node: 'a', port: 'out' }, tgt: { node: 'b', port: 'in' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /does not exist/);
      c.send('graph', 'removeinitial', { tgt: { node: 'b', port: 'in' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /No IIP to b\.in/);
      const doc = h.runtime.graphs.get('g')!;
      assert.deepEqual([doc.nodes.length, doc.edges.length, doc.iips.length], [2, 0, 0]);
    });

    it('an edge that chains a RoundRobin to another routing node is refused (graph rules)', async () => {
      await c.request('graph', 'clear', { id: 'g' });
      await c.request('graph', 'addnode', { id: 'rr', component: 'msgflo/RoundRobin', graph: 'g' });
      await c.request('graph', 'addnode', { id: 'ps', component: 'msgflo/PubSub', graph: 'g' });
      c.send('graph', 'addedge', { src: { node: 'rr', port: 'out' }, tgt: { node: 'ps', port: 'in' }, graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /^MSGFLO_ERR_GRAPH_INVALID: .*connects two routing nodes/);
      assert.equal(h.runtime.graphs.get('g')!.edges.length, 0);
    });
  });

  describe('graph commands', () => {
    it('builds a graph as fbp-test does: echoes, metadata merge, removenode with its edges, removeinitial with its data', async () => {
      // fbp-test sends noflo's baseDir, which the schema does not have: accepted, not echoed.
      c.sendRaw(JSON.stringify({ protocol: 'graph', command: 'clear', payload: { id: 'foo', main: true, name: 'Foo graph', baseDir: '/somewhere' }, secret: SECRET }));
      assert.deepEqual((await c.expect('graph', 'clear')).payload, { id: 'foo', main: true, name: 'Foo graph' });
      assert.deepEqual((await c.request('graph', 'addnode', { id: 'Repeat1', component: 'core/Repeat', metadata: { hello: 'World' }, graph: 'foo' })).payload, {
        id: 'Repeat1',
        component: 'core/Repeat',
        metadata: { hello: 'World' },
        graph: 'foo',
      });
      await c.request('graph', 'addnode', { id: 'Drop1', component: 'core/Drop', metadata: {}, graph: 'foo' });
      const edge = { src: { node: 'Repeat1', port: 'out' }, tgt: { node: 'Drop1', port: 'in' } };
      assert.deepEqual((await c.request('graph', 'addedge', { ...edge, metadata: { route: 5 }, graph: 'foo' })).payload, { ...edge, metadata: { route: 5 }, graph: 'foo' });
      const change = async (metadata: object) => (await c.request('graph', 'changenode', { id: 'Drop1', metadata, graph: 'foo' })).payload.metadata;
      assert.deepEqual(await change({ sort: 1 }), { sort: 1 });
      assert.deepEqual(await change({ tag: 'awesome' }), { sort: 1, tag: 'awesome' });
      assert.deepEqual(await change({}), { sort: 1, tag: 'awesome' });
      assert.deepEqual(await change({ sort: null, tag: null }), {});
      assert.deepEqual((await c.request('graph', 'changeedge', { ...edge, metadata: { route: 1, x: 2 }, graph: 'foo' })).payload.metadata, { route: 1, x: 2 });
      const iip = { src: { data: 'Hello, world!' }, tgt: { node: 'Repeat1', port: 'in' } };
      assert.deepEqual((await c.request('graph', 'addinitial', { ...iip, graph: 'foo' })).payload, { ...iip, metadata: {}, graph: 'foo' });
      await c.request('graph', 'addinport', { public: 'drop', node: 'Drop1', port: 'in', graph: 'foo' });

      c.send('graph', 'removenode', { id: 'Drop1', graph: 'foo' });
      assert.deepEqual((await c.expect('graph', 'removeedge')).payload, { ...edge, graph: 'foo' });
      assert.deepEqual((await c.expect('graph', 'removeinport')).payload, { public: 'drop', graph: 'foo' });
      assert.deepEqual((await c.expect('graph', 'removenode')).payload, { id: 'Drop1', graph: 'foo' });

      c.send('graph', 'removeinitial', { tgt: { node: 'Repeat1', port: 'in' }, graph: 'foo' });
      assert.deepEqual((await c.expect('graph', 'removeinitial')).payload, { ...iip, graph: 'foo' });
      assert.deepEqual((await c.request('graph', 'renamenode', { from: 'Repeat1', to: 'RepeatRenamed', graph: 'foo' })).payload, {
        from: 'Repeat1',
        to: 'RepeatRenamed',
        graph: 'foo',
      });
      assert.deepEqual((await c.request('graph', 'addinport', { public: 'in', node: 'RepeatRenamed', port: 'in', graph: 'foo' })).payload, {
        public: 'in',
        node: 'RepeatRenamed',
        port: 'in',
        graph: 'foo',
      });
      await c.request('graph', 'addoutport', { public: 'out', node: 'RepeatRenamed', port: 'out', graph: 'foo' });
      assert.deepEqual((await c.request('graph', 'removeoutport', { public: 'out', graph: 'foo' })).payload, { public: 'out', graph: 'foo' });
      const doc = h.runtime.graphs.get('foo')!;
      assert.deepEqual(doc.nodes.map((n) => n.id), ['RepeatRenamed']);
      assert.deepEqual(doc.inports.map((p) => [p.public, p.node]), [['in', 'RepeatRenamed']]);
    });

    it('renames follow edges, IIPs, exported ports and groups; exported ports and groups have every command', async () => {
      await c.request('graph', 'clear', { id: 'g' });
      await c.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'g' });
      await c.request('graph', 'addnode', { id: 'b', component: 'Uppercase', graph: 'g' });
      await c.request('graph', 'addedge', { src: { node: 'a', port: 'out' }, tgt: { node: 'b', port: 'in' }, graph: 'g' });
      await c.request('graph', 'addinitial', { src: { data: { n: 1 } }, tgt: { node: 'a', port: 'in' }, graph: 'g' });
      await c.request('graph', 'addinport', { public: 'start', node: 'a', port: 'in', metadata: { x: 1 }, graph: 'g' });
      await c.request('graph', 'addoutport', { public: 'result', node: 'b', port: 'out', graph: 'g' });
      const ports = await c.expect('runtime', 'ports', { match: (m) => m.payload.outPorts.length === 1 });
      assert.deepEqual(ports.payload.inPorts.map((p: { id: string }) => p.id), ['start']);
      await c.request('graph', 'addgroup', { name: 'grp', nodes: ['a', 'b'], metadata: { description: 'both' }, graph: 'g' });
      await c.request('graph', 'renamenode', { from: 'a', to: 'first', graph: 'g' });
      await c.request('graph', 'renameinport', { from: 'start', to: 'begin', graph: 'g' });
      await c.request('graph', 'renameoutport', { from: 'result', to: 'end', graph: 'g' });
      await c.request('graph', 'renamegroup', { from: 'grp', to: 'pair', graph: 'g' });
      assert.deepEqual((await c.request('graph', 'changegroup', { name: 'pair', metadata: { color: 2 }, graph: 'g' })).payload.metadata, { description: 'both', color: 2 });
      const doc = h.runtime.graphs.get('g')!;
      assert.deepEqual(doc.edges[0]!.src, { node: 'first', port: 'out' });
      assert.deepEqual(doc.iips[0]!.tgt, { node: 'first', port: 'in' });
      assert.deepEqual(doc.inports, [{ public: 'begin', node: 'first', port: 'in', metadata: { x: 1 } }]);
      assert.deepEqual(doc.groups, [{ name: 'pair', nodes: ['first', 'b'], metadata: { description: 'both', color: 2 } }]);
      await c.request('graph', 'removeinport', { public: 'begin', graph: 'g' });
      await c.request('graph', 'removegroup', { name: 'pair', graph: 'g' });
      assert.deepEqual([doc.inports.length, doc.groups.length], [0, 0]);
      c.send('graph', 'renamenode', { from: 'first', to: 'b', graph: 'g' });
      assert.match((await c.expect('graph', 'error')).payload.message, /node 'b' already exists/);
    });

    it('tells every client about graph changes', async () => {
      const other = client();
      other.send('runtime', 'getruntime', {});
      await other.expect('runtime', 'runtime');
      await c.request('graph', 'clear', { id: 'shared' });
      await c.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'shared' });
      assert.equal((await other.expect('graph', 'addnode')).payload.id, 'a');
      assert.equal(other.all('graph', 'clear').length, 1);
    });
  });

  describe('component protocol', () => {
    it('lists the library (with ports read from the files), the built-ins, the routing nodes, and announced participants', async () => {
      await h.participant({ ...Drop, component: 'ForeignThing', label: 'runs elsewhere' }, 'foreign1');
      await h.runtime.live.settled();
      c.send('component', 'list', {});
      const ready = await c.expect('component', 'componentsready', { timeoutMs: 15_000 });
      const list = c.all('component', 'component').map((m) => m.payload);
      assert.equal(ready.payload, list.length);
      const byName = new Map(list.map((x) => [x.name, x]));
      for (const name of ['core/Repeat', 'core/Drop', 'Repeat', 'Uppercase', 'Print', 'Ticker', 'msgflo/RoundRobin', 'msgflo/PubSub', 'ForeignThing']) {
        assert.ok(byName.has(name), `${name} listed`);
      }
      const repeat = byName.get('core/Repeat');
      assert.deepEqual(repeat.inPorts.map((p: { id: string }) => p.id), ['in']);
      assert.deepEqual(repeat.outPorts.map((p: { id: string }) => p.id), ['out', 'error']);
      assert.equal(repeat.description, 'Repeats in data without changes');
      assert.deepEqual(byName.get('Ticker').inPorts[0], { id: 'interval', type: 'number', required: false, addressable: false, description: 'milliseconds between messages; 0 pauses' });
      assert.deepEqual(byName.get('msgflo/RoundRobin').outPorts.map((p: { id: string }) => p.id), ['out', 'deadletter']);
      assert.equal(byName.get('ForeignThing').description, 'runs elsewhere');
    });

    it('announces a component when a participant with a new one shows up', async () => {
      c.send('runtime', 'getruntime', {});
      await c.expect('runtime', 'runtime');
      await h.participant({ ...Repeat, component: 'Brandnew' }, 'bn1');
      const m = await c.expect('component', 'component', { match: (x) => x.payload.name === 'Brandnew' });
      assert.deepEqual(m.payload.inPorts.map((p: { id: string }) => p.id), ['in']);
    });

    it('getsource: a participant file, a built-in, an announced participant, a graph; an error for an unknown one', async () => {
      const file = await c.request('component', 'getsource', { name: 'Uppercase' }, 'source');
      assert.equal(file.payload.language, 'typescript');
      assert.match(file.payload.code, /defineParticipant/);
      const builtin = await c.request('component', 'getsource', { name: 'core/Repeat' }, 'source');
      assert.deepEqual([builtin.payload.name, builtin.payload.library, builtin.payload.language], ['Repeat', 'core', 'javascript']);
      await h.participant({ ...Drop, component: 'Sensor' }, 'sensor1');
      await h.runtime.live.settled();
      const foreign = await c.request('component', 'getsource', { name: 'Sensor' }, 'source');
      assert.equal(foreign.payload.language, 'yaml');
      assert.match(foreign.payload.code, /component: Sensor[\s\S]*queue: sensor1\.IN/);
      await c.request('graph', 'clear', { id: 'main' });
      await c.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'main' });
      await c.request('graph', 'addinitial', { src: { data: 42 }, tgt: { node: 'a', port: 'in' }, graph: 'main' });
      const graph = await c.request('component', 'getsource', { name: 'main' }, 'source');
      assert.equal(graph.payload.language, 'json');
      const json = JSON.parse(graph.payload.code);
      assert.deepEqual(json.processes, { a: { component: 'core/Repeat', metadata: {} } });
      assert.deepEqual(json.connections, [{ data: 42, tgt: { process: 'a', port: 'in' } }]);
      c.send('component', 'getsource', { name: 'Nope' });
      assert.match((await c.expect('component', 'error')).payload.message, /^MSGFLO_ERR_UNKNOWN_COMPONENT: Unknown component 'Nope'/);
    });
  });

  it('a client that goes away in the middle of a command: the command completes, other clients are served', async () => {
    const leaving = client();
    await leaving.request('graph', 'clear', { id: 'g' });
    await leaving.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'g' });
    await leaving.request('graph', 'addinport', { public: 'in', node: 'a', port: 'in', graph: 'g' });
    await leaving.request('network', 'start', { graph: 'g' }, 'started');
    // No participant 'a' runs: this packet waits for it; the client leaves meanwhile.
    leaving.send('runtime', 'packet', { graph: 'g', port: 'in', event: 'data', payload: 1 });
    await leaving.close();
    await h.participant(Repeat, 'a');
    const r = await c.request('network', 'getstatus', { graph: 'g' }, 'status');
    assert.equal(r.payload.started, true);
  });

  it('a second runtime-level check: Drop and Repeat definitions match the built-in files', async () => {
    // The in-process participants of these specs stand for participants/Repeat.js and Drop.js.
    const list = await h.runtime.catalog.list();
    const ports = (name: string) => list.find((e) => e.description.name === name)!.description.inPorts.map((p) => p.id);
    assert.deepEqual(ports('core/Repeat'), Repeat.inports.map((p) => p.id));
    assert.deepEqual(ports('core/Drop'), Drop.inports.map((p) => p.id));
  });
});
