/** Queues, exchanges and bindings on the in-memory broker, laid out as on AMQP (see amqp/topology.ts). */
import { deadLetterName } from '../../protocol/naming.js';
import { bindingKey, copyBinding } from '../bindings.js';
import type { Binding, QueueKind } from '../types.js';
import type { DirectConnection } from './connection.js';

export class DirectTopology {
  private readonly bindings = new Map<string, Binding>();

  constructor(private readonly connection: DirectConnection) {}

  /** An outqueue is a fanout exchange; an inqueue a queue with its same-named exchange and `dead-<name>`. */
  createQueue(kind: QueueKind, name: string): void {
    this.connection.check('create a queue');
    const broker = this.connection.broker;
    broker.assertExchange(name);
    if (kind === 'inqueue') {
      broker.assertQueue(name);
      broker.exchanges.get(name)!.queues.add(name);
      const dead = deadLetterName(name);
      broker.assertExchange(dead);
      broker.assertQueue(dead);
      broker.exchanges.get(dead)!.queues.add(dead);
    }
  }

  removeQueue(kind: QueueKind, name: string): void {
    this.connection.check('remove a queue');
    if (kind === 'inqueue') this.connection.broker.deleteQueue(name);
    this.connection.broker.deleteExchange(name);
  }

  queueExists(kind: QueueKind, name: string): boolean {
    this.connection.check('check a queue');
    const broker = this.connection.broker;
    return kind === 'inqueue' ? broker.queues.has(name) : broker.exchanges.has(name);
  }

  addBinding(binding: Binding): void {
    this.connection.check('bind');
    this.createQueue('outqueue', binding.src);
    this.createQueue('inqueue', binding.tgt);
    const exchanges = this.connection.broker.exchanges;
    exchanges.get(binding.src)!.queues.add(binding.tgt);
    if (binding.type === 'roundrobin' && binding.deadletter) {
      this.createQueue('inqueue', binding.deadletter);
      exchanges.get(deadLetterName(binding.tgt))!.queues.add(binding.deadletter);
    }
    this.bindings.set(bindingKey(binding), copyBinding(binding));
  }

  removeBinding(binding: Binding): void {
    this.connection.check('unbind');
    const exchanges = this.connection.broker.exchanges;
    exchanges.get(binding.src)?.queues.delete(binding.tgt);
    if (binding.deadletter) exchanges.get(deadLetterName(binding.tgt))?.queues.delete(binding.deadletter);
    this.bindings.delete(bindingKey(binding));
  }

  listBindings(): Binding[] {
    return [...this.bindings.values()].map(copyBinding);
  }
}
