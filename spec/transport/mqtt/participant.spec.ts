/**
 * Instances and at-most-once ports from the participant's side (issue 5): `msgflo-participant --instance` (and
 * MSGFLO_INSTANCE, which the launcher sets) give an MQTT participant a session the broker keeps, so what arrives
 * while it is stopped or restarting waits for it; two processes claiming one instance are told apart; a `fast`
 * outport sends at most once on MQTT (QoS 0) and on RabbitMQ (transient, unconfirmed).
 */
import assert from 'node:assert/strict';
import { connect as amqpConnect } from 'amqplib';
import mqtt from 'mqtt';
import { ErrorCodes } from '../../../src/errors.js';
import { Launcher } from '../../../src/coordinator/launcher.js';
import { defineParticipant } from '../../../src/participant/definition.js';
import { Participant } from '../../../src/participant/participant.js';
import { connectTransport } from '../../../src/transport/index.js';
import type { Delivery, Transport } from '../../../src/transport/types.js';
import { type PrivateMosquitto, startPrivateMosquittoOrSkip } from '../../faults/harness.js';
import { AMQP_URL, requireBroker, uniqueName } from '../../helpers/brokers.js';
import { cleanupRoles } from '../../helpers/cleanup.js';
import { REPO_ROOT, runCli, startCli, stopAllClis } from '../../helpers/cli.js';
import { Collector, sleep, waitFor } from '../../helpers/wait.js';

const REPEAT = 'participants/Repeat.js';

describe('msgflo-participant instances on MQTT @broker', function () {
  this.timeout(40_000);
  let broker: PrivateMosquitto;
  const open: Transport[] = [];

  before(async function () {
    broker = await startPrivateMosquittoOrSkip(this);
  });
  after(async () => {
    await broker?.stop();
  });
  afterEach(async () => {
    await stopAllClis('SIGTERM');
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  async function client(): Promise<Transport> {
    const t = await connectTransport(broker.url, { name: uniqueName('spec'), keyring: null });
    open.push(t);
    return t;
  }

  it('documents --instance in its help', async () => {
    const r = await runCli('msgflo-participant', ['--help']);
    assert.match(r.stdout, /--instance ID/);
  });

  it('refuses an instance id that is not a short token', async () => {
    const r = await runCli('msgflo-participant', [REPEAT, '--name', uniqueName('r'), '--instance', 'a b/c', '--broker', broker.url]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--instance .*must be 1-64 letters, digits.*got 'a b\/c'/);
  });

  it('a participant stopped (SIGTERM) and started again with its instance id gets what was sent meanwhile', async () => {
    const role = uniqueName('rep');
    const observer = await client();
    const out = new Collector<Delivery>();
    await observer.subscribe(
      `${role}.OUT`,
      (d) => {
        out.push(d);
        void d.ack();
      },
      { group: 'observer' },
    );
    const args = [REPEAT, '--name', role, '--broker', broker.url];
    const first = startCli('msgflo-participant', args, { env: { MSGFLO_INSTANCE: '0' } });
    await first.waitForOutput(/connected to/, { timeoutMs: 20_000 });
    await observer.send('inqueue', `${role}.IN`, 'while up');
    await out.waitCount(1, 10_000);
    const stopped = await first.stop('SIGTERM', 15_000);
    assert.equal(stopped.code, 0, stopped.stderr);

    for (const text of ['while away 1', 'while away 2']) await observer.send('inqueue', `${role}.IN`, text);
    await sleep(300);
    assert.equal(out.items.length, 1, 'nothing is handled while the participant is away');

    const second = startCli('msgflo-participant', [...args, '--instance', '0']);
    await second.waitForOutput(/connected to/, { timeoutMs: 20_000 });
    const items = await out.waitCount(3, 15_000, 'what was sent while the participant was away');
    // The two waiting inputs are handled at once: their outputs may come in either order.
    assert.deepEqual(items.map((d) => d.data as string).sort(), ['while away 1', 'while away 2', 'while up']);
    await second.stop('SIGTERM', 15_000);
    await cleanupRoles(broker.url, [role]);
  });

  it('a second process with the same role and instance id makes the first exit with MSGFLO_ERR_INSTANCE_CONFLICT', async () => {
    const role = uniqueName('dup');
    const args = [REPEAT, '--name', role, '--instance', '3', '--broker', broker.url];
    const first = startCli('msgflo-participant', args);
    await first.waitForOutput(/connected to/, { timeoutMs: 20_000 });
    const second = startCli('msgflo-participant', args);
    await second.waitForOutput(/connected to/, { timeoutMs: 20_000 });
    const r = await first.exited;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${ErrorCodes.INSTANCE_CONFLICT}.*${role}-3`));
    assert.equal(second.done, false, 'the newer process keeps running');
    const observer = await client();
    const out = new Collector<Delivery>();
    await observer.subscribe(`${role}.OUT`, (d) => void d.ack().then(() => out.push(d)), { group: 'observer' });
    await observer.send('inqueue', `${role}.IN`, 'to the newer one');
    assert.equal((await out.waitCount(1, 10_000))[0]!.data, 'to the newer one');
    await cleanupRoles(broker.url, [role]);
  });
});

describe('the launcher hands each process its instance id', function () {
  this.timeout(20_000);

  it('as MSGFLO_INSTANCE: 0 by default, or the one its launch spec gives', async () => {
    const out: string[] = [];
    const launcher = new Launcher({ broker: 'direct://x', cwd: REPO_ROOT, stdout: { write: (t: string) => out.push(t) }, restart: false });
    const script = 'process.stdout.write("instance=" + process.env.MSGFLO_INSTANCE + "\\n")';
    try {
      launcher.start({ role: 'plain', command: [process.execPath, '-e', script] });
      launcher.start({ role: 'second', command: [process.execPath, '-e', script], instance: '1' });
      await waitFor(() => out.length === 2, 'both outputs');
      assert.deepEqual(out.sort(), ['plain | instance=0\n', 'second | instance=1\n']);
    } finally {
      await launcher.stopAll();
    }
  });
});

const fastParticipant = defineParticipant({
  component: 'FastOut',
  inports: [{ id: 'in', type: 'any' }],
  outports: [
    { id: 'out', type: 'any' },
    { id: 'telemetry', type: 'any', fast: true },
  ],
  process: (_port, data, send) => {
    send('out', data);
    send('telemetry', data);
  },
});

describe('a fast (at-most-once) outport @broker', function () {
  this.timeout(30_000);

  it('on MQTT publishes at QoS 0; the other ports at QoS 1', async function () {
    const broker = await startPrivateMosquittoOrSkip(this);
    const role = uniqueName('fast');
    const t = await connectTransport(broker.url, { name: role, keyring: null });
    const participant = new Participant(fastParticipant, t, { role, heartbeat: 60 });
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    try {
      await participant.start();
      await raw.subscribeAsync([`${role}.OUT`, `${role}.TELEMETRY`], { qos: 1 });
      const seen = new Map<string, number>();
      raw.on('message', (topic, _p, packet) => seen.set(topic, packet.qos));
      const sender = await connectTransport(broker.url, { name: 'sender', keyring: null });
      await sender.send('inqueue', `${role}.IN`, { x: 1 });
      await sender.close();
      await waitFor(() => seen.size === 2, 'both outputs');
      assert.equal(seen.get(`${role}.OUT`), 1);
      assert.equal(seen.get(`${role}.TELEMETRY`), 0);
    } finally {
      await raw.endAsync(true);
      await participant.stop();
      await broker.stop();
    }
  });

  it('on RabbitMQ publishes transient messages to a non-durable exchange; the other ports persistent', async function () {
    await requireBroker(this, AMQP_URL);
    const role = uniqueName('fast');
    const t = await connectTransport(AMQP_URL, { name: role, keyring: null });
    const participant = new Participant(fastParticipant, t, { role, heartbeat: 60 });
    const conn = await amqpConnect(AMQP_URL);
    const ch = await conn.createChannel();
    try {
      await participant.start();
      const seen = new Map<string, number | undefined>();
      for (const port of ['OUT', 'TELEMETRY']) {
        const { queue } = await ch.assertQueue('', { exclusive: true });
        await ch.bindQueue(queue, `${role}.${port}`, '');
        await ch.consume(queue, (m) => m && seen.set(port, m.properties.deliveryMode as number | undefined), { noAck: true });
      }
      await t.send('inqueue', `${role}.IN`, { x: 1 });
      await waitFor(() => seen.size === 2, 'both outputs');
      assert.equal(seen.get('OUT'), 2, 'persistent');
      assert.notEqual(seen.get('TELEMETRY'), 2, 'transient');
    } finally {
      await ch.close().catch(() => {});
      await conn.close().catch(() => {});
      await participant.stop();
      await cleanupRoles(AMQP_URL, [role], ['IN', 'OUT', 'TELEMETRY', 'ERROR']);
    }
  });
});

