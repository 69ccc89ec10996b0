/**
 * The subscriptions of one link (one MQTT connection) by filter, and the one a received topic belongs to.
 *
 * A link never holds two filters that can match the same topic: MQTT 3.1.1 gives no way to tell which subscription a
 * message arrived for, so the transport opens another link for an overlapping filter (`canTake`). A topic therefore
 * matches one route at most.
 */
import type { IPublishPacket } from 'mqtt';
import { filtersOverlap, matchingFilter, topicMatches } from './topics.js';

/** A message as mqtt.js hands it over. */
export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly packet: IPublishPacket;
  /**
   * For a listener with `manualAck`: acknowledge the message to the broker (PUBACK, once every manual listener that
   * got it has settled). Idempotent. A no-op for other listeners and for QoS 0.
   */
  readonly settle: () => void;
}

/** A received message before it is handed to a listener (which gets its own `settle`). */
export type Arrival = Omit<Received, 'settle'>;

export type Listener = (message: Received) => void;
/** Removes a listener; the last one to leave unsubscribes the filter. */
export type Unlisten = () => Promise<void>;

export interface ListenOptions {
  /** The listener settles each message itself (`Received.settle`); until then the broker gets no PUBACK. */
  manualAck?: boolean;
}

export interface RouteListener {
  readonly fn: Listener;
  /** The listener settles each message itself; until then the broker gets no PUBACK. */
  readonly manual: boolean;
}

export interface Route {
  readonly filter: string;
  readonly qos: 0 | 1;
  /** The filter topics are matched against (`$share/<group>/f` → `f`). */
  readonly match: string;
  readonly shared: boolean;
  readonly listeners: RouteListener[];
  /** The listener of a shared route that gets the next message (round robin). */
  next: number;
  /** Resolves when the broker granted the subscription. */
  ready: Promise<void>;
}

const WILDCARD = /[+#]/;

export class Routes {
  /** Routes by subscription filter. */
  private readonly byFilter = new Map<string, Route>();
  /** The routes without wildcards, by the topic they match (the common case, found without scanning). */
  private readonly literal = new Map<string, Route>();

  /** A new route for `filter` with its first listener (not added yet). */
  static make(filter: string, qos: 0 | 1, first: RouteListener): Route {
    return { filter, qos, match: matchingFilter(filter), shared: filter.startsWith('$share/'), listeners: [first], next: 0, ready: Promise.resolve() };
  }

  get size(): number {
    return this.byFilter.size;
  }

  get(filter: string): Route | undefined {
    return this.byFilter.get(filter);
  }

  all(): IterableIterator<Route> {
    return this.byFilter.values();
  }

  add(route: Route): void {
    this.byFilter.set(route.filter, route);
    if (!WILDCARD.test(route.match)) this.literal.set(route.match, route);
  }

  remove(route: Route): void {
    this.byFilter.delete(route.filter);
    if (this.literal.get(route.match) === route) this.literal.delete(route.match);
  }

  /** The route a message on `topic` belongs to. */
  of(topic: string): Route | undefined {
    const route = this.literal.get(topic);
    if (route) return route;
    for (const r of this.byFilter.values()) {
      if (r.match !== topic && WILDCARD.test(r.match) && topicMatches(r.match, topic)) return r;
    }
    return undefined;
  }

  /** Whether `filter` can be added without overlapping another route (or is one already). */
  canTake(filter: string): boolean {
    if (this.byFilter.has(filter)) return true;
    for (const route of this.byFilter.values()) if (filtersOverlap(route.filter, filter)) return false;
    return true;
  }

  /**
   * Who gets the next message of `route`: one listener of a shared route (round robin), else all of them (a copy: a
   * listener may add or remove listeners while called).
   */
  static targets(route: Route): RouteListener[] {
    if (!route.shared) return route.listeners.slice();
    const one = route.listeners[route.next++ % Math.max(1, route.listeners.length)];
    return one === undefined ? [] : [one];
  }
}
