/**
 * AMQP 0-9-1 (RabbitMQ) transport, wire-compatible with msgflo 0.12 (see topology.ts for the layout).
 *
 * Channels: one confirm channel for every publish (Publisher), one serialised "admin" channel for topology,
 * one channel per subscription/tap/discovery observer (its prefetch and its failures stay its own), and a
 * throwaway channel for existence checks. RabbitMQ closes a channel on any failed operation (404, 406), so
 * each of these is re-opened on demand and never shared with an operation that might kill it.
 */
import { deferred } from '../../util/deferred.js';
import type { Duplex } from 'node:stream';
import { coalesceWrites } from './coalesce.js';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { codeOf, maskUrl, QueueNotFoundError, reasonOf, TransportClosedError } from '../../errors.js';
import { decodeBody, encodeBody, HEADER, newMessageId, sendId } from '../../protocol/envelope.js';
import { deadLetterName, DISCOVERY_QUEUE } from '../../protocol/naming.js';
import { SNOOP_EXCHANGE, type SnoopChannel, parseSnoopRoutingKey, snoopBindingKey, snoopRoutingKey } from '../../protocol/snoop.js';
import { requireCjs } from '../../util/cjs.js';
import { logger } from '../../util/logger.js';
import type { TransportOptions } from '../types.js';
import type {
  Binding,
  BindingOptions,
  Delivery,
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
} from '../types.js';
import { AmqpDelivery, copyProperties, toInMessage } from './delivery.js';
import { connectError, isNotFound, ReplyCode } from './errors.js';
import { Publisher } from './publisher.js';
import { createSteps, deadLetterExchangeStep, discoverySteps, removeSteps, roundRobinExchange, type Step } from './topology.js';

const { connect: amqpConnect } = requireCjs('amqplib') as typeof import('amqplib');

const log = logger('amqp');
const { NOT_FOUND, PRECONDITION_FAILED } = ReplyCode;

export interface AmqpTransportOptions extends TransportOptions {
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** TLS options for amqps:// (CA, client certificate, …). */
  tls?: TlsOptions;
  /** close(): longest wait for each phase (confirms, consumers, the connection) before giving up (default 10 s). */
  closeTimeoutMs?: number;
}

const DEFAULT_PREFETCH = 50;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const DEFAULT_DISCOVERY_TTL_MS = 60_000;
const JSON_CONTENT_TYPE = 'application/json';
/** Snoop messages a watcher's queue holds before the broker drops the oldest (a slow watcher slows nobody). */
const SNOOP_BACKLOG = 10_000;
/** Snoop messages older than this are dropped from a watcher's queue. */
const SNOOP_TTL_MS = 60_000;
/** Snoop messages a watcher has unacknowledged at a time. */
const SNOOP_PREFETCH = 500;

type State = 'new' | 'connecting' | 'open' | 'lost' | 'closing' | 'closed';

function bindingKey(b: Binding): string {
  return JSON.stringify([b.type, b.src, b.tgt, b.deadletter ?? null]);
}

function copyBinding(b: Binding): Binding {
  const out: Binding = { type: b.type, src: b.src, tgt: b.tgt };
  if (b.deadletter !== undefined) out.deadletter = b.deadletter;
  return out;
}

/** Run `fn`, swallowing both synchronous throws and rejections (for best-effort cleanup). */
async function quietly(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log('ignored during cleanup: %s', (err as Error)?.message ?? err);
  }
}

/** Wait for `p` (its outcome ignored), but no longer than `ms`; resolves true when `p` finished in time. */
async function within(ms: number, what: string, p: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      log('%s: gave up after %d ms', what, ms);
      resolve(false);
    }, ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** A consumer (or several) on a channel of its own; cancel() stops them and closes the channel. */
class ChannelSubscription implements Subscription {
  readonly queue: string;
  private readonly channel: Channel;
  private readonly consumerTags: string[] = [];
  /** ack/nack in progress (a nack publishes first): cancel() lets them finish before closing the channel. */
  private readonly settling = new Set<Promise<void>>();
  private readonly cleanup: ((ch: Channel) => Promise<unknown>) | undefined;
  private readonly onDone: (sub: ChannelSubscription) => void;
  private cancelling: Promise<void> | undefined;

  private channelClosed = false;

  constructor(queue: string, channel: Channel, onDone: (sub: ChannelSubscription) => void, cleanup?: (ch: Channel) => Promise<unknown>) {
    this.queue = queue;
    this.channel = channel;
    this.onDone = onDone;
    this.cleanup = cleanup;
    channel.on('close', () => {
      this.channelClosed = true;
    });
  }

  addConsumer(tag: string): void {
    this.consumerTags.push(tag);
  }

  track(settlement: Promise<void>): void {
    this.settling.add(settlement);
    const done = (): void => {
      this.settling.delete(settlement);
    };
    settlement.then(done, done);
  }

  get cancelled(): boolean {
    return this.cancelling !== undefined;
  }

  cancel(): Promise<void> {
    if (!this.cancelling) {
      this.cancelling = (async () => {
        log('cancel subscription on %s', this.queue);
        // Never send on a channel the broker has closed: a frame on it is a connection error (504).
        for (const tag of this.consumerTags) if (!this.channelClosed) await quietly(() => this.channel.cancel(tag));
        await Promise.allSettled([...this.settling]);
        const cleanup = this.cleanup;
        if (cleanup && !this.channelClosed) await quietly(() => cleanup(this.channel));
        if (!this.channelClosed) await quietly(() => this.channel.close());
        this.onDone(this);
      })();
    }
    return this.cancelling;
  }
}

export class AmqpTransport implements Transport {
  readonly url: string;
  readonly scheme = 'amqp' as const;
  readonly brokerBindings = true;

  private readonly rawUrl: string;
  private readonly options: AmqpTransportOptions;
  private state: State = 'new';
  private connection: ChannelModel | undefined;
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly ended = deferred<Error | undefined>();
  private publisher: Publisher | undefined;
  private readonly listeners = new Set<(event: TransportEvent) => void>();
  private readonly subscriptions = new Set<ChannelSubscription>();
  private readonly bindings = new Map<string, Binding>();
  private readonly closedChannels = new WeakSet<Channel>();
  /** Topology operations run one at a time on the admin channel, so one failure cannot break another. */
  private adminQueue: Promise<unknown> = Promise.resolve();
  private adminChannel: Channel | undefined;
  private discoveryReady: Promise<void> | undefined;
  private snoopReady: Promise<void> | undefined;

  constructor(url: string, options: AmqpTransportOptions = {}) {
    this.rawUrl = url;
    this.url = maskUrl(url);
    this.options = options;
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────────────────

  connect(): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closing' || this.state === 'closed') return Promise.reject(new TransportClosedError('connect'));
    if (!this.connecting) {
      this.connecting = this.openConnection().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async openConnection(): Promise<void> {
    this.state = 'connecting';
    log('connecting to %s', this.url);
    let model: ChannelModel;
    try {
      model = await amqpConnect(this.rawUrl, {
        ...this.options.tls,
        noDelay: true,
        timeout: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
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
    const stream = (model as unknown as { connection?: { stream?: Duplex } }).connection?.stream;
    if (stream) coalesceWrites(stream);
    model.on('error', (err: Error) => {
      log('connection error: %s', err.message);
      if (this.connection === model && this.state === 'open') this.emit({ type: 'error', error: err });
    });
    model.on('close', (err?: Error) => {
      if (this.connection !== model) return;
      if (this.state !== 'open') return;
      log('connection lost: %s', err?.message ?? 'closed by broker');
      this.state = 'lost';
      this.adminChannel = undefined;
      this.discoveryReady = undefined;
      this.snoopReady = undefined;
      this.emit(err ? { type: 'disconnect', error: err } : { type: 'disconnect' });
    });
    model.on('blocked', (reason: string) => log('connection blocked by broker: %s', reason));
    model.on('unblocked', () => log('connection unblocked'));
    model.on('handler-error', (err: Error, event: string) => log('error in connection %s handler: %s', event, err.message));
    this.connection = model;
    this.adminChannel = undefined;
    this.discoveryReady = undefined;
    this.publisher = new Publisher({
      open: async () => {
        const ch = await this.requireConnection('publish').createConfirmChannel();
        this.guard(ch, 'publish');
        return ch;
      },
      usable: () => this.state === 'open' || this.state === 'closing',
    });
    this.state = 'open';
    log('connected to %s', this.url);
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = this.shutdown();
      void this.closing.then(() => this.ended.resolve(undefined));
    }
    return this.closing;
  }

  /** Resolves once closed for good (see Transport.closed). */
  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }

  private async shutdown(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    if (this.connecting) await this.connecting.catch(() => undefined);
    const model = this.connection;
    const ms = this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (model && wasOpen) {
      log('closing');
      // Consumers first (letting acks/nacks in progress finish), then every outstanding confirm.
      await within(ms, 'cancel consumers', Promise.allSettled([...this.subscriptions].map((s) => s.cancel())));
      if (this.publisher) await within(ms, 'wait for confirms', this.publisher.close());
      await within(ms, 'finish topology operations', this.adminQueue);
      const admin = this.adminChannel;
      if (admin) await within(ms, 'close admin channel', quietly(() => admin.close()));
    }
    this.state = 'closed';
    this.adminChannel = undefined;
    if (model && !(await within(ms, 'close connection', quietly(() => model.close())))) {
      // The broker never answered: drop the socket rather than hang.
      (model as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
    }
    this.connection = undefined;
    log('closed');
  }

  on(listener: (event: TransportEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(event: TransportEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        log('transport event listener threw: %s', (err as Error)?.message ?? err);
      }
    }
  }

  private requireConnection(what: string): ChannelModel {
    if ((this.state !== 'open' && this.state !== 'closing') || !this.connection) throw new TransportClosedError(what);
    return this.connection;
  }

  private assertOpen(what: string): void {
    if (this.state !== 'open' || !this.connection) throw new TransportClosedError(what);
  }

  /** An amqplib failure as seen by callers: TransportClosedError once the connection is gone. */
  private wrap(err: unknown, what: string): unknown {
    if (err instanceof TransportClosedError) return err;
    if (this.state !== 'open') return new TransportClosedError(what, { cause: err });
    return err;
  }

  /** Every channel gets error listeners: an unhandled 'error' event would crash the process. */
  private guard(ch: Channel, purpose: string): void {
    ch.on('error', (err: Error) => log('%s channel error: %s', purpose, err.message));
    ch.on('close', () => {
      this.closedChannels.add(ch);
      if (this.adminChannel === ch) this.adminChannel = undefined;
    });
    ch.on('handler-error', (err: Error, event: string) => log('error in %s channel %s handler: %s', purpose, event, err.message));
  }

  private async openChannel(purpose: string): Promise<Channel> {
    const model = this.requireConnection(purpose);
    try {
      const ch = await model.createChannel();
      this.guard(ch, purpose);
      return ch;
    } catch (err) {
      throw this.wrap(err, purpose);
    }
  }

  // ── topology ──────────────────────────────────────────────────────────────────────────────────────────

  /** Run `fn` with the admin channel, after every earlier admin operation has finished. */
  private withAdmin<T>(what: string, fn: (run: (step: Step, tolerate?: number[]) => Promise<void>) => Promise<T>): Promise<T> {
    const op = this.adminQueue.then(async () => {
      this.assertOpen(what);
      const run = async (step: Step, tolerate: number[] = []): Promise<void> => {
        let ch = this.adminChannel;
        if (!ch || this.closedChannels.has(ch)) {
          ch = await this.openChannel('admin');
          this.adminChannel = ch;
        }
        log('%s', step.what);
        try {
          await step.run(ch);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'number' && tolerate.includes(code)) {
            log('%s: tolerated %s', step.what, (err as Error).message);
            return;
          }
          throw this.wrap(err, what);
        }
      };
      return fn(run);
    });
    this.adminQueue = op.catch(() => undefined);
    return op;
  }

  createQueue(kind: QueueKind, name: string, options: QueueOptions = {}): Promise<void> {
    const persistent = options.persistent ?? true;
    return this.withAdmin(`create ${kind} '${name}'`, async (run) => {
      for (const step of createSteps(kind, name, persistent)) await run(step);
    });
  }

  removeQueue(kind: QueueKind, name: string): Promise<void> {
    return this.withAdmin(`remove ${kind} '${name}'`, async (run) => {
      for (const step of removeSteps(kind, name)) await run(step, [NOT_FOUND]);
    });
  }

  async queueExists(kind: QueueKind, name: string): Promise<boolean> {
    const what = `check ${kind} '${name}'`;
    this.assertOpen(what);
    const ch = await this.openChannel('check');
    try {
      if (kind === 'inqueue') await ch.checkQueue(name);
      else await ch.checkExchange(name);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.wrap(err, what);
    } finally {
      if (!this.closedChannels.has(ch)) await quietly(() => ch.close());
    }
  }

  /**
   * Make sure a queue/exchange exists before binding to it, declared as createQueue would. One that exists
   * with other properties (406: e.g. transient, made by its owner) is used as it is.
   */
  private async ensure(run: (step: Step, tolerate?: number[]) => Promise<void>, kind: QueueKind, name: string): Promise<void> {
    for (const step of createSteps(kind, name, true)) await run(step, [PRECONDITION_FAILED]);
  }

  addBinding(binding: Binding, _options: BindingOptions = {}): Promise<void> {
    const { src, tgt, deadletter } = binding;
    if (binding.type !== 'pubsub' && binding.type !== 'roundrobin') {
      return Promise.reject(new Error(`Unsupported binding type '${String(binding.type)}' (use 'pubsub' or 'roundrobin')`));
    }
    return this.withAdmin(`add ${binding.type} binding ${src} -> ${tgt}`, async (run) => {
      await this.ensure(run, 'outqueue', src);
      await this.ensure(run, 'inqueue', tgt);
      if (binding.type === 'pubsub') {
        await run({ what: `bind queue '${tgt}' to '${src}'`, run: (ch) => ch.bindQueue(tgt, src, '') });
      } else {
        const direct = roundRobinExchange(src);
        await run({ what: `assert direct exchange '${direct}'`, run: (ch) => ch.assertExchange(direct, 'direct', { durable: true }) }, [PRECONDITION_FAILED]);
        await run({ what: `bind exchange '${direct}' to '${src}'`, run: (ch) => ch.bindExchange(direct, src, '') });
        await run({ what: `bind queue '${tgt}' to '${direct}'`, run: (ch) => ch.bindQueue(tgt, direct, '') });
        if (deadletter !== undefined) {
          await this.ensure(run, 'inqueue', deadletter);
          await run(deadLetterExchangeStep(tgt), [PRECONDITION_FAILED]);
          const dead = deadLetterName(tgt);
          await run({ what: `bind queue '${deadletter}' to '${dead}'`, run: (ch) => ch.bindQueue(deadletter, dead, '') });
        }
      }
      this.bindings.set(bindingKey(binding), copyBinding(binding));
    });
  }

  removeBinding(binding: Binding): Promise<void> {
    const { src, tgt, deadletter } = binding;
    return this.withAdmin(`remove ${binding.type} binding ${src} -> ${tgt}`, async (run) => {
      if (binding.type === 'roundrobin') {
        const direct = roundRobinExchange(src);
        await run({ what: `unbind queue '${tgt}' from '${direct}'`, run: (ch) => ch.unbindQueue(tgt, direct, '') }, [NOT_FOUND]);
        // `out-SRC` is shared by every roundrobin edge from SRC (of any coordinator): delete it, and with it
        // its binding to SRC, only when no queue is bound to it any more (else 406, tolerated).
        await run({ what: `delete exchange '${direct}' if unused`, run: (ch) => ch.deleteExchange(direct, { ifUnused: true }) }, [NOT_FOUND, PRECONDITION_FAILED]);
        if (deadletter !== undefined) {
          const dead = deadLetterName(tgt);
          await run({ what: `unbind queue '${deadletter}' from '${dead}'`, run: (ch) => ch.unbindQueue(deadletter, dead, '') }, [NOT_FOUND]);
        }
      } else {
        await run({ what: `unbind queue '${tgt}' from '${src}'`, run: (ch) => ch.unbindQueue(tgt, src, '') }, [NOT_FOUND]);
      }
      this.bindings.delete(bindingKey(binding));
    });
  }

  async listBindings(): Promise<Binding[]> {
    return [...this.bindings.values()].map(copyBinding);
  }

  // ── messages ──────────────────────────────────────────────────────────────────────────────────────────

  async send(kind: QueueKind, name: string, data: unknown, options: SendOptions = {}): Promise<void> {
    const what = `send to ${kind} '${name}'`;
    this.assertOpen(what);
    const publisher = this.publisher;
    if (!publisher) throw new TransportClosedError(what);
    const fast = options.fast === true;
    const id = sendId(options);
    const toQueue = kind === 'inqueue';
    try {
      await publisher.publish({
        exchange: toQueue ? '' : name,
        routingKey: toQueue ? name : '',
        content: encodeBody(data),
        options: {
          contentType: JSON_CONTENT_TYPE,
          deliveryMode: fast ? 1 : 2,
          // The id travels as the message-id property only (readers fall back to an x-msgflo-id header).
          ...(id !== undefined ? { messageId: id } : {}),
          headers: options.headers ?? {},
          mandatory: toQueue,
        },
        confirm: !fast,
        target: name,
      });
    } catch (err) {
      throw this.wrap(err, what);
    }
  }

  async subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    const what = `subscribe to '${queue}'`;
    this.assertOpen(what);
    const publisher = this.publisher;
    if (!publisher) throw new TransportClosedError(what);
    // AMQP prefetch is an unsigned short; 0 means unlimited.
    const prefetch = Math.min(0xffff, Math.max(0, Math.floor(options.prefetch ?? DEFAULT_PREFETCH)));
    const ch = await this.openChannel(`consume ${queue}`);
    const sub = new ChannelSubscription(queue, ch, (s) => this.subscriptions.delete(s));
    ch.on('error', (err: Error) => {
      // The broker closed this consumer's channel (the connection itself is fine, or we would not be open).
      if (sub.cancelled || this.state !== 'open' || !this.subscriptions.has(sub)) return;
      this.emit({ type: 'error', error: new Error(`The consumer of '${queue}' was stopped by the broker: ${err.message}`, { cause: err }) });
      // amqplib emits 'error' before it marks the channel closed: release the subscription afterwards.
      setImmediate(() => void sub.cancel());
    });
    try {
      await ch.prefetch(prefetch);
      const { consumerTag } = await ch.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) return this.consumerCancelled(sub);
          this.dispatch(handler, new AmqpDelivery(queue, msg, ch, publisher, (p) => sub.track(p)));
        },
        { noAck: false },
      );
      sub.addConsumer(consumerTag);
    } catch (err) {
      if (!this.closedChannels.has(ch)) await quietly(() => ch.close());
      if (isNotFound(err)) throw new QueueNotFoundError(queue, { cause: err });
      throw this.wrap(err, what);
    }
    this.subscriptions.add(sub);
    log('subscribed to %s (prefetch %d)', queue, prefetch);
    return sub;
  }

  /** The broker cancelled a consumer (its queue was deleted): report it and release the channel. */
  private consumerCancelled(sub: ChannelSubscription): void {
    if (sub.cancelled) return;
    log('broker cancelled the consumer of %s', sub.queue);
    this.emit({ type: 'error', error: new QueueNotFoundError(sub.queue) });
    setImmediate(() => void sub.cancel());
  }

  /** Hand a delivery to its handler; a handler that throws (or rejects) gets the message dead-lettered. */
  private dispatch(handler: DeliveryHandler, delivery: Delivery): void {
    const failed = (err: unknown): void => {
      log('handler for %s failed: %s', delivery.queue, reasonOf(err));
      if (!delivery.settled) void delivery.nack(reasonOf(err), codeOf(err)).catch((e: unknown) => log('nack failed: %s', reasonOf(e)));
    };
    try {
      const result: unknown = handler(delivery);
      if (isPromiseLike(result)) result.then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Deliver to `handler`, swallowing (and logging) what it throws. */
  private observe(handler: MessageHandler, queue: string, msg: ConsumeMessage): void {
    try {
      const result: unknown = handler(toInMessage(queue, msg));
      if (isPromiseLike(result)) result.then(undefined, (err: unknown) => log('observer of %s failed: %s', queue, reasonOf(err)));
    } catch (err) {
      log('observer of %s failed: %s', queue, reasonOf(err));
    }
  }

  /**
   * Consume a new exclusive, auto-deleted, server-named queue bound to `exchange`, without acks. The queue
   * is deleted again on cancel.
   */
  private async observeExchange(
    exchange: string,
    purpose: string,
    handler: (msg: ConsumeMessage) => void,
    setup?: (ch: Channel, sub: ChannelSubscription) => Promise<void>,
  ): Promise<Subscription> {
    const ch = await this.openChannel(purpose);
    let tapQueue = '';
    const sub = new ChannelSubscription(exchange, ch, (s) => this.subscriptions.delete(s), async (c) => {
      if (tapQueue && !this.closedChannels.has(c)) await c.deleteQueue(tapQueue);
    });
    try {
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      tapQueue = queue;
      await ch.bindQueue(queue, exchange, '');
      const { consumerTag } = await ch.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) {
            log('broker cancelled the %s consumer', purpose);
            return;
          }
          handler(msg);
        },
        { noAck: true },
      );
      sub.addConsumer(consumerTag);
      if (setup) await setup(ch, sub);
    } catch (err) {
      if (!this.closedChannels.has(ch)) {
        await quietly(() => (tapQueue ? ch.deleteQueue(tapQueue) : undefined));
        await quietly(() => ch.close());
      }
      if (isNotFound(err)) throw new QueueNotFoundError(exchange, { cause: err });
      throw this.wrap(err, purpose);
    }
    this.subscriptions.add(sub);
    return sub;
  }

  async tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    const what = `tap ${kind} '${name}'`;
    this.assertOpen(what);
    const sub = await this.observeExchange(name, what, (msg) => this.observe(handler, name, msg));
    log('tapping %s %s', kind, name);
    return sub;
  }

  // ── discovery ─────────────────────────────────────────────────────────────────────────────────────────

  private ensureDiscovery(): Promise<void> {
    if (!this.discoveryReady) {
      const ready = this.withAdmin('declare discovery exchange', async (run) => {
        // 406: someone declared them otherwise; use them as they are.
        for (const step of discoverySteps()) await run(step, [PRECONDITION_FAILED]);
      });
      this.discoveryReady = ready;
      ready.catch(() => {
        if (this.discoveryReady === ready) this.discoveryReady = undefined;
      });
    }
    return this.discoveryReady;
  }

  async announce(message: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    const what = 'announce on fbp';
    this.assertOpen(what);
    await this.ensureDiscovery();
    const publisher = this.publisher;
    if (!publisher) throw new TransportClosedError(what);
    const id = newMessageId();
    const ttl = Math.max(0, Math.round(options.ttlMs ?? DEFAULT_DISCOVERY_TTL_MS));
    try {
      await publisher.publish({
        exchange: DISCOVERY_QUEUE,
        routingKey: '',
        content: encodeBody(message),
        options: {
          contentType: JSON_CONTENT_TYPE,
          messageId: id,
          expiration: String(ttl),
          headers: { [HEADER.via]: 'exchange', [HEADER.id]: id },
        },
        confirm: true,
        target: DISCOVERY_QUEUE,
      });
    } catch (err) {
      throw this.wrap(err, what);
    }
  }

  /**
   * Every discovery message reaches every observer once: ours arrive through the `fbp` exchange, and
   * msgflo-era ones (sent to the queue `fbp`) are relayed onto the exchange by whichever observer's relay
   * consumer takes them from the queue.
   */
  async onDiscovery(handler: MessageHandler): Promise<Subscription> {
    const what = 'observe discovery';
    this.assertOpen(what);
    await this.ensureDiscovery();
    const publisher = this.publisher;
    if (!publisher) throw new TransportClosedError(what);
    const sub = await this.observeExchange(
      DISCOVERY_QUEUE,
      what,
      (msg) => this.observe(handler, DISCOVERY_QUEUE, msg),
      async (ch, s) => {
        await ch.prefetch(DEFAULT_PREFETCH);
        const { consumerTag } = await ch.consume(
          DISCOVERY_QUEUE,
          (msg: ConsumeMessage | null) => {
            if (msg === null) {
              log('broker cancelled the discovery relay consumer');
              return;
            }
            this.relay(ch, publisher, msg);
          },
          { noAck: false },
        );
        s.addConsumer(consumerTag);
      },
    );
    log('observing discovery');
    return sub;
  }

  /** Republish a msgflo-era discovery message from queue `fbp` onto exchange `fbp`; ack the rest. */
  private relay(ch: Channel, publisher: Publisher, msg: ConsumeMessage): void {
    const headers = msg.properties.headers ?? {};
    const settle = (op: 'ack' | 'nack'): void => {
      try {
        if (op === 'ack') ch.ack(msg);
        else ch.nack(msg, false, false);
      } catch (err) {
        log('cannot %s discovery message (channel closed): %s', op, (err as Error).message);
      }
    };
    if (HEADER.via in headers || HEADER.relayed in headers) {
      settle('ack');
      return;
    }
    log('relaying msgflo-era discovery message');
    publisher
      .publish({
        exchange: DISCOVERY_QUEUE,
        routingKey: '',
        content: msg.content,
        options: {
          ...copyProperties(msg.properties),
          expiration: String(DEFAULT_DISCOVERY_TTL_MS),
          headers: { ...headers, [HEADER.relayed]: '1' },
        },
        confirm: true,
        target: DISCOVERY_QUEUE,
      })
      .then(
        () => settle('ack'),
        (err: unknown) => {
          // Heartbeats repeat, so dropping one is better than requeueing it in a loop.
          log('relay failed, dropping the message: %s', reasonOf(err));
          settle('nack');
        },
      );
  }

  // ── snoop channel ─────────────────────────────────────────────────────────────────────────────────────

  /** The topic exchange `msgflo.snoop` (transient: spy and trace are live views, not data). */
  private ensureSnoop(): Promise<void> {
    if (!this.snoopReady) {
      const ready = this.withAdmin('declare snoop exchange', async (run) => {
        await run(
          { what: `assert topic exchange '${SNOOP_EXCHANGE}'`, run: (ch) => ch.assertExchange(SNOOP_EXCHANGE, 'topic', { durable: false, autoDelete: false }) },
          [PRECONDITION_FAILED],
        );
      });
      this.snoopReady = ready;
      ready.catch(() => {
        if (this.snoopReady === ready) this.snoopReady = undefined;
      });
    }
    return this.snoopReady;
  }

  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    const what = 'publish on the snoop channel';
    this.assertOpen(what);
    await this.ensureSnoop();
    const publisher = this.publisher;
    if (!publisher) throw new TransportClosedError(what);
    try {
      await publisher.publish({
        exchange: SNOOP_EXCHANGE,
        routingKey: snoopRoutingKey(channel, role),
        content: encodeBody(data),
        options: { contentType: JSON_CONTENT_TYPE, deliveryMode: 1, expiration: String(SNOOP_TTL_MS) },
        confirm: false,
        target: SNOOP_EXCHANGE,
      });
    } catch (err) {
      throw this.wrap(err, what);
    }
  }

  /**
   * An exclusive, server-named queue of this watcher's own, bound to the snoop exchange for each channel and role
   * asked for. Bounded (oldest dropped first, and after a minute) and consumed with acks under a prefetch, so a
   * watcher that falls behind loses its own oldest lines at the broker and never holds a publisher back.
   */
  async subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    const what = 'subscribe to the snoop channel';
    this.assertOpen(what);
    await this.ensureSnoop();
    const ch = await this.openChannel(what);
    let snoopQueue = '';
    const sub = new ChannelSubscription(SNOOP_EXCHANGE, ch, (s) => this.subscriptions.delete(s), async (c) => {
      if (snoopQueue && !this.closedChannels.has(c)) await c.deleteQueue(snoopQueue);
    });
    try {
      const { queue } = await ch.assertQueue('', {
        exclusive: true,
        autoDelete: true,
        durable: false,
        arguments: { 'x-max-length': SNOOP_BACKLOG, 'x-overflow': 'drop-head', 'x-message-ttl': SNOOP_TTL_MS },
      });
      snoopQueue = queue;
      const roles: Array<string | undefined> = filter.roles ? [...filter.roles] : [undefined];
      for (const channel of filter.channels) for (const role of roles) await ch.bindQueue(queue, SNOOP_EXCHANGE, snoopBindingKey(channel, role));
      await ch.prefetch(SNOOP_PREFETCH);
      const { consumerTag } = await ch.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) {
            log('broker cancelled the snoop consumer');
            return;
          }
          try {
            const where = parseSnoopRoutingKey(msg.fields.routingKey);
            if (where) {
              const { data, jsonError } = decodeBody(msg.content);
              handler({ ...where, data, raw: msg.content, jsonError });
            }
          } catch (err) {
            log('snoop handler failed: %s', reasonOf(err));
          } finally {
            try {
              ch.ack(msg);
            } catch {
              // the channel is gone; the queue goes with it
            }
          }
        },
        { noAck: false },
      );
      sub.addConsumer(consumerTag);
    } catch (err) {
      if (!this.closedChannels.has(ch)) {
        await quietly(() => (snoopQueue ? ch.deleteQueue(snoopQueue) : undefined));
        await quietly(() => ch.close());
      }
      throw this.wrap(err, what);
    }
    this.subscriptions.add(sub);
    log('listening to the snoop channel (%s)', filter.channels.join(', '));
    return sub;
  }
}
