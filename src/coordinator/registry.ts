import { EventEmitter } from 'node:events';
import type { ParticipantInfo } from '../protocol/discovery.js';
import { LEGACY_HEARTBEAT_SECONDS, MISSED_HEARTBEATS_TO_EXPIRE } from '../protocol/naming.js';
import { type Clock, systemClock } from '../util/clock.js';

export interface ParticipantEntry {
  info: ParticipantInfo;
  firstSeen: number;
  lastSeen: number;
  /** Seconds between heartbeats: stated by msgflo-ts participants, assumed 27 for msgflo-era ones. */
  heartbeat: number;
  /** True when the participant is not a msgflo-ts one (it does not follow MQTT binding records). */
  legacy: boolean;
}

export interface RegistryEvents {
  added: [entry: ParticipantEntry];
  updated: [entry: ParticipantEntry, changed: boolean];
  expired: [entry: ParticipantEntry];
  left: [entry: ParticipantEntry];
}

export interface RegistryOptions {
  clock?: Clock;
  /** Heartbeats a participant may miss before it is expired (default 3). */
  missed?: number;
}

/** Participants by id, with expiry of those that stop heartbeating. */
export class ParticipantRegistry extends EventEmitter<RegistryEvents> {
  private readonly entries = new Map<string, ParticipantEntry>();
  private readonly clock: Clock;
  private readonly missed: number;
  private timer: unknown;

  constructor(options: RegistryOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.missed = options.missed ?? MISSED_HEARTBEATS_TO_EXPIRE;
  }

  /** Record a discovery message; returns whether the participant is new. */
  update(info: ParticipantInfo): 'added' | 'updated' {
    const now = this.clock.now();
    const heartbeat = typeof info.heartbeat === 'number' && info.heartbeat > 0 ? info.heartbeat : LEGACY_HEARTBEAT_SECONDS;
    const legacy = typeof info.library !== 'string' || !info.library.startsWith('msgflo-ts');
    const existing = this.entries.get(info.id);
    if (existing) {
      const changed = JSON.stringify(existing.info) !== JSON.stringify(info);
      Object.assign(existing, { info, lastSeen: now, heartbeat, legacy });
      this.emit('updated', existing, changed);
      return 'updated';
    }
    const entry: ParticipantEntry = { info, firstSeen: now, lastSeen: now, heartbeat, legacy };
    this.entries.set(info.id, entry);
    this.emit('added', entry);
    return 'added';
  }

  /** A participant said goodbye. */
  leave(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.emit('left', entry);
  }

  get(id: string): ParticipantEntry | undefined {
    return this.entries.get(id);
  }

  byRole(role: string): ParticipantEntry[] {
    return [...this.entries.values()].filter((e) => e.info.role === role);
  }

  all(): ParticipantEntry[] {
    return [...this.entries.values()];
  }

  /** Expire every participant that missed `missed` heartbeats. */
  sweep(): ParticipantEntry[] {
    const now = this.clock.now();
    const expired: ParticipantEntry[] = [];
    for (const entry of this.entries.values()) {
      if (now - entry.lastSeen > entry.heartbeat * 1000 * this.missed) expired.push(entry);
    }
    for (const entry of expired) {
      this.entries.delete(entry.info.id);
      this.emit('expired', entry);
    }
    return expired;
  }

  /** Sweep periodically (every `everyMs`, default 1 s). */
  start(everyMs = 1000): void {
    this.stop();
    this.timer = this.clock.setInterval(() => this.sweep(), everyMs);
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }
}
