/**
 * `await using` support in one place.
 *
 * Classes with a lifetime (Participant, Coordinator, Network) declare `[Symbol.asyncDispose]()`. Node 20.5 and
 * later define `Symbol.asyncDispose` (as `Symbol.for('nodejs.asyncDispose')`); Node 20.0–20.4, which our
 * `engines` also accept, do not, and a member keyed by it would be keyed by `undefined`. So this module defines
 * it, only when it is missing, as the same registered symbol Node uses. A module whose class declares that
 * member imports `lifetime` from here, which makes sure the symbol exists before the class is defined.
 */
import { deferred } from './deferred.js';

const symbols = Symbol as unknown as { asyncDispose?: symbol };
if (typeof symbols.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose'), configurable: false, writable: false, enumerable: false });
}

/** The `closed()` promise of an object: resolved once, when it has fully closed. */
export interface Lifetime {
  /** Resolves when the object has fully closed (never rejects). */
  readonly closed: Promise<void>;
  /** Mark the object closed (again: no effect). */
  close(): void;
}

export function lifetime(): Lifetime {
  const d = deferred<void>();
  return { closed: d.promise, close: () => d.resolve() };
}
