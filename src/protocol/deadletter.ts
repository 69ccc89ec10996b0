/**
 * What a dead letter says about why it is dead: the same three fields on every transport (AMQP headers, MQTT 5
 * user properties, the MQTT 3.1.1 wrapper, the in-memory transport), with one length rule for the reason.
 */
import { HEADER } from './envelope.js';

/**
 * Reasons longer than this are cut (with `…`): a reason comes from an error message, maybe with a stack or a
 * whole payload in it, and brokers limit header sizes (RabbitMQ frames, MQTT user properties).
 */
export const MAX_REASON_LENGTH = 4096;

export interface DeadLetterFields {
  [HEADER.reason]: string;
  [HEADER.originalQueue]: string;
  [HEADER.code]?: string;
}

/** The dead-letter fields for a message refused from `queue` with `reason` (and `code`). */
export function deadLetterFields(queue: string, reason: string, code: string | undefined): DeadLetterFields {
  const fields: DeadLetterFields = {
    [HEADER.reason]: reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason,
    [HEADER.originalQueue]: queue,
  };
  if (code !== undefined) fields[HEADER.code] = code;
  return fields;
}
