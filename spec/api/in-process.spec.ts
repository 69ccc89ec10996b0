/**
 * A library user's program: a coordinator (a Network), an FBP runtime with its WebSocket server, and two
 * participants, all in this one process, with nothing imported from msgflo-ts but its public API (src/index.ts).
 * Run on the in-memory `direct:` broker and on the embedded MQTT broker the network starts when given none.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import {
  FbpRuntime,
  type Network,
  type Participant,
  RuntimeServer,
  defineParticipant,
  parseFbp,
  startNetwork,
  startParticipant,
} from '../../src/index.js';

interface Frame {
  protocol: string;
  command: string;
  payload: Record<string, unknown>;
}

/** A runtime protocol client: every frame it got, and a wait for the first one that matches. */
async function connectClient(url: string, secret: string) {
  const ws = new WebSocket(url, 'noflo');
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Frame);
    for (const w of waiters) w();
  });
  return {
    protocol: ws.protocol,
    send(protocol: string, command: string, payload: Record<string, unknown>) {
      ws.send(JSON.stringify({ protocol, command, payload, secret }));
    },
    expect(what: string, match: (f: Frame) => boolean = () => true, timeoutMs = 10_000): Promise<Frame> {
      const [protocol, command] = what.split(':');
      const find = () => frames.find((f) => f.protocol === protocol && f.command === command && match(f));
      return new Promise((resolve, reject) => {
        const check = () => {
          const f = find();
          if (!f) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(f);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${what} within ${timeoutMs} ms; got ${frames.map((f) => `${f.protocol}:${f.command}`).join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => ws.close(),
  };
}

const Upper = defineParticipant({
  component: 'ApiUpper',
  inports: [{ id: 'in', type: 'string' }],
  outports: [{ id: 'out', type: 'string' }],
  process: (port, data, send) => send('out', String(data).toUpperCase()),
});

for (const setup of [
  { name: 'the in-memory direct: transport', broker: () => `direct://api-${randomUUID()}` },
  { name: 'the embedded MQTT broker (no broker given)', broker: () => undefined },
]) {
  describe(`public API: coordinator, runtime and participants in one process, on ${setup.name}`, function () {
    this.timeout(30_000);

    it('runs a graph between two participants; a runtime client with the secret sees the graph and its packets', async () => {
      const id = randomUUID().slice(0, 8);
      const [up, sink] = [`up${id}`, `sink${id}`];
      const received: unknown[] = [];
      const Collect = defineParticipant({
        component: 'ApiCollect',
        inports: [{ id: 'in', type: 'string' }],
        outports: [],
        process: (port, data) => {
          received.push(data);
        },
      });
      const broker = setup.broker();
      await using network: Network = await startNetwork(broker ? { broker } : {});
      assert.equal(network.embedded === undefined, broker !== undefined);
      const participants: Participant[] = [];
      try {
        participants.push(await startParticipant(Upper, network.broker, { role: up }));
        participants.push(await startParticipant(Collect, network.broker, { role: sink }));
        const secret = randomUUID();
        const runtime = new FbpRuntime({ network, secret });
        const server = new RuntimeServer();
        try {
          const address = await server.listen({ port: 0 });
          server.attach(runtime);
          const graph = parseFbp(`# @name api${id}\nINPORT=${up}.IN:IN\nOUTPORT=${up}.OUT:OUT\n'hello' -> IN ${up}(ApiUpper) OUT -> IN ${sink}(ApiCollect)`);
          runtime.loadGraph(graph, { start: true });

          // Data flows end to end: the IIP through both participants.
          const deadline = Date.now() + 15_000;
          while (!received.includes('HELLO') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual(received, ['HELLO']);

          // A client with the secret sees the live graph, and the packets it sends travel through it.
          const client = await connectClient(address.url, secret);
          try {
            assert.equal(client.protocol, 'noflo');
            client.send('runtime', 'getruntime', {});
            const rt = await client.expect('runtime:runtime');
            assert.equal(rt.payload.graph, `api${id}`);
            assert.ok((rt.payload.capabilities as string[]).includes('protocol:graph'));
            const ports = await client.expect('runtime:ports');
            assert.deepEqual(
              { graph: ports.payload.graph, in: (ports.payload.inPorts as Array<{ id: string }>).map((p) => p.id), out: (ports.payload.outPorts as Array<{ id: string }>).map((p) => p.id) },
              { graph: `api${id}`, in: ['in'], out: ['out'] },
            );
            client.send('network', 'getstatus', { graph: `api${id}` });
            assert.equal((await client.expect('network:status')).payload.started, true);

            client.send('runtime', 'packet', { graph: `api${id}`, port: 'in', event: 'data', payload: 'from the client' });
            const out = await client.expect('runtime:packet', (f) => f.payload.port === 'out');
            assert.equal(out.payload.payload, 'FROM THE CLIENT');
            const edge = await client.expect('network:data', (f) => f.payload.data === 'FROM THE CLIENT');
            assert.equal(edge.payload.id, `${up}() OUT -> IN ${sink}()`);
            const deadline2 = Date.now() + 10_000;
            while (received.length < 2 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 20));
            assert.deepEqual(received, ['HELLO', 'FROM THE CLIENT']);
          } finally {
            client.close();
          }
        } finally {
          await server.close();
          await runtime.close();
        }
      } finally {
        for (const p of participants) await p.stop();
      }
    });
  });
}
