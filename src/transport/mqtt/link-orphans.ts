/**
 * Messages of a kept session that arrived before their subscription was made again (orphans).
 *
 * A process that takes a kept session back receives what was queued for it right after CONNACK, before it has
 * subscribed again. Such messages are held (unacknowledged) and handed to the first subscription that matches them;
 * those that nobody claims within the grace period are acknowledged and dropped, and reported (e.g. a subscription
 * the session still had for a binding removed meanwhile, which the transport then drops).
 */
import type { Hold } from './link-acks.js';
import type { Arrival } from './link-routes.js';

/** How long a message of a kept session may wait for a subscription that claims it, by default. */
export const ORPHAN_GRACE_MS = 20_000;

interface Orphan {
  readonly message: Arrival;
  readonly hold: Hold;
  readonly at: number;
}

/** What the orphans need of their link. */
export interface OrphanPort {
  /** The current connection (AckWindow.generation): orphans of an earlier one are gone. */
  generation(): number;
  /** Hand the message to the subscription that now matches it; false when none does. */
  claim(message: Arrival, hold: Hold): boolean;
  /** Acknowledge a message nobody claimed. */
  release(hold: Hold): void;
  /** Messages on these topics were dropped, claimed by no subscription. */
  dropped(topics: string[], count: number): void;
}

export class Orphans {
  private list: Orphan[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private readonly graceMs: number;
  private readonly sweepEvery: number;

  constructor(
    private readonly port: OrphanPort,
    graceMs: number | undefined,
  ) {
    this.graceMs = graceMs ?? ORPHAN_GRACE_MS;
    this.sweepEvery = Math.min(1000, graceMs ?? 1000);
  }

  get size(): number {
    return this.list.length;
  }

  /** Keep a message (its hold counts one settlement to wait for) until a subscription claims it. */
  add(message: Arrival, hold: Hold): void {
    hold.remaining = 1;
    this.list.push({ message, hold, at: Date.now() });
    this.sweeper ??= setInterval(() => this.sweep(), this.sweepEvery).unref();
  }

  /** A subscription was made: have it claim its orphans, soon (after the caller's own work). */
  claimSoon(): void {
    if (this.list.length > 0) setImmediate(() => this.claim());
  }

  /** The connection ended: the broker sends those messages again. */
  clear(): void {
    this.list = [];
  }

  /** The link is closing. */
  stop(): void {
    clearInterval(this.sweeper);
  }

  /** Hand orphans to the routes that now match them. */
  private claim(): void {
    if (this.list.length === 0) return;
    const left: Orphan[] = [];
    for (const orphan of this.list) {
      if (orphan.hold.generation !== this.port.generation()) continue;
      if (!this.port.claim(orphan.message, orphan.hold)) left.push(orphan);
    }
    this.list = left;
  }

  /** Acknowledge and drop the orphans nobody claimed in time. */
  private sweep(): void {
    this.claim();
    const now = Date.now();
    const expired = this.list.filter((o) => now - o.at >= this.graceMs);
    if (expired.length === 0) {
      if (this.list.length === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
      return;
    }
    this.list = this.list.filter((o) => now - o.at < this.graceMs);
    const topics = new Set<string>();
    for (const o of expired) {
      this.port.release(o.hold);
      topics.add(o.message.topic);
    }
    this.port.dropped([...topics], expired.length);
  }
}
