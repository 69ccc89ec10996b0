/**
 * Reconnection policy, the same for every transport, whoever does the reconnecting (ReconnectingTransport for AMQP,
 * mqtt.js under MQTT's link.ts, which must resume its session at the protocol level):
 *
 * - which errors mean the connection is gone: TransportClosedError (MSGFLO_ERR_TRANSPORT_CLOSED), decided by code
 *   only. Adapters translate their library's errors into it at their boundary;
 * - the wait between attempts: reconnectBackoff (defaults.ts), from its first step at the start of each outage;
 * - the connection's state and the events it gives: `disconnect` once per outage, `reconnect` when it ends, and
 *   during an outage only its first `error`; nothing before the first connection, nothing after close.
 *
 *      new ──opened()──► open ──lost()──► lost ──reconnected()──► open …
 *        └──────────────────┴───────────────┴──close()/ended()──► closed
 */
import { ErrorCodes, MsgfloError } from '../errors.js';
import type { Backoff } from '../util/backoff.js';
import { deferred } from '../util/deferred.js';
import { reconnectBackoff } from './defaults.js';
import type { TransportEvent } from './types.js';

/** Whether `err` means that the connection under an operation went away, so the operation may be tried again on the next one. */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof MsgfloError && err.code === ErrorCodes.TRANSPORT_CLOSED;
}

export type ConnectionPhase = 'new' | 'open' | 'lost' | 'closed';

export interface ConnectionStateOptions {
  /** Where the connection events go (usually a Listeners' emit). */
  emit: (event: TransportEvent) => void;
  /** Overrides of the reconnection backoff (tests). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export class ConnectionState {
  private current: ConnectionPhase = 'new';
  private errorReported = false;
  private readonly emit: (event: TransportEvent) => void;
  private readonly backoff: Backoff;
  private readonly end = deferred<Error | undefined>();

  constructor(options: ConnectionStateOptions) {
    this.emit = options.emit;
    this.backoff = reconnectBackoff(options.backoff);
  }

  get phase(): ConnectionPhase {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current === 'open';
  }

  /** Closed by request, or ended: for good. */
  get isClosed(): boolean {
    return this.current === 'closed';
  }

  /** Reconnection attempts in the current outage so far. */
  get attempts(): number {
    return this.backoff.attempts;
  }

  /** The first connection is up: from now on losses are reported and reconnected. */
  opened(): void {
    if (this.current === 'new') this.current = 'open';
  }

  /**
   * The connection went away. Starts an outage when open: emits `disconnect` (with `error`, if given), restarts
   * the backoff, and returns true. Returns false otherwise (already lost, not yet opened, or closed).
   */
  lost(error?: Error): boolean {
    if (this.current !== 'open') return false;
    this.current = 'lost';
    this.errorReported = false;
    this.backoff.reset();
    this.emit(error ? { type: 'disconnect', error } : { type: 'disconnect' });
    return true;
  }

  /** How long to wait before the next attempt (ms): the backoff's next step. */
  nextDelay(): number {
    return this.backoff.next();
  }

  /** A new connection is up. Ends the outage: emits `reconnect`, returns true. False when there was none. */
  reconnected(): boolean {
    if (this.current !== 'lost') return false;
    this.current = 'open';
    this.backoff.reset();
    this.emit({ type: 'reconnect' });
    return true;
  }

  /** Report an error: while open, each one; during an outage, its first only; never before opened() or after close. */
  error(error: Error): void {
    if (this.current === 'lost') {
      if (this.errorReported) return;
      this.errorReported = true;
    } else if (this.current !== 'open') {
      return;
    }
    this.emit({ type: 'error', error });
  }

  /** Closing by request: no more events, no more attempts. Returns false when it already was closed. */
  close(): boolean {
    if (this.current === 'closed') return false;
    this.current = 'closed';
    return true;
  }

  /**
   * Closed for good: after close() has finished (no error), or giving up (the error that ended it). Resolves
   * closed(); only the first call counts.
   */
  ended(error?: Error): void {
    this.current = 'closed';
    this.end.resolve(error);
  }

  /** Resolves once ended() (see Transport.closed); never rejects. */
  closed(): Promise<Error | undefined> {
    return this.end.promise;
  }
}
