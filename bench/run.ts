/**
 * `npm run bench`: msgflo-ts participants against bare amqplib / mqtt.js clients, side by side in the same run, on
 * the machine's brokers. `npm run bench:quick`: the same code paths with tiny workloads (checks that it works).
 *
 * Prints the tables on stdout (progress on stderr) and writes bench/results/bench-<time>.json, latest.json and
 * latest.md. Exit code 1 when a workload could not be completed (a missed target is reported, not a failure).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { maskUrl } from '../dist/index.js';
import { type Broker, type BrokerId, MODE_LABEL, type Mode, reachable, resolveAmqp, startEmbedded, startPrivateMosquitto } from './lib/brokers.js';
import { runFootprint } from './lib/footprint.js';
import type { Variant } from './lib/measure.js';
import { REPO, liveProcs, type Proc } from './lib/proc.js';
import {
  BROKER_LABEL,
  type FootprintResult,
  type RowResult,
  type ScaleResult,
  TARGET,
  WORKLOAD_LABEL,
  type WorkloadId,
  footprintTable,
  median,
  renderMarkdown,
  renderText,
  roundTripTable,
  scaleTable,
  summariseRow,
  throughputTable,
} from './lib/report.js';
import { runRow } from './lib/rows.js';
import { runScale } from './lib/scale.js';

const USAGE = `Usage: npm run bench [-- options]      (npm run bench:quick for the smoke variant)

Options:
  --quick                tiny workloads, one repetition, fewer rows: checks that the bench works
  --workloads LIST       1hop,3hop,rr,fanout,scale,footprint (default: all)
  --brokers LIST         rabbitmq,mosquitto,mosquitto-nodelay,embedded (default: all that run)
  --modes LIST           fast,alo,qos0,qos1 (default: all of each broker)
  --reps N               repetitions per arm (default 3)
  --duration MS          length of one throughput measurement (default 2000)
  --prefetch N           inputs in flight per stage: msgflo-ts --prefetch (AMQP prefetch, MQTT receive maximum)
                         and the bare AMQP stages' prefetch (default 50; bare MQTT stages have no such setting)
  --variants LIST        socket variants of the bare arm: default,nodelay,coalesce (default: default,nodelay)
  --experiment coalesce  also measure msgflo-ts participants with write coalescing preloaded
                         (bench/workers/coalesce-preload.js): what coalescing in the transports would give
  --profile              run msgflo-ts participants (and bare stages) with --cpu-prof into bench/results/profiles/
  --from FILE            measure nothing: print the tables of an earlier run's JSON again (and write latest.md)
  --verbose              show the output of every process
  -h, --help             this help

Brokers: RabbitMQ from MSGFLO_BENCH_AMQP (used as is), else MSGFLO_TEST_AMQP or amqp://guest:guest@127.0.0.1:5672
moved to the vhost '${'msgflo-bench'}' (created with rabbitmqctl when missing); Mosquitto from MSGFLO_BENCH_MQTT,
else MSGFLO_TEST_MQTT or mqtt://127.0.0.1:1883, plus a private mosquitto with set_tcp_nodelay true started on a
free port; the embedded broker in a process of its own. A broker that is not running is skipped (an error when
MSGFLO_TEST_REQUIRE_BROKERS=1).`;

const ALL_WORKLOADS = ['1hop', '3hop', 'rr', 'fanout', 'scale', 'footprint'] as const;
type Workload = (typeof ALL_WORKLOADS)[number];
const ALL_BROKERS: BrokerId[] = ['rabbitmq', 'mosquitto', 'mosquitto-nodelay', 'embedded'];

function list<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (!value) return [...all];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!all.includes(item as T)) throw new Error(`unknown ${what} '${item}' (known: ${all.join(', ')})`);
  return items as T[];
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      workloads: { type: 'string' },
      brokers: { type: 'string' },
      modes: { type: 'string' },
      reps: { type: 'string' },
      duration: { type: 'string' },
      prefetch: { type: 'string' },
      variants: { type: 'string' },
      experiment: { type: 'string' },
      from: { type: 'string' },
      profile: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.from) return reprint(values.from);
  const quick = values.quick === true;
  const workloads = list<Workload>(values.workloads, ALL_WORKLOADS, 'workload');
  const brokerIds = list<BrokerId>(values.brokers, ALL_BROKERS, 'broker');
  const modeFilter = values.modes ? list<Mode>(values.modes, ['fast', 'alo', 'qos0', 'qos1'], 'mode') : undefined;
  const bareVariants: Variant[] = values.variants
    ? list<Variant>(values.variants, ['default', 'nodelay', 'coalesce'], 'variant')
    : quick
      ? ['default']
      : ['default', 'nodelay'];
  const experiments: Variant[] = values.experiment ? list<'coalesce'>(values.experiment, ['coalesce'], 'experiment').map(() => 'msgflo-coalesce' as const) : [];
  const reps = Number(values.reps ?? (quick ? 1 : 3));
  const durationMs = Number(values.duration ?? (quick ? 400 : 2000));
  if (!(reps >= 1) || !(durationMs >= 100)) throw new Error('--reps must be ≥ 1 and --duration ≥ 100 (ms)');
  const prefetch = Number(values.prefetch ?? 50);
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new Error('--prefetch must be a whole number ≥ 1');
  const requireBrokers = process.env.MSGFLO_TEST_REQUIRE_BROKERS === '1';
  const verbose = values.verbose === true;
  const resultsDir = path.join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileDir = path.join(resultsDir, 'profiles', stamp);
  const profileArgs = (kind: string) => (values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, kind)}`] : []);

  // ── brokers ──────────────────────────────────────────────────────────────────────────────────────────────
  const cleanups: Array<() => Promise<void>> = [];
  const brokers: Broker[] = [];
  const missing: string[] = [];
  const notes: string[] = [];
  const started = Date.now();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: stopping every process this bench started');
    void (async () => {
      for (const p of liveProcs()) p.child.kill('SIGTERM');
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (brokerIds.includes('rabbitmq')) {
      const amqp = await resolveAmqp(log);
      if (amqp) {
        brokers.push({ id: 'rabbitmq', protocol: 'amqp', url: amqp.url, label: BROKER_LABEL.rabbitmq, modes: ['fast', 'alo'], ...(amqp.note ? { note: amqp.note } : {}) });
        if (amqp.note) notes.push(`RabbitMQ: ${amqp.note}`);
      } else missing.push('RabbitMQ');
    }
    if (brokerIds.includes('mosquitto')) {
      const url = process.env.MSGFLO_BENCH_MQTT ?? process.env.MSGFLO_TEST_MQTT ?? 'mqtt://127.0.0.1:1883';
      if (await reachable(url)) brokers.push({ id: 'mosquitto', protocol: 'mqtt', url, label: BROKER_LABEL.mosquitto, modes: ['qos0', 'qos1'] });
      else missing.push(`Mosquitto (${maskUrl(url)})`);
    }
    if (brokerIds.includes('mosquitto-nodelay')) {
      const own = await startPrivateMosquitto();
      if (own) {
        cleanups.push(() => own.stop());
        brokers.push({ id: 'mosquitto-nodelay', protocol: 'mqtt', url: own.url, label: BROKER_LABEL['mosquitto-nodelay'], modes: ['qos0', 'qos1'] });
      } else missing.push('mosquitto binary (for the private set_tcp_nodelay broker)');
    }
    if (brokerIds.includes('embedded')) {
      const embedded = await startEmbedded();
      cleanups.push(() => embedded.proc.stop());
      brokers.push({ id: 'embedded', protocol: 'mqtt', url: embedded.url, label: BROKER_LABEL.embedded, modes: ['qos0', 'qos1'] });
    }
    if (missing.length) {
      const text = `not running, skipped: ${missing.join(', ')}`;
      if (requireBrokers) throw new Error(`${text} (MSGFLO_TEST_REQUIRE_BROKERS=1)`);
      log(text);
      notes.push(text);
    }
    for (const b of brokers) log(`broker ${b.label}: ${maskUrl(b.url)}`);

    // ── rows ─────────────────────────────────────────────────────────────────────────────────────────────────
    const modesOf = (b: Broker): Mode[] => {
      let modes = b.modes.filter((m) => !modeFilter || modeFilter.includes(m));
      // Quick: one mode per broker (the default delivery mode; QoS 0 on the embedded broker).
      if (quick && !modeFilter) modes = modes.filter((m) => m === (b.id === 'embedded' ? 'qos0' : b.protocol === 'amqp' ? 'alo' : 'qos1'));
      return modes;
    };
    const rowWorkloads = workloads.filter((w): w is WorkloadId => w !== 'scale' && w !== 'footprint');
    const rows: RowResult[] = [];
    const rowOptions = {
      reps,
      fanout: quick ? 3 : 10,
      bareVariants,
      experiments,
      durationMs,
      warmupMs: quick ? 0 : 500,
      window: 1000,
      rrCount: quick ? 100 : 5000,
      rrMaxMs: quick ? 1000 : 2500,
      verbose,
      prefetch,
      participantExecArgv: profileArgs('msgflo'),
      bareExecArgv: profileArgs('bare'),
      log,
    };
    // Quick: the machine's Mosquitto only where it differs (request/reply: its stock config stalls).
    const rowBrokers = (w: WorkloadId) => (quick && !values.brokers && w !== 'rr' ? brokers.filter((b) => b.id !== 'mosquitto') : brokers);
    for (const w of rowWorkloads) {
      for (const b of rowBrokers(w)) {
        for (const mode of modesOf(b)) {
          const t = Date.now();
          log(`${WORKLOAD_LABEL[w]} · ${b.label} · ${MODE_LABEL[mode]}`);
          const row = await runRow(w, b, mode, rowOptions);
          const summary = summariseRow(row, bareVariants, experiments);
          if (summary) row.summary = summary;
          rows.push(row);
          if (summary) {
            const what =
              w === 'rr'
                ? `p50 ${summary.msgflo.p50?.toFixed(2)} vs ${summary.best.p50?.toFixed(2)} ms, p99 ${summary.msgflo.p99?.toFixed(2)} ms`
                : `${Math.round(summary.msgflo.rate)} vs ${Math.round(summary.best.rate)} msg/s (${summary.best.variant})`;
            log(`    ${what}, ratio ${summary.ratio.toFixed(2)} ${summary.ok ? 'ok' : `MISSED: ${summary.why.join('; ')}`} [${((Date.now() - t) / 1000).toFixed(0)} s]`);
          }
        }
      }
    }

    // ── footprint ───────────────────────────────────────────────────────────────────────────────────────────
    const footprints: FootprintResult[] = [];
    if (workloads.includes('footprint')) {
      for (const b of quick ? brokers.filter((x) => x.id !== 'mosquitto') : brokers) {
        const mode: Mode = b.protocol === 'amqp' ? 'alo' : 'qos1';
        log(`footprint · ${b.label} · ${MODE_LABEL[mode]}`);
        const f = await runFootprint(b, mode, { reps: quick ? 1 : 3, idleMs: quick ? 500 : 2000, verbose, log });
        const loaded = rows.filter((r) => r.workload === '1hop' && r.broker === b.id && r.summary);
        const peak = (v: 'msgflo' | 'best') => {
          const xs = loaded.map((r) => (v === 'msgflo' ? r.summary!.msgflo.rssMb : r.summary!.best.rssMb)).filter((x): x is number => x !== null);
          return xs.length ? Math.max(...xs) : null;
        };
        f.loadedRssMb = { msgflo: peak('msgflo'), bare: peak('best') };
        footprints.push(f);
        if (!f.error) {
          log(
            `    start-up ${median(f.startupMs.msgflo)?.toFixed(0)} vs ${median(f.startupMs.bare)?.toFixed(0)} ms, idle RSS ${median(f.idleRssMb.msgflo)?.toFixed(0)} vs ${median(f.idleRssMb.bare)?.toFixed(0)} MB`,
          );
        }
      }
    }

    // ── coordinator scale ───────────────────────────────────────────────────────────────────────────────────
    const scales: ScaleResult[] = [];
    if (workloads.includes('scale')) {
      // Never on the shared Mosquitto: 1,000 announcements a second on its `fbp` topic would reach everyone's
      // coordinators (the private one is the same software). RabbitMQ: only in the bench's own vhost.
      const targets = brokers.filter((b) => b.id !== 'mosquitto' && !(b.id === 'rabbitmq' && b.note));
      for (const b of quick ? targets.slice(0, 1) : targets) {
        log(`coordinator scale · ${b.label}`);
        const s = await runScale(b, quick ? { participants: 100, nodes: 10, windowMs: 2000, verbose, log } : { participants: 1000, nodes: 100, windowMs: 15_000, verbose, log });
        scales.push(s);
        if (!s.error) log(`    bound in ${((s.bindMs ?? 0) / 1000).toFixed(1)} s, CPU ${s.cpuPct?.toFixed(1)}%, RSS ${s.rssMb?.toFixed(0)} MB, expired ${s.expired}`);
      }
    }

    // ── report ──────────────────────────────────────────────────────────────────────────────────────────────
    const meta = {
      date: new Date().toISOString(),
      quick,
      commit: gitCommit(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadavg: os.loadavg(),
      reps,
      durationMs,
      prefetch,
      bareVariants,
      experiments,
      targets: TARGET,
      brokers: brokers.map((b) => ({ id: b.id, url: maskUrl(b.url), modes: b.modes })),
      notes,
      elapsedSeconds: (Date.now() - started) / 1000,
    };
    const json: BenchResults = { meta, rows, footprints, scales };
    const file = path.join(resultsDir, `bench-${quick ? 'quick-' : ''}${stamp}.json`);
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, quick ? 'latest-quick.json' : 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
    render(json, path.join(resultsDir, quick ? 'latest-quick.md' : 'latest.md'));
    log(`\nresults: ${path.relative(REPO, file)}${values.profile ? `, profiles: ${path.relative(REPO, profileDir)}` : ''}`);

    const failed = [
      ...rows.filter((r) => !r.summary).map((r) => `${WORKLOAD_LABEL[r.workload]} on ${BROKER_LABEL[r.broker]} ${MODE_LABEL[r.mode]}`),
      ...footprints.filter((f) => f.error).map((f) => `footprint on ${BROKER_LABEL[f.broker]}`),
      ...scales.filter((s) => s.error).map((s) => `coordinator scale on ${BROKER_LABEL[s.broker]}`),
    ];
    if (failed.length) {
      log(`workloads that did not complete: ${failed.join(', ')}`);
      return 1;
    }
    if (rows.length + footprints.length + scales.length === 0) {
      log('nothing was measured (no broker, or nothing selected)');
      return 1;
    }
    return 0;
  } finally {
    for (const p of liveProcs() as Proc[]) await p.stop(2000);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

interface BenchResults {
  meta: { date: string; quick: boolean; commit: string; node: string; cpus: number; reps: number; prefetch?: number; elapsedSeconds: number; notes: string[]; bareVariants: Variant[]; experiments: Variant[] };
  rows: RowResult[];
  footprints: FootprintResult[];
  scales: ScaleResult[];
}

/** Print the tables of a run on stdout and write them as Markdown to `mdFile`. */
function render(json: BenchResults, mdFile: string): void {
  const { meta, rows, footprints, scales } = json;
  const tables = [
    ...(rows.some((r) => r.workload !== 'rr') ? [throughputTable(rows)] : []),
    ...(rows.some((r) => r.workload === 'rr') ? [roundTripTable(rows)] : []),
    ...(footprints.length ? [footprintTable(footprints)] : []),
    ...(scales.length ? [scaleTable(scales)] : []),
  ];
  const header = `msgflo-ts bench${meta.quick ? ' (quick)' : ''} · ${meta.date} · ${meta.commit} · node ${meta.node} · ${meta.cpus} CPUs · ${meta.reps} rep(s)${meta.prefetch !== undefined && meta.prefetch !== 50 ? ` · prefetch ${meta.prefetch}` : ''} · ${meta.elapsedSeconds.toFixed(0)} s`;
  process.stdout.write(`\n${header}\n\n${tables.map(renderText).join('\n\n')}\n${meta.notes.length ? `\n${meta.notes.join('\n')}\n` : ''}`);
  writeFileSync(mdFile, `${header}\n\n${tables.map(renderMarkdown).join('\n\n')}\n`);
}

/** --from: the tables of an earlier run, summarised again (with the current summary rules). */
function reprint(file: string): number {
  const json = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  for (const row of json.rows) {
    const summary = summariseRow(row, json.meta.bareVariants, json.meta.experiments ?? []);
    if (summary) row.summary = summary;
    else delete row.summary;
  }
  render(json, path.join(REPO, 'bench', 'results', json.meta.quick ? 'latest-quick.md' : 'latest.md'));
  return 0;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }).toString().trim();
  } catch {
    return 'unknown';
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Usage and broker problems are said in one line; anything else with its stack.
    const e = err as Error;
    const plain = e instanceof Error && /^(not running|unknown |--)/.test(e.message);
    process.stderr.write(`bench: ${plain ? e.message : (e?.stack ?? String(err))}\n`);
    for (const p of liveProcs()) p.child.kill('SIGTERM');
    process.exit(1);
  },
);
