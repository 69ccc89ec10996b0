/**
 * Shared subscriptions (`$share/<group>/<filter>`, MQTT 5 §4.8.2, also honoured for 3.1.1 clients as Mosquitto
 * does) on top of aedes, which has none of its own: a `$share/…` filter would be taken literally and match nothing.
 *
 * aedes subscribes each client filter with `broker.subscribe(filter, deliver)`. For a `$share/…` filter we instead
 * record the client's deliver function as a member of the group and subscribe one dispatcher per (group, filter)
 * to the real filter; the dispatcher hands each message to one member, round robin. A client that disconnects is
 * unsubscribed by aedes, which removes it from the group (its share goes to the members that are connected).
 * Retained messages are not sent to shared subscriptions (aedes looks them up under the literal `$share/…` filter
 * and finds none), as the MQTT 5 specification requires.
 *
 * A member with a kept session (clean: false) gets each QoS 1 message through its session's outgoing queue, as
 * aedes does for ordinary subscriptions (it would otherwise refuse to send it: "no such packet"): until the client
 * acknowledges it, the message stays there, and aedes sends it again when the client comes back with that id.
 *
 * What this reads and writes of aedes beyond its documented API is in internals.ts.
 */
import type { Aedes } from 'aedes';
import { logger } from '../util/logger.js';
import { type Deliver, type SubscriberInfo, enqueueOutgoing, replaceSubscriptionCalls, subscriberOf } from './internals.js';

const debug = logger('broker');

interface ShareGroup {
  readonly topic: string;
  readonly members: Deliver[];
  next: number;
  readonly dispatch: Deliver;
}

export function installSharedSubscriptions(aedes: Aedes): void {
  const groups = new Map<string, ShareGroup>();
  const owners = new WeakMap<Deliver, SubscriberInfo>();

  /** The client whose subscription to `shareTopic` delivers through `member`. */
  const ownerOf = (member: Deliver, shareTopic: string): SubscriberInfo | undefined => {
    const known = owners.get(member);
    if (known) return known;
    const client = subscriberOf(aedes, shareTopic, member);
    if (client) owners.set(member, client);
    return client;
  };

  const original = replaceSubscriptionCalls(aedes, {
    subscribe(topic, func, done) {
      const shared = parseShared(topic);
      if (!shared) return original.subscribe(topic, func, done);
      let group = groups.get(topic);
      if (!group) {
        const g: ShareGroup = {
          topic: shared.filter,
          members: [],
          next: 0,
          dispatch: (packet, callback) => {
            if (g.members.length === 0) return callback();
            const member = g.members[g.next % g.members.length]!;
            g.next = (g.next + 1) % g.members.length;
            const owner = packet.qos > 0 ? ownerOf(member, topic) : undefined;
            if (!owner || owner.clean !== false || !owner.id) return member(packet, callback);
            enqueueOutgoing(aedes, owner.id, packet).then(
              () => member(packet, callback),
              (err: Error) => {
                debug('cannot queue a message for %s: %s', owner.id, err.message);
                callback();
              },
            );
          },
        };
        group = g;
        groups.set(topic, g);
        g.members.push(func);
        debug('shared subscription %s opened', topic);
        return original.subscribe(shared.filter, g.dispatch, done);
      }
      if (!group.members.includes(func)) group.members.push(func);
      setImmediate(done);
    },

    unsubscribe(topic, func, done) {
      const group = groups.get(topic);
      if (!group) return original.unsubscribe(topic, func, done);
      const i = group.members.indexOf(func);
      if (i >= 0) group.members.splice(i, 1);
      if (group.members.length > 0) return setImmediate(done ?? noop);
      groups.delete(topic);
      debug('shared subscription %s closed', topic);
      original.unsubscribe(group.topic, group.dispatch, done);
    },
  });
}

function noop(): void {}

/** `$share/<group>/<filter>` → its parts, or undefined for an ordinary filter (or a malformed share). */
function parseShared(topic: string): { group: string; filter: string } | undefined {
  if (!topic.startsWith('$share/')) return undefined;
  const rest = topic.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const group = rest.slice(0, slash);
  const filter = rest.slice(slash + 1);
  if (!filter || /[+#]/.test(group)) return undefined;
  return { group, filter };
}
