/**
 * Publishing on the MQTT transport: sends, dead letters, and every publish tracked until it is done (QoS 1: the
 * broker acknowledged it; QoS 0: it was written), so that close() can wait for those in flight.
 *
 * - QoS 1 by default (`fast`: QoS 0). On MQTT 5, headers and the message id travel as user properties; on 3.1.1
 *   they are not carried (no message id: duplicates cannot be recognised there).
 * - While the connection is down mqtt.js keeps a publish and sends it on the next connection (QoS 1: resolved by
 *   its PUBACK then); at most `maxBuffered` sends wait like that, further ones are refused (TransportClosedError).
 * - A message meant for a participant that the broker says nobody took, right after a reconnection, is published
 *   again for a while (see publishAgainUntilHeard).
 * - A nack publishes the message to `dead-<queue>` with its reason.
 */
import type { IClientPublishOptions } from 'mqtt';
import { TransportClosedError } from '../../errors.js';
import { encodeBody, HEADER, sendId } from '../../protocol/envelope.js';
import { Backoff, delay } from '../../util/backoff.js';
import { logger } from '../../util/logger.js';
import { within } from '../../util/within.js';
import type { Headers, InMessage, QueueKind, SendOptions } from '../types.js';
import type { MqttConnection } from './connection.js';
import type { Link } from './link.js';
import { deadLetter, mqttSafeProperties } from './message.js';
import { assertTopic, deadLetterTopic } from './topics.js';

const debug = logger('mqtt');

/** After a reconnection, how long a message no subscription took is published again (see publishAgainUntilHeard). */
const UNHEARD_GRACE_MS = 30_000;

export interface PublishOptions {
  qos: 0 | 1;
  retain?: boolean;
  headers?: Headers;
  /** MQTT 5 Message Expiry Interval, in seconds. */
  expiry?: number;
  /** Publish again while the broker says nobody took it, right after a reconnection (messages for participants). */
  untilHeard?: boolean;
}

interface InFlight {
  readonly promise: Promise<void>;
  reject(err: Error): void;
}

export class Publisher {
  private readonly pending = new Set<InFlight>();

  constructor(
    private readonly connection: MqttConnection,
    private readonly maxBuffered: number,
  ) {}

  /** Sends not done yet (QoS 1: not acknowledged by the broker; QoS 0: not written to the connection yet). */
  get inFlight(): number {
    return this.pending.size;
  }

  async send(_kind: QueueKind, name: string, data: unknown, options: SendOptions = {}): Promise<void> {
    this.connection.assertOpen(`send to '${name}'`);
    assertTopic(name);
    const headers: Headers = {};
    const given = options.headers;
    // Only a bridge may say a message was relayed (followers drop relayed copies of what they read directly).
    if (given) for (const k in given) if (k !== HEADER.via && k !== HEADER.relayed) headers[k] = given[k]!;
    const id = sendId(options);
    if (id !== undefined) headers[HEADER.id] = id;
    return this.publish(name, encodeBody(data), { qos: options.fast ? 0 : 1, headers, untilHeard: !options.fast });
  }

  /** Publish a refused message to `dead-<queue>` with why (see message.ts deadLetter for its form). */
  async deadLetter(message: InMessage, reason: string, code: string | undefined): Promise<void> {
    if (!this.connection.isOpen) throw new TransportClosedError(`dead-letter a message from '${message.queue}'`);
    const withHeaders = this.connection.primary.protocolVersion === 5;
    const dead = deadLetter(message, reason, code, withHeaders);
    await this.publish(deadLetterTopic(message.queue), dead.payload, { qos: 1, headers: dead.headers, untilHeard: true });
    debug('%s: message dead-lettered: %s', message.queue, reason);
  }

  /** Publish through the primary link, tracked until done. */
  publish(topic: string, payload: Buffer, options: PublishOptions): Promise<void> {
    const link = this.connection.primary;
    if (!link.connected && this.pending.size >= this.maxBuffered) {
      return Promise.reject(
        new TransportClosedError(`publish to '${topic}' (${this.pending.size} sends already wait for the broker to come back)`),
      );
    }
    const opts: IClientPublishOptions = { qos: options.qos, retain: options.retain === true };
    if (link.protocolVersion === 5) {
      const properties: NonNullable<IClientPublishOptions['properties']> = {};
      if (options.headers && Object.keys(options.headers).length > 0) properties.userProperties = mqttSafeProperties(options.headers);
      if (options.expiry !== undefined) properties.messageExpiryInterval = options.expiry;
      if (Object.keys(properties).length > 0) opts.properties = properties;
    }
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: InFlight = { promise, reject };
    // Tracked before publishing: mqtt.js calls back synchronously for a QoS 0 message written at once.
    this.pending.add(entry);
    const succeed = () => {
      this.pending.delete(entry);
      resolve();
    };
    const fail = (err: Error) => {
      this.pending.delete(entry);
      reject(err);
    };
    try {
      link.publishThen(topic, payload, opts, (err, unheard) => {
        if (err) fail(err);
        else if (unheard && options.untilHeard) this.publishAgainUntilHeard(link, topic, payload, opts).then(succeed, fail);
        else succeed();
      });
    } catch (err) {
      fail(err as Error);
    }
    return promise;
  }

  /** Wait, at most `ms`, for the publishes in flight (close() before it ends the links). */
  async drain(ms: number): Promise<void> {
    const inFlight = [...this.pending];
    if (inFlight.length > 0) await within(ms, Promise.allSettled(inFlight.map((p) => p.promise)), undefined);
  }

  /** The links are closed: what is still in flight will never be confirmed. */
  failPending(): void {
    for (const p of this.pending) p.reject(new TransportClosedError('confirm a publish'));
    this.pending.clear();
  }

  /**
   * After the broker said nobody took a message meant for a participant (`untilHeard`). A broker that restarted from
   * its persistence file may have sessions whose subscriptions do not work until their clients subscribe again
   * (Mosquitto 2.0 restores shared subscriptions that way): it then answers "no matching subscribers" and the message
   * is gone. So, for a while after one of our connections came back (UNHEARD_GRACE_MS), such a publish is made again
   * (with its id: nobody got it) until some subscription takes it or the while is over; at other times "no
   * subscribers" is what it says (an unbound outport).
   */
  private async publishAgainUntilHeard(link: Link, topic: string, payload: Buffer, opts: IClientPublishOptions): Promise<void> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 2000 });
    for (;;) {
      const since = Date.now() - Math.max(this.connection.lastReconnect, link.reconnectedAt);
      if (since > UNHEARD_GRACE_MS || !this.connection.isOpen) return;
      const wait = backoff.next();
      debug('%s: no subscriber took the message, %d ms after a reconnection; again in %d ms', topic, since, wait);
      await delay(wait);
      const unheard = await new Promise<boolean>((resolve, reject) => link.publishThen(topic, payload, opts, (err, u) => (err ? reject(err) : resolve(u))));
      if (!unheard) return;
    }
  }
}
