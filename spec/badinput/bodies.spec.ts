/**
 * Bad input: message bodies. A thousand seeded bodies — bytes that are not JSON, mutated JSON, JSON of the wrong
 * shape, near-misses of a port's schema, deep nesting, bad UTF-8 — sent raw to a real participant process with a
 * typed inport (`num`), a schema'd one (`obj`) and an untyped one (`any`), on RabbitMQ and on Mosquitto. Each
 * refusal must carry its code on the `error` outport and in the dead letter (MSGFLO_ERR_BAD_JSON /
 * MSGFLO_ERR_SCHEMA; MSGFLO_ERR_BAD_ENCODING on any port for a body that is not UTF-8), each accepted body must come out, a control stream interleaved with the garbage must arrive
 * whole, and the participant must still be running (and stop cleanly) at the end.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { startCli, stopAllClis } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { rawPublisher } from './brokers.js';
import { Rng, SEED, announceSeed, mutateText, randomJson, tally } from './generate.js';

const COUNT = 1000;
const CONTROL_EVERY = 4;
const PORTS = ['num', 'obj', 'any'] as const;
type Port = (typeof PORTS)[number];
type Outcome = 'accepted' | 'MSGFLO_ERR_BAD_JSON' | 'MSGFLO_ERR_SCHEMA' | 'MSGFLO_ERR_BAD_ENCODING';

function parse(body: Buffer): { json: boolean; data?: unknown } {
  try {
    return { json: true, data: JSON.parse(body.toString('utf8')) };
  } catch {
    return { json: false };
  }
}

/** The `obj` port's schema, written out by hand (not with ajv) so that the participant's check is compared to it. */
function fitsObj(d: unknown): boolean {
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return false;
  const o = d as Record<string, unknown>;
  const keys = Object.keys(o);
  if (!keys.includes('n') || !keys.includes('name') || keys.some((k) => k !== 'n' && k !== 'name')) return false;
  return typeof o.n === 'number' && Number.isInteger(o.n) && o.n >= 0 && typeof o.name === 'string' && [...o.name].length <= 20;
}

/** What the participant must do with `body` on `port`. */
function expected(port: Port, body: Buffer): Outcome {
  // Not UTF-8: refused on every port, the body kept unaltered in the dead letter (decoding would alter it).
  if (!isUtf8(body)) return 'MSGFLO_ERR_BAD_ENCODING';
  const { json, data } = parse(body);
  if (port === 'any') return 'accepted';
  if (!json) return 'MSGFLO_ERR_BAD_JSON';
  if (port === 'num') return 'accepted';
  return fitsObj(data) ? 'accepted' : 'MSGFLO_ERR_SCHEMA';
}

function garbage(rng: Rng): { body: Buffer; kind: string } {
  const near = { n: rng.int(0, 1000), name: 'near' };
  const kind = rng.pick(['bytes', 'mutated', 'json', 'near-miss', 'deep', 'bad-utf8', 'empty', 'big'] as const);
  switch (kind) {
    case 'bytes':
      return { body: rng.bytes(rng.int(1, 200)), kind };
    case 'mutated':
      return { body: Buffer.from(mutateText(rng, JSON.stringify(near))), kind };
    case 'json':
      return { body: Buffer.from(JSON.stringify(randomJson(rng)) ?? 'null'), kind };
    case 'near-miss': {
      const o: Record<string, unknown> = { ...near };
      switch (rng.int(0, 7)) {
        case 0:
          delete o.n;
          break;
        case 1:
          delete o.name;
          break;
        case 2:
          o.n = rng.pick([-1, 1.5, '1', null, true, [], {}]);
          break;
        case 3:
          o.name = rng.pick([0, null, [], {}, 'x'.repeat(21), 'é'.repeat(20), '😀'.repeat(20), '😀'.repeat(21)]);
          break;
        case 4:
          o[rng.pick(['extra', 'N', ''])] = randomJson(rng, 1);
          break;
        case 5:
          Object.defineProperty(o, '__proto__', { value: { n: 1 }, enumerable: true, writable: true, configurable: true });
          break;
        case 6:
          return { body: Buffer.from(JSON.stringify([o])), kind };
        default:
          o.n = rng.pick([0, 2 ** 53, 1e308]);
      }
      return { body: Buffer.from(JSON.stringify(o)), kind };
    }
    case 'deep': {
      const depth = rng.int(100, 3000);
      return { body: Buffer.from('['.repeat(depth) + ']'.repeat(rng.chance(0.5) ? depth : depth - 1)), kind };
    }
    case 'bad-utf8':
      return { body: Buffer.concat([Buffer.from('{"n":1,"name":"'), Buffer.from([0xc3, 0x28, 0xe2, 0x82]), Buffer.from('"}')]), kind };
    case 'empty':
      return { body: Buffer.alloc(0), kind };
    case 'big':
      return { body: Buffer.from(JSON.stringify({ n: 1, name: 'x'.repeat(rng.int(1000, 100_000)) })), kind };
  }
}

const targets = [
  { name: 'RabbitMQ', url: AMQP_URL },
  { name: 'Mosquitto', url: MQTT_URL },
] as const;

for (const target of targets) {
  describe(`bad input: ${COUNT} malformed message bodies to a real participant on ${target.name} @broker`, function () {
    this.timeout(60_000);
    let transport: Transport | undefined;
    let roles: string[] = [];

    before(async function () {
      announceSeed();
      await requireBroker(this, target.url);
    });
    afterEach(async () => {
      await transport?.close().catch(() => {});
      await stopAllClis('SIGTERM');
      await cleanupRoles(target.url, roles, ['NUM', 'OBJ', 'ANY', 'OUT', 'ERROR']);
    });

    it('refuses each with its code (error port and dead letter), passes the rest, and the control stream arrives whole', async () => {
      const rng = new Rng(SEED, `bodies-${target.name}`);
      const role = uniqueName('bb');
      roles = [role];
      const queue = (port: Port) => `${role}.${port.toUpperCase()}`;
      const participant = startCli('msgflo-participant', ['spec/badinput/participants/Typed.js', '--name', role], { env: { MSGFLO_BROKER: target.url } });
      await participant.waitForOutput(/connected to/, { stream: 'stdout', timeoutMs: 20_000 });

      transport = await connectTransport(target.url, { name: `${role}-test` });
      const outputs: Array<{ port: string; data: unknown }> = [];
      const errors: string[] = [];
      const deadLetters: string[] = [];
      await transport.tap('outqueue', `${role}.OUT`, (m) => outputs.push(m.data as { port: string; data: unknown }));
      await transport.tap('outqueue', `${role}.ERROR`, (m) => {
        const e = m.data as { port?: string; code?: string };
        errors.push(`${e.port}:${e.code}`);
      });
      const deadCode = (m: InMessage) => m.headers['x-msgflo-code'] ?? (m.data as Record<string, string> | null)?.['x-msgflo-code'];
      for (const port of PORTS) {
        await transport.tap('outqueue', `dead-${queue(port)}`, (m) => deadLetters.push(`${port}:${deadCode(m)}`));
      }

      const raw = await rawPublisher(target.url);
      const want: Array<{ port: Port; outcome: Outcome; kind: string }> = [];
      const controlName = `ctl-${role}`;
      let controls = 0;
      try {
        for (let i = 0; i < COUNT; i++) {
          let port: Port;
          let body: Buffer;
          let kind: string;
          if (i % CONTROL_EVERY === 0) {
            port = 'obj';
            body = Buffer.from(JSON.stringify({ n: controls++, name: controlName }));
            kind = 'control';
          } else {
            port = rng.pick(PORTS);
            ({ body, kind } = garbage(rng));
          }
          want.push({ port, outcome: expected(port, body), kind });
          await raw.toQueue(queue(port), body);
        }
      } finally {
        await raw.close();
      }

      const refusals = want.filter((w) => w.outcome !== 'accepted');
      const accepted = want.length - refusals.length;
      await waitFor(
        () => outputs.length >= accepted && errors.length >= refusals.length && deadLetters.length >= refusals.length,
        `every outcome (seed ${SEED})`,
        30_000,
        50,
      ).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300)); // anything extra would show now
      process.stdout.write(
        `      ${target.name}: ${accepted} accepted, ${refusals.length} refused ${JSON.stringify(tally(refusals.map((r) => r.outcome)))}; kinds ${JSON.stringify(tally(want.map((w) => w.kind)))}\n`,
      );

      const expectedRefusals = tally(refusals.map((r) => `${r.port}:${r.outcome}`));
      const seen = `seen: error port ${JSON.stringify(tally(errors))}, dead letters ${JSON.stringify(tally(deadLetters))}, outputs ${JSON.stringify(tally(outputs.map((o) => o.port)))}`;
      assert.equal(participant.done, false, `the participant exited:\n${participant.stderr}`);
      assert.deepEqual(tally(errors), expectedRefusals, `error outport (seed ${SEED}); ${seen}\n--- participant stderr:\n${participant.stderr.slice(-3000)}`);
      assert.deepEqual(tally(deadLetters), expectedRefusals, `dead letters (seed ${SEED}); ${seen}`);
      assert.deepEqual(tally(outputs.map((o) => o.port)), tally(want.filter((w) => w.outcome === 'accepted').map((w) => w.port)), `accepted (seed ${SEED}); ${seen}`);
      const got = new Set(outputs.filter((o) => (o.data as { name?: string })?.name === controlName).map((o) => (o.data as { n: number }).n));
      const lost = [...Array(controls).keys()].filter((n) => !got.has(n));
      assert.deepEqual(lost, [], 'control messages lost');
      const stopped = await participant.stop('SIGTERM', 10_000);
      assert.equal(stopped.code, 0, stopped.stderr);
    });
  });
}
