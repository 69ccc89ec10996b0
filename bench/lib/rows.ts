/**
 * One row of the report (workload × broker × mode): both arms are started side by side, warmed up, then measured
 * interleaved — repetition r runs every variant once, in an order rotated by r — so that the noise of a shared
 * machine falls on both arms alike.
 */
import { randomBytes } from 'node:crypto';
import { connectTransport } from '../../dist/index.js';
import type { Broker, Mode } from './brokers.js';
import { type Measurement, type Variant, roundTrips, throughput } from './measure.js';
import { type Arm, type Context, type Pipeline, buildPipeline, destroyPipeline, removeNames } from './pipeline.js';
import { type Proc, startWorker } from './proc.js';
import type { RowResult, WorkloadId } from './report.js';

export interface RowOptions {
  reps: number;
  /** Consumers of the fan-out workload (10; fewer in the quick variant). */
  fanout: number;
  /** Socket variants of the bare arm. */
  bareVariants: Variant[];
  /** Experiments: extra msgflo-ts variants (e.g. 'msgflo-coalesce'). */
  experiments: Variant[];
  durationMs: number;
  warmupMs: number;
  window: number;
  rrCount: number;
  rrMaxMs: number;
  verbose: boolean;
  /** Inputs in flight per stage. */
  prefetch: number;
  participantExecArgv: string[];
  bareExecArgv: string[];
  log(line: string): void;
}

const SHAPE: Record<WorkloadId, { relays: number; sinks: number }> = {
  '1hop': { relays: 1, sinks: 1 },
  '3hop': { relays: 3, sinks: 1 },
  fanout: { relays: 1, sinks: 10 },
  rr: { relays: 1, sinks: 0 },
};

export function uniquePrefix(): string {
  return `bench${randomBytes(3).toString('hex')}`;
}

/** Repetition r's order of the variants: rotated, so no variant always runs first. */
function order<T>(items: T[], r: number): T[] {
  const k = r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function armOf(v: Variant): Arm {
  return v === 'msgflo' || v === 'msgflo-coalesce' ? v : 'bare';
}

export async function runRow(workload: WorkloadId, broker: Broker, mode: Mode, o: RowOptions): Promise<RowResult> {
  const row: RowResult = { workload, broker: broker.id, mode, measurements: [] };
  const admin = await connectTransport(broker.url, { name: 'bench-admin' });
  const ctx: Context = {
    broker,
    mode,
    prefix: uniquePrefix(),
    admin,
    verbose: o.verbose,
    prefetch: o.prefetch,
    participantExecArgv: o.participantExecArgv,
    bareExecArgv: o.bareExecArgv,
  };
  const pipelines: Pipeline[] = [];
  const extraQueues: string[] = [];
  let driver: Proc | undefined;
  try {
    const rr = workload === 'rr';
    driver = await startWorker(rr ? 'requester' : 'producer', rr ? 'requester.js' : 'producer.js', { protocol: broker.protocol, url: broker.url, mode });
    const { relays } = SHAPE[workload];
    const sinks = workload === 'fanout' ? o.fanout : SHAPE[workload].sinks;
    if (workload === 'fanout') row.consumers = sinks;
    // One arm after the other: starting 20+ processes at once on two cores only makes each start slower.
    const variants: Variant[] = ['msgflo', ...o.experiments, ...o.bareVariants];
    const arms = [...new Set(variants.map(armOf))];
    for (const arm of arms) pipelines.push(await buildPipeline(ctx, arm, relays, sinks));
    const pipelineOf = (v: Variant) => pipelines.find((p) => p.arm === armOf(v))!;
    const sources = new Map<Pipeline, string>();
    if (rr) {
      for (const p of pipelines) {
        // AMQP: a reply queue of the requester, bound to the echo's exchange; MQTT: the echo's output topic.
        const amqp = broker.protocol === 'amqp';
        const source = amqp ? `${ctx.prefix}${p.arm}-reply` : p.exit;
        await driver.call('listen', amqp ? { source, bindTo: p.exit } : { source });
        if (amqp) extraQueues.push(source);
        sources.set(p, source);
      }
    }
    const measure = (v: Variant, rep: number, warm: boolean): Promise<Measurement> => {
      const p = pipelineOf(v);
      if (rr) {
        return roundTrips(driver!, p, sources.get(p)!, v, rep, warm ? { count: 500, maxMs: o.warmupMs } : { count: o.rrCount, maxMs: o.rrMaxMs });
      }
      return throughput(driver!, p, v, rep, { durationMs: warm ? o.warmupMs : o.durationMs, window: o.window });
    };
    if (o.warmupMs > 0) for (const v of variants) await measure(v, -1, true);
    for (let rep = 0; rep < o.reps; rep++) {
      for (const v of order(variants, rep)) {
        const m = await measure(v, rep, false);
        row.measurements.push(m);
        if (m.error) o.log(`    ${v} rep ${rep + 1}: ${m.error.split('\n')[0]}`);
      }
    }
  } catch (err) {
    row.error = (err as Error).message;
    o.log(`    failed: ${row.error}`);
  } finally {
    await driver?.stop();
    for (const p of pipelines) await destroyPipeline(ctx, p).catch(() => undefined);
    await removeNames(ctx, [], extraQueues, []).catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
  return row;
}
