/**
 * A set of event listeners where one that throws cannot stop the others, nor the transport that emits: what it
 * threw is logged under the emitter's debug namespace.
 */

export class Listeners<E> {
  private readonly set = new Set<(event: E) => void>();
  constructor(private readonly log: (format: string, ...args: unknown[]) => void) {}

  /** Add a listener; returns the function that removes it. */
  add(listener: (event: E) => void): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }

  emit(event: E): void {
    for (const listener of [...this.set]) {
      try {
        listener(event);
      } catch (err) {
        this.log('event listener threw: %s', err instanceof Error ? err.message : String(err));
      }
    }
  }

  get size(): number {
    return this.set.size;
  }

  clear(): void {
    this.set.clear();
  }
}
