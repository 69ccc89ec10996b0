/**
 * Reading an inqueue on MQTT: its own topic, plus the source topic of every binding record whose target it is.
 *
 * This is what makes MQTT edges independent of the process that made them (msgflo#24/#181): the binding lives
 * on the broker as a retained record, and whoever reads the target subscribes the source itself.
 *
 * Every message the follower does not pass on is settled here (acknowledged: e.g. a bridged copy of what it reads
 * directly), except while it is paused or silenced: then messages stay unacknowledged, for the broker to send again.
 */
import { HEADER } from '../../protocol/envelope.js';
import { logger } from '../../util/logger.js';
import type { Listener, ProtocolVersion, Received, Unlisten } from './link.js';
import { userProperty } from './message.js';
import type { RecordChange } from './records.js';
import { bindingRecordsFilter, type BindingRecord } from './topics.js';

const debug = logger('mqtt');

export interface FollowerHost {
  readonly protocolVersion: ProtocolVersion;
  listen(filter: string, qos: 0 | 1, listener: Listener): Promise<Unlisten>;
  /** Tell whoever waits for it that `tgt` now follows `src`. */
  announceFollowing(tgt: string, src: string): void;
  /** Follow the binding records under `filter`: the current ones, then every change, until `stop`. */
  watchRecords(filter: string, listener: (change: RecordChange) => void): Promise<{ records: BindingRecord[]; stop: Unlisten }>;
}

interface Follow {
  ready: boolean;
  readonly unlisten: Promise<Unlisten | undefined>;
}

export class QueueFollower {
  private readonly follows = new Map<string, Follow>();
  private readonly unlistens: Unlisten[] = [];
  private cancelled = false;
  /** Paused or silenced: deliver nothing, settle nothing (the broker keeps those messages for later). */
  private holding = false;

  /**
   * @param filterFor the subscription filter for a topic (the topic itself, or a `$share/<group>/…` filter).
   * @param deliver receives every message of the queue, whichever topic it came through.
   */
  constructor(
    private readonly host: FollowerHost,
    readonly queue: string,
    private readonly filterFor: (topic: string) => string,
    private readonly deliver: (message: Received) => void,
  ) {}

  /** Subscribe the queue and the sources bound to it; resolves when all of them are subscribed. */
  async start(): Promise<void> {
    try {
      this.unlistens.push(await this.host.listen(this.filterFor(this.queue), 1, (m) => this.onOwnTopic(m)));
      const watch = await this.host.watchRecords(bindingRecordsFilter(this.queue), (change) => this.onRecord(change));
      this.unlistens.push(watch.stop);
      for (const record of watch.records) this.onRecord({ kind: 'set', record });
      await Promise.all([...this.follows.values()].map((f) => f.unlisten));
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /** Deliver nothing more, without unsubscribing (the connection is about to close). */
  silence(): void {
    this.cancelled = true;
    this.holding = true;
  }

  /**
   * Deliver nothing more but stay subscribed, and leave what arrives unacknowledged: with a session the broker keeps,
   * it is sent again when this instance comes back. Binding records are still followed.
   */
  pause(): void {
    this.holding = true;
  }

  async cancel(): Promise<void> {
    if (this.cancelled && this.unlistens.length === 0 && this.follows.size === 0) return;
    this.cancelled = true;
    const follows = [...this.follows.values()];
    this.follows.clear();
    const unlistens = this.unlistens.splice(0);
    await Promise.all([
      ...unlistens.map((u) => u()),
      ...follows.map(async (f) => (await f.unlisten)?.()),
    ]);
  }

  private onOwnTopic(message: Received): void {
    if (!this.accept(message)) return;
    // A bridge (ours or another process's) also forwards the sources we read directly: drop its copy (MQTT 5 only;
    // on 3.1.1 we do not read the sources of bridged bindings, see onRecord).
    if (this.host.protocolVersion === 5) {
      const via = userProperty(message.packet, HEADER.via);
      if (via !== undefined && via !== this.queue && this.follows.get(via)?.ready) return message.settle();
    }
    this.deliver(message);
  }

  /** Whether to handle a message now; one that is not is settled, unless we hold messages for the broker. */
  private accept(message: Received): boolean {
    if (this.holding) return false;
    if (this.cancelled) {
      message.settle();
      return false;
    }
    return true;
  }

  private onRecord(change: RecordChange): void {
    if (change.kind === 'delete') {
      if (change.tgt === this.queue) this.unfollow(change.src);
      return;
    }
    const { record } = change;
    if (record.tgt !== this.queue) return;
    // On MQTT 3.1.1 a bridged copy cannot be told from a direct one, so let the bridge deliver it.
    const direct = this.host.protocolVersion === 5 || !record.bridged;
    if (record.src !== this.queue && direct) this.follow(record.src);
    else this.unfollow(record.src);
  }

  private follow(src: string): void {
    if (this.cancelled || this.follows.has(src)) return;
    debug('%s: following %s', this.queue, src);
    const follow: Follow = {
      ready: false,
      unlisten: this.host
        .listen(this.filterFor(src), 1, (m) => {
          if (!this.accept(m)) return;
          if (this.follows.get(src) === follow) this.deliver(m);
          else m.settle();
        })
        .then(
          (unlisten) => {
            if (this.cancelled || this.follows.get(src) !== follow) {
              void unlisten();
              return undefined;
            }
            follow.ready = true;
            this.host.announceFollowing(this.queue, src);
            return unlisten;
          },
          (err: unknown) => {
            debug('%s: cannot follow %s: %s', this.queue, src, (err as Error).message);
            if (this.follows.get(src) === follow) this.follows.delete(src);
            return undefined;
          },
        ),
    };
    this.follows.set(src, follow);
  }

  private unfollow(src: string): void {
    const follow = this.follows.get(src);
    if (!follow) return;
    debug('%s: no longer following %s', this.queue, src);
    this.follows.delete(src);
    void follow.unlisten.then((u) => u?.());
  }
}
