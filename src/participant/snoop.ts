/**
 * Spy and trace on the snoop channel.
 *
 * - `Snooper` (one per participant): the sink its chart spies to. Off by default; on by option/environment
 *   (`MSGFLO_SPY=1`, `MSGFLO_TRACE=1`, `msgflo-participant --spy --trace`) or at run time by a watcher's lease
 *   (control messages). Publishing never waits: at most `maxPending` messages in flight, beyond that lines are
 *   dropped and counted (the next message says how many), so a slow broker or watcher never slows the chart.
 *   The spy/trace of the chart's start is kept, and published first whenever spy/trace is switched on later.
 * - `SnoopLease` (one per watcher): switches spy/trace on for some roles while it is held; it renews itself and
 *   answers participants that start later. `setSnoop()` is the one-shot form.
 *
 * The control channel also carries a coordinator's `bound` notices to the participants of a role: the Snooper, which
 * listens there anyway, hands them to its participant (`onBound`, see StartGate).
 */
import { randomUUID } from 'node:crypto';
import {
  ALL_ROLES,
  type ControlMessage,
  type SnoopChannel,
  type SpyMessage,
  type TraceEntry,
  type TraceMessage,
  parseControlMessage,
} from '../protocol/snoop.js';
import { formatTrace, type TraceRecord } from '../statechart/format.js';
import { type Env, readSetting } from '../settings.js';
import type { Subscription, Transport } from '../transport/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import { logger } from '../util/logger.js';
import type { SnoopSink } from './definition.js';

const log = logger('snoop');

/** Default lease: a watcher renews every third of it. */
export const DEFAULT_LEASE_MS = 30_000;
/** Snoop messages a participant may have in flight before it drops lines. */
export const DEFAULT_MAX_PENDING = 256;

/** `{spy, trace}` from MSGFLO_SPY / MSGFLO_TRACE (see src/settings.ts; a value they do not accept is a SettingError). */
export function snoopFromEnv(env: Env): { spy: boolean; trace: boolean } {
  return { spy: readSetting(env, 'spy'), trace: readSetting(env, 'trace') };
}

export interface SnooperOptions {
  role: string;
  /** Participant id. */
  id: string;
  spy?: boolean;
  trace?: boolean;
  clock?: Clock;
  maxPending?: number;
  /** A coordinator's `bound` notice for this role came on the control channel (see StartGate). */
  onBound?: (bound: boolean) => void;
}

interface Lease {
  spy: boolean;
  trace: boolean;
  until: number;
}

export class Snooper implements SnoopSink {
  readonly role: string;
  readonly id: string;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly maxPending: number;
  private readonly onBound: ((bound: boolean) => void) | undefined;
  private localSpy: boolean;
  private localTrace: boolean;
  private readonly leases = new Map<string, Lease>();
  private control: Subscription | undefined;
  private starting = false;
  private stash: { spy: string[][]; trace: TraceRecord[] } | undefined;
  private stashSent = { spy: false, trace: false };
  private pending = 0;
  private readonly seq = { spy: 0, trace: 0 };
  private readonly dropped = { spy: 0, trace: 0 };
  private stopped = false;
  /** Totals, for tests and benchmarks. */
  readonly stats = { published: 0, dropped: 0 };

  constructor(transport: Transport, options: SnooperOptions) {
    this.transport = transport;
    this.role = options.role;
    this.id = options.id;
    this.clock = options.clock ?? systemClock;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.onBound = options.onBound;
    this.localSpy = options.spy ?? false;
    this.localTrace = options.trace ?? false;
  }

  get spy(): boolean {
    return this.starting || this.localSpy || this.leased('spy');
  }

  get trace(): boolean {
    return this.starting || this.localTrace || this.leased('trace');
  }

  private leased(which: 'spy' | 'trace'): boolean {
    if (this.leases.size === 0) return false;
    const now = this.clock.now();
    let on = false;
    for (const [from, lease] of this.leases) {
      if (lease.until <= now) this.leases.delete(from);
      else if (lease[which]) on = true;
    }
    return on;
  }

  /** Switch spy/trace on or off here (what options and environment said at start). */
  setLocal(flags: { spy?: boolean; trace?: boolean }): void {
    if (flags.spy !== undefined) this.localSpy = flags.spy;
    if (flags.trace !== undefined) this.localTrace = flags.trace;
    this.sendStash();
  }

  /** Listen to control messages, and ask watchers that are already there for their leases. */
  async start(): Promise<void> {
    const t = this.transport;
    this.control = await t.subscribeSnoop({ channels: ['control'], roles: [this.role, ALL_ROLES] }, (m) => {
      const msg = parseControlMessage(m.data);
      if (msg) this.onControl(msg);
      else log('%s: ignored a control message that is not one', this.role);
    });
    const query: ControlMessage = { v: 1, command: 'query', from: this.id, role: this.role };
    // Never waited for: the snoop channel must not hold the participant up.
    t.publishSnoop('control', ALL_ROLES, query).catch((err: Error) => log('%s: cannot ask for leases: %s', this.role, err.message));
  }

  /** Around the chart's start: its spy/trace is recorded even when off, and kept for later. */
  beginStart(): void {
    this.starting = true;
    this.stash = { spy: [], trace: [] };
  }

  endStart(): void {
    this.starting = false;
    this.sendStash();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const sub = this.control;
    this.control = undefined;
    await sub?.cancel().catch(() => {});
  }

  private onControl(msg: ControlMessage): void {
    if (msg.command === 'bound') {
      if (msg.role === this.role) this.onBound?.(msg.bound);
      return;
    }
    if (msg.command !== 'snoop') return;
    if (msg.roles && !msg.roles.includes(this.role)) return;
    if (!msg.spy && !msg.trace) {
      this.leases.delete(msg.from);
    } else {
      this.leases.set(msg.from, { spy: msg.spy, trace: msg.trace, until: this.clock.now() + Math.max(1000, msg.leaseMs) });
    }
    log('%s: lease from %s: spy %s, trace %s', this.role, msg.from, msg.spy, msg.trace);
    this.sendStash();
  }

  private sendStash(): void {
    const stash = this.stash;
    if (!stash || this.starting) return;
    if (!this.stashSent.spy && (this.localSpy || this.leased('spy'))) {
      this.stashSent.spy = true;
      for (const lines of stash.spy) this.publishSpy(lines);
    }
    if (!this.stashSent.trace && (this.localTrace || this.leased('trace'))) {
      this.stashSent.trace = true;
      for (const record of stash.trace) this.publishTrace(record);
    }
    if (this.stashSent.spy && this.stashSent.trace) this.stash = undefined;
  }

  onSpy(lines: string[]): void {
    if (this.starting && this.stash) {
      this.stash.spy.push(lines);
      if (!(this.localSpy || this.leased('spy'))) return;
      this.stashSent.spy = true;
    }
    this.publishSpy(lines);
  }

  onTrace(record: TraceRecord): void {
    if (this.starting && this.stash) {
      this.stash.trace.push(record);
      if (!(this.localTrace || this.leased('trace'))) return;
      this.stashSent.trace = true;
    }
    this.publishTrace(record);
  }

  private publishSpy(lines: string[]): void {
    this.publish('spy', (seq, dropped) => {
      const m: SpyMessage = { v: 1, role: this.role, id: this.id, seq, lines };
      if (dropped) m.dropped = dropped;
      return m;
    }, lines.length);
  }

  private publishTrace(record: TraceRecord): void {
    const entry: TraceEntry = { t: record.t, signal: record.signal, from: record.from, to: record.to, line: formatTrace(record) };
    this.publish('trace', (seq, dropped) => {
      const m: TraceMessage = { v: 1, role: this.role, id: this.id, seq, records: [entry] };
      if (dropped) m.dropped = dropped;
      return m;
    }, 1);
  }

  private publish(channel: 'spy' | 'trace', make: (seq: number, dropped: number) => SpyMessage | TraceMessage, count: number): void {
    const t = this.transport;
    if (this.stopped) return;
    const seq = ++this.seq[channel];
    if (this.pending >= this.maxPending) {
      this.dropped[channel] += count;
      this.stats.dropped += count;
      return;
    }
    const dropped = this.dropped[channel];
    this.dropped[channel] = 0;
    this.pending++;
    this.stats.published++;
    t.publishSnoop(channel as SnoopChannel, this.role, make(seq, dropped)).then(
      () => {
        this.pending--;
      },
      (err: Error) => {
        this.pending--;
        log('%s: snoop message lost: %s', this.role, err.message);
      },
    );
  }
}

export interface SnoopRequest {
  spy: boolean;
  trace: boolean;
  /** Roles to switch; default all. */
  roles?: readonly string[] | undefined;
  /** How long participants keep it without renewal. Default 30 s. */
  leaseMs?: number;
}

function controlFor(from: string, request: SnoopRequest): ControlMessage {
  const msg: ControlMessage = { v: 1, command: 'snoop', from, spy: request.spy, trace: request.trace, leaseMs: request.leaseMs ?? DEFAULT_LEASE_MS };
  if (request.roles) msg.roles = [...request.roles];
  return msg;
}

async function sendControl(transport: Transport, msg: ControlMessage, roles: readonly string[] | undefined): Promise<void> {
  for (const role of roles ?? [ALL_ROLES]) await transport.publishSnoop('control', role, msg);
}

/**
 * One-shot: switch spy/trace of `roles` (default all) on for `leaseMs` (or off, with `spy: false, trace:
 * false`), as `from`. Prefer `SnoopLease` for anything that runs longer than a lease.
 */
export async function setSnoop(transport: Transport, request: SnoopRequest & { from?: string }): Promise<void> {
  await sendControl(transport, controlFor(request.from ?? `snoop-${randomUUID()}`, request), request.roles);
}

/**
 * Spy/trace switched on while this is held: sent at once, renewed every third of the lease, sent again to every
 * participant that starts meanwhile, and ended by `release()`. What the runtime's `trace:start`/`trace:stop`
 * and msgflo-trace use.
 */
export class SnoopLease {
  readonly from: string;
  private readonly transport: Transport;
  private request: SnoopRequest;
  private timer: unknown;
  private queries: Subscription | undefined;
  private readonly clock: Clock;
  private released = false;

  private constructor(transport: Transport, request: SnoopRequest, clock: Clock, from: string) {
    this.transport = transport;
    this.request = request;
    this.clock = clock;
    this.from = from;
  }

  static async hold(transport: Transport, request: SnoopRequest, options: { clock?: Clock; from?: string } = {}): Promise<SnoopLease> {
    const lease = new SnoopLease(transport, request, options.clock ?? systemClock, options.from ?? `msgflo-trace-${randomUUID()}`);
    await lease.begin();
    return lease;
  }

  private async begin(): Promise<void> {
    this.queries = await this.transport.subscribeSnoop({ channels: ['control'] }, (m) => {
      const msg = parseControlMessage(m.data);
      if (msg?.command !== 'query' || this.released) return;
      if (this.request.roles && !this.request.roles.includes(msg.role)) return;
      void this.renew().catch((err: Error) => log('cannot answer a lease query: %s', err.message));
    });
    await this.renew();
    const every = Math.max(200, Math.floor((this.request.leaseMs ?? DEFAULT_LEASE_MS) / 3));
    this.timer = this.clock.setInterval(() => {
      this.renew().catch((err: Error) => log('lease renewal failed: %s', err.message));
    }, every);
  }

  /** Send the lease now. */
  renew(): Promise<void> {
    if (this.released) return Promise.resolve();
    return sendControl(this.transport, controlFor(this.from, this.request), this.request.roles);
  }

  /** Change what is asked (e.g. spy only) and send it now. */
  async update(request: Partial<SnoopRequest>): Promise<void> {
    this.request = { ...this.request, ...request };
    await this.renew();
  }

  /** End the lease: participants switch off unless someone else holds one. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.clock.clearInterval(this.timer);
    await this.queries?.cancel().catch(() => {});
    await sendControl(this.transport, controlFor(this.from, { ...this.request, spy: false, trace: false }), this.request.roles).catch(() => {});
  }
}
