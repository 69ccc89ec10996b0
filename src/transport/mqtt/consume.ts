/**
 * Receiving on the MQTT transport: subscriptions that deliver (and settle) messages of a queue, taps that observe
 * one, and plain listens (discovery, snoop) — each tracked so that close() silences them.
 *
 * - At least once: a delivery is acknowledged to the broker (PUBACK) only once it is settled — acked, or nacked and
 *   its dead letter confirmed — so the broker keeps what a participant had not finished and, with a kept session,
 *   sends it again (link-acks.ts). Deliveries come through the data links (connection.ts).
 * - An inqueue is read through its topic and the sources of its binding records (follower.ts).
 * - `subscribe(queue, h, {group})` uses the shared subscription `$share/<group>/…` when the broker has them, so
 *   instances of one role share work.
 */
import { encodeBody } from '../../protocol/envelope.js';
import { logger } from '../../util/logger.js';
import { within } from '../../util/within.js';
import { prefetchOf } from '../defaults.js';
import { deliver, observe } from '../handlers.js';
import type { DeliveryHandler, InMessage, MessageHandler, QueueKind, SubscribeOptions, Subscription } from '../types.js';
import type { ListenOn, MqttConnection } from './connection.js';
import { QueueFollower, type FollowerHost } from './follower.js';
import type { Received } from './link.js';
import { MqttDelivery, toInMessage } from './message.js';
import type { Publisher } from './publish.js';
import type { RecordViews } from './records.js';
import { assertTopic, followingTopic, sharedFilter } from './topics.js';

const debug = logger('mqtt');

/** How long the shared-subscription probe waits for its message (MQTT 3.1.1 brokers only). */
const SHARE_PROBE_MS = 500;

/** A subscription that can also stop taking messages while leaving them with the broker (see `pause`). */
export interface MqttSubscription extends Subscription {
  pause(): Promise<void>;
}

export class Consumer {
  /** Live subscriptions: each entry silences one (on close, where the connection ends them anyway). */
  private readonly subscriptions = new Set<() => void>();
  private sharedSupport: Promise<boolean> | undefined;

  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
    private readonly records: RecordViews,
  ) {}

  async subscribe(queue: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<MqttSubscription> {
    this.connection.assertOpen(`subscribe to '${queue}'`);
    assertTopic(queue);
    const group = options.group !== undefined ? groupName(options.group) : undefined;
    const share = group !== undefined && (await this.sharedSubscriptions());
    this.connection.assertOpen(`subscribe to '${queue}'`);
    if (share) this.connection.groups.add(group);
    const filterFor = (topic: string) => (share ? sharedFilter(group, topic) : topic);
    const on: ListenOn = { pool: 'data', manualAck: true, prefetch: prefetchOf(options.prefetch) };
    const sendNack = (m: InMessage, reason: string, code: string | undefined) => this.publisher.deadLetter(m, reason, code);
    const follower = new QueueFollower(this.followerHost(on), queue, filterFor, (received) => {
      deliver(handler, new MqttDelivery(queue, received, sendNack), debug);
    });
    const sub = await this.track(queue, follower);
    return {
      ...sub,
      // With a session the broker keeps: stop taking messages but stay subscribed, so that what is unsettled and
      // what arrives from now on waits in the session for this instance's return. Otherwise: unsubscribe.
      pause: async () => {
        if (this.connection.sessionKept()) follower.pause();
        else await sub.cancel();
      },
    };
  }

  async tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    this.connection.assertOpen(`tap '${name}'`);
    assertTopic(name);
    const hear = (received: Received) => observe(handler, toInMessage(name, received), debug);
    if (kind === 'inqueue') {
      // What reaches an inqueue includes what arrives through its bindings.
      return this.track(name, new QueueFollower(this.followerHost({ pool: 'control' }), name, (t) => t, hear));
    }
    return this.listen(name, name, 1, hear);
  }

  /** Hear `filter` on the control links (as `queue`): every message, unsettled by anyone, until cancelled or closed. */
  async listen(queue: string, filter: string, qos: 0 | 1, deliver: (r: Received) => void): Promise<Subscription> {
    let active = true;
    const { unlisten } = await this.connection.listen(filter, qos, (r) => {
      if (active) deliver(r);
    });
    const silence = () => {
      active = false;
    };
    this.subscriptions.add(silence);
    return {
      queue,
      cancel: async () => {
        active = false;
        if (!this.subscriptions.delete(silence)) return;
        await unlisten();
      },
    };
  }

  /** The transport is closing: deliver nothing more (the connections end the subscriptions). */
  silenceAll(): void {
    for (const silence of this.subscriptions) silence();
    this.subscriptions.clear();
  }

  private async track(queue: string, follower: QueueFollower): Promise<Subscription> {
    const silence = () => follower.silence();
    this.subscriptions.add(silence);
    try {
      await follower.start();
    } catch (err) {
      this.subscriptions.delete(silence);
      throw err;
    }
    return {
      queue,
      cancel: async () => {
        if (!this.subscriptions.delete(silence)) return;
        await follower.cancel();
      },
    };
  }

  private followerHost(on: ListenOn): FollowerHost {
    return {
      protocolVersion: this.connection.primary.protocolVersion,
      listen: async (filter, qos, listener) => (await this.connection.listen(filter, qos, listener, on)).unlisten,
      watchRecords: (filter, listener) => this.records.watch(filter, listener),
      announceFollowing: (tgt, src) => {
        this.publisher.publish(followingTopic(tgt, src), encodeBody({ tgt, src }), { qos: 1 }).catch((err: Error) =>
          debug('cannot announce that %s follows %s: %s', tgt, src, err.message),
        );
      },
    };
  }

  /** Whether `$share/…` works: MQTT 5 says so in CONNACK; on 3.1.1 we try once. */
  private sharedSubscriptions(): Promise<boolean> {
    this.sharedSupport ??= (async () => {
      const link = this.connection.primary;
      if (link.protocolVersion === 5) return link.serverProperties.sharedSubscriptionAvailable !== false;
      const topic = `msgflo/probe/${link.clientId}`;
      let arrived!: () => void;
      const got = new Promise<boolean>((resolve) => {
        arrived = () => resolve(true);
      });
      const { unlisten } = await this.connection.listen(sharedFilter('msgflo-probe', topic), 1, () => arrived());
      try {
        await this.publisher.publish(topic, encodeBody({ probe: 'shared-subscriptions' }), { qos: 1 });
        return await within(SHARE_PROBE_MS, got, false);
      } finally {
        await unlisten();
      }
    })().then((ok) => {
      debug(ok ? 'broker has shared subscriptions' : 'broker has no shared subscriptions: every member of a group gets every message');
      return ok;
    });
    this.sharedSupport.catch(() => {
      this.sharedSupport = undefined;
    });
    return this.sharedSupport;
  }
}

/** A shared-subscription group is one topic level: other characters are replaced. */
function groupName(group: string): string {
  return group.replace(/[/+#]/g, '_') || '_';
}
