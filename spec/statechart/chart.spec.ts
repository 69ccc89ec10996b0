import assert from 'node:assert/strict';
import { setup, createMachine, assign, type AnyStateMachine } from 'xstate';
import {
  type ChartObserver,
  type TraceRecord,
  ChartError,
  FunctionChart,
  XStateChart,
  formatTrace,
  parseTrace,
  sequenceDiagram,
  stripTrace,
} from '../../src/statechart/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { SEED_SPY_START_B, seedMachine } from './seed.js';

class Recorder implements ChartObserver {
  spy = true;
  trace = true;
  lines: string[] = [];
  steps: string[][] = [];
  records: TraceRecord[] = [];
  errors: Array<{ error: unknown; signal: string }> = [];
  onSpy(lines: string[]): void {
    this.steps.push(lines);
    this.lines.push(...lines);
  }
  onTrace(record: TraceRecord): void {
    this.records.push(record);
  }
  onError(error: unknown, signal: string): void {
    this.errors.push({ error, signal });
  }
  queued(): number {
    return 0;
  }
  deferred(): number {
    return 0;
  }
}

function chart(machine: AnyStateMachine, clock?: FakeClock): { chart: XStateChart; rec: Recorder } {
  const rec = new Recorder();
  return { chart: new XStateChart(machine, { name: 'producer', observer: rec, ...(clock ? { clock } : {}) }), rec };
}

describe('statechart spy and trace (XState v5)', () => {
  it("gives the seed chart's miros spy for start then B, exactly", () => {
    const { chart: c, rec } = chart(seedMachine());
    c.start();
    c.dispatch({ type: 'B' });
    assert.deepEqual(rec.lines, SEED_SPY_START_B);
    assert.deepEqual(stripTrace(rec.records.map(formatTrace)), ['[producer] e->start_at() top->c1', '[producer] e->B() c1->c1']);
  });

  it('writes hooks, ignored events and sibling transitions as miros does', () => {
    const { chart: c, rec } = chart(seedMachine());
    c.start();
    rec.lines = [];
    c.dispatch({ type: 'A' });
    c.dispatch({ type: 'H' });
    c.dispatch({ type: 'C' });
    assert.deepEqual(rec.steps.slice(1), [
      ['A:c1', 'SEARCH_FOR_SUPER_SIGNAL:c2', 'SEARCH_FOR_SUPER_SIGNAL:c1', 'EXIT_SIGNAL:c1', 'ENTRY_SIGNAL:c2', 'INIT_SIGNAL:c2', '<- Queued:(0) Deferred:(0)'],
      ['H:c2', 'H:producer_outer', 'H:producer_outer:HOOK', '<- Queued:(0) Deferred:(0)'],
      ['C:c2', 'C:producer_outer', '<- Queued:(0) Deferred:(0)'],
    ]);
    // Hooks and ignored events change no state: no trace.
    assert.deepEqual(stripTrace(rec.records.map(formatTrace)), ['[producer] e->start_at() top->c1', '[producer] e->A() c1->c2']);
    assert.equal(c.state(), 'c2');
  });

  it("matches miros's own example of a transition to a child of the handling state, exit handlers included", () => {
    // miros hsm.py docstring: s1 ⊃ s2, both handle ENTRY and EXIT; in s2, A is handled by s1: trans(s2).
    const exit = () => {};
    const m = createMachine({
      id: 'graph_b1',
      initial: 'graph_b1_s1',
      states: {
        graph_b1_s1: {
          initial: 'graph_b1_s2',
          exit,
          on: { A: '.graph_b1_s2' },
          states: { graph_b1_s2: { exit } },
        },
      },
    });
    const { chart: c, rec } = chart(m);
    c.start();
    rec.lines = [];
    c.dispatch({ type: 'A' });
    assert.deepEqual(rec.lines, [
      'A:graph_b1_s2',
      'A:graph_b1_s1',
      'EXIT_SIGNAL:graph_b1_s2',
      'SEARCH_FOR_SUPER_SIGNAL:graph_b1_s2',
      'SEARCH_FOR_SUPER_SIGNAL:graph_b1_s2',
      'ENTRY_SIGNAL:graph_b1_s2',
      'INIT_SIGNAL:graph_b1_s2',
      '<- Queued:(0) Deferred:(0)',
    ]);
  });

  it('spies parallel regions, guards and delayed transitions from what XState did', () => {
    const clock = new FakeClock(1000);
    const m = setup({ guards: { hot: ({ event }) => (event as unknown as { data: number }).data > 25 } }).createMachine({
      id: 'thermo',
      type: 'parallel',
      states: {
        power: { initial: 'off', states: { off: { on: { toggle: 'on' } }, on: { on: { toggle: 'off' } } } },
        sensor: {
          initial: 'ok',
          states: {
            ok: { after: { 5000: 'stale' }, on: { temp: [{ guard: 'hot', target: 'alarm' }] } },
            stale: { on: { temp: 'ok' } },
            alarm: {},
          },
        },
      },
    });
    const { chart: c, rec } = chart(m, clock);
    c.start();
    assert.equal(c.state(), 'off,ok');
    c.dispatch({ type: 'temp', data: 20 }); // guard fails: ignored
    assert.equal(c.state(), 'off,ok');
    c.dispatch({ type: 'toggle' });
    assert.equal(c.state(), 'on,ok');
    clock.advance(5000);
    assert.equal(c.state(), 'on,stale');
    c.dispatch({ type: 'temp', data: 30 });
    assert.equal(c.state(), 'on,ok');
    c.dispatch({ type: 'temp', data: 30 });
    assert.equal(c.state(), 'on,alarm');
    assert.deepEqual(stripTrace(rec.records.map(formatTrace)), [
      '[producer] e->start_at() top->off,ok',
      '[producer] e->toggle() off,ok->on,ok',
      '[producer] e->AFTER_5000MS() on,ok->on,stale',
      '[producer] e->temp() on,stale->on,ok',
      '[producer] e->temp() on,ok->on,alarm',
    ]);
    assert.deepEqual(rec.steps[0], [
      'START',
      'SEARCH_FOR_SUPER_SIGNAL:power',
      'ENTRY_SIGNAL:power',
      'INIT_SIGNAL:power',
      'SEARCH_FOR_SUPER_SIGNAL:off',
      'ENTRY_SIGNAL:off',
      'INIT_SIGNAL:off',
      'SEARCH_FOR_SUPER_SIGNAL:sensor',
      'ENTRY_SIGNAL:sensor',
      'INIT_SIGNAL:sensor',
      'SEARCH_FOR_SUPER_SIGNAL:ok',
      'ENTRY_SIGNAL:ok',
      'INIT_SIGNAL:ok',
      '<- Queued:(0) Deferred:(0)',
    ]);
    // The failed guard: offered to both regions, handled by none.
    assert.deepEqual(rec.steps[1], ['temp:off', 'temp:power', 'temp:ok', 'temp:sensor', '<- Queued:(0) Deferred:(0)']);
    assert.deepEqual(rec.steps[3], [
      'AFTER_5000MS:on',
      'AFTER_5000MS:power',
      'AFTER_5000MS:ok',
      'SEARCH_FOR_SUPER_SIGNAL:stale',
      'SEARCH_FOR_SUPER_SIGNAL:ok',
      'EXIT_SIGNAL:ok',
      'ENTRY_SIGNAL:stale',
      'INIT_SIGNAL:stale',
      '<- Queued:(0) Deferred:(0)',
    ]);
  });

  it('writes nothing while spy and trace are off, and starts again when they are switched on', () => {
    const { chart: c, rec } = chart(seedMachine());
    rec.spy = false;
    rec.trace = false;
    c.start();
    c.dispatch({ type: 'A' });
    assert.deepEqual(rec.lines, []);
    assert.deepEqual(rec.records, []);
    rec.spy = true;
    c.dispatch({ type: 'A' });
    assert.deepEqual(rec.lines[0], 'A:c2');
    assert.deepEqual(rec.records, []);
  });

  it('survives a throwing action: reports it, goes back to the state before the event, keeps its timers', () => {
    const clock = new FakeClock(0);
    const m = setup({
      actions: {
        boom: () => {
          throw new Error('kaboom');
        },
      },
    }).createMachine({
      id: 'fragile',
      initial: 'waiting',
      context: { n: 0 },
      states: {
        waiting: {
          after: { 1000: 'late' },
          on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) }, fail: { target: 'other', actions: 'boom' } },
        },
        other: {},
        late: {},
      },
    });
    const { chart: c, rec } = chart(m, clock);
    c.start();
    c.dispatch({ type: 'inc' });
    clock.advance(400);
    assert.throws(() => c.dispatch({ type: 'fail' }), (err: unknown) => err instanceof ChartError && /kaboom/.test(err.message));
    assert.ok(rec.steps.at(-1)!.includes('ERROR:kaboom'), 'the failed step is in the spy');
    assert.equal(c.state(), 'waiting');
    c.dispatch({ type: 'inc' });
    assert.equal(c.state(), 'waiting');
    // The delayed transition of 'waiting' still fires, on time.
    clock.advance(599);
    assert.equal(c.state(), 'waiting');
    clock.advance(1);
    assert.equal(c.state(), 'late');
  });

  it('reports a delayed transition that throws to the observer, and carries on', async () => {
    const clock = new FakeClock(0);
    const m = createMachine({
      id: 'timer',
      initial: 'a',
      states: {
        a: {
          after: {
            100: {
              target: 'b',
              actions: () => {
                throw new Error('late boom');
              },
            },
          },
          on: { go: 'b' },
        },
        b: {},
      },
    });
    const { chart: c, rec } = chart(m, clock);
    c.start();
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
    assert.equal(rec.errors.length, 1);
    assert.match(String((rec.errors[0]!.error as Error).message), /late boom/);
    assert.equal(c.state(), 'a');
    c.dispatch({ type: 'go' });
    assert.equal(c.state(), 'b');
  });
});

describe('function form as a one-state chart', () => {
  it('spies exactly like the equivalent one-state XState machine', () => {
    const calls: unknown[] = [];
    const host = { sender: () => () => {}, wait: () => {} };
    const fnRec = new Recorder();
    const fn = new FunctionChart('upper', (type, data) => calls.push([type, data]), host, fnRec);
    fn.start();
    fn.dispatch({ type: 'in', data: 'x' });
    fn.dispatch({ type: 'in', data: 'y' });

    const xsRec = new Recorder();
    const xs = new XStateChart(
      createMachine({ id: 'upper', initial: 'ready', states: { ready: { on: { '*': { actions: () => {} } } } } }),
      { name: 'upper', observer: xsRec },
    );
    xs.start();
    xs.dispatch({ type: 'in', data: 'x' });
    xs.dispatch({ type: 'in', data: 'y' });

    assert.deepEqual(fnRec.lines, xsRec.lines);
    assert.deepEqual(fnRec.lines.slice(-3), ['in:ready', 'in:ready:HOOK', '<- Queued:(0) Deferred:(0)']);
    assert.deepEqual(stripTrace(fnRec.records.map(formatTrace)), stripTrace(xsRec.records.map(formatTrace)));
    assert.deepEqual(calls, [
      ['in', 'x'],
      ['in', 'y'],
    ]);
  });
});

describe('trace lines and sequence diagrams', () => {
  it('formats trace lines as miros does, microseconds included, and reads them back', () => {
    const t = new Date(2018, 0, 10, 13, 14, 27).getTime() * 1000 + 24377;
    const line = formatTrace({ t, chart: 'producer_192.168.1.72', signal: 'B', from: 'c1', to: 'c1' });
    assert.equal(line, '[2018-01-10 13:14:27.024377] [producer_192.168.1.72] e->B() c1->c1');
    assert.deepEqual(parseTrace(line), { t, chart: 'producer_192.168.1.72', signal: 'B', from: 'c1', to: 'c1' });
    assert.equal(parseTrace('B:c1'), undefined);
  });

  it("draws the seed's trace as its sequence diagram", () => {
    const diagram = sequenceDiagram([
      { t: 1, chart: 'producer_192.168.1.72', signal: 'start_at', from: 'top', to: 'c1' },
      { t: 2, chart: 'producer_192.168.1.72', signal: 'B', from: 'c1', to: 'c1' },
    ]);
    const expected = [
      '[ Chart: producer_192.168.1.72 ]',
      '     top          c1',
      '      +start_at()->|',
      '      |    (1)     |',
      '      |            +',
      '      |             \\ (2)',
      '      |             B()',
      '      |             /',
      '      |            <',
    ];
    assert.deepEqual(diagram.split('\n'), expected);
  });
});
