/**
 * Coordinator scale: `participants` simulated msgflo-ts participants heartbeating every second (bench/workers/
 * simulator.js), and the real coordinator (`node bin/msgflo.js --graph G`) set up with a graph of `nodes` nodes in
 * a chain. Measured: time from the coordinator's start until every binding exists, its CPU share in the steady state
 * that follows, its RSS, and whether it wrongly expired anyone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Binding, connectTransport } from '../../dist/index.js';
import type { Broker } from './brokers.js';
import { type Context, removeNames } from './pipeline.js';
import { Proc, REPO, clock, startWorker } from './proc.js';
import { type ScaleResult, TARGET } from './report.js';
import { uniquePrefix } from './rows.js';

export interface ScaleOptions {
  participants: number;
  nodes: number;
  /** Steady-state window over which CPU is measured. */
  windowMs: number;
  verbose: boolean;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runScale(broker: Broker, o: ScaleOptions): Promise<ScaleResult> {
  const prefix = uniquePrefix();
  const edges = o.nodes - 1;
  const result: ScaleResult = {
    broker: broker.id,
    participants: o.participants,
    nodes: o.nodes,
    edges,
    bindMs: null,
    cpuPct: null,
    rssMb: null,
    peakRssMb: null,
    expired: 0,
    announcedPerSecond: null,
    windowMs: o.windowMs,
    ok: false,
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msgflo-bench-scale-'));
  const graph = path.join(dir, 'scale.fbp');
  const node = (i: number) => `${prefix}n${i}`;
  const lines = [];
  for (let i = 1; i < o.nodes; i++) lines.push(`${node(i - 1)}(BenchNode) OUT -> IN ${node(i)}(BenchNode)`);
  writeFileSync(graph, `${lines.join('\n')}\n`);
  const bindings: Binding[] = Array.from({ length: edges }, (_, i) => ({ type: 'pubsub', src: `${node(i)}.OUT`, tgt: `${node(i + 1)}.IN` }));

  let sim: Proc | undefined;
  let coordinator: Proc | undefined;
  try {
    sim = await startWorker('simulator', 'simulator.js', { url: broker.url, prefix, count: o.participants, graphRoles: o.nodes, heartbeat: 1 }, { verbose: o.verbose });
    // Every simulated participant has announced itself at least once before the coordinator starts.
    await sleep(1500);
    const t0 = clock();
    coordinator = new Proc('coordinator', path.join(REPO, 'bin', 'msgflo.js'), ['--graph', graph, '--broker', broker.url, '--forward', ''], { verbose: o.verbose });
    let bound = 0;
    let expired = 0;
    let allBound: () => void = () => {};
    const done = new Promise<void>((resolve) => (allBound = resolve));
    coordinator.onLine((line) => {
      if (line.startsWith('bound ')) {
        bound++;
        if (bound === edges) {
          result.bindMs = clock() - t0;
          allBound();
        }
      } else if (/^- participant .* expired/.test(line)) {
        expired++;
      }
    });
    await Promise.race([
      done,
      coordinator.exited.then(({ code, signal }) => {
        throw new Error(`the coordinator exited (${signal ?? `code ${code}`})\n${coordinator!.tail()}`);
      }),
      sleep(120_000).then(() => {
        throw new Error(`only ${bound} of ${edges} bindings after 120 s\n${coordinator!.tail()}`);
      }),
    ]);
    // Let the burst of setting up settle, then measure the steady state.
    await sleep(1000);
    const stats0 = await sim.call<{ announced: number }>('stats');
    const expired0 = expired;
    const cpu0 = coordinator.cpuMs() ?? 0;
    const w0 = clock();
    await sleep(o.windowMs);
    const cpu1 = coordinator.cpuMs() ?? 0;
    const w1 = clock();
    const stats1 = await sim.call<{ announced: number }>('stats');
    const mem = coordinator.memory();
    result.cpuPct = ((cpu1 - cpu0) / (w1 - w0)) * 100;
    result.rssMb = mem?.rss ?? null;
    result.peakRssMb = mem?.peak ?? null;
    result.expired = expired - expired0;
    result.announcedPerSecond = ((stats1.announced - stats0.announced) * 1000) / (w1 - w0);
    result.ok = result.cpuPct < TARGET.coordinatorCpuPct && result.expired === 0;
  } catch (err) {
    result.error = (err as Error).message;
    o.log(`    failed: ${result.error}`);
  } finally {
    await coordinator?.stop();
    await sim?.stop(15_000);
    rmSync(dir, { recursive: true, force: true });
    const admin = await connectTransport(broker.url, { name: 'bench-admin' }).catch(() => undefined);
    if (admin) {
      const ctx = { admin } as Context;
      const roles = Array.from({ length: o.nodes }, (_, i) => node(i));
      await removeNames(ctx, bindings, roles.map((r) => `${r}.IN`), roles.map((r) => `${r}.OUT`)).catch(() => undefined);
      await admin.close().catch(() => undefined);
    }
  }
  return result;
}
