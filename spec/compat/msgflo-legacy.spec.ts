/**
 * Wire compatibility with the original msgflo 0.12 (npm `msgflo@0.12.3`, `msgflo-nodejs@0.11.1`, devDependencies),
 * proven with real processes on the real RabbitMQ and Mosquitto:
 *
 * - a participant written for msgflo-nodejs, run by its own `msgflo-nodejs` bin, is discovered, bound and fed by
 *   our `msgflo-setup --discover` (both directions: ours → legacy → ours) and launched, discovered, bound and fed
 *   its IIP by our `msgflo` coordinator;
 * - our participants are discovered and bound by the original `msgflo-setup --discover` and launched, discovered,
 *   bound and fed their IIP by the original `msgflo` coordinator; the original `msgflo-dump-message` reads what
 *   they announce;
 * - AMQP declarations agree both ways (no 406 PRECONDITION_FAILED).
 *
 * The msgflo-era transports are our own top-level amqplib 2.x / mqtt 5.x (msgflo-nodejs `require`s whatever is
 * there); they work for everything tested here.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as amqpConnect } from 'amqplib';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { REPO_ROOT, runCli, startCli, type CliHandle, type CliOptions, processAlive } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

// ── the original msgflo, as installed from npm ───────────────────────────────────────────────────────────────

const LEGACY_NODEJS = 'node_modules/msgflo-nodejs/bin/msgflo-nodejs';
const LEGACY_SETUP = 'node_modules/msgflo/bin/msgflo-setup';
const LEGACY_MSGFLO = 'node_modules/msgflo/bin/msgflo';
const LEGACY_DUMP = 'node_modules/msgflo/bin/msgflo-dump-message';
/** A msgflo-nodejs participant (CoffeeScript factory), as in msgflo-nodejs's examples. */
const LEGACY_PARTICIPANT = 'spec/fixtures/legacy/participants/LegacyRepeat.coffee';
/** Declares queues / makes bindings with msgflo-nodejs's own AMQP client. */
const LEGACY_DECLARE = 'spec/fixtures/legacy/declare.cjs';

const tmp = mkdtempSync(path.join(tmpdir(), 'msgflo-compat-'));
const EMPTY_DIR = path.join(tmp, 'no-participants');
mkdirSync(EMPTY_DIR);

function tmpFile(name: string, content: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, content);
  return file;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A RegExp that matches the template's text literally (`\n`, `\t` are the characters). */
const re = (strings: TemplateStringsArray, ...values: string[]) =>
  new RegExp(strings.reduce((acc, s, i) => acc + esc(s) + (i < values.length ? esc(values[i]!) : ''), ''));


/** Direct children of `pid` (Linux). */
function childPids(pid: number | undefined): number[] {
  if (!pid) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// ── processes: every one is tracked and killed after each test ───────────────────────────────────────────────

const handles: CliHandle[] = [];
/** Processes started by processes we started (the original coordinator does not stop its children). */
const grandchildren = new Set<number>();

function start(bin: string, args: string[], options: CliOptions = {}): CliHandle {
  const h = startCli(bin, args, options);
  handles.push(h);
  return h;
}

async function stopAll(): Promise<void> {
  // SIGKILL: a graceful stop of one of our participants sends `discovery:leave`, which crashes a waiting
  // original msgflo-setup (see the pending test at the end).
  for (const h of handles) for (const pid of childPids(h.pid)) grandchildren.add(pid);
  await Promise.all(handles.splice(0).map((h) => h.stop('SIGKILL', 3000)));
  for (const pid of grandchildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  grandchildren.clear();
}

/** One of our participants (msgflo-participant), heartbeating every second so late observers see it soon. */
function ours(file: 'Repeat' | 'Print', role: string, broker: string): CliHandle {
  return start('msgflo-participant', [`participants/${file}.js`, '--name', role, '--broker', broker, '--heartbeat', '1']);
}

/**
 * A msgflo-nodejs participant run by the original `msgflo-nodejs` bin. MSGFLO_DISCOVERY_PERIOD=2: it re-announces
 * every 0.9 s instead of 27 s, so an observer that missed the first announcement (MQTT) soon sees one.
 */
function legacy(role: string, broker: string): CliHandle {
  return start(LEGACY_NODEJS, ['--name', role, LEGACY_PARTICIPANT], { env: { MSGFLO_BROKER: broker, MSGFLO_DISCOVERY_PERIOD: '2' } });
}

async function connected(...hs: CliHandle[]): Promise<void> {
  await Promise.all(hs.map((h) => h.waitForOutput(/ connected to /, { stream: 'stdout', timeoutMs: 15_000 })));
}

async function send(broker: string, queue: string, data: unknown): Promise<void> {
  const r = await runCli('msgflo-send-message', ['--broker', broker, '--queue', queue, '--json', JSON.stringify(data)]);
  assert.equal(r.code, 0, r.stderr);
}

/**
 * Work around the `discovery:leave` crash (pending test below): our participants stopped by earlier specs leave
 * `leave` messages in the durable `fbp` queue for up to 60 s, and the original msgflo-setup --discover dies on
 * the first one it reads. Our discovery relay takes our messages off the queue (and puts msgflo-era ones back on
 * the `fbp` exchange, where the queue gets them again).
 */
async function drainFbpQueue(): Promise<void> {
  const t = await connectTransport(AMQP_URL, { name: 'compat-drain' });
  const conn = await amqpConnect(AMQP_URL);
  try {
    const sub = await t.onDiscovery(() => {});
    const ch = await conn.createChannel();
    await waitFor(async () => (await ch.checkQueue('fbp')).messageCount === 0, 'the fbp queue to be drained', 5000);
    await sub.cancel();
  } finally {
    await conn.close().catch(() => {});
    await t.close();
  }
}

// ── the specs ────────────────────────────────────────────────────────────────────────────────────────────────

describe('compat: msgflo 0.12 (npm msgflo / msgflo-nodejs) @broker', function () {
  this.timeout(30_000);

  before(function () {
    for (const f of [LEGACY_NODEJS, LEGACY_SETUP, LEGACY_MSGFLO, LEGACY_DUMP]) {
      assert.ok(existsSync(path.join(REPO_ROOT, f)), `${f} is missing: npm install (msgflo@0.12.3 is a devDependency)`);
    }
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [name, url] of [
    ['RabbitMQ', AMQP_URL],
    ['Mosquitto', MQTT_URL],
  ] as const) {
    const amqp = url === AMQP_URL;

    describe(`on ${name}`, function () {
      let roles: string[] = [];
      const role = (prefix: string) => {
        const r = uniqueName(prefix);
        roles.push(r);
        return r;
      };

      before(async function () {
        await requireBroker(this, url);
      });
      afterEach(async () => {
        await stopAll();
        await cleanupRoles(url, roles, ['IN', 'OUT', 'ERROR']);
        roles = [];
      });

      it('our msgflo-setup --discover binds a msgflo-nodejs participant between two of ours; data flows both ways', async () => {
        const [s, l, k] = [role('s'), role('l'), role('k')];
        const graph = tmpFile(`${uniqueName('a')}.fbp`, `${s}(Repeat) OUT -> IN ${l}(LegacyRepeat) OUT -> IN ${k}(Print)\n`);
        const [ps, pl, pk] = [ours('Repeat', s, url), legacy(l, url), ours('Print', k, url)];
        await connected(ps, pl, pk);

        const setupArgs = [graph, '--broker', url, '--discover', '--timeout', '15'];
        let setup: CliHandle | undefined;
        let out: string;
        if (amqp) {
          const r = await runCli('msgflo-setup', setupArgs, { timeoutMs: 20_000 });
          assert.equal(r.code, 0, r.stderr);
          out = r.stdout;
        } else {
          // On MQTT the edge into the msgflo-era participant lives in the setup process: --forever.
          setup = start('msgflo-setup', [...setupArgs, '--forever']);
          await setup.waitForOutput(/--forever: keeping the network running/, { stream: 'stdout', timeoutMs: 20_000 });
          out = setup.stdout;
        }
        assert.match(out, re`+ participant ${l} (LegacyRepeat) ${l}-`);
        assert.match(out, re`Set up participants ['${s}', '${l}', '${k}']`);
        if (amqp) {
          assert.match(out, re` PUBSUB: ${s}.OUT -> ${l}.IN\n`);
          assert.match(out, re` PUBSUB: ${l}.OUT -> ${k}.IN\n`);
        } else {
          // Bridged only where the target cannot follow binding records (the msgflo-era participant).
          assert.match(out, re` PUBSUB: ${s}.OUT -> ${l}.IN (bridged in this process)\n`);
          assert.match(out, re` PUBSUB: ${l}.OUT -> ${k}.IN\n`);
        }

        await send(url, `${s}.IN`, { hop: 'ours->legacy->ours' });
        await pl.waitForOutput(re`LEGACY[${l}] in: {"hop":"ours->legacy->ours"}`, { stream: 'stdout' });
        await pk.waitForOutput(re`PRINT[${k}] {"hop":"ours->legacy->ours"}`, { stream: 'stdout' });

        if (setup) {
          const r = await setup.stop('SIGTERM', 5000);
          assert.equal(r.code, 0, r.stderr);
          // The legacy → ours edge is a binding record our participant follows: it outlives msgflo-setup.
          await send(url, `${l}.IN`, { after: 'setup stopped' });
          await pl.waitForOutput(re`LEGACY[${l}] in: {"after":"setup stopped"}`, { stream: 'stdout' });
          await pk.waitForOutput(re`PRINT[${k}] {"after":"setup stopped"}`, { stream: 'stdout' });
        }
      });

      it('our msgflo coordinator launches a msgflo-nodejs participant from the library, discovers and binds it, and sends its IIP', async () => {
        const [l, k] = [role('l'), role('k')];
        const graph = tmpFile(`${uniqueName('b')}.fbp`, `'{"iip":"${l}"}' -> IN ${l}(LegacyRepeat) OUT -> IN ${k}(Print)\n`);
        const library = tmpFile(
          `${uniqueName('lib')}.json`,
          JSON.stringify({
            msgflo: {
              namespace: '',
              components: {
                LegacyRepeat: `msgflo-nodejs --name #ROLE ${LEGACY_PARTICIPANT}`,
                Print: 'msgflo-participant --name #ROLE participants/Print.js',
              },
            },
          }),
        );
        // MSGFLO_DISCOVERY_PERIOD reaches the children: quick re-announcements, should the first one be missed.
        const msgflo = start('msgflo', ['--graph', graph, '--broker', url, '--library', library], { env: { MSGFLO_DISCOVERY_PERIOD: '2' } });
        const wait = (pattern: RegExp) => msgflo.waitForOutput(pattern, { stream: 'stdout', timeoutMs: 15_000 });
        await wait(re`started ${l} (pid `);
        assert.match(msgflo.stdout, re`: msgflo-nodejs --name ${l} ${LEGACY_PARTICIPANT}\n`);
        await wait(re`${l} | ${l} connected to `);
        await wait(re`+ participant ${l} (LegacyRepeat) ${l}-`);
        // Our participant follows the binding record on MQTT: no bridge needed for this edge.
        await wait(re`bound PUBSUB: ${l}.OUT -> ${k}.IN\n`);
        await wait(re`IIP -> ${l}.IN: {"iip":"${l}"}`);
        await wait(re`${l} | LEGACY[${l}] in: {"iip":"${l}"}`);
        // On AMQP the binding exists on the broker before the IIP is sent. (On MQTT the follower's subscription
        // may come a moment after the record, so the IIP's echo can be lost: not asserted there.)
        if (amqp) await wait(re`${k} | PRINT[${k}] {"iip":"${l}"}`);

        await send(url, `${l}.IN`, { n: 2 });
        await wait(re`${k} | PRINT[${k}] {"n":2}`);

        const pids = [...msgflo.stdout.matchAll(/started \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
        assert.equal(pids.length, 2);
        const r = await msgflo.stop('SIGTERM', 10_000);
        assert.equal(r.code, 0, r.stderr);
        for (const pid of pids) assert.ok(!processAlive(pid), `participant ${pid} left running`);
      });

      it('the original msgflo-setup --discover binds two of our participants; data flows', async () => {
        const [a, b] = [role('a'), role('b')];
        const graph = tmpFile(`${uniqueName('c')}.fbp`, `${a}(Repeat) OUT -> IN ${b}(Print)\n`);
        // The original's default namespace (the package name) would break its discovery handling (reference §2.6).
        const library = tmpFile(`${uniqueName('lib')}.json`, JSON.stringify({ msgflo: { namespace: '', components: {} } }));
        const [pa, pb] = [ours('Repeat', a, url), ours('Print', b, url)];
        await connected(pa, pb);

        const args = [graph, '--broker', url, '--discover', '--timeout', '15', '--library', library, '--componentdir', EMPTY_DIR];
        if (amqp) {
          await drainFbpQueue();
          const r = await runCli(LEGACY_SETUP, args, { timeoutMs: 20_000 });
          assert.equal(r.code, 0, `original msgflo-setup failed:\n${r.stdout}\n${r.stderr}`);
          assert.match(r.stdout, re`PUBSUB: \t ${a}.OUT -> ${b}.IN`);
        } else {
          // MQTT: the original keeps its edges in its own process.
          const setup = start(LEGACY_SETUP, [...args, '--forever']);
          await setup.waitForOutput(/--forever enabled, keeping alive/, { stream: 'stdout', timeoutMs: 20_000 });
          assert.match(setup.stdout, re`PUBSUB: \t ${a}.OUT -> ${b}.IN`);
        }

        await send(url, `${a}.IN`, { to: 'original setup' });
        await pb.waitForOutput(re`PRINT[${b}] {"to":"original setup"}`, { stream: 'stdout' });
      });
    });
  }

  describe('only on RabbitMQ', function () {
    let roles: string[] = [];
    const role = (prefix: string) => {
      const r = uniqueName(prefix);
      roles.push(r);
      return r;
    };
    let t: Transport | undefined;
    const extraQueues: string[] = [];
    const extraExchanges: string[] = [];

    before(async function () {
      await requireBroker(this, AMQP_URL);
      t = await connectTransport(AMQP_URL, { name: 'compat-spec' });
    });
    afterEach(async () => {
      await stopAll();
      for (const q of extraQueues.splice(0)) await t!.removeQueue('inqueue', q).catch(() => {});
      for (const x of extraExchanges.splice(0)) await t!.removeQueue('outqueue', x).catch(() => {});
      await cleanupRoles(AMQP_URL, roles, ['IN', 'OUT', 'ERROR', 'DL', 'T']);
      roles = [];
    });
    after(async () => {
      await t?.close();
    });

    it('the original msgflo coordinator launches our participants from its library, binds them and sends its IIP', async () => {
      const [a, b] = [role('a'), role('b')];
      const graph = tmpFile(`${uniqueName('o')}.fbp`, `'hello' -> IN ${b}(Print)\n${a}(Repeat) OUT -> IN ${b}(Print)\n`);
      const library = tmpFile(
        `${uniqueName('lib')}.json`,
        JSON.stringify({
          msgflo: {
            namespace: '',
            components: {
              // The original splits commands on spaces and runs them without a shell.
              Repeat: 'node bin/msgflo-participant.js participants/Repeat.js --name #ROLE --heartbeat 1',
              Print: 'node bin/msgflo-participant.js participants/Print.js --name #ROLE --heartbeat 1',
            },
          },
        }),
      );
      const port = await freePort();
      const msgflo = start(LEGACY_MSGFLO, [
        '--graph', graph, '--broker', AMQP_URL, '--library', library, '--componentdir', EMPTY_DIR,
        '--port', String(port), '--wait-timeout', '20',
      ]);
      // It prints this once the graph is loaded: participants started and discovered, edges bound, IIPs sent.
      await msgflo.waitForOutput(re`msgflo started on ws://localhost:${String(port)}`, { stream: 'stdout', timeoutMs: 25_000 });
      // It never stops its children itself: note them now so that they are killed after the test.
      for (const pid of childPids(msgflo.pid)) grandchildren.add(pid);
      assert.equal(grandchildren.size, 2, `expected 2 children, got ${[...grandchildren].join(', ')}`);
      await msgflo.waitForOutput(re`PRINT[${b}] "hello"`, { stream: 'stdout' });
      await send(AMQP_URL, `${a}.IN`, { to: 'original coordinator' });
      await msgflo.waitForOutput(re`PRINT[${b}] {"to":"original coordinator"}`, { stream: 'stdout' });
    });

    it('the original msgflo-dump-message reads our discovery messages', async () => {
      const p = role('p');
      // A queue of our own bound to the fbp exchange: it gets every announcement, and nothing else takes them.
      const q = `${uniqueName('fbpcopy')}.IN`;
      extraQueues.push(q);
      await t!.createQueue('inqueue', q, { persistent: false });
      await t!.addBinding({ type: 'pubsub', src: 'fbp', tgt: q });
      // The broker is shared: other runs' announcements land in the copy too, so read enough of them that ours,
      // at 20 a second, are among them.
      const participant = start('msgflo-participant', ['participants/Repeat.js', '--name', p, '--broker', AMQP_URL, '--heartbeat', '0.05']);
      await connected(participant);
      const r = await runCli(LEGACY_DUMP, ['--broker', AMQP_URL, '--queue', q, '--amount', '60'], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stderr);
      const messages = JSON.parse(r.stdout) as Array<{ protocol: string; command: string; payload: Record<string, unknown> }>;
      assert.equal(messages.length, 60);
      const mine = messages.filter((m) => m.payload?.role === p);
      assert.ok(mine.length > 0, `none of our announcements among ${r.stdout}`);
      const m = mine[0]!;
      assert.equal(m.protocol, 'discovery');
      assert.equal(m.command, 'participant');
      assert.match(String(m.payload.id), re`${p}-`);
      assert.equal(m.payload.component, 'Repeat');
      assert.deepEqual(
        (m.payload.inports as Array<{ id: string; queue: string }>).map(({ id, queue }) => ({ id, queue })),
        [{ id: 'in', queue: `${p}.IN` }],
      );
    });

    describe('queue declarations agree with msgflo-nodejs (no 406 PRECONDITION_FAILED)', function () {
      async function legacyDeclare(ops: unknown[]): Promise<{ code: number | null; out: string }> {
        const r = await runCli(LEGACY_DECLARE, [AMQP_URL, JSON.stringify(ops)], { timeoutMs: 10_000 });
        return { code: r.code, out: `${r.stdout}${r.stderr}` };
      }
      const both = (r: string) => ({
        inq: `${r}.IN`,
        transientInq: `${r}.T`,
        outq: `${r}.OUT`,
        transientOutq: `${r}.ERROR`,
      });
      const legacyOps = (n: ReturnType<typeof both>) => [
        { create: 'inqueue', name: n.inq },
        { create: 'inqueue', name: n.transientInq, options: { persistent: false } },
        { create: 'outqueue', name: n.outq },
        { create: 'outqueue', name: n.transientOutq, options: { persistent: false } },
      ];
      async function ourDeclarations(n: ReturnType<typeof both>): Promise<void> {
        await t!.createQueue('inqueue', n.inq);
        await t!.createQueue('inqueue', n.transientInq, { persistent: false });
        await t!.createQueue('outqueue', n.outq);
        await t!.createQueue('outqueue', n.transientOutq, { persistent: false });
      }

      it('declared by us, then by msgflo-nodejs', async () => {
        const n = both(role('d'));
        await ourDeclarations(n);
        const r = await legacyDeclare(legacyOps(n));
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /ok 4\ndone/);
        // The check is not vacuous: a declaration that differs is refused.
        const bad = await legacyDeclare([{ create: 'inqueue', name: n.inq, options: { persistent: false } }]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.out, /PRECONDITION_FAILED/);
      });

      it('declared by msgflo-nodejs, then by us', async () => {
        const n = both(role('d'));
        const r = await legacyDeclare(legacyOps(n));
        assert.equal(r.code, 0, r.out);
        await ourDeclarations(n);
        // …and our participant can consume the inqueue msgflo-nodejs declared.
        const sub = await t!.subscribe(n.inq, (d) => void d.ack());
        await sub.cancel();
      });

      it('roundrobin bindings with a dead letter queue, made by either side first', async () => {
        for (const first of ['msgflo-nodejs', 'ours'] as const) {
          const r = role('rr');
          const [src, tgt, dl] = [`${r}.OUT`, `${r}.IN`, `${r}.DL`];
          extraExchanges.push(`out-${src}`);
          const binding = { type: 'roundrobin' as const, src, tgt, deadletter: dl };
          const viaLegacy = async () => {
            const out = await legacyDeclare([
              { create: 'outqueue', name: src },
              { create: 'inqueue', name: tgt },
              { create: 'inqueue', name: dl },
              { bind: binding },
            ]);
            assert.equal(out.code, 0, `${first} first: ${out.out}`);
          };
          const viaOurs = async () => {
            await t!.createQueue('outqueue', src);
            await t!.createQueue('inqueue', tgt);
            await t!.createQueue('inqueue', dl);
            await t!.addBinding(binding);
          };
          if (first === 'ours') {
            await viaOurs();
            await viaLegacy();
          } else {
            await viaLegacy();
            await viaOurs();
          }
        }
      });
    });

    // A msgflo-ts participant that stops gracefully says goodbye with a discovery message flagged `leaving`: the
    // original tools (which throw on any command but 'participant') must take it as one more heartbeat.
    it('the original msgflo-setup --discover survives one of our participants stopping (leaving heartbeat)', async () => {
      const [a, b] = [role('a'), role('b')];
      const graph = tmpFile(`${uniqueName('leave')}.fbp`, `${a}(Repeat) OUT -> IN ${b}(Print)\n`);
      const library = tmpFile(`${uniqueName('lib')}.json`, JSON.stringify({ msgflo: { namespace: '', components: {} } }));
      await drainFbpQueue();
      const setup = start(LEGACY_SETUP, [graph, '--broker', AMQP_URL, '--discover', '--timeout', '15', '--library', library, '--componentdir', EMPTY_DIR]);
      const leaver = ours('Repeat', role('leaver'), AMQP_URL);
      await connected(leaver);
      await leaver.stop('SIGTERM', 5000);
      const pa = ours('Repeat', a, AMQP_URL);
      const pb = ours('Print', b, AMQP_URL);
      await connected(pa, pb);
      const r = await setup.exited;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, re`PUBSUB: \t ${a}.OUT -> ${b}.IN`);
    });
  });
});
