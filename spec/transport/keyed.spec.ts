import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect as amqpConnect } from 'amqplib';
import mqtt from 'mqtt';
import { ErrorCodes, MsgfloError } from '../../src/errors.js';
import { defineParticipant } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { Keyring, KeyError, canonicalJson, decodeKey, generateKey, isSealed, networkKey } from '../../src/protocol/crypto.js';
import { connectTransport } from '../../src/transport/index.js';
import { KeyedTransport, keyringFromEnv } from '../../src/transport/keyed.js';
import type { Delivery, InMessage, SnoopReceived, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { startCli, stopAllClis } from '../helpers/cli.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';

const KEY_A = generateKey();
const KEY_B = generateKey();
const SECRET = 'the-launch-code-is-0000';

describe('network keys (crypto)', () => {
  it('seals and opens bodies, bound to their use', () => {
    const ring = Keyring.fromSecrets([KEY_A]);
    const sealed = ring.seal(Buffer.from(JSON.stringify({ secret: SECRET })), 'data');
    assert.ok(isSealed(sealed));
    assert.doesNotMatch(JSON.stringify(sealed), /launch-code/);
    assert.deepEqual(JSON.parse(ring.open(sealed, 'data').toString()), { secret: SECRET });
    assert.throws(() => ring.open(sealed, 'snoop'), (e: unknown) => (e as MsgfloError).code === ErrorCodes.DECRYPT);
    const altered = { ...sealed, ct: Buffer.from('x'.repeat(10)).toString('base64') };
    assert.throws(() => ring.open(altered, 'data'), /authentication failed/);
    assert.throws(() => Keyring.fromSecrets([KEY_B]).open(sealed, 'data'), /unknown key/);
    assert.throws(() => ring.open({ secret: SECRET }, 'data'), /not encrypted/);
  });

  it('accepts a previous key during a rotation and encrypts with the current one', () => {
    const old = Keyring.fromSecrets([KEY_A]);
    const rotating = Keyring.fromSecrets([KEY_B, KEY_A]);
    const fromOld = old.seal(Buffer.from('"hi"'), 'data');
    assert.equal(rotating.open(fromOld, 'data').toString(), '"hi"');
    const fromRotating = rotating.seal(Buffer.from('"yo"'), 'data');
    assert.equal(fromRotating.kid, networkKey(KEY_B).id);
    assert.throws(() => old.open(fromRotating, 'data'), /unknown key/);
  });

  it('signs discovery messages; a changed, unsigned or foreign one does not verify', () => {
    const ring = Keyring.fromSecrets([KEY_A]);
    const msg = { protocol: 'discovery', command: 'participant', payload: { id: 'r-1', role: 'r', component: 'C', inports: [], outports: [] } };
    const signed = ring.sign(msg);
    assert.deepEqual(ring.verify(JSON.parse(JSON.stringify(signed))), msg);
    // Key order does not matter (canonical JSON), content does.
    assert.deepEqual(ring.verify({ auth: signed.auth, payload: signed.payload, command: signed.command, protocol: signed.protocol }), msg);
    assert.throws(() => ring.verify({ ...signed, payload: { ...signed.payload, role: 'evil' } }), /invalid signature/);
    assert.throws(() => ring.verify(msg), /not authenticated/);
    assert.throws(() => Keyring.fromSecrets([KEY_B]).verify(signed), /unknown key/);
    assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }), '{"a":null,"b":[1,{"c":2,"d":1}]}');
  });

  it('reads keys as base64, base64url or hex, from MSGFLO_KEY or a key file, and refuses anything else', async () => {
    const raw = decodeKey(KEY_A);
    assert.equal(raw.length, 32);
    assert.deepEqual(decodeKey(raw.toString('hex')), raw);
    assert.deepEqual(decodeKey(raw.toString('base64url')), raw);
    for (const bad of ['', 'secret', 'abc'.repeat(20), raw.subarray(0, 16).toString('base64')]) {
      assert.throws(() => decodeKey(bad), (e: unknown) => e instanceof KeyError && e.code === ErrorCodes.KEY && /openssl rand -base64 32/.test(e.message));
    }
    assert.equal(keyringFromEnv({}), undefined);
    assert.deepEqual(keyringFromEnv({ MSGFLO_KEY: `${KEY_B},${KEY_A}` })!.ids, [networkKey(KEY_B).id, networkKey(KEY_A).id]);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'msgflo-key-'));
    try {
      const file = path.join(dir, 'network.key');
      await writeFile(file, `# current\n${KEY_A}\n\n# previous\n${KEY_B}\n`);
      assert.deepEqual(keyringFromEnv({ MSGFLO_KEY_FILE: file })!.ids, [networkKey(KEY_A).id, networkKey(KEY_B).id]);
      assert.throws(() => keyringFromEnv({ MSGFLO_KEY_FILE: path.join(dir, 'missing') }), /cannot read the key file/);
      await assert.rejects(connectTransport('direct://x', { env: { MSGFLO_KEY: 'not a key' } }), (e: unknown) => (e as MsgfloError).code === ErrorCodes.KEY);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const echo = defineParticipant({
  component: 'Echo',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send) => send('out', data),
});

/** Keyed-network behaviour on one broker. `raw` reads what the broker really holds. */
function keyedSuite(name: string, url: () => Promise<string>, raw: 'amqp' | 'mqtt' | undefined) {
  describe(`keyed network: ${name}`, function () {
    this.timeout(30_000);
    let base: string;
    const roles: string[] = [];
    const open: Array<{ close(): Promise<void> }> = [];
    const participants: Participant[] = [];
    const connect = async (key: string[] | null) => {
      const t = await connectTransport(base, { name: 'keyed-spec', keyring: key ? Keyring.fromSecrets(key) : null });
      open.push(t);
      return t;
    };
    const start = async (key: string[], role = uniqueName('enc'), handled?: Collector<unknown>) => {
      roles.push(role);
      const def = handled
        ? defineParticipant({
            component: 'Echo',
            inports: [{ id: 'in', type: 'any' }],
            outports: [{ id: 'out', type: 'any' }],
            process: (port, data, send) => {
              handled.push(data);
              send('out', data);
            },
          })
        : echo;
      const p = new Participant(def, await connect(key), { role, env: {}, snoop: { spy: true, trace: true } });
      participants.push(p);
      await p.start();
      return p;
    };

    before(async function () {
      base = await url.call(this);
    });
    afterEach(async () => {
      for (const p of participants.splice(0)) await p.stop().catch(() => {});
      for (const t of open.splice(0)) await t.close().catch(() => {});
      await stopAllClis('SIGTERM');
    });
    after(async () => {
      if (!base.startsWith('direct:')) await cleanupRoles(base, roles, ['IN', 'OUT', 'ERROR']);
    });

    it('carries plaintext between keyed participants', async () => {
      const p = await start([KEY_A]);
      const me = await connect([KEY_A]);
      const out = new Collector<InMessage>();
      await me.tap('outqueue', `${p.role}.OUT`, out.push);
      await me.send('inqueue', `${p.role}.IN`, { secret: SECRET });
      assert.deepEqual((await out.waitCount(1))[0]!.data, { secret: SECRET });
    });

    if (raw) {
      it('leaves only ciphertext on the broker: port payloads and snoop lines (raw queue/topic read)', async () => {
        const role = uniqueName('enc');
        const bodies: Buffer[] = [];
        let close: () => Promise<void>;
        if (raw === 'amqp') {
          const conn = await amqpConnect(base);
          const ch = await conn.createChannel();
          const { queue } = await ch.assertQueue('', { exclusive: true });
          await ch.assertExchange(`${role}.OUT`, 'fanout', { durable: true, autoDelete: false });
          await ch.assertExchange('msgflo.snoop', 'topic', { durable: false, autoDelete: false });
          await ch.bindQueue(queue, `${role}.OUT`, '');
          await ch.bindQueue(queue, 'msgflo.snoop', `*.${role}`);
          await ch.consume(queue, (m) => m && bodies.push(m.content), { noAck: true });
          close = async () => conn.close();
        } else {
          const client = await mqtt.connectAsync(base, { reconnectPeriod: 0 });
          await client.subscribeAsync([`${role}.OUT`, `msgflo/snoop/+/${role}`], { qos: 1 });
          client.on('message', (_t, payload) => bodies.push(payload));
          close = async () => client.endAsync();
        }
        try {
          const p = await start([KEY_A], role);
          const me = await connect([KEY_A]);
          await me.send('inqueue', `${p.role}.IN`, { secret: SECRET });
          // START spy, start trace, the output, the spy of the input.
          await waitFor(() => bodies.length >= 4, 'the output and spy/trace lines, raw', 10_000);
          for (const b of bodies) {
            const text = b.toString();
            assert.doesNotMatch(text, /launch-code/, 'no plaintext payload on the broker');
            assert.doesNotMatch(text, /SEARCH_FOR_SUPER|ENTRY_SIGNAL|e->/, 'no plaintext spy/trace on the broker');
            assert.ok(isSealed(JSON.parse(text)), `sealed: ${text.slice(0, 80)}`);
          }
        } finally {
          await close();
        }
      });
    }

    it('dead-letters a message that does not decrypt exactly once, with MSGFLO_ERR_DECRYPT, and never evaluates it', async () => {
      const handled = new Collector<unknown>();
      const p = await start([KEY_A], uniqueName('enc'), handled);
      const failed = new Collector<string>();
      p.on('failed', (port, err) => failed.push(`${port} ${err.code}`));
      const plain = await connect(null);
      const dead = new Collector<Delivery>();
      await plain.subscribe(`dead-${p.role}.IN`, (d) => {
        void d.ack();
        dead.push(d);
      });
      const wrongKey = await connect([KEY_B]);
      await wrongKey.send('inqueue', `${p.role}.IN`, { secret: SECRET });
      await plain.send('inqueue', `${p.role}.IN`, 'no key at all');
      const got = await dead.waitCount(2, 10_000, 'dead letters');
      await sleep(500);
      assert.equal(dead.items.length, 2, 'each refused once, not requeued in a loop');
      for (const d of got) assert.equal(d.headers['x-msgflo-code'] ?? (d.data as Record<string, string>)['x-msgflo-code'], ErrorCodes.DECRYPT);
      assert.equal(handled.items.length, 0, 'the handler never saw them');
      await failed.waitCount(2);
      assert.deepEqual(failed.items, [`in ${ErrorCodes.DECRYPT}`, `in ${ErrorCodes.DECRYPT}`]);
      // And the participant still works.
      const right = await connect([KEY_A]);
      await right.send('inqueue', `${p.role}.IN`, 'ok');
      assert.deepEqual(await handled.waitCount(1), ['ok']);
    });

    it('lets no participant without the key join: its discovery is ignored', async () => {
      const seen = new Collector<string>();
      const observer = await connect([KEY_A]);
      const errors = new Collector<string>();
      observer.on((e) => e.type === 'error' && errors.push(e.error.message));
      await observer.onDiscovery((m) => seen.push((m.data as { payload: { role: string } }).payload.role));
      const good = await start([KEY_A]);
      const foreign = await start([KEY_B]);
      const unkeyed = new Participant(echo, await connect(null), { role: uniqueName('plain'), env: {} });
      roles.push(unkeyed.role);
      participants.push(unkeyed);
      await unkeyed.start();
      await waitFor(() => seen.items.includes(good.role), 'the keyed participant', 10_000);
      await waitFor(() => errors.items.some((e) => e.includes(unkeyed.role)) && errors.items.some((e) => e.includes(foreign.role)), 'the others reported', 10_000);
      assert.ok(!seen.items.includes(foreign.role));
      assert.ok(!seen.items.includes(unkeyed.role));
    });

    it('rotates keys: accepts the previous key while sending with the new one', async () => {
      const rotated = await start([KEY_B, KEY_A]);
      const oldSender = await connect([KEY_A]);
      const catchingUp = await connect([KEY_A, KEY_B]);
      const out = new Collector<InMessage>();
      await catchingUp.tap('outqueue', `${rotated.role}.OUT`, out.push);
      await oldSender.send('inqueue', `${rotated.role}.IN`, 'from the old key');
      assert.deepEqual((await out.waitCount(1))[0]!.data, 'from the old key');
    });

    it('encrypts snoop lines for watchers that have the key', async () => {
      const watcher = await connect([KEY_A]);
      const role = uniqueName('spy');
      const got = new Collector<SnoopReceived>();
      await watcher.subscribeSnoop!({ channels: ['spy'], roles: [role] }, got.push);
      const stranger = await connect([KEY_B]);
      const strangerGot = new Collector<SnoopReceived>();
      const strangerErrors = new Collector<string>();
      stranger.on((e) => e.type === 'error' && strangerErrors.push(e.error.message));
      await stranger.subscribeSnoop!({ channels: ['spy'], roles: [role] }, strangerGot.push);
      await sleep(100);
      await start([KEY_A], role);
      const [first] = await got.waitCount(1, 10_000);
      assert.equal((first!.data as { lines: string[] }).lines[0], 'START');
      await strangerErrors.waitCount(1, 10_000, 'dropped lines reported');
      assert.equal(strangerGot.items.length, 0);
    });

    if (raw) {
      it('works across processes: a keyed msgflo-participant, and one with the wrong key', async () => {
        const role = uniqueName('proc');
        const wrong = uniqueName('wrong');
        roles.push(role, wrong);
        const env = { MSGFLO_BROKER: base, MSGFLO_KEY: KEY_A, MSGFLO_KEY_FILE: undefined };
        const p = startCli('msgflo-participant', ['participants/Repeat.js', '--name', role], { env });
        const q = startCli('msgflo-participant', ['participants/Repeat.js', '--name', wrong], { env: { ...env, MSGFLO_KEY: KEY_B } });
        await p.waitForOutput(/connected to/, { timeoutMs: 20_000 });
        await q.waitForOutput(/connected to/, { timeoutMs: 20_000 });
        const me = await connect([KEY_A]);
        const out = new Collector<InMessage>();
        await me.tap('outqueue', `${role}.OUT`, out.push);
        await me.send('inqueue', `${role}.IN`, { secret: SECRET });
        assert.deepEqual((await out.waitCount(1, 10_000))[0]!.data, { secret: SECRET });
        await me.send('inqueue', `${wrong}.IN`, { secret: SECRET });
        await q.waitForOutput(/input on 'in' dead-lettered: MSGFLO_ERR_DECRYPT/, { timeoutMs: 10_000 });
        const bad = await startCli('msgflo-participant', ['participants/Repeat.js', '--name', uniqueName('bad')], { env: { ...env, MSGFLO_KEY: 'short' } }).exited;
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /MSGFLO_ERR_KEY/);
      });

      it('runs a graph keyed end to end: coordinator, participants, IIP and msgflo-send-message', async () => {
        const [a, b] = [uniqueName('ka'), uniqueName('kb')];
        roles.push(a, b);
        const dir = await mkdtemp(path.join(os.tmpdir(), 'msgflo-keyed-'));
        const graph = path.join(dir, 'keyed.fbp');
        await writeFile(graph, `'"configured"' -> IN ${a}(Uppercase)\n${a} OUT -> IN ${b}(Print)\n`);
        const env = { MSGFLO_BROKER: base, MSGFLO_KEY: KEY_A, MSGFLO_KEY_FILE: undefined };
        try {
          const setup = startCli('msgflo-setup', [graph, '--participants', '--discover', '--timeout', '20'], { env });
          await setup.waitForOutput(new RegExp(`PRINT\\[${b}\\] "CONFIGURED"`), { timeoutMs: 30_000 });
          const sent = await startCli('msgflo-send-message', ['--queue', `${a}.IN`, '--json', `{"secret":"${SECRET}"}`], { env }).exited;
          assert.equal(sent.code, 0, sent.stderr);
          await setup.waitForOutput(new RegExp(`PRINT\\[${b}\\] \\{"secret":"THE-LAUNCH-CODE-IS-0000"\\}`), { timeoutMs: 10_000 });
          const unkeyed = await startCli('msgflo-send-message', ['--queue', `${a}.IN`, '--json', '"plain"'], { env: { ...env, MSGFLO_KEY: undefined } }).exited;
          assert.equal(unkeyed.code, 0, unkeyed.stderr);
          await setup.waitForOutput(new RegExp(`${a}: input on 'in' dead-lettered: MSGFLO_ERR_DECRYPT`), { timeoutMs: 10_000 });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
}

keyedSuite('direct (in-memory)', async () => `direct://${uniqueName('keyed')}`, undefined);
keyedSuite(
  'RabbitMQ @broker',
  async function (this: Mocha.Context) {
    await requireBroker(this, AMQP_URL);
    return AMQP_URL;
  },
  'amqp',
);
keyedSuite(
  'Mosquitto @broker',
  async function (this: Mocha.Context) {
    await requireBroker(this, MQTT_URL);
    return MQTT_URL;
  },
  'mqtt',
);

describe('KeyedTransport', () => {
  it('exposes the transport underneath, which sees sealed bodies', async () => {
    const url = `direct://${uniqueName('k')}`;
    const keyed = (await connectTransport(url, { keyring: Keyring.fromSecrets([KEY_A]) })) as KeyedTransport;
    assert.ok(keyed instanceof KeyedTransport);
    const plain: Transport = keyed.unkeyed;
    await keyed.createQueue('inqueue', 'q');
    await keyed.send('inqueue', 'q', 'hello');
    const got = new Collector<Delivery>();
    await plain.subscribe('q', (d) => {
      void d.ack();
      got.push(d);
    });
    const [d] = await got.waitCount(1);
    assert.ok(isSealed(d!.data));
    await keyed.close();
  });
});
