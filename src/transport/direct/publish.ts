/** Sending on the in-memory broker: a message is stored as it would travel (encoded body, headers, id). */
import { QueueNotFoundError } from '../../errors.js';
import { encodeBody, HEADER, sendId } from '../../protocol/envelope.js';
import type { QueueKind, SendOptions } from '../types.js';
import type { StoredMessage } from './broker.js';
import type { DirectConnection } from './connection.js';

/** A message as the broker keeps it; the id goes in the x-msgflo-id header too. */
export function stored(data: unknown, options: SendOptions = {}): StoredMessage {
  const id = sendId(options);
  const headers: Record<string, string> = { ...options.headers };
  if (id !== undefined) headers[HEADER.id] = id;
  return { body: encodeBody(data), headers, id, redelivered: false };
}

/** Send to an inqueue directly or through an outqueue's exchange; QueueNotFoundError when it does not exist. */
export function send(connection: DirectConnection, kind: QueueKind, name: string, data: unknown, options?: SendOptions): void {
  connection.check('send');
  const message = stored(data, options);
  if (kind === 'inqueue') {
    const q = connection.broker.queues.get(name);
    if (!q) throw new QueueNotFoundError(name);
    q.push(message);
  } else if (!connection.broker.publish(name, message)) {
    throw new QueueNotFoundError(name);
  }
}
