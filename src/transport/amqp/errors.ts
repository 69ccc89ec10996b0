/**
 * How amqplib reports failures, and how they map to msgflo-ts errors.
 *
 * amqplib gives server-side channel/connection closes an `Error` whose `code` is the AMQP reply code (404
 * NOT_FOUND, 406 PRECONDITION_FAILED, …). Handshake failures only carry the reply in the message text.
 */
import { BrokerAuthError, BrokerUnreachableError, type MsgfloError } from '../../errors.js';

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

export function isPreconditionFailed(err: unknown): boolean {
  return replyCode(err) === ReplyCode.PRECONDITION_FAILED;
}

/** The exchange named by a 404 "NOT_FOUND - no exchange 'x' in vhost '/'" close, if that is what it says. */
export function missingExchange(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const m = /no exchange '((?:[^'\\]|\\.)*)'/.exec(err.message);
  return m ? m[1] : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether a failed connection attempt was the broker refusing the login (or the vhost). */
export function isAuthFailure(err: unknown): boolean {
  if (replyCode(err) === ReplyCode.ACCESS_REFUSED) return true;
  return /ACCESS[-_]REFUSED|\b403\b/.test(messageOf(err));
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

/**
 * RabbitMQ refuses connection.open (530 NOT_ALLOWED) for a virtual host that does not exist or that the user
 * may not use; amqplib then only says it expected ConnectionOpenOk.
 */
export function isVhostRefused(err: unknown): boolean {
  return /Expected ConnectionOpenOk; got <ConnectionClose/.test(messageOf(err));
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
