/**
 * Watching a network's spy and trace from anywhere: the library behind msgflo-trace.
 *
 * `watchNetwork(transport)` listens to the snoop channel (and, unless told not to, holds a lease that switches
 * spy/trace on in the participants). Each participant's lines land in a `ForeignChart`, which offers `spy()`
 * and `trace()` like miros's ForeignHsm, so the same assertions work on a chart running on another machine.
 */
import { EventEmitter } from 'node:events';
import {
  type TraceEntry,
  parseSpyMessage,
  parseTraceMessage,
} from '../protocol/snoop.js';
import { stripTrace } from '../statechart/format.js';
import { sequenceDiagram } from '../statechart/sequence.js';
import type { SnoopReceived, Subscription, Transport } from '../transport/types.js';
import { logger } from '../util/logger.js';
import { SnoopLease } from './snoop.js';

const log = logger('watch');

/** Lines kept per chart (as miros's ring buffers). */
export const DEFAULT_MAX_LINES = 500;

/** The spy and trace of one chart (role) seen from afar. */
export class ForeignChart {
  readonly role: string;
  private readonly maxLines: number;
  private spyLines: string[] = [];
  private records: TraceEntry[] = [];

  constructor(role: string, maxLines = DEFAULT_MAX_LINES) {
    this.role = role;
    this.maxLines = maxLines;
  }

  /** Spy lines, oldest first. */
  spy(): string[] {
    return [...this.spyLines];
  }

  /** Trace lines, oldest first. */
  trace(): string[] {
    return this.records.map((r) => r.line);
  }

  /** Trace lines without timestamps (`[producer] e->B() c1->c1`), for comparisons. */
  strippedTrace(): string[] {
    return stripTrace(this.trace());
  }

  traceRecords(): TraceEntry[] {
    return [...this.records];
  }

  appendToSpy(...lines: string[]): void {
    this.spyLines.push(...lines);
    if (this.spyLines.length > this.maxLines) this.spyLines.splice(0, this.spyLines.length - this.maxLines);
  }

  appendToTrace(...records: TraceEntry[]): void {
    this.records.push(...records);
    if (this.records.length > this.maxLines) this.records.splice(0, this.records.length - this.maxLines);
  }

  clearSpy(): void {
    this.spyLines = [];
  }

  clearTrace(): void {
    this.records = [];
  }
}

export interface WatchOptions {
  /** Roles to watch (default: all). */
  roles?: readonly string[] | undefined;
  /** Hear spy lines (default true). */
  spy?: boolean;
  /** Hear trace lines (default true). */
  trace?: boolean;
  /** Switch spy/trace on in the watched participants while watching (a lease). Default true. */
  enable?: boolean;
  leaseMs?: number;
  /** Lines kept per chart. */
  maxLines?: number;
}

export interface SpyEvent {
  role: string;
  /** Participant id. */
  id: string;
  line: string;
}

export interface TraceEvent extends TraceEntry {
  role: string;
  id: string;
}

export interface WatcherEvents {
  spy: [SpyEvent];
  trace: [TraceEvent];
  /** Lines of a participant that never arrived: it dropped them, or this watcher fell behind. */
  dropped: [{ role: string; id: string; channel: 'spy' | 'trace'; count: number }];
  /** A snoop message that is not one (ignored). */
  invalid: [{ role: string; channel: string }];
}

export class NetworkWatcher extends EventEmitter<WatcherEvents> {
  private readonly transport: Transport;
  private readonly options: WatchOptions;
  private readonly foreign = new Map<string, ForeignChart>();
  private readonly lastSeq = new Map<string, number>();
  private subscription: Subscription | undefined;
  private lease: SnoopLease | undefined;
  private closed = false;

  private constructor(transport: Transport, options: WatchOptions) {
    super();
    this.transport = transport;
    this.options = options;
  }

  /** Start watching; resolves once listening (and, with `enable`, once the lease was sent). */
  static async watch(transport: Transport, options: WatchOptions = {}): Promise<NetworkWatcher> {
    const w = new NetworkWatcher(transport, options);
    await w.begin();
    return w;
  }

  private async begin(): Promise<void> {
    const t = this.transport;
    const spy = this.options.spy ?? true;
    const trace = this.options.trace ?? true;
    const channels: Array<'spy' | 'trace'> = [];
    if (spy) channels.push('spy');
    if (trace) channels.push('trace');
    this.subscription = await t.subscribeSnoop({ channels, roles: this.options.roles }, (m) => this.receive(m));
    if (this.options.enable ?? true) {
      this.lease = await SnoopLease.hold(t, { spy, trace, roles: this.options.roles, ...(this.options.leaseMs ? { leaseMs: this.options.leaseMs } : {}) });
    }
  }

  /** The chart of `role` (made on first use, so it can be asked for before its first line). */
  chart(role: string): ForeignChart {
    let c = this.foreign.get(role);
    if (!c) {
      c = new ForeignChart(role, this.options.maxLines);
      this.foreign.set(role, c);
    }
    return c;
  }

  charts(): ForeignChart[] {
    return [...this.foreign.values()];
  }

  /** Every trace record seen, in time order, with its role. */
  traceRecords(): Array<TraceEntry & { role: string }> {
    return this.charts()
      .flatMap((c) => c.traceRecords().map((r) => ({ ...r, role: c.role })))
      .sort((a, b) => a.t - b.t);
  }

  /** The trace so far as text sequence diagrams, one per chart. */
  sequence(): string {
    return sequenceDiagram(this.traceRecords().map((r) => ({ t: r.t, chart: r.role, signal: r.signal, from: r.from, to: r.to })));
  }

  private gap(role: string, id: string, channel: 'spy' | 'trace', seq: number, dropped: number | undefined): void {
    const key = `${channel}\u0000${id}`;
    const last = this.lastSeq.get(key);
    this.lastSeq.set(key, seq);
    const missing = (last !== undefined && seq > last + 1 ? seq - last - 1 : 0) + (dropped ?? 0);
    if (missing > 0) this.emit('dropped', { role, id, channel, count: missing });
  }

  private receive(m: SnoopReceived): void {
    if (this.closed) return;
    if (m.channel === 'spy') {
      const msg = parseSpyMessage(m.data);
      if (!msg) return void this.emit('invalid', { role: m.role, channel: m.channel });
      this.gap(msg.role, msg.id, 'spy', msg.seq, msg.dropped);
      this.chart(msg.role).appendToSpy(...msg.lines);
      for (const line of msg.lines) this.emit('spy', { role: msg.role, id: msg.id, line });
    } else if (m.channel === 'trace') {
      const msg = parseTraceMessage(m.data);
      if (!msg) return void this.emit('invalid', { role: m.role, channel: m.channel });
      this.gap(msg.role, msg.id, 'trace', msg.seq, msg.dropped);
      this.chart(msg.role).appendToTrace(...msg.records);
      for (const r of msg.records) this.emit('trace', { ...r, role: msg.role, id: msg.id });
    }
  }

  /** Stop watching; with a lease, participants switch spy/trace off again (unless someone else asks for them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lease?.release().catch((err: Error) => log('cannot release the lease: %s', err.message));
    await this.subscription?.cancel().catch(() => {});
  }
}

/** Watch the spy/trace of a network (see NetworkWatcher). */
export function watchNetwork(transport: Transport, options: WatchOptions = {}): Promise<NetworkWatcher> {
  return NetworkWatcher.watch(transport, options);
}
