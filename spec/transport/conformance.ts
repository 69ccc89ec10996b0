/**
 * The one transport conformance suite: every transport (direct, embedded MQTT, Mosquitto, RabbitMQ) must pass it.
 * A few behaviours only make sense with broker-side topology (`caps.amqpTopology`).
 */
import assert from 'node:assert/strict';
import { ErrorCodes, TransportClosedError, QueueNotFoundError } from '../../src/errors.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Delivery, InMessage, Transport } from '../../src/transport/types.js';
import { within } from '../../src/util/within.js';
import { uniqueName } from '../helpers/brokers.js';
import { Collector, sleep, waitFor } from '../helpers/wait.js';

export interface ConformanceTarget {
  name: string;
  /** Resolves the broker URL (may start a broker); called in before(). */
  url: () => Promise<string>;
  /** Called in before() with the mocha context: skip or fail when the broker is missing. */
  precondition?: (ctx: Mocha.Context) => Promise<void>;
  teardown?: () => Promise<void>;
  caps: { amqpTopology: boolean; sharedGroups: boolean };
}

function reasonOf(m: InMessage): string | undefined {
  if (m.headers['x-msgflo-reason']) return m.headers['x-msgflo-reason'];
  const d = m.data as Record<string, unknown> | null;
  return typeof d === 'object' && d !== null && typeof d['x-msgflo-reason'] === 'string' ? (d['x-msgflo-reason'] as string) : undefined;
}

/** The code a dead letter carries: in its headers, or (MQTT 3.1.1) in the JSON wrapper around the body. */
function deadCodeOf(m: InMessage): string | undefined {
  if (m.headers['x-msgflo-code']) return m.headers['x-msgflo-code'];
  const d = m.data as Record<string, unknown> | null;
  return typeof d === 'object' && d !== null && typeof d['x-msgflo-code'] === 'string' ? (d['x-msgflo-code'] as string) : undefined;
}

export function transportConformance(target: ConformanceTarget): void {
  describe(`transport conformance: ${target.name}`, function () {
    let url: string;
    const open: Transport[] = [];
    const declared: Array<{ t: Transport; kind: 'inqueue' | 'outqueue'; name: string }> = [];
    let prefix: string;

    async function client(): Promise<Transport> {
      const t = await connectTransport(url, { name: prefix });
      open.push(t);
      return t;
    }
    async function inqueue(t: Transport, suffix: string): Promise<string> {
      const name = `${prefix}.${suffix}`;
      await t.createQueue('inqueue', name);
      declared.push({ t, kind: 'inqueue', name });
      return name;
    }
    async function outqueue(t: Transport, suffix: string): Promise<string> {
      const name = `${prefix}.${suffix}`;
      await t.createQueue('outqueue', name);
      declared.push({ t, kind: 'outqueue', name });
      return name;
    }
    async function consume(t: Transport, queue: string, autoAck = true, group?: string): Promise<Collector<Delivery>> {
      const c = new Collector<Delivery>();
      await t.subscribe(
        queue,
        (d) => {
          if (autoAck) void d.ack();
          c.push(d);
        },
        group ? { group } : {},
      );
      return c;
    }

    before(async function () {
      this.timeout(20000);
      if (target.precondition) await target.precondition(this);
      url = await target.url();
    });
    beforeEach(() => {
      prefix = uniqueName('conf');
    });
    afterEach(async function () {
      this.timeout(10000);
      for (const { t, kind, name } of declared.splice(0)) {
        try {
          const cleaner = open.includes(t) ? t : await client();
          await cleaner.removeQueue(kind, name);
          if (kind === 'inqueue') await cleaner.removeQueue('inqueue', `dead-${name}`).catch(() => {});
        } catch {
          /* already gone */
        }
      }
      for (const t of open.splice(0)) {
        // Only this test's bindings: on MQTT listBindings shows every record on the (shared) broker.
        const bindings = await t.listBindings().catch(() => []);
        for (const b of bindings) if (b.src.startsWith(prefix) || b.tgt.startsWith(prefix)) await t.removeBinding(b).catch(() => {});
        await t.close();
      }
    });
    after(async () => {
      await target.teardown?.();
    });

    it('sends to an outqueue nobody listens to without failing', async () => {
      const t = await client();
      const out = await outqueue(t, 'OUT');
      await t.send('outqueue', out, { lonely: true });
    });

    it('delivers JSON sent to an inqueue, with a message id', async () => {
      const t = await client();
      const q = await inqueue(t, 'IN');
      const got = await consume(t, q);
      await t.send('inqueue', q, { hello: 'world', n: 1 }, { id: 'fixed-id-1' });
      const [d] = await got.waitCount(1);
      assert.deepEqual(d!.data, { hello: 'world', n: 1 });
      assert.equal(d!.jsonError, undefined);
      assert.equal(d!.queue, q);
      if (target.caps.amqpTopology) assert.equal(d!.id, 'fixed-id-1');
    });

    it('keeps the order of messages from one sender to one consumer', async () => {
      const t = await client();
      const q = await inqueue(t, 'IN');
      const got = await consume(t, q);
      for (let i = 0; i < 50; i++) await t.send('inqueue', q, i);
      const items = await got.waitCount(50);
      assert.deepEqual(
        items.map((d) => d.data),
        Array.from({ length: 50 }, (_, i) => i),
      );
    });

    it('routes an outqueue to a bound inqueue, and stops after the binding is removed', async () => {
      const t = await client();
      const out = await outqueue(t, 'OUT');
      const q = await inqueue(t, 'IN');
      const binding = { type: 'pubsub' as const, src: out, tgt: q };
      await t.addBinding(binding);
      const got = await consume(t, q);
      await t.send('outqueue', out, 'first');
      await got.waitCount(1);
      await t.removeBinding(binding);
      await sleep(200);
      await t.send('outqueue', out, 'second');
      await sleep(300);
      assert.deepEqual(
        got.items.map((d) => d.data),
        ['first'],
      );
    });

    it('fans in: N outqueues bound to one inqueue', async () => {
      const t = await client();
      const q = await inqueue(t, 'IN');
      const outs = [await outqueue(t, 'A'), await outqueue(t, 'B'), await outqueue(t, 'C')];
      for (const out of outs) await t.addBinding({ type: 'pubsub', src: out, tgt: q });
      const got = await consume(t, q);
      for (const out of outs) await t.send('outqueue', out, out);
      const items = await got.waitCount(3);
      assert.deepEqual(items.map((d) => d.data).sort(), [...outs].sort());
    });

    it('fans out: one outqueue bound to N inqueues, each gets a copy', async () => {
      const t = await client();
      const out = await outqueue(t, 'OUT');
      const qs = [await inqueue(t, 'X'), await inqueue(t, 'Y'), await inqueue(t, 'Z')];
      for (const q of qs) await t.addBinding({ type: 'pubsub', src: out, tgt: q });
      const collectors = [];
      for (const q of qs) collectors.push(await consume(t, q));
      await t.send('outqueue', out, { copy: true });
      for (const c of collectors) assert.deepEqual((await c.waitCount(1))[0]!.data, { copy: true });
    });

    it('keeps a binding after the transport that made it has closed', async () => {
      const setup = await connectTransport(url, { name: prefix });
      const out = `${prefix}.OUT`;
      const q = `${prefix}.IN`;
      await setup.createQueue('outqueue', out);
      await setup.createQueue('inqueue', q);
      await setup.addBinding({ type: 'pubsub', src: out, tgt: q });
      await setup.close();
      const t = await client();
      declared.push({ t, kind: 'outqueue', name: out }, { t, kind: 'inqueue', name: q });
      const got = await consume(t, q);
      const sender = await client();
      await sender.send('outqueue', out, 'still bound');
      assert.equal((await got.waitCount(1))[0]!.data, 'still bound');
      await t.removeBinding({ type: 'pubsub', src: out, tgt: q });
    });

    it('shares the work of one inqueue between competing consumers', async function () {
      if (!target.caps.sharedGroups) this.skip();
      const a = await client();
      const b = await client();
      const q = await inqueue(a, 'IN');
      const ga = await consume(a, q, true, prefix);
      const gb = await consume(b, q, true, prefix);
      const sender = await client();
      for (let i = 0; i < 40; i++) await sender.send('inqueue', q, i);
      const deadline = Date.now() + 5000;
      while (ga.items.length + gb.items.length < 40 && Date.now() < deadline) await sleep(20);
      await sleep(100);
      const all = [...ga.items, ...gb.items].map((d) => d.data as number).sort((x, y) => x - y);
      assert.deepEqual(
        all,
        Array.from({ length: 40 }, (_, i) => i),
        'each message exactly once across the group',
      );
      assert.ok(ga.items.length > 0 && gb.items.length > 0, `both consumers got work (${ga.items.length}/${gb.items.length})`);
    });

    it('dead-letters a nacked message with its reason, and settling twice is harmless', async () => {
      const t = await client();
      const q = await inqueue(t, 'IN');
      const dead = await deadLetters(target, t, q);
      const got = await consume(t, q, false);
      await t.send('inqueue', q, { bad: true });
      const [d] = await got.waitCount(1);
      await d!.nack('it was bad', 'MSGFLO_ERR_TEST');
      await d!.nack('again');
      await d!.ack();
      assert.equal(d!.settled, true);
      const [dl] = await dead.waitCount(1);
      assert.equal(reasonOf(dl!), 'it was bad');
      // The transport still works after the double settle.
      await t.send('inqueue', q, 'next');
      await got.waitCount(2);
      await got.items[1]!.ack();
    });

    it('redelivers unacked work when its consumer goes away', async function () {
      if (!target.caps.amqpTopology) this.skip();
      const a = await client();
      const q = await inqueue(a, 'IN');
      const first = new Collector<Delivery>();
      const sub = await a.subscribe(q, first.push);
      await a.send('inqueue', q, 'job');
      await first.waitCount(1);
      await sub.cancel();
      const b = await client();
      const second = await consume(b, q);
      const [d] = await second.waitCount(1);
      assert.equal(d!.data, 'job');
      assert.equal(d!.redelivered, true);
    });

    it('dead-letters to the deadletter queue of a roundrobin binding', async function () {
      if (!target.caps.amqpTopology) this.skip();
      const t = await client();
      const out = await outqueue(t, 'OUT');
      const q = await inqueue(t, 'WORK');
      const dlq = await inqueue(t, 'DEAD');
      await t.addBinding({ type: 'roundrobin', src: out, tgt: q, deadletter: dlq });
      const work = await consume(t, q, false);
      const dead = await consume(t, dlq);
      await t.send('outqueue', out, { job: 1 });
      await t.send('outqueue', out, { job: 2 });
      const jobs = await work.waitCount(2);
      await jobs[0]!.ack();
      await jobs[1]!.nack('failed job');
      const [d] = await dead.waitCount(1);
      assert.deepEqual(d!.data, { job: 2 });
      await t.removeBinding({ type: 'roundrobin', src: out, tgt: q, deadletter: dlq });
    });

    it('lets a tap observe an outqueue without taking messages from its consumers', async () => {
      const t = await client();
      const out = await outqueue(t, 'OUT');
      const q = await inqueue(t, 'IN');
      await t.addBinding({ type: 'pubsub', src: out, tgt: q });
      const got = await consume(t, q);
      const tapped = new Collector<InMessage>();
      await t.tap('outqueue', out, tapped.push);
      await t.send('outqueue', out, { seen: 'twice' });
      assert.deepEqual((await got.waitCount(1))[0]!.data, { seen: 'twice' });
      assert.deepEqual((await tapped.waitCount(1))[0]!.data, { seen: 'twice' });
    });

    it('shows every discovery message to every observer', async () => {
      const a = await client();
      const b = await client();
      const role = uniqueName('role');
      const seenA = new Collector<InMessage>();
      const seenB = new Collector<InMessage>();
      const mine = (c: Collector<InMessage>) => (m: InMessage) => {
        if ((m.data as { payload?: { role?: string } })?.payload?.role === role) c.push(m);
      };
      await a.onDiscovery(mine(seenA));
      await b.onDiscovery(mine(seenB));
      const p = await client();
      const msg = { protocol: 'discovery', command: 'participant', payload: { id: `${role}-1`, role, component: 'X', inports: [], outports: [] } };
      await p.announce(msg);
      await p.announce(msg);
      await seenA.waitCount(2);
      await seenB.waitCount(2);
      await sleep(200);
      assert.equal(seenA.items.length, 2);
      assert.equal(seenB.items.length, 2);
    });

    it('refuses to send on a closed transport', async () => {
      const t = await connectTransport(url, { name: prefix });
      await t.close();
      await t.close();
      await assert.rejects(t.send('outqueue', `${prefix}.OUT`, 1), TransportClosedError);
    });

    settlingAndClosing(target, () => ({ url, prefix, client, inqueue, consume }));

    it('reports a missing inqueue when sending directly to it', async function () {
      if (!target.caps.amqpTopology) this.skip();
      const t = await client();
      await assert.rejects(t.send('inqueue', `${prefix}.NOPE`, 1), QueueNotFoundError);
      assert.equal(await t.queueExists('inqueue', `${prefix}.NOPE`), false);
      const q = await inqueue(t, 'IN');
      assert.equal(await t.queueExists('inqueue', q), true);
      await t.send('inqueue', q, 'still usable');
    });

    // ── close, settlement, handler failures, discovery cancel (absorbed from the AMQP spec; issue 10) ──────────

    it('closes idempotently, then refuses every operation', async () => {
      const t = await connectTransport(url, { name: prefix });
      await Promise.all([t.close(), t.close()]);
      await t.close();
      await assert.rejects(t.createQueue('inqueue', `${prefix}.X`), TransportClosedError);
      await assert.rejects(t.subscribe(`${prefix}.X`, () => undefined), TransportClosedError);
      await assert.rejects(t.queueExists('inqueue', 'x'), TransportClosedError);
      await assert.rejects(t.announce({}), TransportClosedError);
      await assert.rejects(t.connect(), TransportClosedError);
    });

    it('resolves closed() without an error once close() has finished, and not before', async () => {
      const t = await connectTransport(url, { name: prefix });
      assert.equal(await within(100, t.closed(), 'pending'), 'pending', 'closed() waits for close()');
      await t.close();
      assert.equal(await within(100, t.closed(), 'pending'), undefined, 'closed() has resolved, with no error');
      assert.equal(await t.closed(), undefined, 'and stays resolved');
    });

    it('settles once: a second ack or nack resolves only when the first settlement has, and changes nothing', async () => {
      const t = await client();
      const q = await inqueue(t, 'IN');
      const dead = await deadLetters(target, t, q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, got.push, { prefetch: 1 });
      await t.send('inqueue', q, 'one');
      const [d] = await got.waitCount(1);
      const first = d!.nack('the first settlement wins', 'MSGFLO_ERR_TEST');
      const second = d!.ack();
      const third = d!.nack('too late');
      const order: string[] = [];
      void first.then(() => order.push('first'));
      void second.then(() => order.push('second'));
      void third.then(() => order.push('third'));
      await Promise.all([first, second, third]);
      assert.deepEqual(order, ['first', 'second', 'third'], 'the later calls resolved only once the first settlement had finished');
      assert.equal(d!.settled, true);
      const [dl] = await dead.waitCount(1);
      assert.equal(reasonOf(dl!), 'the first settlement wins');
      // Prefetch 1: the next message comes only once the first settlement went through.
      await t.send('inqueue', q, 'two');
      const [, d2] = await got.waitCount(2);
      assert.equal(d2!.data, 'two');
      await d2!.ack();
      await sleep(200);
      assert.equal(dead.items.length, 1, 'one dead letter for the one refusal');
    });

    const failingHandlers: Array<[string, (d: Delivery) => void]> = [
      ['throws', () => {
        throw new Error('handler blew up');
      }],
      ['returns a rejected promise', (async () => {
        throw new Error('handler blew up');
      }) as unknown as (d: Delivery) => void],
    ];
    for (const [how, handler] of failingHandlers) {
      it(`dead-letters a message whose handler ${how}, with its reason and MSGFLO_ERR_HANDLER`, async () => {
        const t = await client();
        const q = await inqueue(t, 'IN');
        const dead = await deadLetters(target, t, q);
        await t.subscribe(q, handler);
        await t.send('inqueue', q, 'boom');
        const [dl] = await dead.waitCount(1);
        assert.equal(reasonOf(dl!), 'handler blew up');
        assert.equal(deadCodeOf(dl!), 'MSGFLO_ERR_HANDLER');
      });
    }

    it('stops delivering discovery messages to an observer after cancel', async () => {
      const a = await client();
      const role = uniqueName('role');
      const seen = new Collector<InMessage>();
      const sub = await a.onDiscovery((m) => {
        if ((m.data as { payload?: { role?: string } } | null)?.payload?.role === role) seen.push(m);
      });
      const msg = { protocol: 'discovery', command: 'participant', payload: { id: `${role}-1`, role, component: 'C', inports: [], outports: [] } };
      await a.announce(msg);
      await seen.waitCount(1);
      await sub.cancel();
      await a.announce(msg);
      await sleep(300);
      assert.equal(seen.items.length, 1);
    });
  });
}

/** What a conformance block gets from the suite it runs in (fresh for each test). */
interface SuiteContext {
  url: string;
  prefix: string;
  client(): Promise<Transport>;
  inqueue(t: Transport, suffix: string): Promise<string>;
  consume(t: Transport, queue: string, autoAck?: boolean, group?: string): Promise<Collector<Delivery>>;
}

/** What reaches `dead-<q>`: consumed where the broker has that queue, else tapped. */
async function deadLetters(target: ConformanceTarget, t: Transport, q: string): Promise<Collector<InMessage>> {
  const dead = new Collector<InMessage>();
  if (target.caps.amqpTopology) {
    await t.subscribe(`dead-${q}`, (d) => {
      void d.ack();
      dead.push(d);
    });
  } else {
    await t.tap('inqueue', `dead-${q}`, dead.push);
  }
  return dead;
}

/** A dead letter as every transport carries it: reason, code and queue in headers, or (MQTT 3.1.1) in a JSON wrapper. */
function deadLetterOf(m: InMessage): { reason?: string; code?: string; queue?: string; data: unknown } {
  if (m.headers['x-msgflo-reason'] !== undefined) {
    return { reason: m.headers['x-msgflo-reason'], code: m.headers['x-msgflo-code'], queue: m.headers['x-msgflo-queue'], data: m.data };
  }
  const w = m.data as Record<string, unknown>;
  return { reason: w['x-msgflo-reason'] as string, code: w['x-msgflo-code'] as string, queue: w['x-msgflo-queue'] as string, data: w.data };
}

/** Settling a delivery more than once, dead letters, discovery with a time to live, and closing: the same everywhere. */
function settlingAndClosing(target: ConformanceTarget, suite: () => SuiteContext): void {
  describe('settling, dead letters, discovery and closing', () => {
    it("returns the first settlement's promise from a second nack or ack, and dead-letters once", async () => {
      const { client, inqueue, consume } = suite();
      const t = await client();
      const q = await inqueue(t, 'IN');
      const dead = await deadLetters(target, t, q);
      const got = await consume(t, q, false);
      await t.send('inqueue', q, { bad: true });
      const [d] = await got.waitCount(1);
      const first = d!.nack('refused once', ErrorCodes.SCHEMA);
      let firstDone = false;
      void first.then(() => (firstDone = true));
      const again = d!.nack('refused twice');
      const ack = d!.ack();
      assert.equal(again, first, 'a second nack returns the promise of the first');
      assert.equal(ack, first, 'an ack after a nack returns the promise of the nack');
      assert.equal(d!.settled, true);
      await again;
      assert.equal(firstDone, true, 'the second settlement resolves once the first has (its dead letter confirmed)');
      await dead.waitCount(1);
      await sleep(200);
      assert.equal(dead.items.length, 1);
      assert.equal(deadLetterOf(dead.items[0]!).reason, 'refused once');
    });

    it('dead-letters a nacked message with its reason, code, queue, body and id', async () => {
      const { client, inqueue } = suite();
      const t = await client();
      const q = await inqueue(t, 'IN');
      const dead = await deadLetters(target, t, q);
      const got = new Collector<Delivery>();
      await t.subscribe(q, (d) => {
        got.push(d);
        void d.nack('does not compute', ErrorCodes.SCHEMA).then(() => d.nack('again')).then(() => d.ack());
      });
      await t.send('inqueue', q, { bad: true }, { id: 'dead-1' });
      const [dl] = await dead.waitCount(1);
      await sleep(200);
      assert.equal(dead.items.length, 1);
      assert.equal(got.items[0]!.settled, true);
      assert.deepEqual(deadLetterOf(dl!), { reason: 'does not compute', code: ErrorCodes.SCHEMA, queue: q, data: { bad: true } });
      // Where the transport carries message ids (not MQTT 3.1.1), the dead letter keeps the message's.
      if (got.items[0]!.id !== undefined) assert.equal(dl!.id, 'dead-1');
    });

    it('announces with a time to live: every observer gets the message unchanged', async () => {
      const { client } = suite();
      const [a, b, p] = [await client(), await client(), await client()];
      const marker = uniqueName('disc');
      const seenA: unknown[] = [];
      const seenB: unknown[] = [];
      const keep = (list: unknown[]) => (m: InMessage) => {
        if ((m.data as { payload?: { id?: string } }).payload?.id === marker) list.push(m.data);
      };
      await a.onDiscovery(keep(seenA));
      await b.onDiscovery(keep(seenB));
      const msg = { protocol: 'discovery', command: 'participant', payload: { id: marker } };
      await p.announce(msg, { ttlMs: 5000 });
      await waitFor(() => seenA.length === 1 && seenB.length === 1, 'the announcement at both observers');
      assert.deepEqual(seenA[0], msg);
      assert.deepEqual(seenB[0], msg);
    });

    it('close() is idempotent, confirms the sends in flight, then refuses everything; closed() resolves', async () => {
      const { url, prefix, inqueue } = suite();
      const t = await connectTransport(url, { name: prefix });
      const q = await inqueue(t, 'IN');
      const sends = [t.send('inqueue', q, 1), t.send('inqueue', q, 2)];
      await Promise.all([t.close(), t.close()]);
      await Promise.all(sends); // in-flight publishes were confirmed before closing
      assert.equal(await within(1000, t.closed(), 'still open'), undefined, 'closed() resolves (with no error) after close()');
      await assert.rejects(t.send('inqueue', q, 3), TransportClosedError);
      await assert.rejects(t.subscribe(q, () => {}), TransportClosedError);
    });
  });
}
