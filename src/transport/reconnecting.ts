/**
 * Reconnection for transports that do not reconnect by themselves (AMQP), by the policy of reconnect.ts: when the
 * connection is lost, connect again with backoff, redeclare what was declared (queues, bindings), resume every subscription, tap and discovery
 * observer, and send what was sent meanwhile — in order, with the message ids it had, so a message whose confirm
 * was lost with the connection may arrive twice (at-least-once) but is never dropped.
 *
 * Sends made while disconnected are buffered up to `maxBuffered`; beyond that they are refused with
 * TransportClosedError, never dropped silently.
 */
import { TransportClosedError, reasonOf } from '../errors.js';
import { sendId } from '../protocol/envelope.js';
import type { SnoopChannel } from '../protocol/snoop.js';
import { delay } from '../util/backoff.js';
import { logger } from '../util/logger.js';
import { bindingKey } from './bindings.js';
import { MAX_BUFFERED_SENDS } from './defaults.js';
import { Listeners } from './listeners.js';
import { ConnectionState, isConnectionLoss } from './reconnect.js';
import type {
  Binding,
  BindingOptions,
  DeliveryHandler,
  MessageHandler,
  QueueKind,
  QueueOptions,
  SendOptions,
  SnoopFilter,
  SnoopHandler,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportEvent,
} from './types.js';

const log = logger('reconnect');

export interface ReconnectOptions {
  /** Sends kept while disconnected (default 10,000). */
  maxBuffered?: number;
  backoff?: { initialMs?: number; maxMs?: number };
}

/** A subscription, tap or discovery observer that is made again on every new connection. */
interface Managed {
  readonly queue: string;
  readonly open: (t: Transport) => Promise<Subscription>;
  current: Subscription | undefined;
  cancelled: boolean;
}

interface Pending {
  readonly run: (t: Transport) => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class ReconnectingTransport implements Transport {
  readonly url: string;
  readonly scheme: Transport['scheme'];
  readonly brokerBindings: boolean;
  private inner: Transport;
  private readonly queues = new Map<string, { kind: QueueKind; name: string; options: QueueOptions | undefined }>();
  private readonly bindings = new Map<string, { binding: Binding; options: BindingOptions | undefined }>();
  private readonly managed = new Set<Managed>();
  private readonly buffer: Pending[] = [];
  private readonly listeners = new Listeners<TransportEvent>(log);
  private readonly state: ConnectionState;
  private unhook: (() => void) | undefined;
  private reconnecting: Promise<void> | undefined;
  private flushing = false;

  constructor(
    first: Transport,
    private readonly factory: () => Promise<Transport>,
    private readonly options: ReconnectOptions = {},
  ) {
    this.inner = first;
    this.url = first.url;
    this.scheme = first.scheme;
    this.brokerBindings = first.brokerBindings;
    this.state = new ConnectionState({ emit: (event) => this.listeners.emit(event), ...(options.backoff ? { backoff: options.backoff } : {}) });
  }

  /** The first connection: its failure is the caller's (one-shot commands fail fast). */
  async connect(): Promise<void> {
    await this.inner.connect();
    this.state.opened();
    this.hook(this.inner);
  }

  private hook(t: Transport): void {
    this.unhook?.();
    this.unhook = t.on((event) => {
      if (t !== this.inner) return;
      if (event.type === 'disconnect') this.lost(event.error);
      else if (event.type === 'error') this.state.error(event.error);
    });
  }

  on(listener: (event: TransportEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Connected right now (false while reconnecting). */
  get connected(): boolean {
    return this.state.isOpen;
  }

  private lost(error?: Error): void {
    if (!this.state.lost(error)) return;
    log('connection to %s lost (%s); reconnecting', this.url, error?.message ?? 'closed');
    for (const m of this.managed) m.current = undefined;
    this.reconnecting = this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    const old = this.inner;
    void old.close().catch(() => {});
    while (this.state.phase === 'lost') {
      await delay(this.state.nextDelay());
      if (this.state.phase !== 'lost') return;
      let t: Transport | undefined;
      try {
        t = await this.factory();
        await t.connect();
        for (const q of this.queues.values()) await t.createQueue(q.kind, q.name, q.options);
        for (const b of this.bindings.values()) await t.addBinding(b.binding, b.options);
        for (const m of this.managed) if (!m.cancelled) m.current = await m.open(t);
      } catch (err) {
        log('reconnect attempt %d failed: %s', this.state.attempts, reasonOf(err));
        for (const m of this.managed) m.current = undefined;
        await t?.close().catch(() => {});
        continue;
      }
      if (this.state.phase !== 'lost') {
        await t.close().catch(() => {});
        return;
      }
      this.inner = t;
      this.hook(t);
      log('reconnected to %s after %d attempt(s)', this.url, this.state.attempts);
      this.state.reconnected();
      await this.flush();
    }
  }

  /** Send what was buffered, in order, while the connection holds. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      let failures = 0;
      while (this.buffer.length && this.state.isOpen) {
        const next = this.buffer[0]!;
        try {
          await next.run(this.inner);
          this.buffer.shift();
          next.resolve();
          failures = 0;
        } catch (err) {
          // A lost connection keeps the operation for the next one. If the transport still says it is open (a
          // channel, not the connection, went away), retry a few times, then give the error to the caller.
          if (isConnectionLoss(err) && !this.state.isClosed && ++failures <= 20) {
            if (this.state.isOpen) await delay(100);
            continue;
          }
          this.buffer.shift();
          next.reject(err);
          failures = 0;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Run now, or after reconnecting when the connection is (or gets) lost. */
  private async withConnection(what: string, run: (t: Transport) => Promise<void>): Promise<void> {
    if (this.state.isClosed || this.state.phase === 'new') throw new TransportClosedError(what);
    if (this.state.isOpen && this.buffer.length === 0) {
      try {
        return await run(this.inner);
      } catch (err) {
        if (!isConnectionLoss(err) || this.state.isClosed) throw err;
        // The connection went away under this operation: retry it on the next one.
      }
    }
    if (this.buffer.length >= (this.options.maxBuffered ?? MAX_BUFFERED_SENDS)) {
      throw new TransportClosedError(`${what} (${this.buffer.length} sends already wait for the broker to come back)`);
    }
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ run, resolve, reject });
      if (this.state.isOpen) void this.flush();
    });
  }

  async close(): Promise<void> {
    if (!this.state.close()) return;
    this.unhook?.();
    for (const p of this.buffer.splice(0)) p.reject(new TransportClosedError('send'));
    await this.inner.close();
    this.state.ended();
  }

  /** Resolves once closed for good (see Transport.closed); the connections it replaces on the way do not count. */
  closed(): Promise<Error | undefined> {
    return this.state.closed();
  }

  async createQueue(kind: QueueKind, name: string, options?: QueueOptions): Promise<void> {
    this.queues.set(`${kind}:${name}`, { kind, name, options });
    await this.withConnection('create a queue', (t) => t.createQueue(kind, name, options));
  }

  async removeQueue(kind: QueueKind, name: string): Promise<void> {
    this.queues.delete(`${kind}:${name}`);
    await this.withConnection('remove a queue', (t) => t.removeQueue(kind, name));
  }

  async queueExists(kind: QueueKind, name: string): Promise<boolean> {
    if (!this.state.isOpen) throw new TransportClosedError('check a queue');
    return this.inner.queueExists(kind, name);
  }

  send(kind: QueueKind, name: string, data: unknown, options: SendOptions = {}): Promise<void> {
    // One id for every attempt, so a resend after a lost confirm is recognisable as a duplicate.
    const id = sendId(options);
    const opts = id === options.id ? options : { ...options, id };
    return this.withConnection('send', (t) => t.send(kind, name, data, opts));
  }

  private async manage(queue: string, open: (t: Transport) => Promise<Subscription>): Promise<Subscription> {
    if (!this.state.isOpen) throw new TransportClosedError('subscribe');
    const m: Managed = { queue, open, current: undefined, cancelled: false };
    m.current = await open(this.inner);
    this.managed.add(m);
    return {
      queue,
      cancel: async () => {
        m.cancelled = true;
        this.managed.delete(m);
        await m.current?.cancel().catch(() => {});
      },
    };
  }

  subscribe(queue: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription> {
    return this.manage(queue, (t) => t.subscribe(queue, handler, options));
  }

  tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    return this.manage(name, (t) => t.tap(kind, name, handler));
  }

  onDiscovery(handler: MessageHandler): Promise<Subscription> {
    return this.manage('fbp', (t) => t.onDiscovery(handler));
  }

  async addBinding(binding: Binding, options?: BindingOptions): Promise<void> {
    this.bindings.set(bindingKey(binding), { binding, options });
    await this.withConnection('bind', (t) => t.addBinding(binding, options));
  }

  async removeBinding(binding: Binding): Promise<void> {
    this.bindings.delete(bindingKey(binding));
    await this.withConnection('unbind', (t) => t.removeBinding(binding));
  }

  async listBindings(): Promise<Binding[]> {
    if (!this.state.isOpen) return [...this.bindings.values()].map((b) => b.binding);
    return this.inner.listBindings();
  }

  async announce(message: unknown, options?: { ttlMs?: number }): Promise<void> {
    // A heartbeat is only worth sending now; while reconnecting the next one will do.
    if (!this.state.isOpen) throw new TransportClosedError('announce');
    await this.inner.announce(message, options);
  }

  /** Snoop lines are at most once: none are kept while disconnected. */
  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    if (!this.state.isOpen) throw new TransportClosedError('publish on the snoop channel');
    await this.inner.publishSnoop(channel, role, data);
  }

  /** A snoop subscription made again on every new connection. */
  subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    return this.manage('snoop', (t) => {
      return t.subscribeSnoop(filter, handler);
    });
  }

  /** Resolves once a reconnection in progress has finished (tests). */
  async settled(): Promise<void> {
    await this.reconnecting;
  }
}
