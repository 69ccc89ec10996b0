/**
 * Queues and bindings on MQTT. A queue is the topic of the same name and needs no declaration. A binding is a
 * retained record on the broker (`msgflo/bindings/<tgt>/<src>`, topics.ts): subscribers of `tgt` follow the records
 * and subscribe each `src` themselves (follower.ts), so an edge outlives the process that made it (msgflo#24/#181).
 * With `{bridge: true}` this transport also forwards src→tgt itself (bridge.ts); with `{confirmMs}` addBinding waits
 * (bounded) until a reader of the target says it follows the new record.
 */
import { logger } from '../../util/logger.js';
import { copyBinding } from '../bindings.js';
import type { Binding, BindingOptions, QueueKind, QueueOptions } from '../types.js';
import type { Bridges } from './bridge.js';
import type { MqttConnection } from './connection.js';
import type { Unlisten } from './link.js';
import type { Publisher } from './publish.js';
import type { RecordViews } from './records.js';
import { assertTopic, bindingRecordTopic, deadLetterTopic, encodeRecord, followingTopic, type BindingRecord } from './topics.js';

const debug = logger('mqtt');

export class Topology {
  constructor(
    private readonly connection: MqttConnection,
    private readonly publisher: Publisher,
    private readonly records: RecordViews,
    private readonly bridges: Bridges,
  ) {}

  async createQueue(_kind: QueueKind, name: string, _options?: QueueOptions): Promise<void> {
    this.connection.assertOpen('create a queue');
    assertTopic(name);
  }

  async removeQueue(_kind: QueueKind, _name: string): Promise<void> {
    this.connection.assertOpen('remove a queue');
  }

  async queueExists(_kind: QueueKind, _name: string): Promise<boolean> {
    this.connection.assertOpen('check a queue');
    return true;
  }

  async addBinding(binding: Binding, options: BindingOptions = {}): Promise<void> {
    this.connection.assertOpen('add a binding');
    assertBinding(binding);
    const bridged = options.bridge === true;
    const records = recordsOf(binding, bridged);
    // Wait (bounded) until a reader of the target says it follows the new record, when asked to.
    const confirmMs = !bridged && options.confirmMs ? options.confirmMs : 0;
    let confirmed: Promise<boolean> = Promise.resolve(true);
    let stopWaiting: Unlisten | undefined;
    if (confirmMs > 0) {
      let resolveConfirmed!: (ok: boolean) => void;
      confirmed = new Promise((r) => (resolveConfirmed = r));
      stopWaiting = (await this.connection.listen(followingTopic(binding.tgt, binding.src), 1, () => resolveConfirmed(true))).unlisten;
      setTimeout(() => resolveConfirmed(false), confirmMs).unref();
    }
    try {
      await Promise.all(records.map((r) => this.publisher.publish(bindingRecordTopic(r.tgt, r.src), encodeRecord(r), { qos: 1, retain: true })));
      debug('binding %s -> %s recorded%s', binding.src, binding.tgt, bridged ? ' (bridged)' : '');
      if (bridged) await this.bridges.start(records);
      if (!(await confirmed)) debug('binding %s -> %s: no reader of the target confirmed within %d ms', binding.src, binding.tgt, confirmMs);
    } finally {
      await stopWaiting?.();
    }
  }

  async removeBinding(binding: Binding): Promise<void> {
    this.connection.assertOpen('remove a binding');
    assertBinding(binding);
    const records = recordsOf(binding, false);
    for (const r of records) await this.bridges.stop(r);
    await Promise.all(records.map((r) => this.publisher.publish(bindingRecordTopic(r.tgt, r.src), Buffer.alloc(0), { qos: 1, retain: true })));
    debug('binding %s -> %s removed', binding.src, binding.tgt);
  }

  async listBindings(): Promise<Binding[]> {
    this.connection.assertOpen('list bindings');
    return (await this.records.all()).filter((r) => r.deadletterOf === undefined).map(copyBinding);
  }
}

function assertBinding(binding: Binding): void {
  assertTopic(binding.src);
  assertTopic(binding.tgt);
  if (binding.deadletter !== undefined) assertTopic(binding.deadletter);
}

/** The records a binding is stored as: itself, and for a roundrobin deadletter, `dead-<tgt>` → deadletter. */
function recordsOf(binding: Binding, bridged: boolean): BindingRecord[] {
  const main: BindingRecord = copyBinding(binding);
  if (bridged) main.bridged = true;
  const records = [main];
  if (binding.type === 'roundrobin' && binding.deadletter !== undefined) {
    const dead: BindingRecord = { type: 'pubsub', src: deadLetterTopic(binding.tgt), tgt: binding.deadletter, deadletterOf: binding.tgt };
    if (bridged) dead.bridged = true;
    records.push(dead);
  }
  return records;
}
