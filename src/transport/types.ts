/**
 * The one interface every broker adapter implements (amqp, mqtt, direct).
 *
 * Vocabulary, as in msgflo:
 * - an **inqueue** is where a participant's inport reads (AMQP: durable queue; MQTT: topic);
 * - an **outqueue** is where an outport writes (AMQP: fanout exchange; MQTT: topic);
 * - a **binding** connects an outqueue to an inqueue (AMQP: exchange→queue binding; MQTT: a retained binding
 *   record that msgflo-ts participants follow, plus an in-process bridge for msgflo-era participants).
 */

import type { Keyring } from '../protocol/crypto.js';
import type { SnoopChannel } from '../protocol/snoop.js';

export type QueueKind = 'inqueue' | 'outqueue';

export interface QueueOptions {
  /** Durable queue/exchange and persistent messages (default true). false: transient, auto-deleted. */
  persistent?: boolean;
}

export type Headers = Record<string, string>;

export interface SendOptions {
  /** Extra headers (AMQP headers; MQTT 5 user properties; dropped on MQTT 3.1.1). */
  headers?: Headers;
  /**
   * Message id; one is generated when absent, except for `fast` sends: at-most-once messages are never sent again,
   * so there is no duplicate to recognise and they carry no id unless given one.
   */
  id?: string;
  /** At-most-once: no confirm, transient, QoS 0. Default false (at-least-once). */
  fast?: boolean;
}

/** A message as received: parsed JSON when the body is JSON, the body as a string otherwise. */
export interface InMessage {
  readonly queue: string;
  readonly data: unknown;
  readonly raw: Buffer;
  /** Set when the body is not valid JSON (then `data` is the body as a string). */
  readonly jsonError: Error | undefined;
  readonly headers: Headers;
  readonly id: string | undefined;
  readonly redelivered: boolean;
}

/**
 * A message that must be settled exactly once. Settling twice is a no-op (never a broker error), so a handler
 * that acks twice cannot crash its participant.
 */
export interface Delivery extends InMessage {
  readonly settled: boolean;
  /** Acknowledge: the message is done. */
  ack(): Promise<void>;
  /**
   * Refuse without requeue: the message goes to the dead-letter queue `dead-<queue>` with `reason` (and
   * `code`) in its headers `x-msgflo-reason` / `x-msgflo-code`.
   */
  nack(reason: string, code?: string): Promise<void>;
}

export type DeliveryHandler = (delivery: Delivery) => void;
export type MessageHandler = (message: InMessage) => void;

export interface SubscribeOptions {
  /** Messages in flight per consumer (AMQP prefetch). Default 50. */
  prefetch?: number;
  /** Instances that share a group compete for messages (MQTT shared subscription group; usually the role). */
  group?: string;
}

export interface Subscription {
  readonly queue: string;
  cancel(): Promise<void>;
  /**
   * Optional: stop taking messages but leave the subscription and what is unsettled with the broker, for this
   * instance to get when it comes back (MQTT with a kept session; elsewhere the same as cancel, or absent).
   */
  pause?(): Promise<void>;
}

export type BindingType = 'pubsub' | 'roundrobin';

export interface Binding {
  type: BindingType;
  /** Source outqueue. */
  src: string;
  /** Target inqueue. */
  tgt: string;
  /** roundrobin only: inqueue that receives what `tgt`'s consumers refuse. */
  deadletter?: string;
}

export interface BindingOptions {
  /**
   * MQTT only: also forward src→tgt inside this process, for msgflo-era participants that do not follow
   * binding records. The bridge lives as long as this transport.
   */
  bridge?: boolean;
  /**
   * MQTT only: wait up to this many ms until a reader of the target says it follows the binding (what is sent to
   * `src` before that is not delivered to `tgt` on MQTT). Resolves either way. Ignored where bindings are
   * broker-side.
   */
  confirmMs?: number;
}

/** What a snoop subscription hears: channels, and roles (undefined: every role). */
export interface SnoopFilter {
  channels: readonly SnoopChannel[];
  roles?: readonly string[] | undefined;
}

/** A message received on the snoop channel. */
export interface SnoopReceived {
  readonly channel: SnoopChannel;
  readonly role: string;
  readonly data: unknown;
  readonly raw: Buffer;
  readonly jsonError: Error | undefined;
}

export type SnoopHandler = (message: SnoopReceived) => void;

export type TransportEvent =
  | { type: 'disconnect'; error?: Error }
  | { type: 'reconnect' }
  | { type: 'error'; error: Error };

export interface Transport {
  /** The broker URL with its password masked. */
  readonly url: string;
  readonly scheme: 'amqp' | 'mqtt' | 'direct';
  /** True when bindings exist on the broker itself (AMQP, direct); false on MQTT. */
  readonly brokerBindings: boolean;

  connect(): Promise<void>;
  /** Close the connection; pending confirms are awaited. Idempotent. */
  close(): Promise<void>;
  /**
   * Resolves once this transport has closed for good: after `close()`, or when it gave up (then with the error
   * that ended it). Never rejects. As nats.js `closed()`.
   */
  closed(): Promise<Error | undefined>;
  /** Observe connection events. Returns an unsubscribe function. */
  on(listener: (event: TransportEvent) => void): () => void;

  createQueue(kind: QueueKind, name: string, options?: QueueOptions): Promise<void>;
  removeQueue(kind: QueueKind, name: string): Promise<void>;
  /** Whether the queue/exchange exists (always true on MQTT, where topics need no declaration). */
  queueExists(kind: QueueKind, name: string): Promise<boolean>;

  /** Publish JSON `data` to a queue; resolves once the broker has confirmed it (unless `fast`). */
  send(kind: QueueKind, name: string, data: unknown, options?: SendOptions): Promise<void>;
  /** Consume an inqueue; each delivery must be acked or nacked. */
  subscribe(queue: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription>;
  /** Observe a copy of what passes through a queue/outqueue without taking it from its consumers. */
  tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription>;

  addBinding(binding: Binding, options?: BindingOptions): Promise<void>;
  removeBinding(binding: Binding): Promise<void>;
  /** Bindings this transport can see on the broker (AMQP: those it made; MQTT: binding records). */
  listBindings(): Promise<Binding[]>;

  /** Publish a discovery message (raw JSON object) on `fbp`. */
  announce(message: unknown, options?: { ttlMs?: number }): Promise<void>;
  /** Receive every discovery message: several observers on one broker each see all of them. */
  onDiscovery(handler: MessageHandler): Promise<Subscription>;

  /**
   * Publish on the snoop channel (spy/trace lines, their control messages): at most once, never confirmed, never
   * retained. Resolves once handed to the connection.
   */
  publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void>;
  /**
   * Hear the snoop channel: every subscriber gets every matching message (fan-out, never shared). A subscriber
   * that falls behind loses its oldest messages at the broker; it never slows the publishers down.
   */
  subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription>;
}

export interface TransportOptions {
  /** Client id prefix (MQTT) / connection name (AMQP); usually the role. */
  name?: string;
  /**
   * MQTT: which instance of its role this process is, stable across restarts (e.g. `0`, `1`; the launcher sets
   * MSGFLO_INSTANCE). Its deliveries then use the client id `<name>-<instance>` and a session the broker keeps
   * (MSGFLO_MQTT_SESSION_EXPIRY seconds, default 3600), so what arrives while the instance is away waits for it.
   * Without it the session is clean and ends with the connection. Ignored on AMQP (queues are durable anyway).
   */
  instance?: string;
  /**
   * Reconnect after a lost connection (default true). The first connection is never retried here: one-shot
   * commands fail fast, long-running ones use connectWithRetry.
   */
  reconnect?: boolean;
  /**
   * The network key: payloads and snoop lines encrypted, discovery authenticated (see keyed.ts). Default: from
   * `env` (MSGFLO_KEY, MSGFLO_KEY_FILE); `null`: no key, whatever the environment says.
   */
  keyring?: Keyring | null;
  /** Where MSGFLO_KEY / MSGFLO_KEY_FILE are read (default process.env). */
  env?: Record<string, string | undefined>;
}
