/**
 * Every place where the AMQP adapter relies on something amqplib does not document: a private property, or the
 * wording of an error it makes. Nothing else under amqp/ may reach into amqplib past its typed API; each access is
 * one function here, saying what it reads and why, and spec/transport/amqp/internals.spec.ts checks each of them
 * against a real connection, so that an amqplib upgrade that changes one fails there, by name, and not as a lost
 * message somewhere else.
 *
 * Checked against amqplib 2.3.1 (`AMQPLIB_CHECKED`); package.json pins the same range.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ChannelModel, Message } from 'amqplib';
import { requireCjs } from '../../util/cjs.js';

/** The amqplib versions the functions below were checked against (a `~` range: patch releases only). */
export const AMQPLIB_CHECKED = { range: '~2.3.1', versions: ['2.3.1'] } as const;

/** The version of the amqplib that is installed (read from its package.json, which it does not export). */
export function installedAmqplibVersion(): string {
  const main = requireCjs.resolve('amqplib');
  const pkg = JSON.parse(readFileSync(join(dirname(main), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '';
}

/** Whether `version` lies in AMQPLIB_CHECKED.range (same major and minor, patch at least the range's). */
export function isCheckedAmqplib(version: string): boolean {
  const floor = AMQPLIB_CHECKED.range.slice(1).split('.').map(Number);
  const parts = /^(\d+)\.(\d+)\.(\d+)$/.exec(version)?.slice(1).map(Number);
  return parts !== undefined && parts[0] === floor[0] && parts[1] === floor[1] && parts[2]! >= floor[2]!;
}

/**
 * The socket under a connection: `ChannelModel.connection.stream` (lib/connection.js keeps it there; the typed
 * `Connection` only shows `serverProperties`). Needed twice: to coalesce writes (see connection.ts) and to drop a
 * connection whose broker does not answer close(). amqplib writes every frame with `stream.write(...)`, looked up on
 * each write, which is what lets coalescing wrap it; destroying the stream with an error closes the connection.
 */
export function connectionSocket(model: ChannelModel): Duplex | undefined {
  const stream: unknown = (model.connection as { stream?: unknown }).stream;
  if (typeof stream !== 'object' || stream === null) return undefined;
  const s = stream as Partial<Duplex>;
  return typeof s.write === 'function' && typeof s.destroy === 'function' ? (stream as Duplex) : undefined;
}

/**
 * The broker's reason for a returned (unroutable mandatory) message: `fields.replyText` of the message amqplib
 * emits as 'return' (basic.return's reply-text; its `Message` type leaves it out). For logs only.
 */
export function returnReplyText(msg: Message): string | undefined {
  const text: unknown = (msg.fields as { replyText?: unknown }).replyText;
  return typeof text === 'string' ? text : undefined;
}

/**
 * Whether a publish's confirm callback failed because the broker sent basic.nack, rather than because the channel
 * closed: amqplib gives both as a plain Error, told apart only by the message ('message nacked' against 'channel
 * closed', lib/channel.js ConfirmChannel).
 */
export function isBrokerNack(err: unknown): boolean {
  return err instanceof Error && err.message === 'message nacked';
}

/**
 * Whether a failed connection attempt was RabbitMQ refusing the login during the handshake (403 ACCESS_REFUSED in
 * its connection.close), which amqplib reports in the message text only: 'Handshake terminated by server: 403
 * (ACCESS-REFUSED) …' (lib/connection.js).
 */
export function isHandshakeAccessRefused(err: unknown): boolean {
  return err instanceof Error && /ACCESS[-_]REFUSED|\b403\b/.test(err.message);
}

/**
 * Whether a failed connection attempt was RabbitMQ refusing connection.open (530 NOT_ALLOWED: a virtual host that
 * does not exist, or that the user may not use); amqplib then only says that it expected ConnectionOpenOk.
 */
export function isVhostRefused(err: unknown): boolean {
  return err instanceof Error && /Expected ConnectionOpenOk; got <ConnectionClose/.test(err.message);
}

/**
 * The exchange named by a 404 channel close ("… NOT_FOUND - no exchange 'x' in vhost '/'"), if that is what it
 * says: amqplib puts the broker's reply-text in the error message only. Tells a publish that hit a missing exchange
 * from the others that the same channel close took with it.
 */
export function missingExchange(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const m = /no exchange '((?:[^'\\]|\\.)*)'/.exec(err.message);
  return m ? m[1] : undefined;
}
