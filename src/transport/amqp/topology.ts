/**
 * The msgflo 0.12 AMQP topology, as declaration steps.
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
 */
import type { Channel } from 'amqplib';
import { deadLetterName, DISCOVERY_QUEUE } from '../../protocol/naming.js';
import type { QueueKind } from '../types.js';

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
