import assert from 'node:assert/strict';
import { main } from '../../src/cli/trace.js';
import { defineStatechartParticipant } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { stripTrace } from '../../src/statechart/index.js';
import { connectTransport } from '../../src/transport/index.js';
import type { InMessage, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { type CliHandle, fakeIO, jsonLines, startCli, stopAllClis } from '../helpers/cli.js';
import { SEED_SPY_START_B, seedMachine } from '../statechart/seed.js';
import { Collector, waitFor } from '../helpers/wait.js';

interface Line {
  kind: string;
  role: string;
  line: string;
  signal?: string;
}

const linesOf = (h: CliHandle) => jsonLines(h.stdout) as Line[];
const spyOf = (h: CliHandle, role: string) => linesOf(h).filter((l) => l.kind === 'spy' && l.role === role).map((l) => l.line);
const traceOf = (h: CliHandle, role: string) => linesOf(h).filter((l) => l.kind === 'trace' && l.role === role).map((l) => l.line);

describe('msgflo-trace (in-process, in-memory transport)', () => {
  it('says how to use it', async () => {
    const io = fakeIO();
    assert.equal(await main(['--help'], io.io), 0);
    assert.match(io.stdout(), /Usage: msgflo-trace/);
    const bad = fakeIO();
    assert.equal(await main(['--count', 'many', '--broker', 'direct://x'], bad.io), 2);
    assert.match(bad.stderr(), /--count must be a positive integer/);
    const none = fakeIO();
    assert.equal(await main([], none.io), 2);
    assert.match(none.stderr(), /No broker/);
  });

  it('prints the spy and trace of a running chart as JSON lines, then its sequence diagram', async () => {
    const url = `direct://${uniqueName('trace')}`;
    const role = uniqueName('producer');
    const def = defineStatechartParticipant({ component: 'Producer', inports: [{ id: 'A' }, { id: 'B' }], outports: [], machine: () => seedMachine() });
    const io = fakeIO();
    const run = main(['--broker', url, '--role', role, '--json', '--sequence', '--count', String(SEED_SPY_START_B.length + 2)], io.io);
    await waitFor(() => io.stderr().includes('watching'), 'msgflo-trace to listen');
    const p = new Participant(def, await connectTransport(url), { role, env: {} });
    await p.start();
    await waitFor(() => p.snoop.spy && p.snoop.trace, 'the lease');
    await waitFor(() => io.stdout().includes('<- Queued'), 'the start');
    await p.send('B', null);
    assert.equal(await run, 0);
    await p.stop();
    const lines = jsonLines(io.stdout()) as Line[];
    assert.deepEqual(
      lines.filter((l) => l.kind === 'spy').map((l) => l.line),
      SEED_SPY_START_B,
    );
    assert.deepEqual(stripTrace(lines.filter((l) => l.kind === 'trace').map((l) => l.line)), [`[${role}] e->start_at() top->c1`, `[${role}] e->B() c1->c1`]);
    const seq = lines.find((l) => l.kind === 'sequence') as unknown as { text: string };
    assert.match(seq.text, new RegExp(`\\[ Chart: ${role} \\]`));
    assert.match(seq.text, /\+start_at\(\)->\|/);
    assert.match(seq.text, /B\(\)/);
  });
});

for (const [name, url] of [
  ['RabbitMQ', AMQP_URL],
  ['Mosquitto', MQTT_URL],
] as const) {
  describe(`msgflo-trace with participant processes on ${name} @broker`, function () {
    this.timeout(60_000);
    const roles: string[] = [];
    const env = { MSGFLO_BROKER: url, MSGFLO_KEY: undefined, MSGFLO_KEY_FILE: undefined, MSGFLO_SPY: undefined, MSGFLO_TRACE: undefined };
    let t: Transport;

    before(async function () {
      await requireBroker(this, url);
      t = await connectTransport(url, { name: 'trace-spec' });
    });
    after(async () => {
      await t?.close();
      await cleanupRoles(url, roles, ['A', 'B', 'STATE', 'ERROR']);
    });
    afterEach(() => stopAllClis('SIGTERM'));

    const role = (prefix: string) => {
      const r = uniqueName(prefix);
      roles.push(r);
      return r;
    };

    it("switches spy/trace on in a running Producer and shows the seed's spy and trace for start then B", async () => {
      const r = role('producer');
      const trace = startCli('msgflo-trace', ['--role', r, '--json'], { env });
      await trace.waitForOutput(/watching/, { timeoutMs: 15_000 });
      const producer = startCli('msgflo-participant', ['participants/Producer.ts', '--name', r], { env });
      await producer.waitForOutput(/connected to/, { timeoutMs: 20_000 });
      await waitFor(() => spyOf(trace, r).includes('<- Queued:(0) Deferred:(0)'), 'the start lines', 15_000);
      await t.send('inqueue', `${r}.B`, null);
      await waitFor(() => spyOf(trace, r).length >= SEED_SPY_START_B.length && traceOf(trace, r).length >= 2, 'spy and trace of B', 15_000);
      assert.deepEqual(spyOf(trace, r), SEED_SPY_START_B);
      assert.deepEqual(stripTrace(traceOf(trace, r)), [`[${r}] e->start_at() top->c1`, `[${r}] e->B() c1->c1`]);
    });

    it('several producers, several watchers: every watcher sees every line of every producer', async () => {
      const [r1, r2] = [role('pa'), role('pb')];
      const watchers = [startCli('msgflo-trace', ['--json'], { env }), startCli('msgflo-trace', ['--json', '--role', `${r1},${r2}`], { env })];
      for (const w of watchers) await w.waitForOutput(/watching/, { timeoutMs: 15_000 });
      const producers = [r1, r2].map((r) => startCli('msgflo-participant', ['participants/Producer.ts', '--name', r, '--spy', '--trace'], { env }));
      for (const p of producers) await p.waitForOutput(/connected to/, { timeoutMs: 20_000 });
      for (const r of [r1, r2]) await t.send('inqueue', `${r}.B`, null);
      for (const w of watchers) {
        for (const r of [r1, r2]) {
          await waitFor(() => spyOf(w, r).length >= SEED_SPY_START_B.length && traceOf(w, r).length >= 2, `${r} in a watcher`, 15_000);
          assert.deepEqual(spyOf(w, r), SEED_SPY_START_B);
          assert.deepEqual(stripTrace(traceOf(w, r)), [`[${r}] e->start_at() top->c1`, `[${r}] e->B() c1->c1`]);
        }
      }
    });

    it('a watcher that falls behind (stopped) slows no participant down and misses nothing it could keep', async () => {
      const r = role('busy');
      const watcher = startCli('msgflo-trace', ['--json', '--role', r], { env });
      await watcher.waitForOutput(/watching/, { timeoutMs: 15_000 });
      const producer = startCli('msgflo-participant', ['participants/Producer.ts', '--name', r], { env });
      await producer.waitForOutput(/connected to/, { timeoutMs: 20_000 });
      await waitFor(() => spyOf(watcher, r).includes('INIT_SIGNAL:c1'), 'spy switched on', 15_000);
      const states = new Collector<InMessage>();
      await t.tap('outqueue', `${r}.STATE`, states.push);
      watcher.child.kill('SIGSTOP');
      try {
        const n = 500;
        for (let i = 0; i < n; i++) await t.send('inqueue', `${r}.A`, i);
        // Every A toggles c1/c2 and reports the state: all of them arrive while the watcher is frozen.
        await states.waitCount(n, 30_000, 'state outputs');
      } finally {
        watcher.child.kill('SIGCONT');
      }
      if (url.startsWith('amqp')) {
        // Thawed, the watcher catches up with what its queue kept (a bounded queue of 10,000 lines per watcher).
        await waitFor(() => traceOf(watcher, r).length >= 500, 'the watcher catching up', 30_000);
      } else {
        // MQTT snoop lines are QoS 0: a broker keeps only so many for a client that stopped reading (Mosquitto:
        // max_queued_messages), so what it could keep is broker-defined. The watcher must be alive and current.
        const before = traceOf(watcher, r).length;
        await t.send('inqueue', `${r}.A`, 'after the thaw');
        await waitFor(() => traceOf(watcher, r).some((l, i) => i >= before && l.includes('e->A()')), 'a line sent after the thaw', 30_000);
      }
    });
  });
}
