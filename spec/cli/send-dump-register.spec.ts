/**
 * msgflo-send-message, msgflo-dump-message and msgflo-register.
 *
 * Two levels: main() called in-process with a fake CliIO (usage, help, bad input, and round trips on the
 * in-memory direct:// transport), then the real bins spawned against RabbitMQ and Mosquitto (@broker; the bins
 * import ../dist, so `npm run build` first — `npm test` does).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { main as dumpMain } from '../../src/cli/dump.js';
import type { CliIO } from '../../src/cli/io.js';
import { normalizeBooleanFlag } from '../../src/cli/common.js';
import { foreignParticipant, main as registerMain, parseRoleSpec } from '../../src/cli/register.js';
import { main as sendMain } from '../../src/cli/send.js';
import { ErrorCodes, MsgfloError, UsageError } from '../../src/errors.js';
import type { DiscoveryMessage } from '../../src/protocol/discovery.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Delivery, InMessage, QueueKind, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { REPO_ROOT, fakeIO, jsonLines, runCli, startCli, stopAllClis } from '../helpers/cli.js';
import { Collector, sleep } from '../helpers/wait.js';

const SEND = 'msgflo-send-message';
const DUMP = 'msgflo-dump-message';
const REGISTER = 'msgflo-register';
const BULB = 'spec/fixtures/foreign/bulb.yml';
const FOREIGN = path.join(REPO_ROOT, 'spec/fixtures/foreign');

type Main = (argv: string[], io: CliIO) => Promise<number>;

/** Run a main() in-process; returns exit code and output. */
async function run(main: Main, argv: string[], env: Record<string, string | undefined> = {}) {
  const f = fakeIO({ env });
  const code = await main(argv, f.io);
  return { code, stdout: f.stdout(), stderr: f.stderr() };
}

/** Discovery messages of `role` seen by `observer`. */
async function watchDiscovery(observer: Transport, role: string): Promise<Collector<DiscoveryMessage>> {
  const seen = new Collector<DiscoveryMessage>();
  await observer.onDiscovery((m: InMessage) => {
    const msg = m.data as DiscoveryMessage;
    if (msg?.payload?.role === role) seen.push(msg);
  });
  return seen;
}

/** The bulb.yml payload as announced for `role` (without heartbeat). */
function bulbPayload(role: string) {
  return {
    component: 'SmartBulb',
    label: 'A smart light bulb',
    icon: 'lightbulb-o',
    id: role,
    role,
    inports: [
      { id: 'on', type: 'boolean', description: 'Switch the bulb on (true) or off (false)', queue: `lights/${role}/on` },
      { id: 'color', type: 'string', description: 'CSS colour; no queue given, so it is ROLE.COLOR', queue: `${role}.COLOR` },
    ],
    outports: [{ id: 'state', type: 'object', description: 'The current state, sent on every change', queue: `lights/${role}/state` }],
  };
}

describe('CLI: msgflo-send-message, msgflo-dump-message, msgflo-register', function () {
  describe('main() in-process', () => {
    const NO_BROKER = {};

    describe(SEND, () => {
      it('prints usage with an example on --help and exits 0', async () => {
        const r = await run(sendMain, ['--help']);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /Usage: msgflo-send-message --queue QUEUE --json JSON/);
        assert.match(r.stdout, /Example:\n\s+msgflo-send-message --broker/);
        assert.equal(r.stderr, '');
      });

      it('exits 2 on bad usage', async () => {
        const env = { MSGFLO_BROKER: 'direct://unused' };
        const bad = [
          [],
          ['--json', '1'],
          ['--queue', 'q'],
          ['--queue', 'q', '--json', '1', 'extra'],
          ['--queue', 'q', '--json', '1', '--nope'],
          // An MQTT topic name cannot hold wildcards (checked before connecting: that broker is unreachable).
          ['--queue', 'a/+', '--json', '1', '--broker', 'mqtt://127.0.0.1:1'],
        ];
        for (const argv of bad) {
          const r = await run(sendMain, argv, env);
          assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, /^msgflo-send-message: /);
        }
      });

      it('exits 2 on invalid JSON, before connecting', async () => {
        // The broker would fail with exit 1: the JSON is checked first.
        const r = await run(sendMain, ['--queue', 'q', '--json', '{nope', '--broker', 'amqp://127.0.0.1:1']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /MSGFLO_ERR_BAD_JSON: --json is not valid JSON/);
        assert.match(r.stderr, /→ Quote JSON/);
      });

      it('exits 2 when no broker is configured', async () => {
        const r = await run(sendMain, ['--queue', 'q', '--json', '1'], NO_BROKER);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /No broker: give --broker URL or set MSGFLO_BROKER/);
      });
    });

    describe(DUMP, () => {
      it('prints usage with an example on --help and exits 0', async () => {
        const r = await run(dumpMain, ['-h']);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /Usage: msgflo-dump-message --queue QUEUE/);
        assert.match(r.stdout, /--tap/);
        assert.match(r.stdout, /--timeout S/);
        assert.match(r.stdout, /Examples?:\n\s+msgflo-dump-message /);
      });

      it('exits 2 on bad usage', async () => {
        const env = { MSGFLO_BROKER: 'direct://unused' };
        const bad = [[], ['--amount', '2'], ['--queue', 'q', '--amount', '0'], ['--queue', 'q', '--amount', '1.5'], ['--queue', 'q', '--amount', 'x'], ['--queue', 'q', '--timeout', '-1'], ['--queue', 'q', 'extra'], ['--queue', 'a/#', '--broker', 'mqtt://127.0.0.1:1']];
        for (const argv of bad) {
          const r = await run(dumpMain, argv, env);
          assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
        }
      });

      it('exits 2 when no broker is configured', async () => {
        const r = await run(dumpMain, ['--queue', 'q'], NO_BROKER);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /No broker/);
      });
    });

    describe(REGISTER, () => {
      it('prints usage with an example on --help and exits 0', async () => {
        const r = await run(registerMain, ['--help']);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /Usage: msgflo-register --role ROLE:FILE.yml/);
        assert.match(r.stdout, /--forever=false/);
        assert.match(r.stdout, /Example:\n\s+msgflo-register --broker/);
      });

      it('exits 2 on bad usage', async () => {
        const env = { MSGFLO_BROKER: 'direct://unused' };
        const bad = [
          [],
          ['--role', 'nocolon'],
          ['--role', ':file.yml'],
          ['--role', 'role:'],
          ['--role', `a:${BULB}`, '--role', `a:${BULB}`],
          ['--role', `a:${BULB}`, '--forever=banana'],
          ['--role', `a:${BULB}`, '--interval', '0'],
          ['--role', `a:${BULB}`, '--interval', 'soon'],
          ['--role', `a:${BULB}`, 'extra'],
        ];
        for (const argv of bad) {
          const r = await run(registerMain, argv, env);
          assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
        }
        const r = await run(registerMain, ['--role', `a:${BULB}`], NO_BROKER);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /No broker/);
      });

      it('exits 1 with MSGFLO_ERR_PARTICIPANT_DEFINITION for a missing or invalid definition, before connecting', async () => {
        const env = { MSGFLO_BROKER: 'amqp://127.0.0.1:1' };
        const cases: Array<[string, RegExp]> = [
          ['spec/fixtures/foreign/missing.yml', /missing\.yml': cannot read it \(no such file\)/],
          ['spec/fixtures/foreign/invalid.yml', /invalid\.yml': not valid YAML/],
          ['spec/fixtures/foreign/no-component.yml', /'component' is required/],
        ];
        for (const [file, message] of cases) {
          for (const forever of ['--forever=false', '--forever']) {
            const r = await run(registerMain, ['--role', `r:${file}`, forever], env);
            assert.equal(r.code, 1, `${file} ${forever}: ${r.stderr}`);
            assert.match(r.stderr, /msgflo-register: MSGFLO_ERR_PARTICIPANT_DEFINITION: Invalid foreign participant definition/);
            assert.match(r.stderr, message);
            assert.match(r.stderr, /→ A definition is a YAML mapping/);
            assert.doesNotMatch(r.stderr, /retrying/);
          }
        }
      });

      it('reads --forever as a real boolean: alone, =BOOL, BOOL, --no-forever', () => {
        assert.deepEqual(normalizeBooleanFlag(['--forever'], 'forever'), ['--forever=true']);
        assert.deepEqual(normalizeBooleanFlag(['--forever', '--role', 'a:b'], 'forever'), ['--forever=true', '--role', 'a:b']);
        assert.deepEqual(normalizeBooleanFlag(['--forever', 'false', '--role', 'a:b'], 'forever'), ['--forever=false', '--role', 'a:b']);
        assert.deepEqual(normalizeBooleanFlag(['--forever', 'True'], 'forever'), ['--forever=True']);
        assert.deepEqual(normalizeBooleanFlag(['--forever=false'], 'forever'), ['--forever=false']);
        assert.deepEqual(normalizeBooleanFlag(['--no-forever'], 'forever'), ['--forever=false']);
        assert.deepEqual(normalizeBooleanFlag(['--', '--forever'], 'forever'), ['--', '--forever']);
      });

      it('parses ROLE:FILE at the first colon', () => {
        assert.deepEqual(parseRoleSpec('bulb1:C:/defs/bulb.yml'), { role: 'bulb1', file: 'C:/defs/bulb.yml' });
        assert.throws(() => parseRoleSpec('bulb1'), UsageError);
        assert.throws(() => parseRoleSpec('my bulb:x.yml'), UsageError);
      });

      it('builds the discovery payload: #ROLE substituted, ROLE.PORT by default, id = role, ports as maps or lists', () => {
        const bulb = foreignParticipant('bulb7', {
          component: 'SmartBulb',
          label: 'A smart light bulb',
          icon: 'lightbulb-o',
          inports: { on: { queue: 'lights/#ROLE/on', type: 'boolean', description: 'Switch the bulb on (true) or off (false)' }, color: { type: 'string', description: 'CSS colour; no queue given, so it is ROLE.COLOR' } },
          outports: { state: { queue: 'lights/#ROLE/state', type: 'object', description: 'The current state, sent on every change' } },
        }, 'bulb.yml');
        assert.deepEqual(bulb, bulbPayload('bulb7'));
        const sensor = foreignParticipant('s1', { component: 'Sensor', id: 'sensor-#ROLE', inports: null, outports: [{ id: 'reading', type: 'number' }, { id: 'raw' }], extra: 1 }, 'x.yml');
        assert.deepEqual(sensor, {
          component: 'Sensor',
          extra: 1,
          id: 'sensor-s1',
          role: 's1',
          inports: [],
          outports: [
            { id: 'reading', type: 'number', queue: 's1.READING' },
            { id: 'raw', type: 'any', queue: 's1.RAW' },
          ],
        });
        const invalid = (def: unknown, message: RegExp) =>
          assert.throws(() => foreignParticipant('r', def, 'x.yml'), (err: unknown) => err instanceof MsgfloError && err.code === ErrorCodes.PARTICIPANT_DEFINITION && message.test(err.message));
        invalid(null, /expected a YAML mapping/);
        invalid(['component'], /expected a YAML mapping/);
        invalid({ component: 3 }, /'component' is required/);
        invalid({ component: 'C', inports: 'in' }, /'inports' must be a map/);
        invalid({ component: 'C', inports: { in: 'q' } }, /inports\.in must be a mapping/);
        invalid({ component: 'C', outports: [{ type: 'x' }] }, /outports\[0\] needs an 'id'/);
        invalid({ component: 'C', outports: [{ id: 'a' }, { id: 'a' }] }, /port 'a' is defined twice/);
        invalid({ component: 'C', inports: { in: { queue: 5 } } }, /inports\.in\.queue must be a string/);
        invalid({ component: 'C', label: ['x'] }, /'label' must be a string/);
      });
    });

    describe('round trips on the in-memory transport (direct://)', () => {
      let url: string;
      let admin: Transport;
      let env: Record<string, string>;
      beforeEach(async () => {
        url = `direct://${uniqueName('cli')}`;
        env = { MSGFLO_BROKER: url };
        admin = await connectTransport(url);
      });
      afterEach(async () => {
        await admin.close();
      });

      it('sends to an inqueue and dumps it, taking exactly --amount messages', async () => {
        await admin.createQueue('inqueue', 'q.IN');
        for (const n of [1, 2, 3]) {
          const r = await run(sendMain, ['--queue', 'q.IN', '--json', JSON.stringify({ n })], env);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, 'sent to q.IN\n');
        }
        const r = await run(dumpMain, ['--queue', 'q.IN', '--amount', '2'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(jsonLines(r.stdout), [{ n: 1 }, { n: 2 }]);
        assert.match(r.stderr, /consuming inqueue 'q.IN'/);
        const rest = await run(dumpMain, ['--queue', 'q.IN'], env);
        assert.deepEqual(jsonLines(rest.stdout), [{ n: 3 }]);
      });

      it('exits 1 with MSGFLO_ERR_QUEUE_NOT_FOUND for a queue that does not exist', async () => {
        const sent = await run(sendMain, ['--queue', 'nope.IN', '--json', '1'], env);
        assert.equal(sent.code, 1);
        assert.match(sent.stderr, /MSGFLO_ERR_QUEUE_NOT_FOUND: Queue 'nope.IN' does not exist/);
        const dumped = await run(dumpMain, ['--queue', 'nope.IN'], env);
        assert.equal(dumped.code, 1);
        assert.match(dumped.stderr, /MSGFLO_ERR_QUEUE_NOT_FOUND/);
      });

      it('taps an outqueue (--outqueue send) without taking from its bound consumer', async () => {
        await admin.createQueue('outqueue', 'a.OUT');
        await admin.createQueue('inqueue', 'b.IN');
        await admin.addBinding({ type: 'pubsub', src: 'a.OUT', tgt: 'b.IN' });
        const consumed = new Collector<Delivery>();
        await admin.subscribe('b.IN', (d) => {
          void d.ack();
          consumed.push(d);
        });
        const f = fakeIO({ env });
        const dumping = dumpMain(['--queue', 'a.OUT', '--amount', '2'], f.io);
        while (!/tapping outqueue 'a.OUT'/.test(f.stderr())) await sleep(5);
        for (const n of [1, 2]) assert.equal((await run(sendMain, ['--queue', 'a.OUT', '--outqueue', '--json', `${n}`], env)).code, 0);
        assert.equal(await dumping, 0);
        assert.deepEqual(jsonLines(f.stdout()), [1, 2]);
        assert.deepEqual((await consumed.waitCount(2)).map((d) => d.data), [1, 2]);
      });

      it('prints a non-JSON body as a JSON string', async () => {
        await admin.createQueue('inqueue', 'raw.IN');
        const f = fakeIO({ env });
        const dumping = dumpMain(['--queue', 'raw.IN', '--tap'], f.io);
        while (!/tapping inqueue/.test(f.stderr())) await sleep(5);
        await admin.send('outqueue', 'raw.IN', 'plain "text"');
        assert.equal(await dumping, 0);
        assert.deepEqual(jsonLines(f.stdout()), ['plain "text"']);
      });

      it('--timeout: exits 1 with a clear message when fewer than N arrived', async () => {
        await admin.createQueue('inqueue', 'slow.IN');
        await admin.send('inqueue', 'slow.IN', { only: 1 });
        const started = Date.now();
        const r = await run(dumpMain, ['--queue', 'slow.IN', '--amount', '2', '--timeout', '0.3'], env);
        assert.equal(r.code, 1);
        assert.ok(Date.now() - started < 3000);
        assert.deepEqual(jsonLines(r.stdout), [{ only: 1 }]);
        assert.match(r.stderr, /timed out after 0.3 s: got 1 of 2 messages from 'slow.IN'/);
        // What was printed was taken: it does not come back.
        await admin.send('inqueue', 'slow.IN', { next: 2 });
        const again = await run(dumpMain, ['--queue', 'slow.IN', '--amount', '2', '--timeout', '0.3'], env);
        assert.deepEqual(jsonLines(again.stdout), [{ next: 2 }]);
      });

      it('on SIGINT/SIGTERM: exits 0 when something was printed, 1 when nothing was', async () => {
        await admin.createQueue('inqueue', 'sig.IN');
        const nothing = fakeIO({ env });
        const waiting = dumpMain(['--queue', 'sig.IN'], nothing.io);
        await sleep(50);
        nothing.abort();
        assert.equal(await waiting, 1);
        assert.match(nothing.stderr(), /interrupted: got 0 of 1 message from 'sig.IN'/);

        await admin.send('inqueue', 'sig.IN', 'one');
        const some = fakeIO({ env });
        const partial = dumpMain(['--queue', 'sig.IN', '--amount', '3'], some.io);
        while (!some.stdout()) await sleep(5);
        some.abort();
        assert.equal(await partial, 0);
        assert.deepEqual(jsonLines(some.stdout()), ['one']);
        const after = await run(dumpMain, ['--queue', 'sig.IN', '--timeout', '0.2'], env);
        assert.equal(after.code, 1, 'the printed message was acked, not returned to the queue');
      });

      it('registers foreign participants once with --forever=false', async () => {
        const seen = await watchDiscovery(admin, 'bulb1');
        const sensor = await watchDiscovery(admin, 's1');
        const r = await run(registerMain, ['--role', `bulb1:${BULB}`, '--role', 's1:spec/fixtures/foreign/ports-list.yml', '--forever=false'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /announced bulb1 \(SmartBulb, id bulb1\)/);
        const [msg] = await seen.waitCount(1);
        assert.deepEqual(msg, { protocol: 'discovery', command: 'participant', payload: bulbPayload('bulb1') });
        const [s] = await sensor.waitCount(1);
        assert.equal(s!.payload.id, 'sensor-s1');
        assert.deepEqual(s!.payload.outports, [{ id: 'reading', type: 'number', queue: 's1.READING' }]);
      });

      it('re-announces every interval/2.2 s with a heartbeat field until aborted', async () => {
        const seen = await watchDiscovery(admin, 'bulb2');
        const f = fakeIO({ env });
        const running = registerMain(['--role', `bulb2:${FOREIGN}/bulb.yml`, '--interval', '0.22'], f.io);
        const msgs = await seen.waitCount(3, 3000);
        for (const m of msgs) assert.deepEqual(m.payload, { ...bulbPayload('bulb2'), heartbeat: 0.22 / 2.2 });
        f.abort();
        assert.equal(await running, 0);
        const count = seen.items.length;
        await sleep(300);
        assert.equal(seen.items.length, count, 'no announcement after stopping');
      });
    });
  });

  describe('spawned bins', function () {
    before(function () {
      for (const name of ['send', 'dump', 'register']) {
        if (!existsSync(path.join(REPO_ROOT, 'dist/cli', `${name}.js`))) throw new Error("dist/ is missing: run 'npm run build' first (npm test does)");
      }
    });
    afterEach(async () => {
      await stopAllClis();
    });

    describe('without a broker', () => {
      it('exits 1 with MSGFLO_ERR_BROKER_UNREACHABLE when the broker is unreachable', async () => {
        for (const [bin, args] of [
          [SEND, ['--queue', 'q', '--json', '1']],
          [DUMP, ['--queue', 'q']],
          [REGISTER, ['--role', `r:${BULB}`, '--forever=false']],
        ] as const) {
          const r = await runCli(bin, [...args, '--broker', 'amqp://127.0.0.1:1']);
          assert.equal(r.code, 1, `${bin}: ${r.stderr}`);
          assert.match(r.stderr, new RegExp(`^${bin}: MSGFLO_ERR_BROKER_UNREACHABLE: Cannot connect to broker amqp://127.0.0.1:1`));
        }
      });

      it('msgflo-register --forever waits for the broker, logging retries, until SIGTERM (exit 0)', async () => {
        const cli = startCli(REGISTER, ['--role', `r:${BULB}`, '--broker', 'amqp://u:topsecret@127.0.0.1:1']);
        await cli.waitForOutput(/MSGFLO_ERR_BROKER_UNREACHABLE|Cannot connect to broker .*; retrying in \d+ ms/, { stream: 'stderr' });
        const r = await cli.stop('SIGTERM');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /Cannot connect to broker amqp:\/\/u:\*\*\*@127\.0\.0\.1:1/);
        assert.doesNotMatch(r.stdout + r.stderr, /topsecret/);
      });

      it('takes the broker from MSGFLO_BROKER, and exits 2 without one', async () => {
        const viaEnv = await runCli(SEND, ['--queue', 'q', '--json', '1'], { env: { MSGFLO_BROKER: 'amqp://127.0.0.1:1' } });
        assert.equal(viaEnv.code, 1);
        assert.match(viaEnv.stderr, /amqp:\/\/127\.0\.0\.1:1/);
        const none = await runCli(SEND, ['--queue', 'q', '--json', '1'], { env: { MSGFLO_BROKER: undefined } });
        assert.equal(none.code, 2);
        assert.match(none.stderr, /No broker/);
      });
    });

    describe('RabbitMQ @broker', function () {
      let admin: Transport;
      const declared: Array<[QueueKind, string]> = [];
      const broker = ['--broker', AMQP_URL];

      before(async function () {
        await requireBroker(this, AMQP_URL);
        admin = await connectTransport(AMQP_URL, { name: 'cli-spec' });
      });
      after(async () => {
        await admin?.close();
      });
      afterEach(async () => {
        for (const b of await admin.listBindings()) await admin.removeBinding(b).catch(() => {});
        for (const [kind, name] of declared.splice(0)) await admin.removeQueue(kind, name).catch(() => {});
      });
      async function declare(kind: QueueKind, name: string): Promise<string> {
        await admin.createQueue(kind, name);
        declared.push([kind, name]);
        return name;
      }

      it('sends to an inqueue and dumps (consumes) it: a round trip', async () => {
        const q = await declare('inqueue', `${uniqueName('cli')}.IN`);
        const first = await runCli(SEND, ['--queue', q, '--json', '{"hello":"amqp","n":1}', ...broker]);
        assert.equal(first.code, 0, first.stderr);
        assert.equal(first.stdout, `sent to ${q}\n`);
        const second = await runCli(SEND, ['--queue', q, '--json', '[2]'], { env: { MSGFLO_BROKER: AMQP_URL } });
        assert.equal(second.code, 0, second.stderr);
        assert.equal((await runCli(SEND, ['--queue', q, '--json', '"three"', ...broker])).code, 0);
        const dumped = await runCli(DUMP, ['--queue', q, '--amount', '2', ...broker]);
        assert.equal(dumped.code, 0, dumped.stderr);
        assert.match(dumped.stderr, /consuming inqueue/);
        assert.deepEqual(jsonLines(dumped.stdout), [{ hello: 'amqp', n: 1 }, [2]]);
        // Exactly --amount were taken: the third is still there.
        const rest = await runCli(DUMP, ['--queue', q, '--timeout', '5', ...broker]);
        assert.equal(rest.code, 0, rest.stderr);
        assert.deepEqual(jsonLines(rest.stdout), ['three']);
        // Consumed: the queue is empty now.
        const empty = await runCli(DUMP, ['--queue', q, '--timeout', '0.5', ...broker]);
        assert.equal(empty.code, 1);
        assert.match(empty.stderr, /timed out after 0.5 s: got 0 of 1 message/);
      });

      it('dump exits on SIGINT: 1 when nothing arrived', async () => {
        const q = await declare('inqueue', `${uniqueName('cli')}.IN`);
        const cli = startCli(DUMP, ['--queue', q, ...broker]);
        await cli.waitForOutput(/consuming inqueue/, { stream: 'stderr' });
        const r = await cli.stop('SIGINT');
        assert.equal(r.code, 1);
        assert.match(r.stderr, /interrupted: got 0 of 1 message/);
      });

      it('dump --tap of an outport sees its messages while a bound consumer still gets them all', async () => {
        const prefix = uniqueName('cli');
        const out = await declare('outqueue', `${prefix}.OUT`);
        const q = await declare('inqueue', `${prefix}.IN`);
        await admin.addBinding({ type: 'pubsub', src: out, tgt: q });
        const consumed = new Collector<Delivery>();
        const sub = await admin.subscribe(q, (d) => {
          void d.ack();
          consumed.push(d);
        });
        try {
          const tapped = startCli(DUMP, ['--queue', out, '--tap', '--amount', '2', ...broker]);
          // Without --tap, a name that is only an exchange is tapped too.
          const implicit = startCli(DUMP, ['--queue', out, '--amount', '2', ...broker]);
          await tapped.waitForOutput(/tapping outqueue/, { stream: 'stderr' });
          await implicit.waitForOutput(/tapping outqueue/, { stream: 'stderr' });
          for (const n of [1, 2]) {
            const sent = await runCli(SEND, ['--queue', out, '--outqueue', '--json', JSON.stringify({ n }), ...broker]);
            assert.equal(sent.code, 0, sent.stderr);
          }
          for (const cli of [tapped, implicit]) {
            const r = await cli.exited;
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual(jsonLines(r.stdout), [{ n: 1 }, { n: 2 }]);
          }
          assert.deepEqual((await consumed.waitCount(2)).map((d) => d.data), [{ n: 1 }, { n: 2 }]);
        } finally {
          await sub.cancel();
        }
      });

      it('exits 1 with MSGFLO_ERR_QUEUE_NOT_FOUND when sending to a queue that does not exist', async () => {
        const missing = `${uniqueName('cli')}.IN`;
        const r = await runCli(SEND, ['--queue', missing, '--json', '{"lost":true}', ...broker]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`^msgflo-send-message: MSGFLO_ERR_QUEUE_NOT_FOUND: Queue '${missing}' does not exist`));
        assert.match(r.stderr, /→ Start the participant/);
        const out = await runCli(SEND, ['--queue', `${uniqueName('cli')}.OUT`, '--outqueue', '--json', '1', ...broker]);
        assert.equal(out.code, 1);
        assert.match(out.stderr, /MSGFLO_ERR_QUEUE_NOT_FOUND/);
        const dumped = await runCli(DUMP, ['--queue', missing, ...broker]);
        assert.equal(dumped.code, 1);
        assert.match(dumped.stderr, /MSGFLO_ERR_QUEUE_NOT_FOUND/);
        assert.equal(await admin.queueExists('inqueue', missing), false);
      });

      it('exits 1 with MSGFLO_ERR_BROKER_AUTH on a wrong password, which never appears in the output', async () => {
        const u = new URL(AMQP_URL);
        u.username ||= 'guest';
        u.password = 'Wr0ngPassw0rd-xyz';
        for (const [bin, args] of [
          [SEND, ['--queue', 'q', '--json', '1']],
          [DUMP, ['--queue', 'q']],
          [REGISTER, ['--role', `r:${BULB}`, '--forever=false']],
          [REGISTER, ['--role', `r:${BULB}`]],
        ] as const) {
          const r = await runCli(bin, [...args, '--broker', u.toString()]);
          assert.equal(r.code, 1, `${bin}: ${r.stderr}`);
          assert.match(r.stderr, new RegExp(`^${bin}: MSGFLO_ERR_BROKER_AUTH: Broker amqp://${u.username}:\\*\\*\\*@`));
          assert.doesNotMatch(r.stdout + r.stderr, /Wr0ngPassw0rd/);
        }
      });

      it('msgflo-register --forever=false announces once (seen by another observer) and exits by itself', async () => {
        const role = uniqueName('bulb');
        const seen = await watchDiscovery(admin, role);
        const r = await runCli(REGISTER, ['--role', `${role}:${BULB}`, '--forever=false', ...broker]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`announced ${role} \\(SmartBulb, id ${role}\\): in lights/${role}/on, ${role}.COLOR; out lights/${role}/state`));
        const [msg] = await seen.waitCount(1);
        assert.deepEqual(msg, { protocol: 'discovery', command: 'participant', payload: bulbPayload(role) });
        await sleep(300);
        assert.equal(seen.items.length, 1);
      });

      it('msgflo-register --forever keeps re-announcing until SIGTERM', async () => {
        const role = uniqueName('bulb');
        const seen = await watchDiscovery(admin, role);
        const cli = startCli(REGISTER, ['--role', `${role}:${BULB}`, '--forever', '--interval', '0.44', ...broker]);
        const msgs = await seen.waitCount(3, 5000, 'announcements');
        for (const m of msgs) assert.deepEqual(m.payload, { ...bulbPayload(role), heartbeat: 0.44 / 2.2 });
        assert.equal(cli.done, false);
        const r = await cli.stop('SIGTERM');
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.signal, null);
        assert.match(r.stdout, /announcing every 0\.2 s until stopped/);
        const count = seen.items.length;
        await sleep(500);
        assert.equal(seen.items.length, count, 'no announcement after SIGTERM');
      });
    });

    describe('Mosquitto @broker', function () {
      let observer: Transport;
      const broker = ['--broker', MQTT_URL];

      before(async function () {
        await requireBroker(this, MQTT_URL);
        observer = await connectTransport(MQTT_URL, { name: 'cli-spec' });
      });
      after(async () => {
        await observer?.close();
      });

      it('sends to a topic and dumps it: a round trip', async () => {
        const topic = `${uniqueName('cli')}.IN`;
        const dump = startCli(DUMP, ['--queue', topic, '--amount', '2', '--timeout', '10', ...broker]);
        await dump.waitForOutput(/subscribed to topic/, { stream: 'stderr' });
        for (const data of ['{"hello":"mqtt"}', '"two"']) {
          const sent = await runCli(SEND, ['--queue', topic, '--json', data, ...broker]);
          assert.equal(sent.code, 0, sent.stderr);
          assert.equal(sent.stdout, `sent to ${topic}\n`);
        }
        const r = await dump.exited;
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(jsonLines(r.stdout), [{ hello: 'mqtt' }, 'two']);
      });

      it('dump --tap of an outport topic', async () => {
        const topic = `${uniqueName('cli')}.OUT`;
        const dump = startCli(DUMP, ['--queue', topic, '--tap', ...broker]);
        await dump.waitForOutput(/subscribed to topic/, { stream: 'stderr' });
        const sent = await runCli(SEND, ['--queue', topic, '--outqueue', '--json', '{"tap":true}', ...broker]);
        assert.equal(sent.code, 0, sent.stderr);
        const r = await dump.exited;
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(jsonLines(r.stdout), [{ tap: true }]);
      });

      it('msgflo-register --forever false announces once and exits by itself', async () => {
        const role = uniqueName('bulb');
        const seen = await watchDiscovery(observer, role);
        const r = await runCli(REGISTER, ['--role', `${role}:${BULB}`, '--forever', 'false', ...broker]);
        assert.equal(r.code, 0, r.stderr);
        const [msg] = await seen.waitCount(1);
        assert.deepEqual(msg!.payload, bulbPayload(role));
      });

      it('msgflo-register --forever keeps re-announcing until SIGTERM', async () => {
        const role = uniqueName('bulb');
        const seen = await watchDiscovery(observer, role);
        const cli = startCli(REGISTER, ['--role', `${role}:${BULB}`, '--interval=0.44', ...broker]);
        await seen.waitCount(3, 5000, 'announcements');
        const r = await cli.stop('SIGTERM');
        assert.equal(r.code, 0, r.stderr);
        assert.equal(seen.items[0]!.payload.heartbeat, 0.44 / 2.2);
      });
    });
  });
});
