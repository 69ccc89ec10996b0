/**
 * A live view of the binding records under one filter (all of them, or those of one target queue).
 *
 * One view per filter and transport, shared by everyone in the process who needs it: the broker sends retained
 * records only when a subscription is made, so a second reader of the same filter must be given the records
 * from here rather than wait for them.
 */
import { logger } from '../../util/logger.js';
import type { Received } from './link.js';
import { parseRecordMessage, type BindingRecord } from './topics.js';

const debug = logger('mqtt');

export type RecordChange =
  | { kind: 'set'; record: BindingRecord }
  | { kind: 'delete'; src: string; tgt: string };

export type RecordListener = (change: RecordChange) => void;

export class RecordView {
  /** Current records by topic. */
  private readonly records = new Map<string, BindingRecord>();
  private readonly listeners = new Set<RecordListener>();
  /** During a resync: records not (yet) sent again by the broker. */
  private unconfirmed: Set<string> | undefined;

  /** @param onMarker called with each sync marker this view's subscription receives. */
  constructor(
    readonly filter: string,
    private readonly onMarker: (token: string) => void,
  ) {}

  get size(): number {
    return this.listeners.size;
  }

  current(): BindingRecord[] {
    return [...this.records.values()];
  }

  /** Add a listener and return the records it must start from (atomically: no change falls between). */
  join(listener: RecordListener): BindingRecord[] {
    this.listeners.add(listener);
    return this.current();
  }

  leave(listener: RecordListener): void {
    this.listeners.delete(listener);
  }

  /** The broker is about to send the retained records again: remember which ones we have. */
  beginResync(): void {
    this.unconfirmed = new Set(this.records.keys());
  }

  /** The records the broker did not send again are gone (only when `complete`: the marker came back). */
  endResync(complete: boolean): void {
    const gone = this.unconfirmed;
    this.unconfirmed = undefined;
    if (!complete || !gone) return;
    for (const topic of gone) {
      const record = this.records.get(topic);
      if (!record) continue;
      debug('binding record %s -> %s is gone', record.src, record.tgt);
      this.records.delete(topic);
      this.notify({ kind: 'delete', src: record.src, tgt: record.tgt });
    }
  }

  /** Feed a message from the subscription to `filter`. */
  handle(message: Received): void {
    const event = parseRecordMessage(message.topic, message.payload);
    let change: RecordChange;
    switch (event.kind) {
      case 'marker':
        this.onMarker(event.token);
        return;
      case 'invalid':
        debug('ignoring binding record: %s', event.reason);
        return;
      case 'delete':
        if (!this.records.delete(message.topic)) return;
        change = { kind: 'delete', src: event.src, tgt: event.tgt };
        break;
      case 'set':
        this.records.set(message.topic, event.record);
        change = { kind: 'set', record: event.record };
        break;
    }
    this.unconfirmed?.delete(message.topic);
    this.notify(change);
  }

  private notify(change: RecordChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        debug('binding record listener threw: %s', (err as Error).message);
      }
    }
  }
}
