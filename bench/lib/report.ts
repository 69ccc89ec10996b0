/**
 * Summaries (medians of the repetitions, spread, ratio to the best bare variant, targets) and the report: a text
 * table for stdout and the same tables in Markdown (for the README).
 */
import type { BrokerId, Mode } from './brokers.js';
import { MODE_LABEL } from './brokers.js';
import type { Measurement, Variant } from './measure.js';

export type WorkloadId = '1hop' | '3hop' | 'rr' | 'fanout';

export const WORKLOAD_LABEL: Record<WorkloadId, string> = {
  '1hop': '1 hop',
  '3hop': '3 hops',
  rr: 'request/reply',
  fanout: 'fan-out',
};

export const BROKER_LABEL: Record<BrokerId, string> = {
  rabbitmq: 'RabbitMQ',
  mosquitto: 'Mosquitto (stock)',
  'mosquitto-nodelay': 'Mosquitto (nodelay)',
  embedded: 'embedded (aedes)',
};

/** Targets, as ratios to the bare clients measured in the same run. */
export const TARGET = {
  throughputRatio: 0.9,
  latencyRatio: 1.2,
  p99Ms: 5,
  coordinatorCpuPct: 10,
  idleRssMb: 60,
};

export interface VariantSummary {
  variant: Variant;
  n: number;
  rate: number;
  rateMin: number;
  rateMax: number;
  p50: number | null;
  p99: number | null;
  cpuUsPerMsg: number | null;
  cpuRelayUs: number | null;
  cpuSinkUs: number | null;
  rssMb: number | null;
  lost: number;
  errors: string[];
}

export interface RowResult {
  workload: WorkloadId;
  broker: BrokerId;
  mode: Mode;
  /** fan-out: the number of consumer roles. */
  consumers?: number;
  measurements: Measurement[];
  error?: string;
  summary?: RowSummary;
}

export interface RowSummary {
  msgflo: VariantSummary;
  bare: VariantSummary[];
  /** The bare variant with the best throughput (the lowest p50 on request/reply). */
  best: VariantSummary;
  /** msgflo-ts / best bare throughput; request/reply: msgflo-ts p50 / best bare p50. */
  ratio: number;
  /** request/reply: msgflo-ts p99 / best bare p99. */
  p99Ratio?: number;
  ok: boolean;
  why: string[];
  /** Experimental msgflo-ts variants (not part of the targets). */
  experiments: VariantSummary[];
}

export interface ScaleResult {
  broker: BrokerId;
  participants: number;
  nodes: number;
  edges: number;
  /** Coordinator start → all bindings made, ms. */
  bindMs: number | null;
  /** Coordinator CPU in the steady state, % of one core. */
  cpuPct: number | null;
  rssMb: number | null;
  peakRssMb: number | null;
  expired: number;
  announcedPerSecond: number | null;
  windowMs: number;
  ok: boolean;
  error?: string;
}

export interface FootprintResult {
  broker: BrokerId;
  mode: Mode;
  startupMs: { msgflo: number[]; bare: number[] };
  idleRssMb: { msgflo: number[]; bare: number[] };
  /** Peak RSS of the stage during the 1-hop rows of this broker (both modes), MB. */
  loadedRssMb: { msgflo: number | null; bare: number | null };
  ok: boolean;
  error?: string;
}

export function median(values: number[]): number | null {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function summarise(ms: Measurement[], variant: Variant): VariantSummary {
  const ok = ms.filter((m) => m.variant === variant && !m.error);
  const rates = ok.map((m) => m.rate);
  const num = (f: (m: Measurement) => number | null) => median(ok.map(f).filter((v): v is number => v !== null));
  return {
    variant,
    n: ok.length,
    rate: median(rates) ?? 0,
    rateMin: rates.length ? Math.min(...rates) : 0,
    rateMax: rates.length ? Math.max(...rates) : 0,
    p50: num((m) => m.p50),
    p99: num((m) => m.p99),
    cpuUsPerMsg: num((m) => m.cpuUsPerMsg),
    cpuRelayUs: num((m) => m.cpuRelayUs),
    cpuSinkUs: num((m) => m.cpuSinkUs),
    rssMb: num((m) => m.rssMb),
    lost: ok.reduce((s, m) => s + m.lost, 0),
    errors: ms.filter((m) => m.variant === variant && m.error).map((m) => m.error!),
  };
}

export function summariseRow(row: RowResult, bareVariants: Variant[], experimentVariants: Variant[] = []): RowSummary | undefined {
  const msgflo = summarise(row.measurements, 'msgflo');
  const bare = bareVariants.map((v) => summarise(row.measurements, v)).filter((s) => s.n > 0);
  if (msgflo.n === 0 || bare.length === 0) return undefined;
  const experiments = experimentVariants.map((v) => summarise(row.measurements, v)).filter((s) => s.n > 0);
  const why: string[] = [];
  if (row.workload === 'rr') {
    const best = [...bare].sort((a, b) => (a.p50 ?? Infinity) - (b.p50 ?? Infinity))[0]!;
    const bestP99 = Math.min(...bare.map((b) => b.p99 ?? Infinity));
    const ratio = (msgflo.p50 ?? Infinity) / (best.p50 ?? Infinity);
    const p99Ratio = (msgflo.p99 ?? Infinity) / bestP99;
    if (!(ratio <= TARGET.latencyRatio)) why.push('p50 ratio');
    if (!(p99Ratio <= TARGET.latencyRatio)) why.push('p99 ratio');
    if (!((msgflo.p99 ?? Infinity) < TARGET.p99Ms)) why.push(`p99 ≥ ${TARGET.p99Ms} ms`);
    return { msgflo, bare, best, ratio, p99Ratio, ok: why.length === 0, why, experiments };
  }
  const best = [...bare].sort((a, b) => b.rate - a.rate)[0]!;
  const ratio = msgflo.rate / best.rate;
  if (!(ratio >= TARGET.throughputRatio)) why.push(`ratio < ${TARGET.throughputRatio}`);
  return { msgflo, bare, best, ratio, ok: why.length === 0, why, experiments };
}

// ── formatting ───────────────────────────────────────────────────────────────────────────────────────────────

export function fmtRate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)}k`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(1);
}

export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v < 1) return v.toFixed(2);
  if (v < 10) return v.toFixed(1);
  return v.toFixed(0);
}

export function fmtRatio(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toFixed(2);
}

function fmtMb(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(0);
}

function fmtUs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v < 10 ? v.toFixed(1) : v.toFixed(0);
}

/** ± half the range of the repetitions, as % of the median. */
function spread(s: VariantSummary): string {
  if (s.n < 2 || s.rate <= 0) return '';
  return ` ±${Math.round(((s.rateMax - s.rateMin) / 2 / s.rate) * 100)}%`;
}

export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  notes: string[];
}

export function throughputTable(rows: RowResult[]): Table {
  const out: string[][] = [];
  const experiments = [...new Set(rows.flatMap((r) => r.summary?.experiments.map((e) => e.variant) ?? []))];
  for (const r of rows.filter((x) => x.workload !== 'rr')) {
    const label = r.workload === 'fanout' ? `${WORKLOAD_LABEL.fanout} ×${r.consumers ?? '?'}` : WORKLOAD_LABEL[r.workload];
    const base = [label, BROKER_LABEL[r.broker], MODE_LABEL[r.mode]];
    const s = r.summary;
    if (!s) {
      out.push([...base, 'FAILED', '', '', '', '', '', '', `✗ ${firstLine(r.error ?? 'no complete measurement')}`, ...experiments.map(() => '')]);
      continue;
    }
    const exp = experiments.map((v) => {
      const e = s.experiments.find((x) => x.variant === v);
      return e ? `${fmtRate(e.rate)}${spread(e)} (${fmtRatio(e.rate / s.best.rate)})` : '–';
    });
    out.push([
      ...base,
      `${fmtRate(s.msgflo.rate)}${spread(s.msgflo)}`,
      `${fmtRate(s.best.rate)}${spread(s.best)} (${s.best.variant})`,
      fmtRatio(s.ratio),
      `${fmtMs(s.msgflo.p50)} / ${fmtMs(s.msgflo.p99)}`,
      `${fmtMs(s.best.p50)} / ${fmtMs(s.best.p99)}`,
      `${fmtMb(s.msgflo.rssMb)} / ${fmtMb(s.best.rssMb)}`,
      `${fmtUs(s.msgflo.cpuUsPerMsg)} / ${fmtUs(s.best.cpuUsPerMsg)}`,
      s.ok ? '✓' : '✗',
      ...exp,
    ]);
  }
  return {
    title: 'Throughput: msgs/s through the pipeline (median of the repetitions, ± half their range)',
    head: [
      'workload',
      'broker',
      'mode',
      'msgflo-ts msg/s',
      'bare msg/s (sockets)',
      'ratio',
      'msgflo p50/p99 ms',
      'bare p50/p99 ms',
      'RSS MB m/b',
      'CPU µs/msg m/b',
      'target ≥ 0.9',
      ...experiments.map((v) => `experiment ${v} msg/s (ratio)`),
    ],
    rows: out,
    notes: [
      'bare = the better of the bare clients with Nagle on (default) and with TCP_NODELAY (nodelay), measured interleaved with msgflo-ts.',
      'p50/p99: one-way latency producer → sink under full load (bounded window). RSS: peak of the first stage. CPU: all stages, per message.',
    ],
  };
}

export function roundTripTable(rows: RowResult[]): Table {
  const out: string[][] = [];
  const experiments = [...new Set(rows.flatMap((r) => r.summary?.experiments.map((e) => e.variant) ?? []))];
  for (const r of rows.filter((x) => x.workload === 'rr')) {
    const base = [BROKER_LABEL[r.broker], MODE_LABEL[r.mode]];
    const s = r.summary;
    if (!s) {
      out.push([...base, 'FAILED', '', '', '', '', '', `✗ ${firstLine(r.error ?? 'no complete measurement')}`, ...experiments.map(() => '')]);
      continue;
    }
    const exp = experiments.map((v) => {
      const e = s.experiments.find((x) => x.variant === v);
      return e ? `${fmtMs(e.p50)} / ${fmtMs(e.p99)}` : '–';
    });
    const bestP99 = [...s.bare].sort((a, b) => (a.p99 ?? Infinity) - (b.p99 ?? Infinity))[0]!;
    out.push([
      ...base,
      `${fmtMs(s.msgflo.p50)} / ${fmtMs(s.msgflo.p99)}`,
      `${fmtMs(s.best.p50)} (${s.best.variant}) / ${fmtMs(bestP99.p99)} (${bestP99.variant})`,
      `${fmtRatio(s.ratio)} / ${fmtRatio(s.p99Ratio)}`,
      `${fmtRate(s.msgflo.rate)} / ${fmtRate(s.best.rate)}`,
      `${fmtUs(s.msgflo.cpuUsPerMsg)} / ${fmtUs(s.best.cpuUsPerMsg)}`,
      s.ok ? '✓' : `✗ ${s.why.join(', ')}`,
      ...exp,
    ]);
  }
  return {
    title: 'Request/reply: sequential round trips through one echo stage (median of the repetitions)',
    head: [
      'broker',
      'mode',
      'msgflo-ts p50/p99 ms',
      'bare p50 / p99 ms (sockets)',
      'ratio p50/p99',
      'round trips/s m/b',
      'CPU µs/rt m/b',
      'target ≤ 1.2, p99 < 5 ms',
      ...experiments.map((v) => `experiment ${v} p50/p99 ms`),
    ],
    rows: out,
    notes: ['bare = per metric, the better of Nagle-on (default) and TCP_NODELAY (nodelay) sockets of the bare echo.'],
  };
}

export function scaleTable(results: ScaleResult[]): Table {
  return {
    title: 'Coordinator scale: simulated participants heartbeating every second, a graph of N nodes (a chain)',
    head: ['broker', 'participants', 'nodes/edges', 'all bound after', 'coordinator CPU', 'RSS (peak) MB', 'expired', 'target < 10% CPU'],
    rows: results.map((r) =>
      r.error
        ? [BROKER_LABEL[r.broker], String(r.participants), `${r.nodes}/${r.edges}`, 'FAILED', '', '', '', `✗ ${firstLine(r.error)}`]
        : [
            BROKER_LABEL[r.broker],
            String(r.participants),
            `${r.nodes}/${r.edges}`,
            r.bindMs === null ? '–' : `${(r.bindMs / 1000).toFixed(1)} s`,
            r.cpuPct === null ? '–' : `${r.cpuPct.toFixed(1)}%`,
            `${fmtMb(r.rssMb)} (${fmtMb(r.peakRssMb)})`,
            String(r.expired),
            r.ok ? '✓' : '✗',
          ],
    ),
    notes: ['CPU: share of one core over the steady state after every binding exists. expired: participants the coordinator wrongly expired.'],
  };
}

export function footprintTable(results: FootprintResult[]): Table {
  const ms = (v: number[]) => fmtMs(median(v));
  return {
    title: 'Footprint: one stage process (msgflo-ts participant / bare client)',
    head: ['broker', 'mode', 'start-up → first message ms m/b', 'idle RSS MB m/b', 'loaded RSS MB m/b', 'target idle ≤ 60 MB'],
    rows: results.map((r) =>
      r.error
        ? [BROKER_LABEL[r.broker], MODE_LABEL[r.mode], 'FAILED', '', '', `✗ ${firstLine(r.error)}`]
        : [
            BROKER_LABEL[r.broker],
            MODE_LABEL[r.mode],
            `${ms(r.startupMs.msgflo)} / ${ms(r.startupMs.bare)}`,
            `${fmtMb(median(r.idleRssMb.msgflo))} / ${fmtMb(median(r.idleRssMb.bare))}`,
            `${fmtMb(r.loadedRssMb.msgflo)} / ${fmtMb(r.loadedRssMb.bare)}`,
            r.ok ? '✓' : '✗',
          ],
    ),
    notes: ['start-up: from spawning `node` to the first message handled (seen leaving the stage). loaded: peak during the 1-hop rows.'],
  };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 160);
}

export function renderText(t: Table): string {
  const all = [t.head, ...t.rows];
  const widths = t.head.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd();
  return [t.title, line(t.head), widths.map((w) => '─'.repeat(w)).join('  '), ...t.rows.map(line), ...t.notes.map((n) => `  ${n}`)].join('\n');
}

export function renderMarkdown(t: Table): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `**${t.title}**`,
    '',
    `| ${t.head.map(esc).join(' | ')} |`,
    `|${t.head.map(() => '---').join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
    '',
    ...t.notes.map((n) => `${n}`),
  ].join('\n');
}
