/**
 * Trace records as text sequence diagrams, one per chart, in the style of miros's `sequence` tool: states are
 * columns (`top` first), each transition an arrow labelled with its signal and numbered in time order; a
 * transition to the same state is a loop.
 *
 *   [ Chart: producer ]
 *        top          c1
 *         +start_at()->|
 *         |    (1)     |
 *         |            +
 *         |             \ (2)
 *         |             B()
 *         |             /
 *         |            <
 */
import { TOP, type TraceRecord } from './format.js';

export interface SequenceOptions {
  /** Number the transitions of each chart from 1 (default), or across all charts in time order. */
  numbering?: 'per-chart' | 'global';
}

/** One diagram per chart, in the order charts first appear; records are sorted by time. */
export function sequenceDiagram(records: readonly Pick<TraceRecord, 't' | 'chart' | 'signal' | 'from' | 'to'>[], options: SequenceOptions = {}): string {
  const sorted = [...records].sort((a, b) => a.t - b.t);
  const charts = new Map<string, Array<{ n: number; signal: string; from: string; to: string }>>();
  let global = 0;
  for (const r of sorted) {
    let list = charts.get(r.chart);
    if (!list) charts.set(r.chart, (list = []));
    global++;
    list.push({ n: options.numbering === 'global' ? global : list.length + 1, signal: r.signal, from: r.from, to: r.to });
  }
  return [...charts.entries()].map(([chart, steps]) => chartDiagram(chart, steps)).join('\n\n');
}

function chartDiagram(chart: string, steps: Array<{ n: number; signal: string; from: string; to: string }>): string {
  const states: string[] = [TOP];
  for (const s of steps) for (const name of [s.from, s.to]) if (!states.includes(name)) states.push(name);
  const labelWidth = Math.max(0, ...steps.map((s) => s.signal.length + 2));
  const width = Math.max(12, labelWidth + 3, ...states.map((s) => s.length + 2));
  const center = (i: number) => i * width + Math.floor(width / 2);
  const col = (name: string) => center(states.indexOf(name));
  const total = center(states.length - 1) + width;

  const lines: string[] = [`[ Chart: ${chart} ]`];
  const row = () => {
    const chars = Array.from({ length: total }, () => ' ');
    for (let i = 0; i < states.length; i++) chars[center(i)] = '|';
    return chars;
  };
  const put = (chars: string[], at: number, text: string) => {
    for (let k = 0; k < text.length; k++) if (at + k >= 0) chars[at + k] = text[k]!;
  };
  const emit = (chars: string[]) => lines.push(chars.join('').replace(/\s+$/, ''));

  const header = Array.from({ length: total }, () => ' ');
  for (let i = 0; i < states.length; i++) put(header, center(i) - Math.floor(states[i]!.length / 2), states[i]!);
  emit(header);

  for (const s of steps) {
    const a = col(s.from);
    const b = col(s.to);
    const label = `${s.signal}()`;
    const number = `(${s.n})`;
    if (a === b) {
      let r = row();
      r[a] = '+';
      emit(r);
      for (const text of [`\\ ${number}`, label, '/']) {
        r = row();
        r[a] = ' ';
        put(r, a + 1, text);
        emit(r);
      }
      r = row();
      r[a] = '<';
      emit(r);
      continue;
    }
    const left = Math.min(a, b);
    const right = Math.max(a, b);
    let r = row();
    for (let x = left + 1; x < right; x++) r[x] = '-';
    const span = right - left - 1;
    const at = left + 1 + Math.max(0, Math.floor((span - label.length - 1) / 2));
    put(r, a < b ? left + 1 : at + 1, label);
    r[a] = '+';
    if (a < b) r[b - 1] = '>';
    else r[b + 1] = '<';
    emit(r);
    r = row();
    put(r, left + 1 + Math.max(0, Math.floor((span - number.length) / 2)), number);
    emit(r);
  }
  return lines.join('\n');
}
