/**
 * miros-format spy and trace lines. Pure functions, no I/O.
 *
 * Spy lines (one list per run-to-completion step):
 *   START, SEARCH_FOR_SUPER_SIGNAL:s, ENTRY_SIGNAL:s, INIT_SIGNAL:s, <SIG>:s, <SIG>:s:HOOK, EXIT_SIGNAL:s,
 *   <- Queued:(n) Deferred:(m)
 * Trace lines (one per step that changed state):
 *   [YYYY-MM-DD HH:MM:SS.ffffff] [name] e-><SIG>() <from>-><to>
 */

export const SPY = {
  start: 'START',
  search: 'SEARCH_FOR_SUPER_SIGNAL',
  entry: 'ENTRY_SIGNAL',
  exit: 'EXIT_SIGNAL',
  init: 'INIT_SIGNAL',
} as const;

/** The signal a trace shows for the start of a chart (miros: `e->start_at() top->c1`). */
export const START_SIGNAL = 'start_at';
/** The state a chart comes from when it starts. */
export const TOP = 'top';

export function spyLine(signal: string, state: string): string {
  return `${signal}:${state}`;
}

export function hookLine(signal: string, state: string): string {
  return `${signal}:${state}:HOOK`;
}

/** Written when a step failed (an action or guard threw): `ERROR:<message>` (not a miros line). */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `ERROR:${message.split('\n')[0]}`;
}

/** The queue reflection that closes every step: `<- Queued:(n) Deferred:(m)`. */
export function queueReflection(queued: number, deferred: number): string {
  return `<- Queued:(${queued}) Deferred:(${deferred})`;
}

/** One trace record: a step that changed state. */
export interface TraceRecord {
  /** Microseconds since the epoch. */
  t: number;
  /** Chart name (the participant's role). */
  chart: string;
  /** The event's signal (`start_at` when the chart started). */
  signal: string;
  /** Active leaf state(s) before and after (`top` before the start); parallel leaves joined with `,`. */
  from: string;
  to: string;
}

let lastMicros = 0;

/** Microseconds since the epoch, strictly increasing within this process. */
export function nowMicros(nowMs: number = performance.timeOrigin + performance.now()): number {
  let us = Math.floor(nowMs * 1000);
  if (us <= lastMicros) us = lastMicros + 1;
  lastMicros = us;
  return us;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `YYYY-MM-DD HH:MM:SS.ffffff` in local time, as Python's datetime prints it. */
export function formatTimestamp(micros: number): string {
  const d = new Date(Math.floor(micros / 1000));
  const frac = ((micros % 1_000_000) + 1_000_000) % 1_000_000;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(frac, 6)}`
  );
}

/** `[2018-01-10 13:14:27.024377] [producer] e->B() c1->c1` */
export function formatTrace(record: TraceRecord): string {
  return `[${formatTimestamp(record.t)}] [${record.chart}] e->${record.signal}() ${record.from}->${record.to}`;
}

const TRACE_LINE = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\] \[([^\]]*)\] e->(.*)\(\) (\S+)->(\S+)$/;

/** Read a trace line back into a record (the timestamp as local time); undefined when it is not one. */
export function parseTrace(line: string): TraceRecord | undefined {
  const m = TRACE_LINE.exec(line.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, us, chart, signal, from, to] = m as unknown as string[];
  const ms = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime();
  return { t: ms * 1000 + Number(us), chart: chart!, signal: signal!, from: from!, to: to! };
}

/**
 * Trace lines without their timestamps (miros's `stripped()`), so that a trace can be compared with an expected
 * one in tests: `[producer] e->B() c1->c1`.
 */
export function stripTrace(lines: readonly string[]): string[] {
  return lines.map((l) => l.replace(/^\s*\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\]\s*/, ''));
}

/** The signal a trace shows for an event type: delayed transitions read as `AFTER_<ms>MS`. */
export function signalName(eventType: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return /^\d+$/.test(after[1]!) ? `AFTER_${after[1]}MS` : `AFTER_${after[1]}`;
  return eventType;
}
