/**
 * The Network: launching and supervising a graph's processes (what msgflo, msgflo-setup and the FBP runtime share),
 * its one event stream and its wording, and its lifetime (stop, closed(), await using).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { loadLibrary } from '../../src/coordinator/library.js';
import { type Network, startNetwork } from '../../src/coordinator/network.js';
import { type NetworkEvent, describeNetworkEvent, describeProcessEvent } from '../../src/coordinator/network-events.js';
import { ErrorCodes, MsgfloError } from '../../src/errors.js';
import { parseFbp } from '../../src/graph/index.js';
import { connectTransport } from '../../src/transport/index.js';
import { uniqueName } from '../helpers/brokers.js';
import { processAlive } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

/** A process that runs until stopped, and says which role it is. */
const SLEEPER = `'${process.execPath}' -e 'console.log("up " + process.argv[1]); setInterval(() => {}, 1000)' #ROLE`;

async function library() {
  return loadLibrary({ cwd: process.cwd(), componentDir: 'no-participant-files', config: { msgflo: { components: { Sleeper: SLEEPER, Other: SLEEPER } } } });
}

/** Whether nothing listens on 127.0.0.1:port. */
function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

function pidOf(events: NetworkEvent[], role: string): number | undefined {
  const started = events.filter((e) => e.type === 'started' && e.role === role);
  const last = started.at(-1);
  return last && last.type === 'started' ? last.pid : undefined;
}

describe('Network: launching a graph\'s processes', function () {
  this.timeout(15_000);
  let network: Network;
  let events: NetworkEvent[];
  let out: string;

  beforeEach(async () => {
    events = [];
    out = '';
    const write = { write: (t: string) => (out += t) };
    network = await startNetwork({
      broker: `direct://${uniqueName('net')}`,
      library: await library(),
      launch: { stdout: write, stderr: write, restart: false, killTimeoutMs: 1000 },
      onEvent: (e) => events.push(e),
    });
  });
  afterEach(() => network.stop());

  it('starts a process per participant node, with its role; stops those of nodes a new graph no longer has', async () => {
    network.launch(parseFbp(`a(Sleeper) OUT -> IN b(Sleeper)\nb OUT -> IN r(msgflo/RoundRobin)`));
    await waitFor(() => out.includes('a | up a') && out.includes('b | up b'), 'both processes up');
    assert.deepEqual(network.launchedRoles().sort(), ['a', 'b'], 'no process for the routing node');
    const b = pidOf(events, 'b')!;
    network.launch(parseFbp(`a(Sleeper)`));
    assert.deepEqual(network.launchedRoles(), ['a']);
    await waitFor(() => !processAlive(b), 'b stopped');
    assert.ok(processAlive(pidOf(events, 'a')!), 'a goes on running');
    // Stopped on purpose: no line for it.
    const exited = events.find((e) => e.type === 'exited' && e.role === 'b');
    assert.ok(exited && describeNetworkEvent(exited) === undefined);
  });

  it('restarts a node whose component changed', async () => {
    network.launch(parseFbp(`a(Sleeper)`));
    await waitFor(() => pidOf(events, 'a'), 'a started');
    const first = pidOf(events, 'a')!;
    network.launch(parseFbp(`a(Other)`));
    await waitFor(() => pidOf(events, 'a') !== first, 'a started again');
    await waitFor(() => !processAlive(first), 'the first process gone');
  });

  it('roles: a prefix, --only and --ignore', async () => {
    network.launch(parseFbp(`a(Sleeper) OUT -> IN b(Sleeper)\nb OUT -> IN c(Sleeper)`), { role: (n) => `p-${n}`, only: ['a', 'b'], ignore: ['b'] });
    await waitFor(() => out.includes('p-a | up p-a'), 'p-a up');
    assert.deepEqual(network.launchedRoles(), ['p-a']);
  });

  it('an unknown component: one unlaunchable event per node (msgflo), or UnknownComponentError before anything starts (strict)', async () => {
    const graph = parseFbp(`a(Sleeper) OUT -> IN x(Nope)`);
    assert.throws(
      () => network.launch(graph, { strict: true }),
      (err: unknown) => err instanceof MsgfloError && err.code === ErrorCodes.UNKNOWN_COMPONENT && /Unknown component 'Nope' \(used by node 'x'\)/.test(err.message),
    );
    assert.deepEqual(network.launchedRoles(), [], 'nothing started');
    network.launch(graph);
    network.launch(graph);
    const unlaunchable = events.filter((e) => e.type === 'unlaunchable');
    assert.equal(unlaunchable.length, 1);
    assert.equal(
      describeNetworkEvent(unlaunchable[0]!),
      "no command for component 'Nope' (node 'x') in the library; waiting for it to announce itself. Known components: Other, Sleeper",
    );
    assert.deepEqual(network.launchedRoles(), ['a']);
  });

  it('run(): launches and hands the graph to the coordinator', async () => {
    const graph = parseFbp(`a(Sleeper) OUT -> IN b(Sleeper)`);
    await network.run(graph);
    assert.equal(network.coordinator.getGraph(), graph);
    assert.deepEqual(network.launchedRoles().sort(), ['a', 'b']);
  });

  it('stop() stops every process it started, then closes', async () => {
    network.launch(parseFbp(`a(Sleeper)`));
    await waitFor(() => out.includes('a | up a'), 'a up');
    const pid = pidOf(events, 'a')!;
    await network.stop();
    assert.ok(!processAlive(pid));
    await network.closed();
  });
});

describe('Network: the words of its events', () => {
  it('one wording of process events, with the node when the reader knows the graph by its nodes', () => {
    const exited = { type: 'exited', role: 'p-rep', code: null, signal: 'SIGKILL', expected: false } as const;
    assert.equal(describeProcessEvent(exited), 'p-rep exited unexpectedly (SIGKILL)');
    assert.equal(describeProcessEvent(exited, 'rep'), "participant process p-rep (node 'rep') exited unexpectedly (SIGKILL)");
    assert.equal(describeProcessEvent({ type: 'restarting', role: 'a', inMs: 500, restarts: 1 }), 'restarting a in 500 ms (restart 1)');
    assert.equal(describeProcessEvent({ type: 'started', role: 'a', pid: 7, command: ['x', 'y'] }), 'started a (pid 7): x y');
    assert.equal(describeProcessEvent({ type: 'process-error', role: 'a', error: new Error('boom') }), 'a: boom');
  });
});

describe('Network and Coordinator: lifetime', function () {
  this.timeout(15_000);

  it('Network: closed() resolves once stop() is done; await using stops it; a given transport stays open', async () => {
    const transport = await connectTransport(`direct://${uniqueName('life')}`);
    let network: Network | undefined;
    let closed = false;
    {
      await using n = await startNetwork({ transport, library: await library() });
      network = n;
      void n.closed().then(() => (closed = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(closed, false, 'not closed while running');
    }
    await network.closed();
    assert.equal(closed, true);
    const queue = uniqueName('q');
    await transport.createQueue('inqueue', queue);
    await transport.send('inqueue', queue, 1).then(
      () => {},
      (err: unknown) => assert.fail(`the caller's transport was closed: ${String(err)}`),
    );
    await transport.close();
    await network.stop(); // again: nothing more happens
  });

  it('Network on the embedded broker: await using closes the broker it started', async () => {
    let port = 0;
    {
      await using network = await startNetwork({ library: await library() });
      port = Number(new URL(network.broker).port);
      assert.ok(port > 0);
    }
    assert.equal(await refused(port), true, 'the embedded broker still listens');
  });

  it('Network: a start that fails stops what it had started (the embedded broker) and throws', async () => {
    let port = 0;
    const failing = startNetwork({
      library: await library(),
      connect: (url) => {
        port = Number(new URL(url).port);
        return Promise.reject(new Error('no connection today'));
      },
    });
    await assert.rejects(failing, /no connection today/);
    assert.ok(port > 0);
    assert.equal(await refused(port), true, 'the embedded broker still listens');
  });

  it('Coordinator: closed() resolves once stop() is done; await using stops it', async () => {
    const transport = await connectTransport(`direct://${uniqueName('life')}`);
    let coordinator: Coordinator | undefined;
    {
      await using c = new Coordinator({ transport });
      coordinator = c;
      await c.start();
    }
    await coordinator.closed();
    await coordinator.stop(); // idempotent
    await transport.close();
  });
});
