/** The coordinator's types: what it reports, how it is configured, the IIP gate. */
import type { DiscoveryInvalidError } from '../errors.js';
import type { PortRef } from '../graph/types.js';
import type { ParticipantInfo } from '../protocol/discovery.js';
import type { Binding, Transport } from '../transport/types.js';
import type { Clock } from '../util/clock.js';

/** A binding between two graph ports, resolved to broker queues. */
export interface ResolvedBinding extends Binding {
  /** MQTT: forwarded inside this process because the target does not follow binding records. */
  bridge: boolean;
}

export type CoordinatorEvent =
  | { type: 'participant-added'; participant: ParticipantInfo }
  | { type: 'participant-changed'; participant: ParticipantInfo }
  | { type: 'participant-expired'; participant: ParticipantInfo; lastSeen: number }
  | { type: 'participant-left'; participant: ParticipantInfo }
  | { type: 'binding-added'; binding: ResolvedBinding }
  | { type: 'binding-removed'; binding: ResolvedBinding }
  | { type: 'iip-sent'; queue: string; tgt: PortRef; data: unknown }
  | { type: 'invalid-discovery'; error: DiscoveryInvalidError | Error; raw: string }
  | { type: 'problem'; message: string }
  | { type: 'error'; error: Error };

export interface CoordinatorOptions {
  transport: Transport;
  clock?: Clock;
  /**
   * Take queue names only from discovery (default true). false: use the `<role>.<PORT>` convention for roles not
   * yet discovered (msgflo-setup without --discover).
   */
  discover?: boolean;
  /** Heartbeats a participant may miss before it is expired (default 3). */
  missedHeartbeats?: number;
}

/**
 * Asked right before an IIP is sent (with its target and the value to send): false postpones it. Whoever
 * installs a gate calls `reconcile()` when its answer may have changed.
 */
export type IipGate = (tgt: PortRef, data: unknown) => boolean;
