/**
 * `msgflo` as an FBP runtime, end to end: the real CLI as a process, its participants as processes, on the
 * embedded broker, RabbitMQ and Mosquitto; a WebSocket client that checks every frame against the schemas.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { processAlive, runCli, startCli, stopAllClis, type CliHandle } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { FbpClient, type Message } from './client.js';

const noBroker = { MSGFLO_BROKER: undefined, MSGFLO_RUNTIME_SECRET: undefined, MSGFLO_RUNTIME_ID: undefined };
const clients: FbpClient[] = [];

/** Start msgflo with a runtime on a free port; resolves with the process, its ws URL and the Flowhub URL. */
async function msgflo(args: string[], env: Record<string, string | undefined> = {}): Promise<{ cli: CliHandle; url: string; live: URL }> {
  const cli = startCli('msgflo', ['--port', '0', '--forward', '', ...args], { env: { ...noBroker, ...env } });
  const [, url] = await cli.waitForOutput(/FBP runtime on (ws:\/\/127\.0\.0\.1:\d+)/);
  const [, live] = await cli.waitForOutput(/Open in Flowhub: (\S+)/);
  await cli.waitForOutput(/msgflo running/, { timeoutMs: 15_000 });
  return { cli, url: url!, live: new URL(live!) };
}

async function connect(url: string, secret: string): Promise<FbpClient> {
  const c = await FbpClient.connect(url, secret);
  clients.push(c);
  return c;
}

async function closeClients(): Promise<void> {
  const problems = clients.flatMap((c) => c.problems);
  for (const c of clients.splice(0)) await c.close();
  assert.deepEqual(problems, [], 'frames that break the fbp-protocol schemas');
}

/** The pid in a "started ROLE (pid N)" network:output. */
async function startedPid(c: FbpClient, role: string): Promise<number> {
  const m = await c.find('network', 'output', { match: (x) => new RegExp(`^started ${role} \\(pid \\d+\\)`).test(x.payload.message), timeoutMs: 10_000 });
  return Number(/\(pid (\d+)\)/.exec(m.payload.message)![1]);
}

describe('msgflo as an FBP runtime (CLI, embedded broker)', function () {
  this.timeout(40_000);
  afterEach(async () => {
    await stopAllClis('SIGTERM');
    await closeClients();
  });

  it('prints the ws address and a Flowhub live URL with address, id and secret; refuses a wrong secret', async () => {
    const id = '0d3e6f5a-3d0a-4f8e-9a53-8e5f3f1b2c44';
    const { url, live } = await msgflo(['--runtime-id', id], { MSGFLO_RUNTIME_SECRET: 'from-env' });
    assert.equal(`${live.origin}${live.pathname}`, 'https://app.flowhub.io/');
    const params = new URLSearchParams(live.hash.replace(/^#runtime\/endpoint\?/, ''));
    assert.deepEqual(Object.fromEntries(params), { protocol: 'websocket', address: url, id, secret: 'from-env' });
    const wrong = await connect(url, 'nope');
    wrong.send('runtime', 'getruntime', {});
    assert.deepEqual((await wrong.expect('runtime', 'runtime')).payload.capabilities, []);
    await wrong.expect('runtime', 'error');
    const right = await connect(url, 'from-env');
    const r = await right.request('runtime', 'getruntime', {}, 'runtime');
    assert.equal(r.payload.id, id);
    assert.ok(r.payload.capabilities.includes('protocol:graph'));
  });

  it('makes up a secret when none is given, and --secret wins over the environment', async () => {
    const { url, live } = await msgflo([]);
    const secret = new URLSearchParams(live.hash.split('?')[1]).get('secret')!;
    assert.ok(secret.length >= 20, secret);
    const c = await connect(url, secret);
    await c.request('runtime', 'getruntime', {}, 'runtime');
    const second = await msgflo(['--secret', 'flag'], { MSGFLO_RUNTIME_SECRET: 'env' });
    assert.equal(new URLSearchParams(second.live.hash.split('?')[1]).get('secret'), 'flag');
  });

  it('bad --port: usage (2); a taken --port: MSGFLO_ERR_RUNTIME_LISTEN (1)', async () => {
    const usage = await runCli('msgflo', ['--port', 'eighty'], { env: noBroker });
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--port must be a port number/);
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const taken = await runCli('msgflo', ['--port', String(port)], { env: noBroker });
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /MSGFLO_ERR_RUNTIME_LISTEN: Cannot listen for the FBP runtime protocol on 127\.0\.0\.1:\d+/);
    } finally {
      blocker.close();
    }
  });

  it('--graph: the graph is live and started; runtime:packet through its exported ports; network:data on its edges', async () => {
    const { url } = await msgflo(['--graph', 'graphs/pipeline.fbp', '--secret', 's']);
    const c = await connect(url, 's');
    const r = await c.request('runtime', 'getruntime', {}, 'runtime');
    assert.equal(r.payload.graph, 'pipeline');
    const ports = await c.expect('runtime', 'ports');
    assert.deepEqual(ports.payload.inPorts.map((p: { id: string }) => p.id), ['in']);
    assert.deepEqual((await c.request('network', 'getstatus', { graph: 'pipeline' }, 'status')).payload.started, true);
    await c.request('runtime', 'packet', { graph: 'pipeline', port: 'in', event: 'data', payload: { msg: 'hello' } }, 'packetsent', 15_000);
    assert.deepEqual((await c.expect('runtime', 'packet', { timeoutMs: 10_000 })).payload, { port: 'out', event: 'data', graph: 'pipeline', payload: { msg: 'HELLO' } });
    const edge = await c.find('network', 'data', { match: (m) => m.payload.id === 'upper() OUT -> IN last()' });
    assert.deepEqual(edge.payload.data, { msg: 'HELLO' });
    const source = await c.request('component', 'getsource', { name: 'pipeline' }, 'source');
    assert.deepEqual(Object.keys(JSON.parse(source.payload.code).processes).sort(), ['first', 'last', 'upper']);
  });

  it('reports a crashed participant (network:error) and its restart; removenode and SIGTERM stop what it started', async () => {
    const { cli, url } = await msgflo(['--secret', 's']);
    const c = await connect(url, 's');
    await c.request('graph', 'clear', { id: 'crash' });
    await c.request('graph', 'addnode', { id: 'rep', component: 'core/Repeat', graph: 'crash' });
    await c.request('graph', 'addnode', { id: 'sink', component: 'core/Drop', graph: 'crash' });
    const pid = await startedPid(c, 'rep');
    const sinkPid = await startedPid(c, 'sink');
    await c.find('network', 'output', { match: (m) => /participant rep \(Repeat\) is up/.test(m.payload.message), timeoutMs: 15_000 });
    c.skipAll();
    process.kill(pid, 'SIGKILL');
    const err = await c.expect('network', 'error', { timeoutMs: 10_000 });
    assert.deepEqual(err.payload, { message: "participant process rep (node 'rep') exited unexpectedly (SIGKILL)", graph: 'crash' });
    await c.expect('network', 'output', { match: (m) => /^restarting rep in \d+ ms/.test(m.payload.message), timeoutMs: 10_000 });
    const again = Number(/\(pid (\d+)\)/.exec((await c.expect('network', 'output', { match: (m) => /^started rep \(pid/.test(m.payload.message), timeoutMs: 10_000 })).payload.message)![1]);
    assert.notEqual(again, pid);
    await c.expect('network', 'output', { match: (m) => /participant rep \(Repeat\) is up/.test(m.payload.message), timeoutMs: 15_000 });
    await c.request('graph', 'removenode', { id: 'sink', graph: 'crash' });
    await waitFor(() => !processAlive(sinkPid), 'the removed node\'s process stopped', 10_000);
    const result = await cli.stop('SIGTERM', 10_000);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!processAlive(again), 'participant left running after SIGTERM');
  });
});

describe('msgflo killed with -9 (CLI, embedded broker)', function () {
  this.timeout(30_000);
  afterEach(() => stopAllClis('SIGTERM'));

  it('the participants it started stop by themselves (no orphans), although their broker is gone', async () => {
    const { cli } = await msgflo(['--graph', 'graphs/pipeline.fbp']);
    await cli.waitForOutput(/\+ participant last /, { timeoutMs: 15_000 });
    const pids = [...cli.stdout.matchAll(/started \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 3);
    cli.kill();
    await cli.exited;
    await waitFor(() => pids.every((p) => !processAlive(p)), `participants ${pids.join(', ')} to exit`, 15_000, 100);
  });
});

for (const [name, brokerUrl] of [
  ['RabbitMQ', AMQP_URL],
  ['Mosquitto', MQTT_URL],
] as const) {
  describe(`msgflo as an FBP runtime on ${name} @broker`, function () {
    this.timeout(40_000);
    let prefix: string;
    before(async function () {
      await requireBroker(this, brokerUrl);
    });
    beforeEach(() => {
      prefix = `${uniqueName('rt')}-`;
    });
    afterEach(async () => {
      await stopAllClis('SIGTERM');
      await closeClients();
      await cleanupRoles(brokerUrl, ['up', 'rep', 'sink'].map((n) => `${prefix}${n}`));
    });

    it('builds a network with the protocol (roles prefixed), runs packets through it, stops and restarts it', async () => {
      const { url } = await msgflo(['--broker', brokerUrl, '--secret', 's', '--role-prefix', prefix]);
      const c = await connect(url, 's');
      const g = 'pipe';
      await c.request('graph', 'clear', { id: g });
      await c.request('graph', 'addnode', { id: 'up', component: 'Uppercase', graph: g });
      await c.request('graph', 'addnode', { id: 'rep', component: 'core/Repeat', graph: g });
      await c.request('graph', 'addnode', { id: 'sink', component: 'core/Drop', graph: g });
      await c.request('graph', 'addedge', { src: { node: 'up', port: 'out' }, tgt: { node: 'rep', port: 'in' }, graph: g });
      await c.request('graph', 'addedge', { src: { node: 'rep', port: 'out' }, tgt: { node: 'sink', port: 'in' }, graph: g });
      await c.request('graph', 'addinitial', { src: { data: 'iip' }, tgt: { node: 'up', port: 'in' }, graph: g });
      await c.request('graph', 'addinport', { public: 'in', node: 'up', port: 'in', graph: g });
      await c.request('graph', 'addoutport', { public: 'out', node: 'rep', port: 'out', graph: g });
      await startedPid(c, `${prefix}up`);
      await c.request('network', 'start', { graph: g }, 'started');
      const seen = (m: Message) => [m.payload.id, m.payload.data];
      // Taps of different edges are different consumers: what they report is ordered per edge, not across edges.
      let mark = c.received.length;
      assert.deepEqual(seen(await c.expect('network', 'data', { timeoutMs: 20_000 })), ['DATA -> IN up()', 'iip']);
      await c.find('network', 'data', { match: (m) => m.payload.id === 'up() OUT -> IN rep()' && m.payload.data === 'IIP', after: mark });
      await c.find('runtime', 'packet', { match: (m) => m.payload.payload === 'IIP', after: mark });
      mark = c.received.length;
      await c.request('runtime', 'packet', { graph: g, port: 'in', event: 'data', payload: ['a', { b: 'c' }] }, 'packetsent', 15_000);
      await c.find('runtime', 'packet', { match: (m) => JSON.stringify(m.payload.payload) === '["A",{"b":"C"}]', after: mark });
      await c.find('network', 'data', { match: (m) => m.payload.id === 'rep() OUT -> IN sink()' && JSON.stringify(m.payload.data) === '["A",{"b":"C"}]', after: mark });

      await c.request('network', 'stop', { graph: g }, 'stopped');
      await c.find('network', 'disconnect', { after: mark });
      c.skipAll();
      mark = c.received.length;
      await c.request('network', 'start', { graph: g }, 'started');
      assert.deepEqual(seen(await c.expect('network', 'data', { timeoutMs: 10_000 })), ['DATA -> IN up()', 'iip']);
      await c.find('runtime', 'packet', { match: (m) => m.payload.payload === 'IIP', after: mark });
    });
  });
}
