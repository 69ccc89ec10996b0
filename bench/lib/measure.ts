/**
 * One measurement of one arm: throughput (producer → stages → sinks, for a fixed time) or request/reply latency
 * (sequential round trips through one echo stage). Both also record the stages' CPU time per message and their
 * peak RSS.
 */
import type { Pipeline } from './pipeline.js';
import { allProcs } from './pipeline.js';
import { type Proc, RssSampler } from './proc.js';

/**
 * What is measured: 'msgflo' (msgflo-ts participants as they are), 'msgflo-coalesce' (experiment: the same with
 * write coalescing preloaded), or the bare stages with their sockets set to 'default' (Nagle on), 'nodelay' or
 * 'coalesce'.
 */
export type Variant = 'msgflo' | 'msgflo-coalesce' | 'default' | 'nodelay' | 'coalesce';

export function isMsgflo(v: Variant): boolean {
  return v === 'msgflo' || v === 'msgflo-coalesce';
}

export interface Measurement {
  variant: Variant;
  rep: number;
  /** Messages per second through the pipeline (per sink; fan-out: the mean over sinks), or round trips per second. */
  rate: number;
  /** One-way latency producer → sink under load (throughput), or round-trip time (request/reply), in ms. */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** Messages received (per sink, the fewest), or round trips made. */
  count: number;
  /** Sent but never received (at-most-once modes may drop). */
  lost: number;
  /** CPU time of all stage processes per message, µs. */
  cpuUsPerMsg: number | null;
  /** … of the relays (the echo) alone, and of the sinks alone. */
  cpuRelayUs: number | null;
  cpuSinkUs: number | null;
  /** Peak RSS of the first stage during the measurement, MB. */
  rssMb: number | null;
  error?: string;
}

interface SinkReport {
  count: number;
  first: number;
  last: number;
  latency: { n: number; p50: number | null; p99: number | null; max: number | null };
}

export async function setSockets(p: Pipeline, variant: Variant): Promise<void> {
  if (p.arm !== 'bare' || isMsgflo(variant)) return;
  await Promise.all(allProcs(p).map((proc) => proc.call('socket', { mode: variant })));
}

function cpuOf(procs: Proc[]): number {
  return procs.reduce((sum, p) => sum + (p.cpuMs() ?? 0), 0);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export interface ThroughputOptions {
  durationMs: number;
  /** Messages the producer may be ahead of the slowest sink. */
  window: number;
}

export async function throughput(producer: Proc, p: Pipeline, variant: Variant, rep: number, o: ThroughputOptions): Promise<Measurement> {
  await setSockets(p, variant);
  await Promise.all(p.sinks.map((s) => s.call('reset')));
  const received = new Map<Proc, number>();
  const minReceived = () => Math.min(...p.sinks.map((s) => received.get(s) ?? 0));
  let lastProgress = Date.now();
  const offs = p.sinks.map((s) =>
    s.on('progress', (msg) => {
      received.set(s, Number(msg.received));
      lastProgress = Date.now();
      producer.post({ type: 'credit', received: minReceived() });
    }),
  );
  const rss = new RssSampler([p.relays[0]!]);
  const relay0 = cpuOf(p.relays);
  const sink0 = cpuOf(p.sinks);
  let error: string | undefined;
  let sent = 0;
  try {
    const run = await producer.call<{ sent: number; forgiven: number }>('run', { target: p.entry, durationMs: o.durationMs, window: o.window }, o.durationMs + 30_000);
    sent = run.sent;
    // Let the pipeline drain: until every sink has everything, or nothing arrived for a second (lost messages).
    const deadline = Date.now() + 30_000;
    while (minReceived() < sent && Date.now() - lastProgress < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  } catch (err) {
    error = (err as Error).message;
  } finally {
    for (const off of offs) off();
  }
  const relayCpu = cpuOf(p.relays) - relay0;
  const sinkCpu = cpuOf(p.sinks) - sink0;
  const rssMb = rss.stop().get(p.relays[0]!) ?? null;
  const reports = await Promise.all(p.sinks.map((s) => s.call<SinkReport>('report')));
  const count = Math.min(...reports.map((r) => r.count));
  const rates = reports.map((r) => (r.count > 1 && r.last > r.first ? ((r.count - 1) * 1000) / (r.last - r.first) : 0));
  const p50s = reports.map((r) => r.latency.p50).filter((v): v is number => v !== null);
  const p99s = reports.map((r) => r.latency.p99).filter((v): v is number => v !== null);
  const maxes = reports.map((r) => r.latency.max).filter((v): v is number => v !== null);
  if (!error && count === 0) error = `no message reached the sink (${sent} sent)`;
  const m: Measurement = {
    variant,
    rep,
    rate: rates.reduce((a, b) => a + b, 0) / rates.length,
    p50: p50s.length ? median(p50s) : null,
    p99: p99s.length ? Math.max(...p99s) : null,
    max: maxes.length ? Math.max(...maxes) : null,
    count,
    lost: Math.max(0, sent - count),
    cpuUsPerMsg: count > 0 ? ((relayCpu + sinkCpu) * 1000) / count : null,
    cpuRelayUs: count > 0 ? (relayCpu * 1000) / count : null,
    cpuSinkUs: count > 0 ? (sinkCpu * 1000) / count : null,
    rssMb,
  };
  if (error) m.error = error;
  return m;
}

export interface RoundTripOptions {
  count: number;
  maxMs: number;
}

export async function roundTrips(requester: Proc, p: Pipeline, source: string, variant: Variant, rep: number, o: RoundTripOptions): Promise<Measurement> {
  await setSockets(p, variant);
  const rss = new RssSampler([p.relays[0]!]);
  const cpu0 = cpuOf(p.relays);
  const r = await requester.call<{ n: number; p50: number | null; p99: number | null; max: number | null; elapsed: number; error?: string }>(
    'rr',
    { target: p.entry, source, count: o.count, maxMs: o.maxMs, timeoutMs: 3000 },
    o.maxMs + 30_000,
  );
  const cpu = cpuOf(p.relays) - cpu0;
  const rssMb = rss.stop().get(p.relays[0]!) ?? null;
  const m: Measurement = {
    variant,
    rep,
    rate: r.n > 0 ? (r.n * 1000) / r.elapsed : 0,
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    count: r.n,
    lost: 0,
    cpuUsPerMsg: r.n > 0 ? (cpu * 1000) / r.n : null,
    cpuRelayUs: r.n > 0 ? (cpu * 1000) / r.n : null,
    cpuSinkUs: null,
    rssMb,
  };
  if (r.error) m.error = r.error;
  else if (r.n === 0) m.error = 'no round trip completed';
  return m;
}
