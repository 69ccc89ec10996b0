/**
 * The function form as a statechart: one state, `ready`, whose handler takes every event as a hook (a transition
 * without target) that calls the function. It behaves, and spies, exactly like the XState machine
 * `{initial: 'ready', states: {ready: {on: {'*': {actions: call}}}}}`, without an XState actor per message: the
 * function form stays as fast as a plain function call.
 */
import { type Chart, type ChartEvent, type ChartHost, type ChartObserver, type Sender } from './engine.js';
import { SPY, START_SIGNAL, TOP, errorLine, hookLine, nowMicros, queueReflection, signalName, spyLine } from './format.js';

/** The one state of a function-form chart. */
export const FUNCTION_STATE = 'ready';

export type ChartFunction = (type: string, data: unknown, send: Sender, meta: unknown) => unknown;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class FunctionChart implements Chart {
  readonly name: string;
  private readonly fn: ChartFunction;
  private readonly host: ChartHost;
  private readonly observer: ChartObserver;

  constructor(name: string, fn: ChartFunction, host: ChartHost, observer: ChartObserver) {
    this.name = name;
    this.fn = fn;
    this.host = host;
    this.observer = observer;
  }

  start(): void {
    const o = this.observer;
    if (o.spy) {
      o.onSpy([
        SPY.start,
        spyLine(SPY.search, FUNCTION_STATE),
        spyLine(SPY.entry, FUNCTION_STATE),
        spyLine(SPY.init, FUNCTION_STATE),
        queueReflection(o.queued(), o.deferred()),
      ]);
    }
    if (o.trace) o.onTrace({ t: nowMicros(), chart: this.name, signal: START_SIGNAL, from: TOP, to: FUNCTION_STATE });
  }

  dispatch(event: ChartEvent): void {
    const o = this.observer;
    const spy = o.spy;
    let failed: unknown;
    let result: unknown;
    try {
      result = this.fn(event.type, event.data, this.host.sender(), event.meta);
    } catch (err) {
      // Stands for a handler's `throw undefined`; the participant reports it coded (HandlerError), as any throw.
      failed = err ?? new Error('undefined thrown');
    }
    if (spy) {
      const sig = signalName(event.type);
      const lines = [spyLine(sig, FUNCTION_STATE), hookLine(sig, FUNCTION_STATE)];
      if (failed !== undefined) lines.push(errorLine(failed));
      lines.push(queueReflection(o.queued(), o.deferred()));
      o.onSpy(lines);
    }
    if (failed !== undefined) throw failed;
    if (isThenable(result)) this.host.wait(result);
  }

  stop(): void {}

  state(): string {
    return FUNCTION_STATE;
  }
}
