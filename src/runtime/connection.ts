/** A client of the runtime (a WebSocket, or a test's collector), and how what it sends is checked. */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { MsgfloError, reasonOf } from '../errors.js';
import { PlainProtocolError } from './context.js';
import { GraphCommandError } from './graph-doc.js';

/** Where a connection's messages go. */
export interface RuntimeChannel {
  send(text: string): void;
}

export class Connection {
  readonly id = randomUUID();
  authenticated = false;
  closed = false;
  /** Frames of one connection are handled one after the other. */
  queue: Promise<void> = Promise.resolve();
  constructor(readonly channel: RuntimeChannel) {}
}

/** Whether a client gave the runtime's secret (compared in constant time). */
export function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The text of a protocol error reply. */
export function errorText(err: unknown): string {
  if (err instanceof PlainProtocolError) return err.message;
  if (err instanceof GraphCommandError) return `${err.code}: ${err.message}`;
  if (err instanceof MsgfloError) return `${err.code}: ${err.message}`;
  return reasonOf(err);
}

/** Errors a handler throws on purpose (bad requests), as opposed to bugs, which are logged with their stack. */
export function isExpectedError(err: unknown): boolean {
  return err instanceof MsgfloError || err instanceof GraphCommandError || err instanceof PlainProtocolError;
}
