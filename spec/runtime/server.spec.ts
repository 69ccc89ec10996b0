/**
 * The WebSocket server in front of FbpRuntime: sub-protocol noflo, a page for HTTP GETs, frames that wait for
 * the runtime to be ready, bad frames, several clients, a port that is taken.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { flowhubUrl, RuntimeServer } from '../../src/runtime/server.js';
import { FbpClient } from './client.js';
import { SECRET, startHarness, type Harness } from './harness.js';

describe('FBP runtime WebSocket server', function () {
  this.timeout(20_000);
  let h: Harness | undefined;
  let server: RuntimeServer;
  const clients: FbpClient[] = [];

  beforeEach(() => {
    server = new RuntimeServer();
    clients.length = 0;
  });
  afterEach(async () => {
    const problems = clients.flatMap((c) => c.problems);
    for (const c of clients) await c.close();
    await server.close();
    await h?.close();
    h = undefined;
    assert.deepEqual(problems, []);
  });
  const connect = async (url: string, secret = SECRET, options: { protocol?: string | null } = {}) => {
    const c = await FbpClient.connect(url, secret, options);
    clients.push(c);
    return c;
  };

  it('listens on 127.0.0.1 and a free port, speaks the noflo sub-protocol (and none), answers GET with a page', async () => {
    h = await startHarness();
    const address = await server.listen({ port: 0 });
    server.attach(h.runtime);
    assert.equal(address.host, '127.0.0.1');
    assert.match(address.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    const c = await connect(address.url);
    assert.deepEqual((await c.request('runtime', 'getruntime', {}, 'runtime')).payload.capabilities.includes('protocol:graph'), true);
    const plain = await connect(address.url, SECRET, { protocol: null });
    await plain.request('runtime', 'getruntime', {}, 'runtime');
    const page = await fetch(`http://127.0.0.1:${address.port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /FBP runtime/);
  });

  it('frames sent before the runtime is ready are handled once it is, in order', async () => {
    const address = await server.listen({ port: 0 });
    const c = await connect(address.url);
    c.send('graph', 'clear', { id: 'early' });
    c.send('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'early' });
    h = await startHarness();
    server.attach(h.runtime);
    await c.expect('graph', 'clear');
    assert.equal((await c.expect('graph', 'addnode')).payload.id, 'a');
  });

  it('bad frames get an error; the connection stays up; another client is not disturbed; a leaving client is forgotten', async () => {
    h = await startHarness();
    const address = await server.listen({ port: 0 });
    server.attach(h.runtime);
    const bad = await connect(address.url);
    const good = await connect(address.url);
    bad.sendRaw('{{{');
    assert.match((await bad.expect('runtime', 'error')).payload.message, /MSGFLO_ERR_PROTOCOL: frame is not JSON/);
    bad.sendRaw(Buffer.from([0xff, 0xfe, 0x00]).toString('latin1'));
    await bad.expect('runtime', 'error');
    await bad.request('runtime', 'getruntime', {}, 'runtime');
    await good.request('graph', 'clear', { id: 'g' });
    await bad.expect('graph', 'clear');
    await bad.close();
    await good.request('graph', 'addnode', { id: 'a', component: 'core/Repeat', graph: 'g' });
    assert.equal(bad.all('graph', 'addnode').length, 0);
  });

  it('a taken port: the default one falls back to a free port; an explicit one is an error with a code', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const fallback = await server.listen({ port: taken, fallbackToFreePort: true });
      assert.notEqual(fallback.port, taken);
      const other = new RuntimeServer();
      await assert.rejects(other.listen({ port: taken }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MSGFLO_ERR_RUNTIME_LISTEN');
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${taken}.*EADDRINUSE[\\s\\S]*--port`));
        return true;
      });
      await other.close();
    } finally {
      blocker.close();
    }
  });

  it('builds the Flowhub live URL with address, id and secret, URL-encoded', () => {
    const url = flowhubUrl({ address: 'ws://127.0.0.1:3569', id: '6bd4d5e5-52ac-4e6b-a2c2-0ef5f3a8d1b1', secret: 'a b&c' });
    assert.equal(
      url,
      'https://app.flowhub.io#runtime/endpoint?protocol=websocket&address=ws%3A%2F%2F127.0.0.1%3A3569&id=6bd4d5e5-52ac-4e6b-a2c2-0ef5f3a8d1b1&secret=a+b%26c',
    );
    assert.match(flowhubUrl({ ide: 'http://localhost:9999/', address: 'ws://h:1', id: 'x' }), /^http:\/\/localhost:9999#runtime\/endpoint\?protocol=websocket&address=ws%3A%2F%2Fh%3A1&id=x$/);
  });
});
