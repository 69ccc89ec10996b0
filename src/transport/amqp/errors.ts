/**
 * How amqplib reports failures, and how they map to msgflo-ts errors.
 *
 * amqplib gives server-side channel/connection closes an `Error` whose `code` is the AMQP reply code (404
 * NOT_FOUND, 406 PRECONDITION_FAILED, …). What it only says in words is read in internals.ts.
 */
import { BrokerAuthError, BrokerUnreachableError, type MsgfloError, TransportClosedError } from '../../errors.js';
import { requireCjs } from '../../util/cjs.js';
import { isHandshakeAccessRefused, isVhostRefused } from './internals.js';

const { IllegalOperationError } = requireCjs('amqplib') as typeof import('amqplib');

export const ReplyCode = {
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
} as const;

/** The AMQP reply code carried by an amqplib error, if any. */
export function replyCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export function isNotFound(err: unknown): boolean {
  return replyCode(err) === ReplyCode.NOT_FOUND;
}

/** Whether a failed connection attempt was the broker refusing the login (or the vhost). */
export function isAuthFailure(err: unknown): boolean {
  return replyCode(err) === ReplyCode.ACCESS_REFUSED || isHandshakeAccessRefused(err);
}

/** Socket error codes that mean the connection under an operation went away. */
const SOCKET_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * Whether an amqplib failure means that the channel or connection the operation ran on is gone, rather than that
 * the broker refused the operation: amqplib's IllegalOperationError (an operation on a closed channel or
 * connection), or a socket error code. Decided by class and code, never by the wording.
 */
export function isChannelGone(err: unknown): boolean {
  if (err instanceof IllegalOperationError) return true;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && SOCKET_GONE.has(code);
}

/**
 * An amqplib failure as callers of the transport see it: TransportClosedError once the connection is no longer
 * open or when the channel under the operation is gone (so that a wrapper knows, by class, to retry on a new
 * connection); anything else as it is (say, a 406 of a declaration).
 */
export function closedOr(err: unknown, what: string, connectionOpen: boolean): unknown {
  if (err instanceof TransportClosedError) return err;
  if (!connectionOpen || isChannelGone(err)) return new TransportClosedError(what, { cause: err });
  return err;
}

/** Remove the password of `url` from an error message, should a lower layer ever have echoed it. */
function scrubbed(err: unknown, url: string): unknown {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return err;
  }
  if (password.length < 3 || !(err instanceof Error) || !err.message.includes(password)) return err;
  const clean = new Error(err.message.split(password).join('***'));
  clean.name = err.name;
  return clean;
}

function vhostOf(url: string): string {
  try {
    const path = new URL(url).pathname.slice(1);
    return path ? decodeURIComponent(path) : '/';
  } catch {
    return '?';
  }
}

/** Map an amqplib connect failure to BrokerAuthError or BrokerUnreachableError (the password never appears). */
export function connectError(url: string, err: unknown): MsgfloError {
  const cause = scrubbed(err, url);
  if (isAuthFailure(err)) return new BrokerAuthError(url, { cause });
  if (isVhostRefused(err)) {
    const why = new Error(`access to virtual host '${vhostOf(url)}' refused: it does not exist or the user may not use it`, { cause });
    return new BrokerAuthError(url, { cause: why });
  }
  return new BrokerUnreachableError(url, { cause });
}
