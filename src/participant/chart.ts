/**
 * Statecharts as participant behaviours. An inport message becomes the event `{type: <port>, data, meta}`,
 * dispatched to the chart run-to-completion (one at a time: an input that arrives while the chart is busy waits
 * in a mailbox); outport sends are actions the runtime carries out, tied to the input being dispatched (so the
 * input is acked only once they are confirmed). The function form is a one-state chart.
 */
import { systemClock } from '../util/clock.js';
import type { AnyStateMachine } from 'xstate';
import type { Chart, ChartEvent, ChartHost, ChartObserver, Sender } from '../statechart/engine.js';
import { FunctionChart } from '../statechart/function-chart.js';
import type { Behaviour, BehaviourRuntime, ChartAction, ChartData, ChartTools, InputMeta, ProcessFn, SendFn } from './definition.js';

interface Job {
  event: ChartEvent;
  send: SendFn<string>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Context for building a chart: the host it calls back, the observer it spies to. */
export interface ChartContext {
  host: ChartHost;
  observer: ChartObserver;
  runtime: BehaviourRuntime;
}

const quiet: BehaviourRuntime = {
  role: 'chart',
  send: () => {},
  snoop: { spy: false, trace: false, onSpy: () => {}, onTrace: () => {} },
  fail: () => {},
  clock: systemClock,
};

type XStateAdapter = typeof import('../statechart/xstate.js');
let xstateAdapter: XStateAdapter | undefined;

/**
 * The XState adapter (and XState), loaded when the first statechart participant starts: a function-form participant
 * never loads XState (about 6 MB of memory).
 */
async function loadXStateAdapter(): Promise<void> {
  xstateAdapter ??= await import('../statechart/xstate.js');
}

/** A Behaviour that drives a Chart. */
export class ChartBehaviour<In extends string = string, Out extends string = string> implements Behaviour<In, Out>, ChartHost {
  private readonly build: (context: ChartContext) => Chart;
  private chart: Chart | undefined;
  private runtime: BehaviourRuntime = quiet;
  private readonly mailbox: Job[] = [];
  private current: { send: SendFn<string>; work: PromiseLike<unknown>[] | undefined } | undefined;
  private busy = false;

  /** What `build` needs loaded first (every start() waits for it, however many are asked for meanwhile). */
  private prepare: (() => Promise<void>) | undefined;
  private preparing: Promise<void> | undefined;

  constructor(build: (context: ChartContext) => Chart, prepare?: () => Promise<void>) {
    this.build = build;
    this.prepare = prepare;
  }

  /** The running chart (after start). */
  get running(): Chart | undefined {
    return this.chart;
  }

  start(runtime: BehaviourRuntime): void | Promise<void> {
    if (this.chart) return;
    if (this.prepare) {
      this.preparing ??= this.prepare().then(() => {
        this.prepare = undefined;
      });
      return this.preparing.then(() => this.start(runtime));
    }
    this.runtime = runtime;
    const snoop = runtime.snoop;
    const observer: ChartObserver = {
      get spy() {
        return snoop.spy;
      },
      get trace() {
        return snoop.trace;
      },
      onSpy: (lines) => snoop.onSpy(lines),
      onTrace: (record) => snoop.onTrace(record),
      onError: (error, signal) => runtime.fail(error, signal),
      queued: () => this.mailbox.length,
      deferred: () => 0,
    };
    const chart = this.build({ host: this, observer, runtime });
    this.chart = chart;
    this.busy = true;
    try {
      chart.start();
    } finally {
      this.busy = false;
    }
    this.drain();
  }

  // ChartHost
  sender(): Sender {
    return (this.current?.send ?? this.runtime.send) as Sender;
  }

  wait(work: PromiseLike<unknown>): void {
    const current = this.current;
    if (current) (current.work ??= []).push(work);
    else Promise.resolve(work).catch((err: unknown) => this.runtime.fail(err, 'async'));
  }

  handle(event: { type: In; data: unknown; meta: InputMeta }, send: SendFn<Out>): Promise<void> {
    if (!this.chart) {
      const starting = this.start(quiet);
      if (starting) return starting.then(() => this.handle(event, send));
    }
    if (!this.busy) {
      // The common case, without a mailbox round trip.
      let work: PromiseLike<unknown>[] | undefined;
      try {
        work = this.run(event, send as SendFn<string>);
      } catch (err) {
        this.drain();
        return Promise.reject(err);
      }
      this.drain();
      return work ? Promise.all(work).then(() => undefined) : Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.mailbox.push({ event, send: send as SendFn<string>, resolve, reject });
    });
  }

  /** Dispatch one event; returns the asynchronous work it started. */
  private run(event: ChartEvent, send: SendFn<string>): PromiseLike<unknown>[] | undefined {
    const current = { send, work: undefined as PromiseLike<unknown>[] | undefined };
    this.current = current;
    this.busy = true;
    try {
      this.chart!.dispatch(event);
    } finally {
      this.current = undefined;
      this.busy = false;
    }
    return current.work;
  }

  /** Events that arrived while the chart was busy, in order. */
  private drain(): void {
    while (!this.busy && this.mailbox.length > 0) {
      const job = this.mailbox.shift()!;
      try {
        const work = this.run(job.event, job.send);
        if (work) Promise.all(work).then(() => job.resolve(), job.reject);
        else job.resolve();
      } catch (err) {
        job.reject(err);
      }
    }
  }

  state(): string | undefined {
    return this.chart?.state();
  }

  stop(): void {
    this.chart?.stop();
    // A plain Error on purpose: the reason an input still queued fails; the participant reports it coded (HandlerError).
    for (const job of this.mailbox.splice(0)) job.reject(new Error('the participant stopped'));
  }
}

/** The function form: a one-state chart whose every event calls `process`. */
export function functionBehaviour<In extends string, Out extends string>(process: ProcessFn<In, Out>): Behaviour<In, Out> {
  return new ChartBehaviour<In, Out>(
    ({ host, observer, runtime }) =>
      new FunctionChart(runtime.role, (type, data, send, meta) => process(type as In, data, send as SendFn<Out>, meta as InputMeta), host, observer),
  );
}

/** The statechart form: an XState v5 machine built with tools bound to this participant. */
export function statechartBehaviour<In extends string, Out extends string>(
  machine: (tools: ChartTools<Out>) => AnyStateMachine,
): Behaviour<In, Out> {
  return new ChartBehaviour<In, Out>(({ host, observer, runtime }) => {
    const value = (data: unknown, args: { context: unknown; event: unknown }): unknown => {
      if (typeof data === 'function') return (data as (a: typeof args) => unknown)(args);
      if (data === undefined) return (args.event as { data?: unknown } | undefined)?.data;
      return data;
    };
    const tools: ChartTools<Out> = {
      role: runtime.role,
      send: (port: Out, data?: ChartData): ChartAction => (args) => host.sender()(port, value(data, args)),
      sendNow: (port: Out, data: unknown) => host.sender()(port, data),
    };
    return new xstateAdapter!.XStateChart(machine(tools), { name: runtime.role, observer, clock: runtime.clock });
  }, loadXStateAdapter);
}
