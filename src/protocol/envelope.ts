import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { BadEncodingError } from '../errors.js';

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

/**
 * Decode a body, by one rule for every transport: JSON when it parses, else the body as a string with the parse
 * error (msgflo falls back the same way) — unless the body is not valid UTF-8: then `data` is the body's bytes,
 * untouched, and the error a BadEncodingError (decoding it to a string would replace bytes without a word), so
 * that a participant dead-letters it with MSGFLO_ERR_BAD_ENCODING instead of handling an altered copy.
 */
export function decodeBody(raw: Buffer, queue = '?'): { data: unknown; jsonError: Error | undefined } {
  if (!isUtf8(raw)) return { data: raw, jsonError: new BadEncodingError(queue) };
  const text = raw.toString('utf8');
  try {
    return { data: JSON.parse(text), jsonError: undefined };
  } catch (err) {
    return { data: text, jsonError: err as Error };
  }
}
