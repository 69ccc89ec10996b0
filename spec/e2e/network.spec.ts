/**
 * End to end: the real CLIs (msgflo, msgflo-setup, msgflo-participant, msgflo-send-message) as processes, on the
 * embedded broker, Mosquitto and RabbitMQ.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { runCli, startCli, stopAllClis, processAlive } from '../helpers/cli.js';
import amqplib from 'amqplib';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage } from '../../src/transport/types.js';
import { Collector, waitFor } from '../helpers/wait.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'msgflo-e2e-'));
function graphFile(source: string, name = `${uniqueName('g')}.fbp`): string {
  const file = path.join(tmp, name);
  writeFileSync(file, source);
  return file;
}
const noBroker = { MSGFLO_BROKER: undefined };

describe('e2e: npm start (msgflo on the embedded broker)', function () {
  this.timeout(30_000);
  afterEach(() => stopAllClis('SIGTERM'));

  it('runs the demo graph on an embedded broker on a free port, and stops its participants on SIGTERM', async () => {
    const msgflo = startCli('msgflo', ['--graph', 'graphs/demo.fbp'], { env: noBroker });
    const [, port] = await msgflo.waitForOutput(/embedded MQTT broker on mqtt:\/\/127\.0\.0\.1:(\d+)/);
    assert.notEqual(Number(port), 1883);
    await msgflo.waitForOutput(/PRINT\[print\] \{"n":2,"msg":"HELLO 2"/, { timeoutMs: 20_000 });
    const pids = [...msgflo.stdout.matchAll(/started \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 3);
    const result = await msgflo.stop('SIGTERM', 10_000);
    assert.equal(result.code, 0, result.stderr);
    for (const pid of pids) assert.ok(!processAlive(pid), `participant ${pid} left running`);
  });
});

for (const [name, url] of [
  ['RabbitMQ', AMQP_URL],
  ['Mosquitto', MQTT_URL],
] as const) {
  describe(`e2e on ${name} @broker`, function () {
    this.timeout(40_000);
    let roles: string[];
    const env = { MSGFLO_BROKER: url };

    before(async function () {
      await requireBroker(this, url);
    });
    beforeEach(() => {
      roles = [];
    });
    afterEach(async () => {
      await stopAllClis('SIGTERM');
      await cleanupRoles(url, roles);
    });
    const role = (prefix: string) => {
      const r = uniqueName(prefix);
      roles.push(r);
      return r;
    };

    it('msgflo-setup --participants runs a 3-hop pipeline, restarts a killed participant and re-sends its IIP', async () => {
      const [a, b, c] = [role('a'), role('b'), role('c')];
      const graph = graphFile(`'"configured"' -> IN ${a}(Repeat)\n${a} OUT -> IN ${b}(Uppercase)\n${b} OUT -> IN ${c}(Print)\n`);
      const setup = startCli('msgflo-setup', [graph, '--participants', '--discover', '--timeout', '20'], { env });
      await setup.waitForOutput(new RegExp(`PUBSUB: ${b}\\.OUT -> ${c}\\.IN`), { timeoutMs: 20_000 });
      await setup.waitForOutput(new RegExp(`PRINT\\[${c}\\] "CONFIGURED"`), { timeoutMs: 10_000 });
      const sent = await runCli('msgflo-send-message', ['--queue', `${a}.IN`, '--json', '{"word":"hello"}'], { env });
      assert.equal(sent.code, 0, sent.stderr);
      await setup.waitForOutput(new RegExp(`PRINT\\[${c}\\] \\{"word":"HELLO"\\}`));
      // kill -9 the first participant: it is restarted, rediscovered and gets its IIP again.
      const pid = Number((await setup.waitForOutput(new RegExp(`started ${a} \\(pid (\\d+)\\)`)))[1]);
      process.kill(pid, 'SIGKILL');
      await setup.waitForOutput(new RegExp(`${a} exited unexpectedly`));
      await setup.waitForOutput(new RegExp(`restarting ${a} in \\d+ ms`));
      await waitFor(() => (setup.stdout.match(new RegExp(`PRINT\\[${c}\\] "CONFIGURED"`, 'g')) ?? []).length >= 2, 'IIP again', 20_000);
      const result = await setup.stop('SIGTERM', 10_000);
      assert.equal(result.code, 0, result.stderr);
      const pids = [...result.stdout.matchAll(/started \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      for (const p of pids) assert.ok(!processAlive(p), `participant ${p} left running`);
    });

    it('one-shot msgflo-setup leaves edges that work after it exited (msgflo#181 on MQTT)', async () => {
      const [src, dst] = [role('src'), role('dst')];
      const graph = graphFile(`${src}(Repeat) OUT -> IN ${dst}(Print)\n`);
      const setup = await runCli('msgflo-setup', [graph], { env });
      assert.equal(setup.code, 0, setup.stderr);
      assert.match(setup.stdout, new RegExp(`PUBSUB: ${src}\\.OUT -> ${dst}\\.IN`));
      const p1 = startCli('msgflo-participant', ['participants/Repeat.js', '--name', src], { env });
      const p2 = startCli('msgflo-participant', ['participants/Print.js', '--name', dst], { env });
      await p1.waitForOutput(/connected to/);
      await p2.waitForOutput(/connected to/);
      const sent = await runCli('msgflo-send-message', ['--queue', `${src}.IN`, '--json', '[1,2,3]'], { env });
      assert.equal(sent.code, 0, sent.stderr);
      await p2.waitForOutput(new RegExp(`PRINT\\[${dst}\\] \\[1,2,3\\]`));
    });

    it('the msgflo coordinator expires a participant killed with -9 after 3 missed heartbeats', async () => {
      const r = role('hb');
      const msgflo = startCli('msgflo', ['--forward', ''], { env });
      await msgflo.waitForOutput(/msgflo running/);
      const p = startCli('msgflo-participant', ['participants/Drop.js', '--name', r, '--heartbeat', '1'], { env });
      await msgflo.waitForOutput(new RegExp(`\\+ participant ${r} \\(Drop\\)`));
      p.kill();
      const t0 = Date.now();
      await msgflo.waitForOutput(new RegExp(`- participant ${r} expired`), { timeoutMs: 10_000 });
      const took = Date.now() - t0;
      assert.ok(took >= 1500 && took < 6000, `expired after ${took} ms`);
    });
  });
}

describe('e2e: msgflo-setup options on the embedded broker', function () {
  this.timeout(30_000);
  afterEach(() => stopAllClis('SIGTERM'));

  it('--only and --ignore choose which roles are started; the embedded broker implies --forever', async () => {
    const file = graphFile(`a(Repeat) OUT -> IN b(Uppercase)\nb OUT -> IN c(Print)\n`);
    const setup = startCli('msgflo-setup', [file, '--participants', '--only', 'a,b', '--ignore', 'b'], { env: noBroker });
    await setup.waitForOutput(/\+ participant a \(Repeat\)/);
    await setup.waitForOutput(/keeping the network running/);
    assert.match(setup.stdout, /started a \(pid/);
    assert.doesNotMatch(setup.stdout, /started [bc] \(pid/);
    const r = await setup.stop('SIGINT');
    assert.equal(r.code, 0, r.stderr);
  });

  it('msgflo-procfile lists the commands of the participants', async () => {
    const file = graphFile(`a(Repeat) OUT -> IN b(Uppercase)\n`);
    const r = await runCli('msgflo-procfile', [file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^a: msgflo-participant --name a participants\/Repeat\.js$/m);
    assert.match(r.stdout, /^b: msgflo-participant --name b participants\/Uppercase\.ts$/m);
  });
});

describe('e2e: garbage on a running network @broker', function () {
  this.timeout(30_000);
  const env = { MSGFLO_BROKER: AMQP_URL };
  let roles: string[] = [];
  before(async function () {
    await requireBroker(this, AMQP_URL);
  });
  afterEach(async () => {
    await stopAllClis('SIGTERM');
    await cleanupRoles(AMQP_URL, roles);
    roles = [];
  });

  it('the coordinator logs invalid discovery messages and keeps discovering', async () => {
    const msgflo = startCli('msgflo', ['--forward', ''], { env });
    await msgflo.waitForOutput(/msgflo running/);
    const conn = await amqplib.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    ch.publish('fbp', '', Buffer.from('this is not json'));
    ch.sendToQueue('fbp', Buffer.from(JSON.stringify({ protocol: 'discovery', command: 'participant', payload: { id: 'x' } })));
    await ch.waitForConfirms();
    await msgflo.waitForOutput(/ignored an invalid discovery message: MSGFLO_ERR_DISCOVERY_INVALID: Invalid discovery message: body is not JSON/);
    await msgflo.waitForOutput(/ignored an invalid discovery message: .*missing 'role'/);
    await conn.close();
    const r = uniqueName('after');
    roles.push(r);
    startCli('msgflo-participant', ['participants/Drop.js', '--name', r], { env });
    await msgflo.waitForOutput(new RegExp(`\\+ participant ${r} \\(Drop\\)`));
  });

  it('a participant dead-letters a body that is not JSON on a typed port, and keeps serving', async () => {
    const r = uniqueName('tick');
    roles.push(r);
    const p = startCli('msgflo-participant', ['participants/Ticker.js', '--name', r], { env });
    await p.waitForOutput(/connected to/);
    const t = await connectTransport(AMQP_URL);
    const dead = new Collector<InMessage>();
    await t.subscribe(`dead-${r}.INTERVAL`, (d) => {
      void d.ack();
      dead.push(d);
    });
    const ticks = new Collector<InMessage>();
    await t.tap('outqueue', `${r}.OUT`, ticks.push);
    const conn = await amqplib.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    ch.sendToQueue(`${r}.INTERVAL`, Buffer.from('fast please'));
    await ch.waitForConfirms();
    await conn.close();
    const [d] = await dead.waitCount(1);
    assert.equal(d!.headers['x-msgflo-code'], 'MSGFLO_ERR_BAD_JSON');
    assert.equal(d!.raw.toString(), 'fast please');
    await p.waitForOutput(/dead-lettered: MSGFLO_ERR_BAD_JSON/);
    await t.send('inqueue', `${r}.INTERVAL`, 50);
    await ticks.waitCount(3, 5000, 'ticks after the bad input');
    await t.close();
  });
});

describe('e2e: bad input', function () {
  this.timeout(30_000);
  afterEach(() => stopAllClis('SIGTERM'));

  it('refuses a malformed graph with file, line and column (exit 1)', async () => {
    const file = graphFile(`a(Repeat) OUT -> IN b(Print)\nb OUT -> -> IN c(Drop)\n`);
    const r = await runCli('msgflo-setup', [file, '--broker', 'direct://x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`MSGFLO_ERR_GRAPH_PARSE: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+`));
  });

  it('names the unknown component and lists the known ones (exit 1)', async () => {
    const file = graphFile(`a(NoSuchThing) OUT -> IN b(Print)\n`);
    const r = await runCli('msgflo-setup', [file, '--participants'], { env: noBroker });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MSGFLO_ERR_UNKNOWN_COMPONENT: Unknown component 'NoSuchThing' \(used by node 'a'\)\. Known components: .*Print.*Repeat/);
  });

  it('names the participants that never announced themselves (--discover --timeout)', async () => {
    const file = graphFile(`ghost1(Repeat) OUT -> IN ghost2(Print)\n`);
    const r = await runCli('msgflo-setup', [file, '--discover', '--timeout', '1'], { env: noBroker });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MSGFLO_ERR_PARTICIPANT_TIMEOUT: No discovery message from 'ghost1', 'ghost2' within 1 s/);
  });

  it('fails a one-shot setup on an unreachable broker with the password masked (exit 1)', async () => {
    const file = graphFile(`a(Repeat) OUT -> IN b(Print)\n`);
    const r = await runCli('msgflo-setup', [file, '--broker', 'amqp://user:sekret@127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MSGFLO_ERR_BROKER_UNREACHABLE: Cannot connect to broker amqp:\/\/user:\*\*\*@127\.0\.0\.1:1/);
    assert.doesNotMatch(r.stdout + r.stderr, /sekret/);
  });

  it('a participant waits for an unreachable broker with backoff, and stops cleanly on SIGTERM', async () => {
    const p = startCli('msgflo-participant', ['participants/Repeat.js', '--broker', 'mqtt://127.0.0.1:1']);
    await p.waitForOutput(/retrying in \d+ ms/);
    await p.waitForOutput(/retrying in \d+ ms[\s\S]*retrying in \d+ ms/, { timeoutMs: 5000 });
    const r = await p.stop('SIGTERM');
    assert.equal(r.code, 0, r.stderr);
    // The role defaults to the file's basename (msgflo said 'unknown').
    assert.match(r.stderr, /^Repeat: /m);
  });

  it('answers --help with 0 and an unknown option with 2 for every command', async () => {
    for (const bin of ['msgflo', 'msgflo-setup', 'msgflo-participant']) {
      const help = await runCli(bin, ['--help']);
      assert.equal(help.code, 0, bin);
      assert.match(help.stdout, /^Usage: /, bin);
      const bad = await runCli(bin, ['--no-such-option']);
      assert.equal(bad.code, 2, bin);
    }
  });
});
