/**
 * The processes of one arm of a workload: `relays` stages in a chain (each a separate process), then `sinks`
 * consumers each getting a copy of what the last stage sends.
 *
 * - msgflo-ts arm: each stage is `node bin/msgflo-participant.js bench/participants/Relay.js --name ROLE` (sinks:
 *   Sink.js), and the harness makes the edges with the transport's addBinding, as the coordinator does.
 * - bare arm: each stage is bench/workers/bare-amqp.js or bare-mqtt.js. On AMQP it declares the same topology
 *   (queue per stage, fanout exchange per output) and binds its own queue upstream; on MQTT it subscribes the
 *   upstream topic directly, as hand-written code does.
 * The producer/requester feeding the first stage is the same program in both arms.
 */
import path from 'node:path';
import type { Binding, Transport } from '../../dist/index.js';
import type { Broker, Mode } from './brokers.js';
import { Proc, REPO, startWorker, stopAll } from './proc.js';

/** 'msgflo-coalesce': msgflo-ts participants with bench/workers/coalesce-preload.js (an experiment). */
export type Arm = 'msgflo' | 'msgflo-coalesce' | 'bare';

const PRELOAD = path.join(REPO, 'bench', 'workers', 'coalesce-preload.js');

export interface Context {
  broker: Broker;
  mode: Mode;
  /** Unique per row: every queue, exchange, topic and role name starts with it. */
  prefix: string;
  /** The harness's own msgflo-ts connection to the broker (bindings, cleanup). */
  admin: Transport;
  verbose: boolean;
  /** Inputs in flight per stage (msgflo-ts --prefetch; bare AMQP prefetch). */
  prefetch: number;
  /** Extra node options for msgflo-ts participants (e.g. --cpu-prof). */
  participantExecArgv: string[];
  /** Extra node options for bare stages. */
  bareExecArgv: string[];
}

export interface Pipeline {
  arm: Arm;
  /** Where the producer publishes (an AMQP queue through the default exchange, or a topic). */
  entry: string;
  /** The last stage's output (AMQP fanout exchange, or topic). */
  exit: string;
  relays: Proc[];
  sinks: Proc[];
  /** msgflo-ts arm: edges the harness made (removed again on MQTT, where they are retained records). */
  bindings: Binding[];
  /** AMQP names to delete afterwards. */
  inqueues: string[];
  outqueues: string[];
}

export function isFast(mode: Mode): boolean {
  return mode === 'fast' || mode === 'qos0';
}

/** Node options for one process: with --cpu-prof, its profile is named after it. */
export function execArgvFor(execArgv: string[], name: string): string[] {
  return execArgv.includes('--cpu-prof') ? [...execArgv, `--cpu-prof-name=${name}.cpuprofile`] : execArgv;
}

export function allProcs(p: Pipeline): Proc[] {
  return [...p.relays, ...p.sinks];
}

/** Start a msgflo-ts participant and wait until it says it runs. */
export async function startParticipant(ctx: Context, file: 'Relay.js' | 'Sink.js', role: string, preload = false): Promise<Proc> {
  const execArgv = [...(preload ? ['--import', PRELOAD] : []), ...execArgvFor(ctx.participantExecArgv, role)];
  const proc = new Proc(
    role,
    path.join(REPO, 'bin', 'msgflo-participant.js'),
    [path.join(REPO, 'bench', 'participants', file), '--name', role, '--broker', ctx.broker.url, '--prefetch', String(ctx.prefetch)],
    { env: { MSGFLO_BENCH_FAST: isFast(ctx.mode) ? '1' : '0' }, execArgv, verbose: ctx.verbose },
  );
  try {
    await proc.waitForLine(new RegExp(`^${role} connected to`), 30_000);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return proc;
}

/** Start a bare stage. */
export function startBare(ctx: Context, name: string, options: Record<string, unknown>): Promise<Proc> {
  const amqp = ctx.broker.protocol === 'amqp';
  const file = amqp ? 'bare-amqp.js' : 'bare-mqtt.js';
  const modeOptions = amqp ? { mode: ctx.mode, prefetch: ctx.prefetch } : { qos: ctx.mode === 'qos0' ? 0 : 1 };
  return startWorker(name, file, { url: ctx.broker.url, ...modeOptions, ...options }, { execArgv: execArgvFor(ctx.bareExecArgv, name), verbose: ctx.verbose }, 30_000);
}

async function startAllOrNone(starts: Array<() => Promise<Proc>>): Promise<Proc[]> {
  const results = await Promise.allSettled(starts.map((s) => s()));
  const procs = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stopAll(procs, 2000);
    throw failed.reason;
  }
  return procs;
}

export async function buildPipeline(ctx: Context, arm: Arm, relays: number, sinks: number): Promise<Pipeline> {
  return arm === 'bare' ? buildBare(ctx, relays, sinks) : buildMsgflo(ctx, relays, sinks, arm);
}

async function buildMsgflo(ctx: Context, relays: number, sinks: number, arm: 'msgflo' | 'msgflo-coalesce'): Promise<Pipeline> {
  const tag = arm === 'msgflo' ? 'm' : 'c';
  const preload = arm === 'msgflo-coalesce';
  const relayRoles = Array.from({ length: relays }, (_, i) => `${ctx.prefix}${tag}${i}`);
  const sinkRoles = Array.from({ length: sinks }, (_, j) => `${ctx.prefix}${tag}s${j}`);
  const procs = await startAllOrNone([
    ...relayRoles.map((role) => () => startParticipant(ctx, 'Relay.js', role, preload)),
    ...sinkRoles.map((role) => () => startParticipant(ctx, 'Sink.js', role, preload)),
  ]);
  const pipeline: Pipeline = {
    arm,
    entry: `${relayRoles[0]}.IN`,
    exit: `${relayRoles[relays - 1]}.OUT`,
    relays: procs.slice(0, relays),
    sinks: procs.slice(relays),
    bindings: [],
    inqueues: [...relayRoles, ...sinkRoles].map((r) => `${r}.IN`),
    outqueues: [...relayRoles.map((r) => `${r}.OUT`), ...[...relayRoles, ...sinkRoles].map((r) => `${r}.ERROR`)],
  };
  try {
    const edges: Binding[] = [];
    for (let i = 1; i < relays; i++) edges.push({ type: 'pubsub', src: `${relayRoles[i - 1]}.OUT`, tgt: `${relayRoles[i]}.IN` });
    for (const role of sinkRoles) edges.push({ type: 'pubsub', src: pipeline.exit, tgt: `${role}.IN` });
    // As the coordinator does: on MQTT, wait until the target's reader follows the new edge.
    await Promise.all(
      edges.map(async (b) => {
        await ctx.admin.addBinding(b, ctx.admin.brokerBindings ? {} : { confirmMs: 10_000 });
        pipeline.bindings.push(b);
      }),
    );
  } catch (err) {
    await destroyPipeline(ctx, pipeline);
    throw err;
  }
  return pipeline;
}

async function buildBare(ctx: Context, relays: number, sinks: number): Promise<Pipeline> {
  const amqp = ctx.broker.protocol === 'amqp';
  const p = ctx.prefix;
  const out = (i: number) => `${p}b${i}.OUT`;
  const exit = out(relays - 1);
  const relayOptions = (i: number) =>
    amqp
      ? { role: 'relay', in: `${p}b${i}.IN`, out: out(i), ...(i > 0 ? { bindTo: out(i - 1) } : {}) }
      : { role: 'relay', in: i === 0 ? `${p}b0.IN` : out(i - 1), out: out(i) };
  const sinkOptions = (j: number) => (amqp ? { role: 'sink', in: `${p}bs${j}.IN`, bindTo: exit } : { role: 'sink', in: exit });
  const procs = await startAllOrNone([
    ...Array.from({ length: relays }, (_, i) => () => startBare(ctx, `${p}b${i}`, relayOptions(i))),
    ...Array.from({ length: sinks }, (_, j) => () => startBare(ctx, `${p}bs${j}`, sinkOptions(j))),
  ]);
  return {
    arm: 'bare',
    entry: `${p}b0.IN`,
    exit,
    relays: procs.slice(0, relays),
    sinks: procs.slice(relays),
    bindings: [],
    inqueues: amqp ? [...Array.from({ length: relays }, (_, i) => `${p}b${i}.IN`), ...Array.from({ length: sinks }, (_, j) => `${p}bs${j}.IN`)] : [],
    outqueues: amqp ? Array.from({ length: relays }, (_, i) => out(i)) : [],
  };
}

/** Stop the arm's processes and remove what they and the harness declared on the broker. */
export async function destroyPipeline(ctx: Context, pipeline: Pipeline): Promise<void> {
  await stopAll(allProcs(pipeline));
  await removeNames(ctx, pipeline.bindings, pipeline.inqueues, pipeline.outqueues);
}

/** Remove bindings (MQTT: retained records) and AMQP queues/exchanges; what is already gone is fine. */
export async function removeNames(ctx: Context, bindings: Binding[], inqueues: string[], outqueues: string[]): Promise<void> {
  const admin = ctx.admin;
  for (const b of bindings) await admin.removeBinding(b).catch(() => undefined);
  if (admin.scheme !== 'amqp') return;
  for (const q of inqueues) await admin.removeQueue('inqueue', q).catch(() => undefined);
  for (const x of outqueues) await admin.removeQueue('outqueue', x).catch(() => undefined);
}
