/**
 * Live views of the binding records on the broker (retained messages under `msgflo/bindings/`): all of them, or
 * those of one target queue.
 *
 * One view per filter and transport, shared by everyone in the process who needs it (RecordViews): the broker sends
 * retained records only when a subscription is made, so a second reader of the same filter must be given the records
 * from here rather than wait for them. A view knows it is complete when a sync marker it published comes back after
 * the records; after a reconnection it has the broker send them again and drops those not sent (removed meanwhile,
 * or lost with a broker that restarted without persistence).
 */
import { randomBytes } from 'node:crypto';
import { delay } from '../../util/backoff.js';
import { logger } from '../../util/logger.js';
import type { MqttConnection } from './connection.js';
import type { Link, Received, Unlisten } from './link.js';
import type { Publisher } from './publish.js';
import { ALL_BINDINGS_FILTER, encodeMarker, markerTopic, parseRecordMessage, type BindingRecord } from './topics.js';

const debug = logger('mqtt');

/** How long a sync marker may take to come back before we answer with what we have. */
const SYNC_TIMEOUT_MS = 3000;
/** After the first marker of a new subscription: retained messages that a broker streams late (aedes). */
const SYNC_SETTLE_MS = 20;
/** After a reconnect, before checking binding records again. */
const RESYNC_DELAY_MS = 200;

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

/** A live view, the link its subscription is on, and its readiness. */
interface ViewEntry {
  readonly view: RecordView;
  link: Link | undefined;
  ready: Promise<{ unlisten: Unlisten; link: Link }>;
}

/** The views of one transport, by filter, and the sync markers they wait for. */
export class RecordViews {
  private readonly views = new Map<string, ViewEntry>();
  /** Sync markers awaited, by token: the filter whose listener must see it, and what to call then. */
  private readonly markers = new Map<string, { filter: string; seen: () => void }>();

  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
  ) {}

  /**
   * Join the live view of the binding records under `filter`, subscribing it (and waiting for its retained
   * records) on first use. The subscription ends when the last one stops, except for the view of all records,
   * which listBindings keeps.
   */
  async watch(filter: string, listener: RecordListener): Promise<{ records: BindingRecord[]; stop: Unlisten }> {
    let entry = this.views.get(filter);
    if (!entry) {
      const view = new RecordView(filter, (token) => this.markerSeen(token, filter));
      const e: ViewEntry = { view, link: undefined, ready: Promise.resolve(undefined as never) };
      e.ready = (async () => {
        const listening = await this.connection.listen(filter, 1, (m) => view.handle(m));
        e.link = listening.link;
        await this.sync(filter, true);
        return listening;
      })();
      entry = e;
      this.views.set(filter, e);
      e.ready.catch(() => {
        if (this.views.get(filter) === e) this.views.delete(filter);
      });
    }
    const { view, ready } = entry;
    const { unlisten } = await ready;
    const records = view.join(listener);
    let stopped = false;
    return {
      records,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        view.leave(listener);
        if (view.size > 0 || filter === ALL_BINDINGS_FILTER || this.views.get(filter)?.view !== view) return;
        this.views.delete(filter);
        await unlisten();
      },
    };
  }

  /** Every record, current as of now: the permanent view of all records, then a marker for recent changes. */
  async all(): Promise<BindingRecord[]> {
    const { records } = await this.watch(ALL_BINDINGS_FILTER, noop);
    const view = this.views.get(ALL_BINDINGS_FILTER)?.view;
    await this.sync(ALL_BINDINGS_FILTER, false);
    return view?.current() ?? records;
  }

  /**
   * After `link` reconnected: have the broker send the retained records of every view on that link again (subscribe
   * again: a kept session would not send them by itself) and drop the records not sent again before a marker.
   *
   * Must be called synchronously from the reconnect event: records the broker sends right after CONNACK must find
   * the view already expecting them.
   */
  resync(link: Link): void {
    const mine = [...this.views].filter(([, entry]) => entry.link === link);
    for (const [, { view }] of mine) view.beginResync();
    if (mine.length === 0) return;
    void (async () => {
      await delay(RESYNC_DELAY_MS); // mqtt.js subscribes again first when the broker lost the session
      for (const [filter, { view }] of mine) {
        if (!this.connection.isOpen) return;
        let complete = false;
        try {
          await link.resubscribe(filter, 1);
          complete = await this.sync(filter, true);
        } catch (err) {
          debug('resync of %s failed: %s', filter, (err as Error).message);
        }
        if (!this.connection.isOpen) return;
        view.endResync(complete);
      }
    })();
  }

  /** The transport closed: nobody waits for a marker any more. */
  close(): void {
    for (const marker of this.markers.values()) marker.seen();
  }

  /**
   * Wait until everything retained under `filter` has reached our listeners: publish a marker that matches the
   * filter and wait for it to come back (the broker delivers it after what it queued before). `initial` adds a
   * short settle for brokers that stream retained messages after answering the subscription (aedes).
   */
  private async sync(filter: string, initial: boolean): Promise<boolean> {
    const token = randomBytes(8).toString('hex');
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => {
      this.markers.set(token, { filter, seen: () => resolve(true) });
      timer = setTimeout(() => resolve(false), SYNC_TIMEOUT_MS);
    });
    let ok: boolean;
    try {
      await this.publisher.publish(markerTopic(filter, token), encodeMarker(token), { qos: 1 });
      ok = await back;
      if (!ok) debug('sync marker on %s did not come back within %d ms', filter, SYNC_TIMEOUT_MS);
    } finally {
      clearTimeout(timer);
      this.markers.delete(token);
    }
    if (initial) await delay(SYNC_SETTLE_MS);
    return ok;
  }

  /** A marker reached the listener of `filter` (another listener seeing it proves nothing about this one). */
  private markerSeen(token: string, filter: string): void {
    const marker = this.markers.get(token);
    if (marker?.filter === filter) marker.seen();
  }
}

function noop(): void {}
