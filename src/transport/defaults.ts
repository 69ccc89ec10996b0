/**
 * Defaults every transport shares, in one place. A transport that needs a value of its own says why beside it.
 */
import { Backoff } from '../util/backoff.js';

/** Messages in flight per consumer when the subscriber does not say (AMQP prefetch, MQTT receive window). */
export const DEFAULT_PREFETCH = 50;
/** The largest prefetch any broker takes (AMQP's basic.qos is a 16-bit count). */
export const MAX_PREFETCH = 0xffff;

/** The prefetch a subscription uses: the one asked for, as a whole number within what brokers accept. */
export function prefetchOf(requested: number | undefined): number {
  return Math.min(MAX_PREFETCH, Math.max(0, Math.floor(requested ?? DEFAULT_PREFETCH)));
}

/** Sends kept while a connection is away; beyond that they are refused (TransportClosedError), never dropped. */
export const MAX_BUFFERED_SENDS = 10_000;

/** How long a first connection may take before it fails with a coded error. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** How long close() waits for confirms and consumers before it drops the connection anyway. */
export const CLOSE_TIMEOUT_MS = 10_000;

/** A discovery message's time to live on the broker (AMQP per-message TTL): the `fbp` queue never piles up. */
export const DISCOVERY_TTL_MS = 60_000;

/** Snoop messages a slow observer may fall behind by before the broker drops its oldest. */
export const SNOOP_BACKLOG = 10_000;

/** Reconnection after a lost connection: first attempt soon, then exponentially later, at most this often. */
export const RECONNECT_INITIAL_MS = 200;
export const RECONNECT_MAX_MS = 10_000;

/** The backoff between reconnection attempts, for every transport. */
export function reconnectBackoff(options: { initialMs?: number; maxMs?: number } = {}): Backoff {
  return new Backoff({ initialMs: options.initialMs ?? RECONNECT_INITIAL_MS, maxMs: options.maxMs ?? RECONNECT_MAX_MS });
}
