/**
 * Footprint of one stage process: start-up time (from spawning `node` until the first message it handled comes
 * out of it) and RSS once idle, for a msgflo-ts participant and for the bare client, alternating.
 */
import path from 'node:path';
import { connectTransport } from '../../dist/index.js';
import type { Broker, Mode } from './brokers.js';
import { type Context, isFast, removeNames } from './pipeline.js';
import { Proc, REPO, WORKERS, clock, startWorker } from './proc.js';
import { type FootprintResult, TARGET, median } from './report.js';
import { uniquePrefix } from './rows.js';

export interface FootprintOptions {
  reps: number;
  /** How long after its first message a stage is left alone before its RSS is read. */
  idleMs: number;
  verbose: boolean;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFootprint(broker: Broker, mode: Mode, o: FootprintOptions): Promise<FootprintResult> {
  const result: FootprintResult = {
    broker: broker.id,
    mode,
    startupMs: { msgflo: [], bare: [] },
    idleRssMb: { msgflo: [], bare: [] },
    loadedRssMb: { msgflo: null, bare: null },
    ok: false,
  };
  const amqp = broker.protocol === 'amqp';
  const prefix = uniquePrefix();
  const admin = await connectTransport(broker.url, { name: 'bench-admin' });
  const ctx = { admin } as Context;
  const inqueues: string[] = [];
  const outqueues: string[] = [];
  let requester: Proc | undefined;
  try {
    requester = await startWorker('requester', 'requester.js', { protocol: broker.protocol, url: broker.url, mode });
    for (let rep = 0; rep < o.reps; rep++) {
      for (const arm of rep % 2 ? (['bare', 'msgflo'] as const) : (['msgflo', 'bare'] as const)) {
        const role = `${prefix}${arm === 'msgflo' ? 'm' : 'b'}${rep}`;
        const entry = `${role}.IN`;
        const exit = `${role}.OUT`;
        const source = amqp ? `${role}-reply` : exit;
        inqueues.push(entry, source);
        outqueues.push(exit, `${role}.ERROR`);
        await requester.call('listen', amqp ? { source, bindTo: exit } : { source });
        const t0 = clock();
        const proc =
          arm === 'msgflo'
            ? new Proc(role, path.join(REPO, 'bin', 'msgflo-participant.js'), [path.join(REPO, 'bench', 'participants', 'Relay.js'), '--name', role, '--broker', broker.url], {
                env: { MSGFLO_BENCH_FAST: isFast(mode) ? '1' : '0' },
                verbose: o.verbose,
              })
            : new Proc(
                role,
                path.join(WORKERS, amqp ? 'bare-amqp.js' : 'bare-mqtt.js'),
                [JSON.stringify({ url: broker.url, role: 'relay', in: entry, out: exit, ...(amqp ? { mode, prefetch: 50 } : { qos: mode === 'qos0' ? 0 : 1 }) })],
                { verbose: o.verbose },
              );
        try {
          const { at } = await requester.call<{ at: number }>('ping', { target: entry, source, everyMs: 2, timeoutMs: 30_000 }, 40_000);
          result.startupMs[arm].push(at - t0);
          await sleep(o.idleMs);
          const mem = proc.memory();
          if (mem) result.idleRssMb[arm].push(mem.rss);
        } finally {
          await proc.stop();
        }
      }
    }
    const idle = median(result.idleRssMb.msgflo);
    result.ok = idle !== null && idle <= TARGET.idleRssMb;
  } catch (err) {
    result.error = (err as Error).message;
    o.log(`    failed: ${result.error}`);
  } finally {
    await requester?.stop();
    await removeNames(ctx, [], inqueues, outqueues).catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
  return result;
}
