/**
 * Queues, exchanges and bindings: the msgflo 0.12 AMQP topology as declaration steps, and the admin channel that
 * runs them one at a time.
 *
 * Declarations must match what msgflo-era participants declare *exactly* (durable flag, auto-delete flag,
 * arguments): RabbitMQ answers a mismatching redeclaration with 406 PRECONDITION_FAILED and closes the channel.
 *
 * - outqueue `X`: durable fanout exchange `X`.
 * - inqueue `Q`: durable queue `Q` with `x-dead-letter-exchange: dead-Q`; plus (msgflo's hack) a fanout exchange
 *   `Q` bound to it; plus, ours, a fanout exchange `dead-Q` and a queue `dead-Q` bound to it so that refused
 *   messages are kept.
 * - `persistent: false`: queue and exchange `durable: false, autoDelete: true` (as msgflo).
 * - roundrobin edge: direct exchange `out-SRC`, bound to exchange SRC; the target queue bound to `out-SRC`.
 * - discovery: fanout exchange `fbp`, and the plain durable queue `fbp` that msgflo-era coordinators consume.
 *
 * Topology operations run one at a time on one "admin" channel, so that one failure (which closes the channel)
 * cannot break another; the channel is opened again after such a failure.
 */
import type { Channel } from 'amqplib';
import { UsageError } from '../../errors.js';
import { deadLetterName, DISCOVERY_QUEUE } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import { bindingKey, copyBinding } from '../bindings.js';
import type { Binding, BindingOptions, QueueKind, QueueOptions } from '../types.js';
import { type AmqpConnection, quietly, waitAtMost } from './connection.js';
import { isNotFound, replyCode, ReplyCode } from './errors.js';

const log = logger('amqp');
const { NOT_FOUND, PRECONDITION_FAILED } = ReplyCode;

export interface Step {
  /** What the step does, for logs. */
  readonly what: string;
  run(channel: Channel): Promise<unknown>;
}

function step(what: string, run: (channel: Channel) => Promise<unknown>): Step {
  return { what, run };
}

/** The direct exchange msgflo puts between a source outqueue and the targets of its roundrobin bindings. */
export function roundRobinExchange(src: string): string {
  return `out-${src}`;
}

/** Queue arguments of an inqueue, exactly as msgflo declares them. */
export function inqueueArguments(name: string): Record<string, string> {
  return { 'x-dead-letter-exchange': deadLetterName(name) };
}

function lifetime(persistent: boolean): { durable: boolean; autoDelete: boolean } {
  return persistent ? { durable: true, autoDelete: false } : { durable: false, autoDelete: true };
}

export function outqueueSteps(name: string, persistent: boolean): Step[] {
  return [step(`assert fanout exchange '${name}'`, (ch) => ch.assertExchange(name, 'fanout', lifetime(persistent)))];
}

/**
 * The dead-letter exchange is always durable and never auto-deleted: msgflo's roundrobin binding asserts
 * `dead-<tgt>` with default options, so anything else would make that assertion fail with 406.
 */
export function deadLetterExchangeStep(name: string): Step {
  const dead = deadLetterName(name);
  return step(`assert fanout exchange '${dead}'`, (ch) => ch.assertExchange(dead, 'fanout', { durable: true, autoDelete: false }));
}

export function deadLetterSteps(name: string, persistent: boolean): Step[] {
  const dead = deadLetterName(name);
  return [
    deadLetterExchangeStep(name),
    step(`assert queue '${dead}'`, (ch) => ch.assertQueue(dead, { durable: persistent, autoDelete: false })),
    step(`bind queue '${dead}' to '${dead}'`, (ch) => ch.bindQueue(dead, dead, '')),
  ];
}

export function inqueueSteps(name: string, persistent: boolean): Step[] {
  const life = lifetime(persistent);
  return [
    step(`assert queue '${name}'`, (ch) => ch.assertQueue(name, { ...life, arguments: inqueueArguments(name) })),
    step(`assert fanout exchange '${name}'`, (ch) => ch.assertExchange(name, 'fanout', life)),
    step(`bind queue '${name}' to '${name}'`, (ch) => ch.bindQueue(name, name, '')),
    ...deadLetterSteps(name, persistent),
  ];
}

export function createSteps(kind: QueueKind, name: string, persistent: boolean): Step[] {
  return kind === 'inqueue' ? inqueueSteps(name, persistent) : outqueueSteps(name, persistent);
}

export function removeSteps(kind: QueueKind, name: string): Step[] {
  if (kind === 'outqueue') return [step(`delete exchange '${name}'`, (ch) => ch.deleteExchange(name))];
  const dead = deadLetterName(name);
  return [
    step(`delete queue '${name}'`, (ch) => ch.deleteQueue(name)),
    step(`delete exchange '${name}'`, (ch) => ch.deleteExchange(name)),
    step(`delete queue '${dead}'`, (ch) => ch.deleteQueue(dead)),
    step(`delete exchange '${dead}'`, (ch) => ch.deleteExchange(dead)),
  ];
}

/** Exchange `fbp` (ours) and the plain durable queue `fbp` (msgflo's), bound so both see every announcement. */
export function discoverySteps(): Step[] {
  const fbp = DISCOVERY_QUEUE;
  return [
    step(`assert fanout exchange '${fbp}'`, (ch) => ch.assertExchange(fbp, 'fanout', { durable: true, autoDelete: false })),
    step(`assert queue '${fbp}'`, (ch) => ch.assertQueue(fbp, { durable: true })),
    step(`bind queue '${fbp}' to '${fbp}'`, (ch) => ch.bindQueue(fbp, fbp, '')),
  ];
}

/** Runs one declaration step on the admin channel; failures with a reply code in `tolerate` are logged, not thrown. */
export type RunStep = (step: Step, tolerate?: readonly number[]) => Promise<void>;

export class Topology {
  private readonly connection: AmqpConnection;
  private readonly bindings = new Map<string, Binding>();
  /** The admin operation last queued: each one starts after the one before has finished. */
  private queue: Promise<unknown> = Promise.resolve();
  private admin: Channel | undefined;
  /** Declarations made once per connection (the discovery and snoop exchanges), by name. */
  private readonly declared = new Map<string, Promise<void>>();

  constructor(connection: AmqpConnection) {
    this.connection = connection;
    connection.onReset(() => {
      this.admin = undefined;
      this.declared.clear();
    });
  }

  /** Run `fn` with the admin channel, after every earlier admin operation has finished. */
  private withAdmin<T>(what: string, fn: (run: RunStep) => Promise<T>): Promise<T> {
    const op = this.queue.then(async () => {
      this.connection.assertOpen(what);
      const run: RunStep = async (step, tolerate = []) => {
        let ch = this.admin;
        if (!ch || this.connection.isClosed(ch)) {
          ch = await this.connection.openChannel('admin');
          this.admin = ch;
        }
        log('%s', step.what);
        try {
          await step.run(ch);
        } catch (err) {
          const code = replyCode(err);
          if (code !== undefined && tolerate.includes(code)) {
            log('%s: tolerated %s', step.what, (err as Error).message);
            return;
          }
          throw this.connection.wrap(err, what);
        }
      };
      return fn(run);
    });
    this.queue = op.catch(() => undefined);
    return op;
  }

  /**
   * Declare what `steps` make, once per connection (406: someone declared it otherwise; it is used as it is), before
   * `what` (which fails with TransportClosedError unless open). A failed declaration is tried again by the next caller.
   */
  declareOnce(what: string, name: string, steps: () => Step[]): Promise<void> {
    this.connection.assertOpen(what);
    let ready = this.declared.get(name);
    if (!ready) {
      const attempt = this.withAdmin(`declare ${name}`, async (run) => {
        for (const step of steps()) await run(step, [PRECONDITION_FAILED]);
      });
      ready = attempt;
      this.declared.set(name, attempt);
      attempt.catch(() => {
        if (this.declared.get(name) === attempt) this.declared.delete(name);
      });
    }
    return ready;
  }

  createQueue(kind: QueueKind, name: string, options: QueueOptions = {}): Promise<void> {
    const persistent = options.persistent ?? true;
    return this.withAdmin(`create ${kind} '${name}'`, async (run) => {
      for (const step of createSteps(kind, name, persistent)) await run(step);
    });
  }

  removeQueue(kind: QueueKind, name: string): Promise<void> {
    return this.withAdmin(`remove ${kind} '${name}'`, async (run) => {
      for (const step of removeSteps(kind, name)) await run(step, [NOT_FOUND]);
    });
  }

  /** On a throwaway channel: a 404 closes the channel it happens on. */
  async queueExists(kind: QueueKind, name: string): Promise<boolean> {
    const what = `check ${kind} '${name}'`;
    this.connection.assertOpen(what);
    const ch = await this.connection.openChannel('check');
    try {
      if (kind === 'inqueue') await ch.checkQueue(name);
      else await ch.checkExchange(name);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.connection.wrap(err, what);
    } finally {
      if (!this.connection.isClosed(ch)) await quietly(() => ch.close());
    }
  }

  /**
   * Make sure a queue/exchange exists before binding to it, declared as createQueue would. One that exists
   * with other properties (406: e.g. transient, made by its owner) is used as it is.
   */
  private async ensure(run: RunStep, kind: QueueKind, name: string): Promise<void> {
    for (const step of createSteps(kind, name, true)) await run(step, [PRECONDITION_FAILED]);
  }

  addBinding(binding: Binding, _options: BindingOptions = {}): Promise<void> {
    const { src, tgt, deadletter } = binding;
    if (binding.type !== 'pubsub' && binding.type !== 'roundrobin') {
      return Promise.reject(new UsageError(`Unsupported binding type '${String(binding.type)}' (use 'pubsub' or 'roundrobin')`));
    }
    return this.withAdmin(`add ${binding.type} binding ${src} -> ${tgt}`, async (run) => {
      await this.ensure(run, 'outqueue', src);
      await this.ensure(run, 'inqueue', tgt);
      if (binding.type === 'pubsub') {
        await run(step(`bind queue '${tgt}' to '${src}'`, (ch) => ch.bindQueue(tgt, src, '')));
      } else {
        const direct = roundRobinExchange(src);
        await run(step(`assert direct exchange '${direct}'`, (ch) => ch.assertExchange(direct, 'direct', { durable: true })), [PRECONDITION_FAILED]);
        await run(step(`bind exchange '${direct}' to '${src}'`, (ch) => ch.bindExchange(direct, src, '')));
        await run(step(`bind queue '${tgt}' to '${direct}'`, (ch) => ch.bindQueue(tgt, direct, '')));
        if (deadletter !== undefined) {
          await this.ensure(run, 'inqueue', deadletter);
          await run(deadLetterExchangeStep(tgt), [PRECONDITION_FAILED]);
          const dead = deadLetterName(tgt);
          await run(step(`bind queue '${deadletter}' to '${dead}'`, (ch) => ch.bindQueue(deadletter, dead, '')));
        }
      }
      this.bindings.set(bindingKey(binding), copyBinding(binding));
    });
  }

  removeBinding(binding: Binding): Promise<void> {
    const { src, tgt, deadletter } = binding;
    return this.withAdmin(`remove ${binding.type} binding ${src} -> ${tgt}`, async (run) => {
      if (binding.type === 'roundrobin') {
        const direct = roundRobinExchange(src);
        await run(step(`unbind queue '${tgt}' from '${direct}'`, (ch) => ch.unbindQueue(tgt, direct, '')), [NOT_FOUND]);
        // `out-SRC` is shared by every roundrobin edge from SRC (of any coordinator): delete it, and with it
        // its binding to SRC, only when no queue is bound to it any more (else 406, tolerated).
        await run(step(`delete exchange '${direct}' if unused`, (ch) => ch.deleteExchange(direct, { ifUnused: true })), [NOT_FOUND, PRECONDITION_FAILED]);
        if (deadletter !== undefined) {
          const dead = deadLetterName(tgt);
          await run(step(`unbind queue '${deadletter}' from '${dead}'`, (ch) => ch.unbindQueue(deadletter, dead, '')), [NOT_FOUND]);
        }
      } else {
        await run(step(`unbind queue '${tgt}' from '${src}'`, (ch) => ch.unbindQueue(tgt, src, '')), [NOT_FOUND]);
      }
      this.bindings.delete(bindingKey(binding));
    });
  }

  /** The bindings this transport made (AMQP cannot list a broker's bindings). */
  listBindings(): Binding[] {
    return [...this.bindings.values()].map(copyBinding);
  }

  /** Let the admin operations under way finish (at most `ms`), then close the admin channel. */
  async close(ms: number): Promise<void> {
    await waitAtMost(ms, 'finish topology operations', this.queue);
    const admin = this.admin;
    if (admin) await waitAtMost(ms, 'close admin channel', quietly(() => admin.close()));
  }
}
