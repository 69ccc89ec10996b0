/**
 * The engine-neutral face of a statechart as the participant runtime drives it: start it, dispatch one event at
 * a time (run to completion), stop it; spy and trace go to an observer. Two engines implement it: XState v5
 * machines (xstate.ts) and the one-state chart behind the function form (function-chart.ts).
 */
import type { TraceRecord } from './format.js';

/** An event as a chart receives it: an inport message is `{type: <port>, data, meta}`. */
export interface ChartEvent {
  readonly type: string;
  readonly data?: unknown;
  readonly meta?: unknown;
}

export type Sender = (port: string, data: unknown) => void;

/** What a chart may ask of the runtime that drives it. */
export interface ChartHost {
  /**
   * The sender for the event being dispatched now; outside a dispatch (delayed transitions, the start), the
   * sender of outputs that belong to no input. Keep it to send on behalf of that event later.
   */
  sender(): Sender;
  /** The event being dispatched must also wait for this (asynchronous work its actions started). */
  wait(work: PromiseLike<unknown>): void;
}

/** Where spy lines and trace records go. Flags are read at every step, so they can change at run time. */
export interface ChartObserver {
  readonly spy: boolean;
  readonly trace: boolean;
  /** The lines of one run-to-completion step, ending with the queue reflection. */
  onSpy(lines: string[]): void;
  onTrace(record: TraceRecord): void;
  /** A step that no dispatch asked for (a delayed transition) failed; the chart is back where it was. */
  onError(error: unknown, signal: string): void;
  /** Events waiting for the chart and events deferred, for `<- Queued:(n) Deferred:(m)`. */
  queued(): number;
  deferred(): number;
}

export interface Chart {
  /** The chart's name in trace lines (the participant's role). */
  readonly name: string;
  start(): void;
  /**
   * Run one event to completion. Throws when the chart failed on it; the chart is then back in the state it had
   * before the event, and keeps running.
   */
  dispatch(event: ChartEvent): void;
  stop(): void;
  /** The active leaf state(s), parallel ones joined with `,`. */
  state(): string;
}

/**
 * An error thrown by a chart's action or guard while it handled an event. Not coded: statechart/ imports no
 * errors module; the participant reports it as MSGFLO_ERR_HANDLER (an input's or its start's failure).
 */
export class ChartError extends Error {
  readonly signal: string;
  constructor(signal: string, cause: unknown) {
    super(`the chart failed on '${signal}': ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ChartError';
    this.signal = signal;
  }
}

/** An observer that wants nothing. */
export const NO_OBSERVER: ChartObserver = {
  spy: false,
  trace: false,
  onSpy: () => {},
  onTrace: () => {},
  onError: () => {},
  queued: () => 0,
  deferred: () => 0,
};
