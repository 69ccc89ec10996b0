/**
 * One AMQP connection: opening it, its events, the channels opened on it, and dropping it. It never reconnects by
 * itself (ReconnectingTransport makes a new one; see reconnect.ts for the rules).
 *
 * RabbitMQ closes a channel on any failed operation (404, 406), so channels are opened for one purpose each and
 * never shared with an operation that might kill them. Every channel gets error listeners here: an unhandled
 * 'error' event would crash the process.
 */
import type { Duplex } from 'node:stream';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { maskUrl, TransportClosedError } from '../../errors.js';
import { requireCjs } from '../../util/cjs.js';
import { logger } from '../../util/logger.js';
import { settledWithin } from '../../util/within.js';
import { CONNECT_TIMEOUT_MS } from '../defaults.js';
import { Listeners } from '../listeners.js';
import type { TransportEvent, TransportOptions } from '../types.js';
import { closedOr, connectError } from './errors.js';
import { connectionSocket } from './internals.js';
import { Publisher } from './publish.js';

const { connect: amqpConnect } = requireCjs('amqplib') as typeof import('amqplib');

const log = logger('amqp');

export interface AmqpTransportOptions extends TransportOptions {
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** TLS options for amqps:// (CA, client certificate, …). */
  tls?: TlsOptions;
  /** close(): longest wait for each phase (confirms, consumers, the connection) before giving up (default 10 s). */
  closeTimeoutMs?: number;
}

type State = 'new' | 'connecting' | 'open' | 'lost' | 'closing' | 'closed';

/** Run `fn`, swallowing both synchronous throws and rejections (for best-effort cleanup). */
export async function quietly(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log('ignored during cleanup: %s', (err as Error)?.message ?? err);
  }
}

/** Wait for `p` (its outcome ignored), but no longer than `ms`; logs when it gave up. */
export async function waitAtMost(ms: number, what: string, p: Promise<unknown>): Promise<boolean> {
  const done = await settledWithin(ms, p);
  if (!done) log('%s: gave up after %d ms', what, ms);
  return done;
}

const coalescing = new WeakSet<object>();

/**
 * One write per event-loop turn on the AMQP socket. amqplib writes every frame on its own, and with TCP_NODELAY
 * (needed: Nagle meeting delayed ACKs stalls request/reply at ~40 ms) each becomes a syscall and a segment —
 * about two per relayed message, 44% of an at-least-once relay's CPU in the bench profile. Corking the socket at
 * the first write of a turn and uncorking on setImmediate sends what that turn produced together, without
 * waiting for anything: no stall, and the batching Nagle used to give for free.
 */
export function coalesceWrites(socket: Duplex): void {
  if (coalescing.has(socket) || typeof socket.cork !== 'function') return;
  coalescing.add(socket);
  const write = socket.write;
  let corked = false;
  socket.write = function coalescingWrite(this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write.apply(this, args);
  } as Duplex['write'];
}

export class AmqpConnection {
  /** The broker URL with its password masked. */
  readonly url: string;
  readonly events = new Listeners<TransportEvent>(log);
  private readonly rawUrl: string;
  private readonly options: AmqpTransportOptions;
  private state: State = 'new';
  private model: ChannelModel | undefined;
  private connecting: Promise<void> | undefined;
  private current: Publisher | undefined;
  private readonly closedChannels = new WeakSet<Channel>();
  /** Called when this connection is lost or closed: per-connection state elsewhere is dropped. */
  private readonly resets: Array<() => void> = [];

  constructor(url: string, options: AmqpTransportOptions) {
    this.rawUrl = url;
    this.url = maskUrl(url);
    this.options = options;
  }

  /** Open: operations may start. */
  get isOpen(): boolean {
    return this.state === 'open' && this.model !== undefined;
  }

  /** Open, or closing and still finishing what was started (settlements, confirms). */
  get usable(): boolean {
    return this.state === 'open' || this.state === 'closing';
  }

  /** Run `reset` whenever this connection's channels go away (a lost connection, a new one, close). */
  onReset(reset: () => void): void {
    this.resets.push(reset);
  }

  connect(): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closing' || this.state === 'closed') return Promise.reject(new TransportClosedError('connect'));
    if (!this.connecting) {
      this.connecting = this.open().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async open(): Promise<void> {
    this.state = 'connecting';
    log('connecting to %s', this.url);
    let model: ChannelModel;
    try {
      model = await amqpConnect(this.rawUrl, {
        ...this.options.tls,
        noDelay: true,
        timeout: this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: this.options.name ?? 'msgflo-ts' },
      });
    } catch (err) {
      if (this.state === 'connecting') this.state = 'new';
      const error = connectError(this.rawUrl, err);
      log('connect failed: %s', error.message);
      throw error;
    }
    if (this.state !== 'connecting') {
      // close() was called while connecting.
      await quietly(() => model.close());
      throw new TransportClosedError('connect');
    }
    const socket = connectionSocket(model);
    if (socket) coalesceWrites(socket);
    model.on('error', (err: Error) => {
      log('connection error: %s', err.message);
      if (this.model === model && this.state === 'open') this.events.emit({ type: 'error', error: err });
    });
    model.on('close', (err?: Error) => {
      if (this.model !== model || this.state !== 'open') return;
      log('connection lost: %s', err?.message ?? 'closed by broker');
      this.state = 'lost';
      this.reset();
      this.events.emit(err ? { type: 'disconnect', error: err } : { type: 'disconnect' });
    });
    model.on('blocked', (reason: string) => log('connection blocked by broker: %s', reason));
    model.on('unblocked', () => log('connection unblocked'));
    model.on('handler-error', (err: Error, event: string) => log('error in connection %s handler: %s', event, err.message));
    this.model = model;
    this.reset();
    this.current = new Publisher({ open: () => this.openConfirmChannel(), usable: () => this.usable });
    this.state = 'open';
    log('connected to %s', this.url);
  }

  private reset(): void {
    for (const reset of this.resets) reset();
  }

  /** The publisher of this connection (one confirm channel for every publish). */
  publisher(what: string): Publisher {
    if (!this.isOpen || !this.current) throw new TransportClosedError(what);
    return this.current;
  }

  /** Throws TransportClosedError unless open. */
  assertOpen(what: string): void {
    if (!this.isOpen) throw new TransportClosedError(what);
  }

  /** An amqplib failure as callers see it (see closedOr in errors.ts). */
  wrap(err: unknown, what: string): unknown {
    return closedOr(err, what, this.state === 'open');
  }

  /** Whether the broker (or we) closed `ch`: nothing may be sent on it any more. */
  isClosed(ch: Channel): boolean {
    return this.closedChannels.has(ch);
  }

  private guard<C extends Channel>(ch: C, purpose: string): C {
    ch.on('error', (err: Error) => log('%s channel error: %s', purpose, err.message));
    ch.on('close', () => this.closedChannels.add(ch));
    ch.on('handler-error', (err: Error, event: string) => log('error in %s channel %s handler: %s', purpose, event, err.message));
    return ch;
  }

  private requireModel(what: string): ChannelModel {
    if (!this.usable || !this.model) throw new TransportClosedError(what);
    return this.model;
  }

  async openChannel(purpose: string): Promise<Channel> {
    const model = this.requireModel(purpose);
    try {
      return this.guard(await model.createChannel(), purpose);
    } catch (err) {
      throw this.wrap(err, purpose);
    }
  }

  private async openConfirmChannel(): Promise<ConfirmChannel> {
    const model = this.requireModel('publish');
    try {
      return this.guard(await model.createConfirmChannel(), 'publish');
    } catch (err) {
      throw this.wrap(err, 'publish');
    }
  }

  /**
   * Stop taking new operations (those under way may finish). Waits for a connection attempt in progress; resolves
   * whether the connection was open.
   */
  async beginClose(): Promise<boolean> {
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    if (this.connecting) await this.connecting.catch(() => undefined);
    return wasOpen && this.model !== undefined;
  }

  /** Wait (at most `ms`) for every publish in flight and every outstanding confirm. */
  async drainPublisher(ms: number): Promise<void> {
    if (this.current && this.state === 'closing') await waitAtMost(ms, 'wait for confirms', this.current.close());
  }

  /** Close the connection for good, dropping the socket if the broker does not answer within `ms`. */
  async end(ms: number): Promise<void> {
    const model = this.model;
    this.state = 'closed';
    this.reset();
    if (model && !(await waitAtMost(ms, 'close connection', quietly(() => model.close())))) {
      // The broker never answered: drop the socket rather than hang (with an error, amqplib tears down too).
      connectionSocket(model)?.destroy(new Error(`the broker did not answer close within ${ms} ms`));
    }
    this.model = undefined;
    this.current = undefined;
    log('closed');
  }
}
