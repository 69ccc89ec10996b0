/**
 * The PUBACKs one link holds back, and its window of unsettled deliveries.
 *
 * **Holding.** mqtt.js acknowledges a received QoS 1 message (PUBACK) as soon as it has handed it over; the link
 * intercepts that PUBACK (internals.ts holdPubacks) and keeps it in the message's Hold until every manual listener
 * that got the message has settled it. Until then the broker keeps the message as in flight for this session: it
 * counts against the window the client allows (MQTT 5 Receive Maximum) and is sent again (DUP) when a kept session
 * reconnects. A PUBACK held when the connection drops is never sent on the next connection (`generation`): the
 * broker sends the message again and that copy is settled instead.
 *
 * **Window.** At most `max` messages are handed to manual listeners and not settled at a time, whatever the broker
 * sends (Mosquitto 2.0 honours the client's Receive Maximum only for its first window); the others wait here,
 * unacknowledged, and are handed over as deliveries are settled. After a lost connection the broker sends them
 * again and those waiting are dropped.
 */
import type { IPublishPacket } from 'mqtt';
import { logger } from '../../util/logger.js';
import type { PubackPacket } from './internals.js';
import type { Arrival } from './link-routes.js';

/** Per message (DEBUG=msgflo:mqtt:flow): PUBACKs held and sent. */
const flow = logger('mqtt:flow');

/** A received QoS 1 message whose PUBACK waits for its listeners. */
export interface Hold {
  readonly messageId: number;
  readonly generation: number;
  /** Manual listeners that have not settled yet. */
  remaining: number;
  /** mqtt.js wanted to send this PUBACK (kept here until `remaining` is 0). */
  puback: PubackPacket | undefined;
  /** Counted among the messages handed to manual listeners and not settled yet (see `busy`). */
  counted: boolean;
}

/** What the window needs of its link. */
export interface AckPort {
  readonly clientId: string;
  /** Whether a PUBACK can go out now (connected, not closing). */
  canSend(): boolean;
  send(puback: PubackPacket): void;
  /** Hand a message that waited for the window to its listeners again (or settle it if nobody takes it now). */
  redeliver(message: Arrival, hold: Hold): void;
}

export class AckWindow {
  /** Incremented when a connection ends: holds of an earlier connection never send their PUBACK. */
  generation = 0;
  private readonly holds = new Map<number, Hold>();
  /** Messages handed to manual listeners and not settled yet. */
  private busy = 0;
  private waiting: Array<{ message: Arrival; hold: Hold }> = [];
  private pumping = false;

  /** @param max the window (undefined: none). */
  constructor(
    private readonly port: AckPort,
    private readonly max: number | undefined,
  ) {}

  /** Messages received and not acknowledged yet. */
  get size(): number {
    return this.holds.size;
  }

  /** mqtt.js is about to send this PUBACK: whether to keep it back (its message is not settled yet). */
  intercept(packet: PubackPacket): boolean {
    const hold = this.holds.get(packet.messageId);
    if (hold && hold.remaining > 0) {
      hold.puback = packet;
      return true;
    }
    if (hold) this.holds.delete(packet.messageId);
    return false;
  }

  /** A hold for a received message (undefined for QoS 0, which has no PUBACK). */
  hold(packet: IPublishPacket): Hold | undefined {
    if (packet.qos === 0 || packet.messageId === undefined) return undefined;
    const hold: Hold = { messageId: packet.messageId, generation: this.generation, remaining: 0, puback: undefined, counted: false };
    this.holds.set(packet.messageId, hold);
    return hold;
  }

  /** Whether a message for manual listeners must wait for the window (then `wait` it). */
  full(): boolean {
    return this.max !== undefined && (this.busy >= this.max || (this.waiting.length > 0 && !this.pumping));
  }

  /** Keep a message, unacknowledged, until the window has room. */
  wait(message: Arrival, hold: Hold): void {
    hold.remaining = 1;
    this.waiting.push({ message, hold });
  }

  /** The message was handed to `manual` listeners that settle it: counted in the window until they have. */
  handed(hold: Hold, manual: number): void {
    hold.remaining = manual;
    if (manual === 0) {
      // Nobody settles it: acknowledged now (or when mqtt.js asks, right after this).
      hold.remaining = 1;
      this.release(hold);
      return;
    }
    hold.counted = true;
    this.busy++;
  }

  /** One manual listener settled: send the PUBACK once all have (if mqtt.js asked for it and we are still connected). */
  release(hold: Hold): void {
    if (hold.remaining <= 0) return;
    if (--hold.remaining > 0) return;
    if (this.holds.get(hold.messageId) === hold) this.holds.delete(hold.messageId);
    const current = hold.generation === this.generation;
    if (hold.counted && current) {
      hold.counted = false;
      this.busy--;
      if (this.waiting.length > 0) setImmediate(() => this.pump());
    }
    if (hold.puback && current && this.port.canSend()) {
      if (flow.enabled) flow('%s: puback #%d', this.port.clientId, hold.messageId);
      this.port.send(hold.puback);
    } else if (flow.enabled) {
      flow('%s: settled #%d, no puback (%s)', this.port.clientId, hold.messageId, hold.puback ? 'connection gone' : 'not asked yet');
    }
  }

  /** The connection ended: nothing held is acknowledged any more (the broker sends it again). */
  reset(): void {
    this.generation++;
    this.holds.clear();
    this.busy = 0;
    this.waiting = [];
  }

  /** Hand waiting messages to their listeners while fewer than `max` are unsettled. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const max = this.max ?? Infinity;
      while (this.waiting.length > 0 && this.busy < max) {
        const { message, hold } = this.waiting.shift()!;
        if (hold.generation !== this.generation) continue;
        this.port.redeliver(message, hold);
      }
    } finally {
      this.pumping = false;
    }
  }
}
