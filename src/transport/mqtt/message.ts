/** Received MQTT messages as msgflo-ts messages and deliveries; what nack publishes. Pure, except `nack` calls back. */
import type { IPublishPacket } from 'mqtt';
import { decodeBody, HEADER } from '../../protocol/envelope.js';
import type { Delivery, Headers, InMessage } from '../types.js';
import type { Received } from './link.js';

/** Headers that are bookkeeping of this adapter, not the sender's: not shown to handlers, never forwarded. */
const INTERNAL_HEADERS: ReadonlySet<string> = new Set([HEADER.id, HEADER.via, HEADER.relayed]);

/** All MQTT 5 user properties, one value each (the first, if a name repeats). */
export function userProperties(packet: IPublishPacket): Headers {
  const props = packet.properties?.userProperties;
  const out: Headers = {};
  if (!props) return out;
  for (const [key, value] of Object.entries(props)) {
    const v = Array.isArray(value) ? value[0] : value;
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

/**
 * Code points an MQTT UTF-8 string must not hold: NUL and other controls, surrogates, non-characters. Mosquitto
 * drops the connection of a client that sends one (e.g. in a dead letter's reason, which quotes the bad input).
 */
const NOT_MQTT_UTF8 = /[\u0000-\u001F\u007F-\u009F\p{Cs}\p{Noncharacter_Code_Point}]/gu;

/** `text` made safe for an MQTT string: blanks for tab and line breaks, U+FFFD for the rest of NOT_MQTT_UTF8. */
export function mqttSafeString(text: string): string {
  return text.replace(NOT_MQTT_UTF8, (c) => (c === '\t' || c === '\n' || c === '\r' ? ' ' : '\uFFFD'));
}

/** Headers as MQTT 5 user properties: names and values made safe with mqttSafeString. */
export function mqttSafeProperties(headers: Headers): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers)) out[mqttSafeString(k)] = mqttSafeString(v);
  return out;
}

export function toInMessage(queue: string, received: Received): InMessage {
  const all = userProperties(received.packet);
  const headers: Headers = {};
  for (const [k, v] of Object.entries(all)) if (!INTERNAL_HEADERS.has(k)) headers[k] = v;
  const { data, jsonError } = decodeBody(received.payload);
  return {
    queue,
    data,
    raw: received.payload,
    jsonError,
    headers,
    id: all[HEADER.id],
    redelivered: received.packet.dup === true,
  };
}

export type NackSender = (message: InMessage, reason: string, code: string | undefined) => Promise<void>;

/**
 * A delivery that is settled at most once: ack acknowledges the message to the broker (`received.settle()`: its
 * PUBACK, held until now), nack publishes it to `dead-<queue>` and acknowledges it once the broker has confirmed the
 * dead letter (if that publish fails, the message stays unacknowledged and the broker sends it again). Settling again
 * is a no-op.
 */
export function toDelivery(queue: string, received: Received, sendNack: NackSender): Delivery {
  const message = toInMessage(queue, received);
  let settled = false;
  return {
    ...message,
    get settled() {
      return settled;
    },
    async ack() {
      if (settled) return;
      settled = true;
      received.settle();
    },
    async nack(reason: string, code?: string) {
      if (settled) return;
      settled = true;
      await sendNack(message, reason, code);
      received.settle();
    },
  };
}

/**
 * The dead-letter message for a refused one. MQTT 5: the original body with the reason in user properties.
 * MQTT 3.1.1 has no headers: a JSON wrapper `{"x-msgflo-reason", "x-msgflo-code", "x-msgflo-queue", "data"}`.
 */
export function deadLetter(
  message: InMessage,
  reason: string,
  code: string | undefined,
  withHeaders: boolean,
): { payload: Buffer; headers: Headers } {
  if (withHeaders) {
    const headers: Headers = { ...message.headers, [HEADER.reason]: reason, [HEADER.originalQueue]: message.queue };
    if (code !== undefined) headers[HEADER.code] = code;
    if (message.id !== undefined) headers[HEADER.id] = message.id;
    return { payload: message.raw, headers };
  }
  const wrapper: Record<string, unknown> = { [HEADER.reason]: reason };
  if (code !== undefined) wrapper[HEADER.code] = code;
  wrapper[HEADER.originalQueue] = message.queue;
  wrapper.data = message.data;
  return { payload: Buffer.from(JSON.stringify(wrapper)), headers: {} };
}
