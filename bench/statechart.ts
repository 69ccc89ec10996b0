/**
 * `npm run bench:statechart`: what a statechart participant costs against the function form, and what spy/trace
 * cost against none — as messages per second, all arms in the same run, on the same brokers.
 *
 * Arms (each a participant with inport `in` and outport `out`, forwarding every message):
 *   function            process: (port, data, send) => send('out', data)            (a one-state chart)
 *   statechart          an XState machine toggling between two states on every message, sending in the transition
 *   function +spy/trace the function form with spy and trace published, a watcher reading them
 *   statechart +spy/trace
 * A driver sends N messages to `<role>.IN` (a window of confirmed sends in flight) and a tap on `<role>.OUT`
 * counts them back; msgs/s = N / (time from the first send to the last arrival). Participant, driver and watcher
 * share this process (the same for every arm), so the numbers compare arms, not absolute capacity.
 * Also: the engines alone (no broker), events per second.
 *
 * Options: --quick (small N, one repetition), --brokers direct,rabbitmq,mosquitto, --messages N, --reps N, --json.
 * As a library: `runStatechartBench(options)` returns the rows (for bench/run.ts).
 */
import { parseArgs } from 'node:util';
import {
  Participant,
  connectTransport,
  defineParticipant,
  defineStatechartParticipant,
  setup,
  watchNetwork,
  type InMessage,
  type NetworkWatcher,
  type Transport,
} from '../dist/index.js';
import { ChartBehaviour } from '../dist/participant/chart.js';
import { FunctionChart, XStateChart, type ChartObserver } from '../dist/statechart/index.js';
import { reachable, resolveAmqp } from './lib/brokers.js';

export type Arm = 'function' | 'statechart' | 'function +spy/trace' | 'statechart +spy/trace';
export const ARMS: readonly Arm[] = ['function', 'statechart', 'function +spy/trace', 'statechart +spy/trace'];

export interface StatechartRow {
  broker: string;
  arm: Arm;
  messages: number;
  /** Median over the repetitions. */
  msgsPerSec: number;
  runs: number[];
  /** Spy/trace messages the watcher received (spy/trace arms). */
  snoopMessages?: number;
}

export interface EngineRow {
  engine: string;
  eventsPerSec: number;
}

export interface StatechartBenchOptions {
  brokers?: string[];
  messages?: number;
  reps?: number;
  quick?: boolean;
  log?: (line: string) => void;
}

const functionForm = defineParticipant({
  component: 'BenchFunction',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }],
  process: (port, data, send) => send('out', data),
});

const statechartForm = defineStatechartParticipant({
  component: 'BenchStatechart',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }],
  machine: ({ send }) =>
    setup({}).createMachine({
      id: 'toggle',
      initial: 'a',
      states: {
        a: { on: { in: { target: 'b', actions: send('out') } } },
        b: { on: { in: { target: 'a', actions: send('out') } } },
      },
    }),
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0;
};

let counter = 0;
const uniqueRole = (arm: Arm) => `bench-sc-${arm.replace(/[^a-z]+/g, '')}-${process.pid}-${++counter}`;

/** One measurement of one arm on one broker. */
async function measure(url: string, arm: Arm, n: number): Promise<{ msgsPerSec: number; snoop: number }> {
  const role = uniqueRole(arm);
  const snoop = arm.endsWith('+spy/trace');
  const def = arm.startsWith('statechart') ? statechartForm : functionForm;
  const pt = await connectTransport(url, { name: role, keyring: null });
  const participant = new Participant(def as typeof functionForm, pt, { role, env: {}, prefetch: 100, snoop: { spy: snoop, trace: snoop } });
  const driver: Transport = await connectTransport(url, { name: `${role}-driver`, keyring: null });
  let watcher: NetworkWatcher | undefined;
  let snoopMessages = 0;
  try {
    await participant.start();
    if (snoop) {
      watcher = await watchNetwork(driver, { roles: [role], enable: false });
      watcher.on('spy', () => snoopMessages++);
      watcher.on('trace', () => snoopMessages++);
    }
    let got = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    await driver.tap('outqueue', `${role}.OUT`, (_m: InMessage) => {
      if (++got === n) done();
    });
    const window = 200;
    const t0 = performance.now();
    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < n; i++) {
      const p = driver.send('inqueue', `${role}.IN`, i).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const timeout = setTimeout(done, Math.max(30_000, n * 10));
    await all;
    clearTimeout(timeout);
    const seconds = (performance.now() - t0) / 1000;
    if (got < n) throw new Error(`${arm}: only ${got} of ${n} messages came back`);
    return { msgsPerSec: Math.round(n / seconds), snoop: snoopMessages };
  } finally {
    await watcher?.close();
    await participant.stop().catch(() => {});
    await driver.close().catch(() => {});
    if (!url.startsWith('direct:')) {
      const cleanup = await connectTransport(url, { name: 'bench-cleanup', keyring: null });
      for (const q of [`${role}.IN`, `dead-${role}.IN`]) await cleanup.removeQueue('inqueue', q).catch(() => {});
      for (const q of [`${role}.OUT`, `${role}.ERROR`]) await cleanup.removeQueue('outqueue', q).catch(() => {});
      await cleanup.close();
    }
  }
}

/** The engines alone: events dispatched per second, no broker, no runtime. */
export function engineBench(events: number): EngineRow[] {
  const host = { sender: () => () => {}, wait: () => {} };
  const sink = (spy: boolean): ChartObserver => ({
    spy,
    trace: spy,
    onSpy: (lines) => void JSON.stringify(lines),
    onTrace: (r) => void JSON.stringify(r),
    onError: () => {},
    queued: () => 0,
    deferred: () => 0,
  });
  const machine = () =>
    setup({}).createMachine({ id: 'toggle', initial: 'a', states: { a: { on: { in: 'b' } }, b: { on: { in: 'a' } } } });
  const rows: EngineRow[] = [];
  const run = (engine: string, chart: { start(): void; dispatch(e: { type: string; data: unknown }): void }) => {
    chart.start();
    const ev = { type: 'in', data: 1 };
    for (let i = 0; i < events / 10; i++) chart.dispatch(ev);
    const t0 = performance.now();
    for (let i = 0; i < events; i++) chart.dispatch(ev);
    rows.push({ engine, eventsPerSec: Math.round(events / ((performance.now() - t0) / 1000)) });
  };
  run('function chart', new FunctionChart('f', () => {}, host, sink(false)));
  run('function chart +spy/trace', new FunctionChart('f', () => {}, host, sink(true)));
  run('XState chart', new XStateChart(machine(), { name: 'x', observer: sink(false) }));
  run('XState chart +spy/trace', new XStateChart(machine(), { name: 'x', observer: sink(true) }));
  // The behaviour layer (what a participant calls per input), function form, against the plain async handler the
  // function form was before it became a one-state chart.
  const b = new ChartBehaviour((ctx) => new FunctionChart('f', () => {}, ctx.host, ctx.observer));
  const send = () => {};
  const meta = { id: undefined, headers: {}, redelivered: false, role: 'f' };
  const fn = (_port: string, _data: unknown, _send: unknown, _meta: unknown) => {};
  const plain = { handle: async (e: { type: string; data: unknown }, s: unknown) => void (await fn(e.type, e.data, s, meta)) };
  run('function form: plain async handler (before)', { start: () => {}, dispatch: (e) => void plain.handle(e, send) });
  run('function form: one-state chart (now)', { start: () => {}, dispatch: (e) => void b.handle({ type: e.type, data: e.data, meta }, send) });
  return rows;
}

export async function runStatechartBench(options: StatechartBenchOptions = {}): Promise<{ rows: StatechartRow[]; engines: EngineRow[] }> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const quick = options.quick === true;
  const reps = options.reps ?? (quick ? 1 : 3);
  const wanted = options.brokers ?? ['direct', 'rabbitmq', 'mosquitto'];
  const brokers: Array<{ name: string; url: string; n: number }> = [];
  for (const b of wanted) {
    if (b === 'direct') brokers.push({ name: 'direct (in-memory)', url: `direct://bench-sc-${process.pid}`, n: options.messages ?? (quick ? 1000 : 20_000) });
    if (b === 'rabbitmq') {
      const amqp = await resolveAmqp(log);
      if (amqp) brokers.push({ name: 'RabbitMQ', url: amqp.url, n: options.messages ?? (quick ? 300 : 5000) });
      else log('statechart bench: RabbitMQ not reachable, skipped');
    }
    if (b === 'mosquitto') {
      const url = process.env.MSGFLO_BENCH_MQTT ?? process.env.MSGFLO_TEST_MQTT ?? 'mqtt://127.0.0.1:1883';
      if (await reachable(url)) brokers.push({ name: 'Mosquitto', url, n: options.messages ?? (quick ? 300 : 5000) });
      else log('statechart bench: Mosquitto not reachable, skipped');
    }
  }
  const rows: StatechartRow[] = [];
  for (const broker of brokers) {
    const runs = new Map<Arm, number[]>(ARMS.map((a) => [a, []]));
    const snoop = new Map<Arm, number>();
    // Warm up (JIT, connections), then interleave the arms, so that a slow moment of the machine hits every arm alike.
    for (const arm of ARMS) await measure(broker.url, arm, Math.min(500, broker.n));
    for (let r = 0; r < reps; r++) {
      for (const arm of ARMS) {
        const m = await measure(broker.url, arm, broker.n);
        runs.get(arm)!.push(m.msgsPerSec);
        if (m.snoop) snoop.set(arm, m.snoop);
        log(`statechart bench: ${broker.name} ${arm}: ${m.msgsPerSec} msgs/s`);
      }
    }
    for (const arm of ARMS) {
      const row: StatechartRow = { broker: broker.name, arm, messages: broker.n, msgsPerSec: median(runs.get(arm)!), runs: runs.get(arm)! };
      if (snoop.has(arm)) row.snoopMessages = snoop.get(arm)!;
      rows.push(row);
    }
  }
  const engines = engineBench(quick ? 20_000 : 200_000);
  return { rows, engines };
}

/** A text table: per broker, msgs/s of each arm and its ratio to the function form without spy/trace. */
export function statechartTable(rows: StatechartRow[], engines: EngineRow[]): string {
  const out: string[] = ['Statechart participants: msgs/s (median), ratio to the function form without spy/trace', ''];
  out.push(`${'broker'.padEnd(20)} ${'arm'.padEnd(24)} ${'msgs/s'.padStart(9)} ${'ratio'.padStart(6)}  runs`);
  for (const broker of [...new Set(rows.map((r) => r.broker))]) {
    const base = rows.find((r) => r.broker === broker && r.arm === 'function')?.msgsPerSec ?? 0;
    for (const r of rows.filter((x) => x.broker === broker)) {
      const ratio = base ? (r.msgsPerSec / base).toFixed(2) : '-';
      out.push(`${broker.padEnd(20)} ${r.arm.padEnd(24)} ${String(r.msgsPerSec).padStart(9)} ${ratio.padStart(6)}  ${r.runs.join(' / ')}`);
    }
  }
  out.push('', 'Engines alone (no broker): events/s');
  for (const e of engines) out.push(`${e.engine.padEnd(44)} ${String(e.eventsPerSec).padStart(10)}`);
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      brokers: { type: 'string' },
      messages: { type: 'string' },
      reps: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const result = await runStatechartBench({
    quick: values.quick === true,
    ...(values.brokers ? { brokers: values.brokers.split(',') } : {}),
    ...(values.messages ? { messages: Number(values.messages) } : {}),
    ...(values.reps ? { reps: Number(values.reps) } : {}),
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${statechartTable(result.rows, result.engines)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
