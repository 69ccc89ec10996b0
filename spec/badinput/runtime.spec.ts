/**
 * Bad input: malformed FBP runtime protocol frames sent over WebSocket to a real `msgflo` runtime (the embedded
 * broker): text that is not JSON, binary garbage, JSON that is not a message, unknown sub-protocols and commands,
 * wrong secrets, payloads of the wrong type, graph commands without a graph. Each must get exactly one error reply
 * (`<protocol>:error`, coded MSGFLO_ERR_PROTOCOL / MSGFLO_ERR_RUNTIME_SECRET, or the exact texts clients look for
 * when a graph is missing), the connection and the process must stay up, a second client's valid requests must all
 * be answered, and a control stream through a graph edge must arrive whole.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import { uniqueName } from '../helpers/brokers.js';
import { startCli, stopAllClis } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { Rng, SEED, announceSeed, mutateText, randomJson, tally } from './generate.js';

const COUNT = 1000;
const SECRET = 'badinput-secret';
/** Commands of the protocol (fbp-protocol 0.8 inputs); one the runtime lacks is refused as unknown, also coded. */
const COMMANDS: Record<string, string[]> = {
  runtime: ['packet'],
  graph: ['clear', 'addnode', 'removenode', 'renamenode', 'changenode', 'addedge', 'removeedge', 'changeedge', 'addinitial', 'removeinitial', 'addinport', 'removeinport', 'renameinport', 'addoutport', 'removeoutport', 'renameoutport', 'addgroup', 'removegroup', 'renamegroup', 'changegroup'],
  network: ['start', 'stop', 'getstatus', 'edges', 'debug'],
  component: ['list', 'getsource', 'source'],
  trace: ['start', 'stop', 'dump', 'clear'],
};
const PROTOCOLS = Object.keys(COMMANDS);

interface Frame {
  data: string | Buffer;
  /** requestId of a frame that is a message object: its reply carries it. */
  id?: string;
  binary: boolean;
  kind: string;
  /** What the refusal must say: a code, or an exact text. */
  expect: RegExp;
}

const CODED_PROTOCOL = /^MSGFLO_ERR_PROTOCOL: /;

function frame(rng: Rng, i: number): Frame {
  const text = (v: unknown, kind: string, expect: RegExp): Frame => ({ data: JSON.stringify(v), binary: false, kind, expect });
  // A message object with string protocol and command: the runtime answers with our requestId.
  const message = (m: Record<string, unknown>, kind: string, expect: RegExp): Frame => {
    const id = `f${i}`;
    return { data: JSON.stringify({ ...m, requestId: id }), binary: false, kind, expect, id };
  };
  const kind = rng.pick(['not-json', 'binary', 'not-object', 'bad-envelope', 'unknown-protocol', 'wrong-secret', 'unknown-command', 'payload-type', 'no-graph'] as const);
  const protocol = rng.pick(PROTOCOLS);
  const command = rng.pick(COMMANDS[protocol]!);
  switch (kind) {
    case 'not-json':
      for (;;) {
        const t = mutateText(rng, JSON.stringify({ protocol, command, payload: { secret: SECRET } }));
        try {
          JSON.parse(t);
        } catch {
          return { data: t, binary: false, kind, expect: CODED_PROTOCOL };
        }
      }
    case 'binary':
      return { data: Buffer.concat([Buffer.from([0xff, 0xfe]), rng.bytes(rng.int(0, 200))]), binary: true, kind, expect: CODED_PROTOCOL };
    case 'not-object':
      return text(rng.pick([null, 0, 'graph', true, [], [{ protocol, command }], 1e308]), kind, CODED_PROTOCOL);
    case 'bad-envelope': {
      const m: Record<string, unknown> = { protocol, command, payload: {}, secret: SECRET };
      if (rng.chance(0.5)) delete m[rng.pick(['protocol', 'command'])];
      else m[rng.pick(['protocol', 'command'])] = rng.pick([null, 0, true, [], {}, ['graph']]);
      return text(m, kind, CODED_PROTOCOL);
    }
    case 'unknown-protocol':
      return message({ protocol: rng.pick(['', 'Graph', 'runtimes', '__proto__', 'constructor', 'toString', 'hasOwnProperty', `p${rng.int(0, 999)}`]), command, payload: {}, secret: SECRET }, kind, CODED_PROTOCOL);
    case 'wrong-secret': {
      const m: Record<string, unknown> = { protocol, command, payload: { graph: 'main' } };
      if (rng.chance(0.5)) m.secret = rng.pick(['', 'wrong', `${SECRET} `, SECRET.toUpperCase(), 0, null, [SECRET], { secret: SECRET }]);
      return message(m, kind, /^MSGFLO_ERR_RUNTIME_SECRET: /);
    }
    case 'unknown-command':
      return message({ protocol, command: rng.pick(['', 'getRuntime', 'addNode', '__proto__', 'constructor', 'toString', `c${rng.int(0, 999)}`]), payload: {}, secret: SECRET }, kind, CODED_PROTOCOL);
    case 'payload-type':
      // The secret at the top level (accepted there too), the payload not an object.
      return message({ protocol, command, payload: rng.pick([null, 0, 'main', true, [], [{ graph: 'main' }]]), secret: SECRET }, kind, CODED_PROTOCOL);
    case 'no-graph': {
      const payload: Record<string, unknown> = { secret: SECRET, id: 'n', component: 'Repeat' };
      if (rng.chance(0.3)) payload.x = randomJson(rng, 2);
      const graph = rng.chance(0.5) ? undefined : `nope${rng.int(0, 999)}`;
      if (graph !== undefined) payload.graph = graph;
      const cmd = rng.pick(COMMANDS.graph!.filter((c) => c !== 'clear'));
      return message({ protocol: 'graph', command: cmd, payload }, kind, graph === undefined ? /^No graph specified$/ : /^Requested graph not found$/);
    }
  }
}

interface Reply {
  protocol: string;
  command: string;
  responseTo?: string;
  payload: { message?: string } & Record<string, unknown>;
}

async function client(url: string): Promise<{ ws: WebSocket; replies: Reply[] }> {
  const ws = new WebSocket(url, 'noflo');
  const replies: Reply[] = [];
  ws.on('message', (data) => replies.push(JSON.parse(String(data)) as Reply));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, replies };
}

describe(`bad input: ${COUNT} malformed FBP runtime protocol frames to a running msgflo`, function () {
  this.timeout(60_000);
  let transport: Transport | undefined;
  const sockets: WebSocket[] = [];
  before(() => announceSeed());
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await transport?.close().catch(() => {});
    await stopAllClis('SIGTERM');
  });

  it('answers each with one coded error, stays up, and valid requests and a control stream beside them all succeed', async () => {
    const rng = new Rng(SEED, 'runtime');
    const prefix = uniqueName('br');
    const [ctl, ctl2] = [`${prefix}ctl`, `${prefix}ctl2`];
    const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-badinput-'));
    const graph = path.join(dir, 'control.fbp');
    writeFileSync(graph, `${ctl}(Repeat) OUT -> IN ${ctl2}(Repeat)\n`);
    const msgflo = startCli('msgflo', ['--graph', graph, '--ignore', `${ctl},${ctl2}`, '--forward', '', '--port', '0', '--secret', SECRET], {
      env: { MSGFLO_BROKER: undefined, MSGFLO_RUNTIME_SECRET: undefined },
    });
    const broker = (await msgflo.waitForOutput(/embedded MQTT broker on (mqtt:\/\/\S+)/, { timeoutMs: 20_000 }))[1]!;
    const url = (await msgflo.waitForOutput(/FBP runtime on (ws:\/\/\S+)/, { timeoutMs: 20_000 }))[1]!;
    await msgflo.waitForOutput(/msgflo running/, { timeoutMs: 20_000 });
    const env = { MSGFLO_BROKER: broker };
    startCli('msgflo-participant', ['participants/Repeat.js', '--name', ctl, '--heartbeat', '1'], { env });
    startCli('msgflo-participant', ['participants/Repeat.js', '--name', ctl2, '--heartbeat', '1'], { env });
    await msgflo.waitForOutput(new RegExp(`bound PUBSUB: ${ctl}\\.OUT -> ${ctl2}\\.IN`), { timeoutMs: 20_000 });

    transport = await connectTransport(broker, { name: `${prefix}test` });
    const arrived = new Set<number>();
    await transport.tap('outqueue', `${ctl2}.OUT`, (m) => {
      const n = (m.data as { n?: unknown } | null)?.n;
      if (typeof n === 'number') arrived.add(n);
    });

    const fuzz = await client(url);
    const good = await client(url);
    sockets.push(fuzz.ws, good.ws);
    const frames: Frame[] = [];
    let valid = 0;
    let controls = 0;
    for (let i = 0; i < COUNT; i++) {
      const f = frame(rng, i);
      frames.push(f);
      fuzz.ws.send(f.data, { binary: f.binary });
      if (i % 20 === 0) {
        good.ws.send(JSON.stringify({ protocol: 'runtime', command: 'getruntime', payload: { secret: SECRET } }));
        valid++;
      }
      if (i % 5 === 0) await transport.send('inqueue', `${ctl}.IN`, { n: controls++ });
      // Let replies flow now and then (no unbounded buffering in either direction).
      if (i % 50 === 49) await waitFor(() => fuzz.replies.length >= i - 100, 'replies to keep up', 20_000, 10);
    }
    // Replies to message objects carry their requestId (as responseTo); the rest are runtime:error without one, in
    // order. What else arrives are broadcasts to authenticated clients (network:data of the control edge…).
    const ids = new Set(frames.flatMap((f) => (f.id ? [f.id] : [])));
    const replies = () => fuzz.replies.filter((r) => (r.responseTo !== undefined && ids.has(r.responseTo)) || (r.responseTo === undefined && r.protocol === 'runtime' && r.command === 'error'));
    await waitFor(() => replies().length >= COUNT, `${COUNT} error replies (seed ${SEED})`, 30_000, 50).catch(() => undefined);
    await waitFor(() => good.replies.filter((r) => r.command === 'runtime').length >= valid, 'the valid requests answered', 10_000, 50).catch(() => undefined);
    await waitFor(() => controls > 0 && [...Array(controls).keys()].every((n) => arrived.has(n)), 'the control stream', 20_000, 50).catch(() => undefined);

    const got = replies();
    process.stdout.write(`      runtime: ${got.length} replies to ${COUNT} frames ${JSON.stringify(tally(frames.map((f) => f.kind)))}\n`);
    const notErrors = got.filter((r) => r.command !== 'error');
    assert.deepEqual(notErrors.map((r) => `${r.protocol}:${r.command} ${r.responseTo}`), [], 'replies other than errors to malformed frames');
    const withoutId = new Set(frames.filter((f) => f.id && !got.some((r) => r.responseTo === f.id)).map((f) => f.kind));
    assert.equal(got.length, COUNT, `one reply per frame (seed ${SEED}); unanswered kinds: ${[...withoutId].join(', ')}; all replies: ${JSON.stringify(tally(fuzz.replies.map((r) => `${r.protocol}:${r.command}${r.responseTo === undefined ? '' : ' (id)'}`)))}`);
    const byId = new Map(got.filter((r) => r.responseTo !== undefined).map((r) => [r.responseTo!, r]));
    const anonymous = got.filter((r) => r.responseTo === undefined);
    let next = 0;
    const paired = frames.map((f) => ({ f, r: f.id ? byId.get(f.id) : anonymous[next++] }));
    const mismatches = paired
      .filter(({ f, r }) => !r || !f.expect.test(String(r.payload.message)))
      .slice(0, 10)
      .map(({ f, r }) => `${f.kind} ${JSON.stringify(String(f.data).slice(0, 200))} → ${r ? `${r.protocol}:${r.command} ${JSON.stringify(r.payload.message)}` : 'no reply'}`);
    assert.deepEqual(mismatches, [], `refusals without the expected error (seed ${SEED})`);

    const answered = good.replies.filter((r) => r.command === 'runtime');
    assert.equal(answered.length, valid, 'valid requests of the second client answered');
    assert.ok(answered.every((r) => Array.isArray(r.payload.capabilities) && (r.payload.capabilities as unknown[]).length > 0), 'with capabilities');
    assert.deepEqual([...Array(controls).keys()].filter((n) => !arrived.has(n)), [], 'control messages lost');

    // The fuzzing connection itself still works, and so does the process.
    fuzz.ws.send(JSON.stringify({ protocol: 'runtime', command: 'getruntime', payload: { secret: SECRET } }));
    await waitFor(() => fuzz.replies.some((r) => r.protocol === 'runtime' && r.command === 'runtime'), 'getruntime on the fuzzed connection', 10_000);
    assert.equal(msgflo.done, false, `msgflo exited:\n${msgflo.stderr}`);
    const stopped = await msgflo.stop('SIGTERM', 10_000);
    assert.equal(stopped.code, 0, stopped.stderr);
  });
});
