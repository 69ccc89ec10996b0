/** Received MQTT messages as msgflo-ts messages and deliveries; what nack publishes. Pure, except `nack` calls back. */
import type { IPublishPacket } from 'mqtt';
import { deadLetterFields } from '../../protocol/deadletter.js';
import { decodeBody, HEADER } from '../../protocol/envelope.js';
import type { Delivery, Headers, InMessage } from '../types.js';
import type { Received } from './link.js';

/** Headers that are bookkeeping of this adapter, not the sender's: not shown to handlers, never forwarded. */
const INTERNAL_HEADERS: ReadonlySet<string> = new Set([HEADER.id, HEADER.via, HEADER.relayed]);

/** A user property's value as msgflo-ts reads it: the first, if the name repeats; strings only. */
function firstValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : undefined;
}

/** All MQTT 5 user properties, one value each. */
export function userProperties(packet: IPublishPacket): Headers {
  const props = packet.properties?.userProperties;
  const out: Headers = {};
  for (const key in props) {
    const v = firstValue(props[key]);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** One user property of `packet`, without copying the others. */
export function userProperty(packet: IPublishPacket, name: string): string | undefined {
  return firstValue(packet.properties?.userProperties?.[name]);
}

/**
 * Code points an MQTT UTF-8 string must not hold: NUL and other controls, surrogates, non-characters. Mosquitto
 * drops the connection of a client that sends one (e.g. in a dead letter's reason, which quotes the bad input).
 */
const NOT_MQTT_UTF8 = /[\u0000-\u001F\u007F-\u009F\p{Cs}\p{Noncharacter_Code_Point}]/gu;

/** Whether `text` is printable ASCII only (ids, names, codes: nearly every header), which needs no cleaning. */
function printableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** `text` made safe for an MQTT string: blanks for tab and line breaks, U+FFFD for the rest of NOT_MQTT_UTF8. */
export function mqttSafeString(text: string): string {
  if (printableAscii(text)) return text;
  return text.replace(NOT_MQTT_UTF8, (c) => (c === '\t' || c === '\n' || c === '\r' ? ' ' : '\uFFFD'));
}

/** Headers as MQTT 5 user properties: names and values made safe with mqttSafeString (`headers` itself when they are). */
export function mqttSafeProperties(headers: Headers): Headers {
  let clean = true;
  for (const k in headers) {
    if (!printableAscii(k) || !printableAscii(headers[k]!)) {
      clean = false;
      break;
    }
  }
  if (clean) return headers;
  const out: Headers = {};
  for (const k in headers) out[mqttSafeString(k)] = mqttSafeString(headers[k]!);
  return out;
}

/** The InMessage for a received MQTT message: user properties read once, this adapter's own headers left out. */
export function toInMessage(queue: string, received: Received): InMessage {
  const { headers, id } = readHeaders(received.packet);
  const { data, jsonError } = decodeBody(received.payload, queue);
  return { queue, data, raw: received.payload, jsonError, headers, id, redelivered: received.packet.dup === true };
}

function readHeaders(packet: IPublishPacket): { headers: Headers; id: string | undefined } {
  const props = packet.properties?.userProperties;
  const headers: Headers = {};
  let id: string | undefined;
  for (const key in props) {
    const v = firstValue(props[key]);
    if (v === undefined) continue;
    if (key === HEADER.id) id = v;
    else if (!INTERNAL_HEADERS.has(key)) headers[key] = v;
  }
  return { headers, id };
}

export type NackSender = (message: InMessage, reason: string, code: string | undefined) => Promise<void>;

/**
 * A delivery that is settled at most once: ack acknowledges the message to the broker (`received.settle()`: its
 * PUBACK, held until now), nack publishes it to `dead-<queue>` and acknowledges it once the broker has confirmed the
 * dead letter (if that publish fails, the message stays unacknowledged and the broker sends it again). Settling again
 * changes nothing and returns the first settlement's promise.
 */
export class MqttDelivery implements Delivery {
  readonly queue: string;
  readonly data: unknown;
  readonly raw: Buffer;
  readonly jsonError: Error | undefined;
  readonly headers: Headers;
  readonly id: string | undefined;
  readonly redelivered: boolean;
  private settlement: Promise<void> | undefined;
  private readonly received: Received;
  private readonly sendNack: NackSender;

  constructor(queue: string, received: Received, sendNack: NackSender) {
    const { headers, id } = readHeaders(received.packet);
    const { data, jsonError } = decodeBody(received.payload, queue);
    this.queue = queue;
    this.data = data;
    this.raw = received.payload;
    this.jsonError = jsonError;
    this.headers = headers;
    this.id = id;
    this.redelivered = received.packet.dup === true;
    this.received = received;
    this.sendNack = sendNack;
  }

  get settled(): boolean {
    return this.settlement !== undefined;
  }

  ack(): Promise<void> {
    if (this.settlement) return this.settlement;
    try {
      this.received.settle();
      this.settlement = RESOLVED;
    } catch (err) {
      this.settlement = Promise.reject(err);
    }
    return this.settlement;
  }

  nack(reason: string, code?: string): Promise<void> {
    return (this.settlement ??= this.deadLetter(reason, code));
  }

  private async deadLetter(reason: string, code: string | undefined): Promise<void> {
    await this.sendNack(this, reason, code);
    this.received.settle();
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

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
    const headers: Headers = { ...message.headers, ...deadLetterFields(message.queue, reason, code) };
    if (message.id !== undefined) headers[HEADER.id] = message.id;
    return { payload: message.raw, headers };
  }
  const wrapper: Record<string, unknown> = { ...deadLetterFields(message.queue, reason, code), data: message.data };
  return { payload: Buffer.from(JSON.stringify(wrapper)), headers: {} };
}
