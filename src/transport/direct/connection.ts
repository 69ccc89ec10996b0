/**
 * A "connection" to an in-memory broker: which broker (`direct://NAME`), whether it is open, and what must be undone
 * when it closes (its consumers and snoop listeners go away, as a real connection's would).
 */
import { TransportClosedError } from '../../errors.js';
import { deferred } from '../../util/deferred.js';
import { type MemoryBroker, memoryBroker } from './broker.js';

export class DirectConnection {
  readonly broker: MemoryBroker;
  private open = false;
  private isClosed = false;
  private readonly ended = deferred<Error | undefined>();
  private readonly cleanups = new Set<() => void>();

  constructor(url: string) {
    this.broker = memoryBroker(new URL(url).host || 'default');
  }

  async connect(): Promise<void> {
    if (this.isClosed) throw new TransportClosedError('connect');
    this.open = true;
  }

  /** Throws TransportClosedError unless connected. */
  check(what: string): void {
    if (!this.open) throw new TransportClosedError(what);
  }

  /** Run `cleanup` at close unless released first; returns the release function (which also runs it). */
  own(cleanup: () => void): () => void {
    this.cleanups.add(cleanup);
    return () => {
      this.cleanups.delete(cleanup);
      cleanup();
    };
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.open = false;
    for (const cleanup of [...this.cleanups]) cleanup();
    this.cleanups.clear();
    this.ended.resolve(undefined);
  }

  closed(): Promise<Error | undefined> {
    return this.ended.promise;
  }
}
