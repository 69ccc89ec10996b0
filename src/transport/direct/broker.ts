/**
 * An in-memory broker with AMQP semantics (fanout exchanges, queues with competing consumers, prefetch,
 * ack/nack, redelivery of unacked messages when a consumer goes away). Brokers are named: every transport
 * created for `direct://NAME` in one process talks to the same one.
 */

export interface StoredMessage {
  body: Buffer;
  headers: Record<string, string>;
  id: string | undefined;
  redelivered: boolean;
}

export interface Consumer {
  readonly tag: number;
  prefetch: number;
  inFlight: number;
  deliver(message: StoredMessage, settle: (outcome: 'ack' | 'requeue') => void): void;
}

export class MemoryQueue {
  readonly messages: StoredMessage[] = [];
  readonly consumers: Consumer[] = [];
  private rr = 0;
  private readonly unacked = new Map<Consumer, Set<StoredMessage>>();
  private scheduled = false;
  constructor(readonly name: string) {}

  push(message: StoredMessage): void {
    this.messages.push(message);
    this.schedule();
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.unacked.set(consumer, new Set());
    this.schedule();
  }

  /** Remove a consumer; what it had not settled goes back to the head of the queue, marked redelivered. */
  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
    const pending = this.unacked.get(consumer);
    this.unacked.delete(consumer);
    if (pending && pending.size) {
      this.messages.unshift(...[...pending].map((m) => ({ ...m, redelivered: true })));
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.messages.length && this.consumers.length) {
      let chosen: Consumer | undefined;
      for (let n = 0; n < this.consumers.length; n++) {
        const c = this.consumers[(this.rr + n) % this.consumers.length]!;
        if (c.inFlight < c.prefetch) {
          chosen = c;
          this.rr = (this.rr + n + 1) % this.consumers.length;
          break;
        }
      }
      if (!chosen) return;
      const message = this.messages.shift()!;
      const consumer = chosen;
      const pending = this.unacked.get(consumer)!;
      pending.add(message);
      consumer.inFlight++;
      consumer.deliver(message, (outcome) => {
        if (!pending.delete(message)) return;
        consumer.inFlight--;
        if (outcome === 'requeue') this.messages.unshift({ ...message, redelivered: true });
        this.schedule();
      });
    }
  }
}

/** A subscriber of the snoop channel: gets every message it matches (fan-out). */
export type SnoopListener = (channel: string, role: string, body: Buffer) => void;

export class MemoryBroker {
  readonly queues = new Map<string, MemoryQueue>();
  /** Snoop channel subscribers. */
  readonly snoopListeners = new Set<SnoopListener>();
  /** exchange name → bound queue names and bound exchange names. */
  readonly exchanges = new Map<string, { queues: Set<string>; exchanges: Set<string> }>();

  assertQueue(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemoryQueue(name);
      this.queues.set(name, q);
    }
    return q;
  }

  assertExchange(name: string): void {
    if (!this.exchanges.has(name)) this.exchanges.set(name, { queues: new Set(), exchanges: new Set() });
  }

  deleteQueue(name: string): void {
    this.queues.delete(name);
    for (const ex of this.exchanges.values()) ex.queues.delete(name);
  }

  deleteExchange(name: string): void {
    this.exchanges.delete(name);
    for (const ex of this.exchanges.values()) ex.exchanges.delete(name);
  }

  /** Route a message through an exchange (fanout, following exchange→exchange bindings); false if it doesn't exist. */
  publish(exchange: string, message: StoredMessage, seen = new Set<string>()): boolean {
    const ex = this.exchanges.get(exchange);
    if (!ex) return false;
    seen.add(exchange);
    const targets = new Set<string>();
    const collect = (name: string) => {
      const e = this.exchanges.get(name);
      if (!e) return;
      for (const q of e.queues) targets.add(q);
      for (const x of e.exchanges) {
        if (!seen.has(x)) {
          seen.add(x);
          collect(x);
        }
      }
    };
    collect(exchange);
    for (const q of targets) this.queues.get(q)?.push({ ...message, headers: { ...message.headers } });
    return true;
  }
}

const brokers = new Map<string, MemoryBroker>();

/** The process-wide broker for a `direct://NAME` URL. */
export function memoryBroker(name: string): MemoryBroker {
  let b = brokers.get(name);
  if (!b) {
    b = new MemoryBroker();
    brokers.set(name, b);
  }
  return b;
}
