/**
 * Everything the MQTT adapter uses of mqtt.js beyond its documented API, in one place. Each use is one small
 * function saying what it reads or writes, why the adapter needs it, and which mqtt.js versions it was checked
 * against. spec/transport/mqtt/internals.spec.ts exercises every one of them against a real client (on the
 * embedded broker and on Mosquitto) and fails naming the internal that changed: run it after upgrading mqtt.
 *
 * A change here does not show as a type error: these fields are private or untyped in mqtt.js, and what breaks is
 * at-least-once delivery (a PUBACK sent before the message is settled) or reconnection, silently.
 */
import type { Duplex } from 'node:stream';
import type { ISubscriptionGrant, MqttClient } from 'mqtt';

/** The mqtt.js versions the functions below were read and tested against, and the range they are proven for. */
export const MQTT_CHECKED = { range: '~5.16.0', tested: ['5.16.0'] } as const;

/** A PUBACK as mqtt.js builds it for a received QoS 1 message. */
export interface PubackPacket {
  cmd: 'puback';
  messageId: number;
  reasonCode?: number;
}

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

/**
 * Let `hold` keep back the PUBACKs mqtt.js sends for received QoS 1 messages. Returns the function that sends a
 * held PUBACK later (through mqtt.js, as it would have).
 *
 * - Writes `MqttClient._sendPacket` (private). mqtt.js acknowledges a QoS 1 PUBLISH by calling
 *   `client['_sendPacket']({cmd: 'puback', messageId, reasonCode}, done)` right after its 'message' listeners ran
 *   (handlers/publish.js); its `done` lets the next received packet be handled. When `hold(packet)` says true, the
 *   PUBACK is not sent and `done` is called at once, so the packet pipeline goes on; any other packet, and a PUBACK
 *   not held, goes through unchanged.
 * - Why: at least once. The broker must keep a message as in flight until its delivery is settled (acked, or its
 *   dead letter confirmed). mqtt.js's public hook for late acknowledgements (`customHandleAcks`) holds the whole
 *   pipeline until it answers: one slow handler would stop every later message of the connection.
 * - Checked against mqtt 5.16.0.
 */
export function holdPubacks(client: MqttClient, hold: (packet: PubackPacket) => boolean): (packet: PubackPacket) => void {
  const internal = client as unknown as { _sendPacket?: SendPacket };
  if (typeof internal._sendPacket !== 'function') {
    throw new Error(
      `mqtt.js internals changed: MqttClient._sendPacket is gone, so PUBACKs cannot be held until a delivery is settled (checked against mqtt ${MQTT_CHECKED.range})`,
    );
  }
  const original = internal._sendPacket.bind(client) as SendPacket;
  internal._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd === 'puback' && packet.messageId !== undefined && hold(packet as PubackPacket)) {
      cb?.();
      return;
    }
    original(packet, cb, ...rest);
  };
  return (packet) => original(packet, noop);
}

/**
 * Set how long mqtt.js waits before its next reconnection attempt; 0: no more attempts.
 *
 * - Writes `MqttClient.options.reconnectPeriod` after the client was made (the option is documented; changing it
 *   later is not). mqtt.js reads it each time a connection ends (`_setupReconnect`, from the 'close' event; every
 *   attempt clears the timer, so each one picks the value up again), and records a subscription for automatic
 *   resubscription (`_resubscribeTopics`) only while it is above 0.
 * - Why: the first connection fails fast (period 0: no retry loop before CONNACK); after it, the policy in
 *   transport/reconnect.ts (ConnectionState, the policy of every transport) decides each delay, with backoff. mqtt.js itself only knows a fixed period.
 *   The reconnecting itself stays mqtt.js's: it resumes the session with the QoS 1 state it keeps.
 * - Checked against mqtt 5.16.0.
 */
export function setReconnectDelay(client: MqttClient, ms: number): void {
  client.options.reconnectPeriod = ms;
}

/**
 * How many of the client's packets wait for the broker's answer (QoS 1 publishes, subscribes, unsubscribes).
 *
 * - Reads `MqttClient.outgoing` (a public field of the class, not documented): mqtt.js keeps an entry per packet
 *   id until its acknowledgement arrives.
 * - Why: close() ends gracefully (DISCONNECT) only when nothing is in flight; otherwise at once, so that the broker
 *   keeps what was not acknowledged instead of mqtt.js waiting for it.
 * - Checked against mqtt 5.16.0.
 */
export function unconfirmedCount(client: MqttClient): number {
  const outgoing = (client as unknown as { outgoing?: Record<number, unknown> }).outgoing;
  return outgoing ? Object.keys(outgoing).length : 0;
}

/**
 * SUBSCRIBE `filter` even when mqtt.js thinks it is subscribed already (it would then send nothing).
 *
 * - Uses the object form of `subscribe` with the key `resubscribe: true` (typed in ISubscriptionMap, not
 *   documented): mqtt.js then sends the SUBSCRIBE whatever its `_resubscribeTopics` remembers. In the object form
 *   the MQTT 5 options (nl, rap, rh) of each topic are not filled in by mqtt.js, so they are given here.
 * - Why: to have the broker send a filter's retained messages again (binding records after a reconnection), to
 *   repair a kept session's subscription (Mosquitto 2.0 restores shared subscriptions that deliver nothing), and
 *   because a filter unsubscribed and subscribed again may still be remembered.
 * - Checked against mqtt 5.16.0.
 */
export async function subscribeAnyway(client: MqttClient, filter: string, qos: 0 | 1, v5: boolean): Promise<ISubscriptionGrant[]> {
  const request = { [filter]: { qos, ...(v5 ? { nl: false, rap: false, rh: 0 as const } : {}) }, resubscribe: true };
  const granted = await client.subscribeAsync(request as never);
  if (granted.length === 0) {
    throw new Error(
      `mqtt.js internals changed: subscribe({…, resubscribe: true}) sent no SUBSCRIBE for '${filter}' (checked against mqtt ${MQTT_CHECKED.range})`,
    );
  }
  return granted;
}

/**
 * The client's socket, or undefined.
 *
 * - Reads `MqttClient.stream` (a public field of the class, not documented) right after `mqtt.connect()`: mqtt.js
 *   makes the stream synchronously in connect() and writes CONNECT to it at once; each packet is written between
 *   `cork()` and `uncork()` (mqtt-packet's writeToStream). A reconnection makes a new stream.
 * - Why: gather.ts joins the pieces of each packet into one write (a measured share of the hot path), and close()
 *   destroys the socket when mqtt.js does not end in time.
 * - Checked against mqtt 5.16.0 (mqtt-packet 9.0.2).
 */
export function socketOf(client: MqttClient): Duplex | undefined {
  return (client as unknown as { stream?: Duplex }).stream ?? undefined;
}

function noop(): void {}
