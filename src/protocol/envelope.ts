import { randomUUID } from 'node:crypto';

/** Header names msgflo-ts puts on messages (AMQP headers, MQTT 5 user properties). */
export const HEADER = {
  id: 'x-msgflo-id',
  reason: 'x-msgflo-reason',
  code: 'x-msgflo-code',
  originalQueue: 'x-msgflo-queue',
  relayed: 'x-msgflo-relayed',
  via: 'x-msgflo-via',
} as const;

export function newMessageId(): string {
  return randomUUID();
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
