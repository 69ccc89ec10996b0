/**
 * How every transport hands what it received to the handlers its users gave: one rule for a handler that fails.
 */
import { codeOf, reasonOf } from '../errors.js';
import type { Delivery, DeliveryHandler, InMessage, MessageHandler } from './types.js';

type Log = (format: string, ...args: unknown[]) => void;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function refuse(delivery: Delivery, err: unknown, log: Log): void {
  log('handler for %s failed: %s', delivery.queue, reasonOf(err));
  if (!delivery.settled) delivery.nack(reasonOf(err), codeOf(err)).catch((e: unknown) => log('nack failed: %s', reasonOf(e)));
}

/**
 * Hand a delivery to its handler. One that throws, or returns a promise that rejects, gets the delivery
 * dead-lettered with what it threw as the reason (code MSGFLO_ERR_HANDLER unless it threw a coded error), unless
 * it settled the delivery itself first. Nothing is allocated unless the handler fails.
 */
export function deliver(handler: DeliveryHandler, delivery: Delivery, log: Log): void {
  try {
    const result: unknown = handler(delivery);
    if (isThenable(result)) result.then(undefined, (err: unknown) => refuse(delivery, err, log));
  } catch (err) {
    refuse(delivery, err, log);
  }
}

/** Hand a message to an observer (a tap, a discovery observer): what it throws, or rejects with, is only logged. */
export function observe(handler: MessageHandler, message: InMessage, log: Log): void {
  try {
    const result: unknown = handler(message);
    if (isThenable(result)) result.then(undefined, (err: unknown) => log('observer of %s failed: %s', message.queue, reasonOf(err)));
  } catch (err) {
    log('observer of %s failed: %s', message.queue, reasonOf(err));
  }
}
