import { randomBytes } from 'node:crypto';

/** Header names msgflo-ts puts on messages (AMQP headers, MQTT 5 user properties). */
export const HEADER = {
  id: 'x-msgflo-id',
  /** On an output: the id of the input whose handling sent it. */
  parent: 'x-msgflo-parent',
  reason: 'x-msgflo-reason',
  code: 'x-msgflo-code',
  originalQueue: 'x-msgflo-queue',
  relayed: 'x-msgflo-relayed',
  via: 'x-msgflo-via',
} as const;

/** 96 random bits per process, then a counter: unique across processes, and far cheaper than a UUID per message. */
const ID_PREFIX = `${randomBytes(12).toString('base64url')}.`;
let idCounter = 0;

/** A new message id, unique across processes (an opaque string: readers must not parse it). */
export function newMessageId(): string {
  return ID_PREFIX + (++idCounter).toString(36);
}

/**
 * The id a send carries: the one given, else a new one — except for at-most-once (`fast`) sends, which are never
 * sent again, so there is no duplicate to recognise and they carry none.
 */
export function sendId(options: { id?: string; fast?: boolean }): string | undefined {
  return options.id ?? (options.fast ? undefined : newMessageId());
}

/** Encode data as a JSON body (msgflo bodies are JSON). */
export function encodeBody(data: unknown): Buffer {
  return Buffer.from(JSON.stringify(data === undefined ? null : data));
}

/** Decode a body: JSON when it parses, else the body as a string with the parse error (msgflo falls back the same way). */
export function decodeBody(raw: Buffer): { data: unknown; jsonError: Error | undefined } {
  const text = raw.toString('utf8');
  try {
    return { data: JSON.parse(text), jsonError: undefined };
  } catch (err) {
    return { data: text, jsonError: err as Error };
  }
}
