/**
 * Everything the embedded broker uses of aedes beyond its documented API, in one place. Each use is one small
 * function saying what it reads or writes, why the broker needs it, and which aedes versions it was checked against.
 * spec/broker/internals.spec.ts exercises every one of them against a real aedes instance and fails naming the
 * internal that changed: run it after upgrading aedes.
 *
 * What depends on them: shared subscriptions (`$share/<group>/…`), which aedes does not have, and with them the
 * at-least-once delivery of a shared subscriber with a kept session.
 */
import type { Aedes, AedesPublishPacket } from 'aedes';

/** The aedes versions the functions below were read and tested against, and the range they are proven for. */
export const AEDES_CHECKED = { range: '~1.2.0', tested: ['1.2.0'], persistence: 'aedes-persistence 11.0.0 (aedes 1.2 default)' } as const;

/** How aedes hands a message to one subscription (and calls back once it was written or queued). */
export type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;
type SubscribeFn = (topic: string, deliver: Deliver, done: () => void) => void;

/** The subscription calls of an aedes instance (originals, or replacements). */
export interface SubscriptionCalls {
  subscribe(topic: string, deliver: Deliver, done: () => void): void;
  /** aedes calls it without `done` when a client changes the options of a filter it has. */
  unsubscribe(topic: string, deliver: Deliver, done: (() => void) | undefined): void;
}

/**
 * Put `calls` in place of the instance's subscribe/unsubscribe; returns the originals (bound).
 *
 * - Writes the `subscribe` and `unsubscribe` methods of the Aedes instance (documented as the way to subscribe a
 *   function to a topic; that a client's SUBSCRIBE goes through them is not). aedes handles a client's SUBSCRIBE by
 *   calling `broker.subscribe(filter, client's deliver function, done)` on the instance (lib/handlers/subscribe.js),
 *   an UNSUBSCRIBE and a disconnect by `broker.unsubscribe(filter, that function, done)`; a SUBSCRIBE that changes a
 *   filter's options calls `unsubscribe` without `done` first.
 * - Why: shared subscriptions. A `$share/<group>/<filter>` SUBSCRIBE is turned into one subscription per group to
 *   the real filter, which hands each message to one member (broker/index.ts).
 * - Checked against aedes 1.2.0.
 */
export function replaceSubscriptionCalls(aedes: Aedes, calls: SubscriptionCalls): SubscriptionCalls {
  const original = { subscribe: aedes.subscribe.bind(aedes) as SubscribeFn, unsubscribe: aedes.unsubscribe.bind(aedes) as SubscribeFn };
  aedes.subscribe = (topic: string, deliver: Deliver, done: () => void) => calls.subscribe(topic, deliver, done);
  aedes.unsubscribe = (topic: string, deliver: Deliver, done: () => void) => calls.unsubscribe(topic, deliver, done as (() => void) | undefined);
  return {
    subscribe: original.subscribe,
    unsubscribe: (topic, deliver, done) => original.unsubscribe(topic, deliver, done ?? noop),
  };
}

/** A connected client as far as the broker needs to know it. */
export interface SubscriberInfo {
  readonly id: string;
  /** false: a kept session (MQTT clean session flag 0). */
  readonly clean: boolean;
}

/**
 * The connected client whose subscription to `topic` delivers through `deliver`, or undefined.
 *
 * - Reads `Aedes.clients` (a record of the connected clients by id, not documented) and, of each client,
 *   `subscriptions[topic].func` (not documented: the deliver function aedes subscribed for that filter) and the
 *   documented `id` and `clean`.
 * - Why: a shared-subscription member is known only by its deliver function; a member with a kept session needs its
 *   messages queued in its session (see enqueueOutgoing).
 * - Checked against aedes 1.2.0.
 */
export function subscriberOf(aedes: Aedes, topic: string, deliver: Deliver): SubscriberInfo | undefined {
  const clients = (aedes as unknown as { clients?: Record<string, SubscriberInfo & { subscriptions?: Record<string, { func?: Deliver } | undefined> }> }).clients;
  if (!clients) throw new Error(`aedes internals changed: Aedes.clients is gone (checked against aedes ${AEDES_CHECKED.range})`);
  for (const client of Object.values(clients)) {
    if (client.subscriptions?.[topic]?.func === deliver) return client;
  }
  return undefined;
}

/**
 * Queue a QoS 1 message in the kept session of client `clientId` before it is handed to the client's deliver
 * function.
 *
 * - Calls `Aedes.persistence.outgoingEnqueue({clientId}, packet)` (the persistence is an aedes option; the
 *   instance's field and this call order are not documented). aedes does the same in `Client.publish` for a client
 *   with a kept session; its deliver function then only updates the queued packet (`outgoingUpdate`) and refuses to
 *   send one it cannot find ("no such packet").
 * - Why: at least once for shared subscribers with a kept session: the message stays in the session until the
 *   client acknowledges it, and aedes sends it again when the client comes back with that id.
 * - Checked against aedes 1.2.0 with its default persistence (aedes-persistence 11.0.0).
 */
export function enqueueOutgoing(aedes: Aedes, clientId: string, packet: AedesPublishPacket): Promise<void> {
  const persistence = (aedes as unknown as { persistence?: { outgoingEnqueue?: (sub: { clientId: string }, packet: AedesPublishPacket) => Promise<void> } })
    .persistence;
  if (typeof persistence?.outgoingEnqueue !== 'function') {
    return Promise.reject(new Error(`aedes internals changed: Aedes.persistence.outgoingEnqueue is gone (checked against aedes ${AEDES_CHECKED.range})`));
  }
  return persistence.outgoingEnqueue({ clientId }, packet);
}

function noop(): void {}
