/**
 * Bad input: invalid discovery messages published on `fbp` to a real running `msgflo` coordinator — on RabbitMQ
 * (in a vhost of its own, so no other coordinator sees them) and on MQTT (the embedded broker msgflo starts when
 * no broker is given). Each must be refused with MSGFLO_ERR_DISCOVERY_INVALID (one line each in the
 * coordinator's output), the coordinator must not crash, and a control stream through a graph edge it manages
 * must arrive whole meanwhile; afterwards a new participant is still discovered.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDiscovery } from '../../src/protocol/discovery.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { startCli, stopAllClis, type CliHandle } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { type PrivateVhost, privateVhost, rawPublisher } from './brokers.js';
import { Rng, SEED, announceSeed, mutateText, randomJson, tally } from './generate.js';

const COUNT = 1000;
const CONTROL_EVERY = 5;
const REFUSED = /ignored an invalid discovery message: MSGFLO_ERR_DISCOVERY_INVALID: /g;

function validMessage(rng: Rng, prefix: string, i: number): Record<string, any> {
  const role = `${prefix}fz${i}`;
  return {
    protocol: 'discovery',
    command: 'participant',
    payload: {
      id: `${role}-${i}`,
      role,
      component: 'Fuzz',
      label: 'fuzzed',
      icon: 'bug',
      inports: [{ id: 'in', type: 'any', queue: `${role}.IN` }],
      outports: [{ id: 'out', type: 'any', queue: `${role}.OUT`, hidden: false }],
      heartbeat: rng.pick([1, 5, 27]),
    },
  };
}

const NOT_A_STRING = [null, 0, 1.5, true, [], {}, ['x']];
const NOT_AN_OBJECT = [null, 0, 'payload', true, [], [{}]];
const NOT_AN_ARRAY = [null, 0, 'in', true, {}, { id: 'in' }];

/** One discovery body that is invalid by construction, and what was broken. */
function invalidBody(rng: Rng, prefix: string, i: number): { body: Buffer; kind: string } {
  const m = validMessage(rng, prefix, i);
  const p = m.payload as Record<string, any>;
  // Noise that does not make it valid: extra fields anywhere.
  if (rng.chance(0.3)) m[`x${rng.int(0, 9)}`] = randomJson(rng);
  if (rng.chance(0.3)) p.extra = randomJson(rng);
  const kind = rng.pick([
    'missing-top', 'protocol', 'command', 'payload-type', 'missing-field', 'field-type', 'ports-type', 'port-entry',
    'port-field', 'optional-field', 'root-type', 'truncated', 'random-bytes', 'mutated-text', 'empty', 'bad-utf8',
  ] as const);
  switch (kind) {
    case 'missing-top':
      delete m[rng.pick(['protocol', 'command', 'payload'])];
      break;
    case 'protocol':
      m.protocol = rng.pick(['', 'Discovery', 'graph', 'runtime', ...NOT_A_STRING]);
      break;
    case 'command':
      m.command = rng.pick(['', 'Participant', 'heartbeat', 'bye', ...NOT_A_STRING]);
      break;
    case 'payload-type':
      m.payload = rng.pick(NOT_AN_OBJECT);
      break;
    case 'missing-field':
      delete p[rng.pick(['id', 'role', 'component', 'inports', 'outports'])];
      break;
    case 'field-type':
      p[rng.pick(['id', 'role', 'component'])] = rng.pick(['', ...NOT_A_STRING]);
      break;
    case 'ports-type':
      p[rng.pick(['inports', 'outports'])] = rng.pick(NOT_AN_ARRAY);
      break;
    case 'port-entry': {
      const ports = p[rng.pick(['inports', 'outports'])] as unknown[];
      ports.push(rng.pick([null, 0, 'in', [], {}, { id: '' }, { id: 7 }, { queue: 'x.IN' }]));
      break;
    }
    case 'port-field': {
      const port = (p[rng.pick(['inports', 'outports'])] as Record<string, unknown>[])[0]!;
      const field = rng.pick(['id', 'type', 'queue', 'hidden', 'description', 'options'] as const);
      port[field] =
        field === 'hidden' ? rng.pick(['true', 0, null, {}]) : field === 'options' ? rng.pick(['x', 0, [], null]) : rng.pick(field === 'type' || field === 'description' ? NOT_A_STRING : ['', ...NOT_A_STRING]);
      break;
    }
    case 'optional-field': {
      const field = rng.pick(['heartbeat', 'leaving', 'label', 'icon', 'library'] as const);
      p[field] = field === 'heartbeat' ? rng.pick([0, -1, '5', null, true, []]) : field === 'leaving' ? rng.pick(['yes', 1, null, {}]) : rng.pick(NOT_A_STRING);
      break;
    }
    case 'root-type':
      return { body: Buffer.from(JSON.stringify(rng.pick([null, 0, 'discovery', true, [], [m]]))), kind };
    case 'truncated': {
      const text = JSON.stringify(m);
      return { body: Buffer.from(text.slice(0, rng.int(0, text.length - 1))), kind };
    }
    case 'random-bytes':
      return { body: Buffer.concat([Buffer.from([0xff]), rng.bytes(rng.int(0, 300))]), kind };
    case 'mutated-text': {
      for (;;) {
        const text = mutateText(rng, JSON.stringify(m));
        if (!jsonValid(text)) return { body: Buffer.from(text), kind };
      }
    }
    case 'empty':
      return { body: Buffer.alloc(0), kind };
    case 'bad-utf8':
      return { body: Buffer.concat([Buffer.from(JSON.stringify(m).slice(0, -1)), Buffer.from([0xc3, 0x28, 0xa0, 0xa1]), Buffer.from('}')]), kind };
  }
  return { body: Buffer.from(JSON.stringify(m)), kind };
}

/** True when `text` parses to a valid discovery message (generated ones must not). */
function jsonValid(text: string): boolean {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return false;
  }
  try {
    parseDiscovery(data);
    return true;
  } catch {
    return false;
  }
}

const targets = [
  { name: 'RabbitMQ', url: AMQP_URL, embedded: false },
  { name: 'MQTT (the embedded broker of msgflo)', url: MQTT_URL, embedded: true },
] as const;

for (const target of targets) {
  describe(`bad input: ${COUNT} invalid discovery messages to a running msgflo on ${target.name} @broker`, function () {
    this.timeout(60_000);
    let vhost: PrivateVhost | undefined;
    let transport: Transport | undefined;

    before(async function () {
      announceSeed();
      if (!target.embedded) {
        await requireBroker(this, target.url);
        vhost = await privateVhost(target.url);
      }
    });
    afterEach(async () => {
      await transport?.close().catch(() => {});
      await stopAllClis('SIGTERM');
    });
    after(async () => {
      await vhost?.remove();
    });

    it('refuses each with MSGFLO_ERR_DISCOVERY_INVALID, keeps running, and the control stream beside them arrives whole', async () => {
      const rng = new Rng(SEED, `discovery-${target.name}`);
      const prefix = uniqueName('bd');
      const [ctl, ctl2, late] = [`${prefix}ctl`, `${prefix}ctl2`, `${prefix}late`];
      const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-badinput-'));
      const graph = path.join(dir, 'control.fbp');
      writeFileSync(graph, `${ctl}(Repeat) OUT -> IN ${ctl2}(Repeat)\n`);

      // The coordinator (on MQTT it starts the embedded broker itself).
      const args = ['--graph', graph, '--ignore', `${ctl},${ctl2}`, '--forward', '', '--port', '0'];
      let msgflo: CliHandle;
      let url: string;
      if (target.embedded) {
        msgflo = startCli('msgflo', args, { env: { MSGFLO_BROKER: undefined } });
        url = (await msgflo.waitForOutput(/embedded MQTT broker on (mqtt:\/\/\S+)/, { timeoutMs: 20_000 }))[1]!;
      } else {
        url = vhost!.url;
        msgflo = startCli('msgflo', [...args, '--broker', url], { env: { MSGFLO_BROKER: undefined } });
      }
      await msgflo.waitForOutput(/msgflo running/, { timeoutMs: 20_000 });
      const env = { MSGFLO_BROKER: url };
      const p1 = startCli('msgflo-participant', ['participants/Repeat.js', '--name', ctl, '--heartbeat', '1'], { env });
      const p2 = startCli('msgflo-participant', ['participants/Repeat.js', '--name', ctl2, '--heartbeat', '1'], { env });
      await msgflo.waitForOutput(new RegExp(`bound PUBSUB: ${ctl}\\.OUT -> ${ctl2}\\.IN`), { timeoutMs: 20_000 });

      // The control stream: numbers sent to ctl, observed leaving ctl2.
      transport = await connectTransport(url, { name: `${prefix}test` });
      const arrived = new Set<number>();
      await transport.tap('outqueue', `${ctl2}.OUT`, (m) => {
        const n = (m.data as { n?: unknown } | null)?.n;
        if (typeof n === 'number') arrived.add(n);
      });
      // A first control message proves the edge works before the garbage starts.
      await waitFor(
        async () => {
          await transport!.send('inqueue', `${ctl}.IN`, { n: -1 });
          await waitFor(() => arrived.has(-1), 'first control message', 1000).catch(() => undefined);
          return arrived.has(-1);
        },
        'the control edge to work',
        20_000,
      );

      const raw = await rawPublisher(url);
      const kinds: string[] = [];
      let controls = 0;
      try {
        for (let i = 0; i < COUNT; i++) {
          const { body, kind } = invalidBody(rng, prefix, i);
          kinds.push(kind);
          if (target.embedded) await raw.toQueue('fbp', body);
          // msgflo-ts announcers publish to the `fbp` exchange (marked); msgflo-era ones to the queue `fbp`.
          else if (i % 2 === 0) await raw.toExchange('fbp', body, { 'x-msgflo-via': 'exchange' });
          else await raw.toQueue('fbp', body);
          if (i % CONTROL_EVERY === 0) await transport.send('inqueue', `${ctl}.IN`, { n: controls++ });
        }
      } finally {
        await raw.close();
      }

      const refused = () => msgflo.stdout.match(REFUSED)?.length ?? 0;
      await waitFor(() => refused() >= COUNT, `${COUNT} refusals (seed ${SEED})`, 30_000, 100).catch(() => undefined);
      await waitFor(() => arrived.size >= controls + 1, `${controls} control messages`, 20_000, 50).catch(() => undefined);
      process.stdout.write(`      ${target.name}: ${refused()} refused of ${COUNT} sent ${JSON.stringify(tally(kinds))}\n`);
      const lost = [...Array(controls).keys()].filter((n) => !arrived.has(n));
      assert.equal(msgflo.done, false, `msgflo exited:\n${msgflo.stderr}`);
      assert.deepEqual(lost, [], 'control messages lost');
      if (target.embedded || vhost!.isolated) assert.equal(refused(), COUNT, `refusal lines (seed ${SEED})`);
      else assert.ok(refused() >= COUNT, `refusal lines (seed ${SEED})`);
      assert.doesNotMatch(msgflo.stdout, /^error: /m);
      assert.doesNotMatch(msgflo.stdout, new RegExp(`- participant ${ctl}2? expired`));

      // Still discovering.
      const p3 = startCli('msgflo-participant', ['participants/Drop.js', '--name', late], { env });
      await msgflo.waitForOutput(new RegExp(`\\+ participant ${late} \\(Drop\\)`), { timeoutMs: 20_000 });
      for (const p of [p1, p2, p3]) assert.equal(p.done, false, `a participant exited:\n${p.stderr}`);
      const stopped = await msgflo.stop('SIGTERM', 10_000);
      assert.equal(stopped.code, 0, stopped.stderr);
    });
  });
}
