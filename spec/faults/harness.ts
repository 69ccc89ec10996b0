/**
 * The fault-injection harness (issue 5): a 3-hop pipeline `src → a → b → c → sink`, every role run as real
 * `msgflo-participant` processes (2 instances each by default), wired by a real `msgflo` coordinator, fed with
 * numbered messages, while faults are injected. The sink records every number it gets to a file; the harness
 * reads those files and reports, per scenario: sent, received, lost, duplicated, time to recover.
 *
 * Environment (for quick local runs):
 *   MSGFLO_FAULTS_COUNT          numbered messages per scenario (default 20000)
 *   MSGFLO_FAULTS_RATE           messages per second handed to the source (default 1000)
 *   MSGFLO_FAULTS_CHUNK          numbers per command to the source (default 50)
 *   MSGFLO_FAULTS_INSTANCES      instances per role (default 2)
 *   MSGFLO_FAULTS_SETTLE_MS      after the last send, give up when nothing new arrived for this long (default 20000)
 *   MSGFLO_FAULTS_BROKER_RESTART=1  also run the RabbitMQ restart scenario (stop_app/start_app: disrupts every
 *                                user of that RabbitMQ, so it is opt-in)
 *   MSGFLO_FAULTS_STOCK_MOSQUITTO=1  also run kill -9 on a Mosquitto with its stock limits (1000 queued messages per
 *                                client): shows what those settings lose; recorded, not asserted
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  cpSync,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import { REQUIRE_BROKERS, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { REPO_ROOT, startCli, type CliHandle } from '../helpers/cli.js';
import { sleep, waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export const CONFIG = {
  count: Math.floor(envNumber('MSGFLO_FAULTS_COUNT', 20_000)),
  rate: envNumber('MSGFLO_FAULTS_RATE', 1000),
  chunk: Math.floor(envNumber('MSGFLO_FAULTS_CHUNK', 50)),
  instances: Math.floor(envNumber('MSGFLO_FAULTS_INSTANCES', 2)),
  settleMs: envNumber('MSGFLO_FAULTS_SETTLE_MS', 20_000),
  brokerRestart: process.env.MSGFLO_FAULTS_BROKER_RESTART === '1',
  /** Also run kill -9 on a Mosquitto with stock settings (it may drop messages: figures only, nothing asserted). */
  stockMosquitto: process.env.MSGFLO_FAULTS_STOCK_MOSQUITTO === '1',
};

export const RESULTS_DIR = path.join(REPO_ROOT, 'spec', 'faults', 'results');
const PARTICIPANTS = path.join(REPO_ROOT, 'spec', 'faults', 'participants');
/** Delay before a crashed instance is started again: the launcher's first backoff step. */
const RESTART_DELAY_MS = 500;
/** An instance that crashes more often than this in one scenario is left down (a crash loop). */
const MAX_RESTARTS = 20;
/** How often the sink files are read. */
const POLL_MS = 100;

// ── timeline ────────────────────────────────────────────────────────────────────────────────────────────────

/** What happened when, in ms since the scenario's stream started; goes into the results and failure messages. */
export class Timeline {
  readonly t0 = Date.now();
  readonly entries: Array<{ t: number; what: string }> = [];
  note(what: string): void {
    this.entries.push({ t: Date.now() - this.t0, what });
  }
  toString(): string {
    return this.entries.map((e) => `${String(e.t).padStart(7)} ms  ${e.what}`).join('\n');
  }
}

// ── supervised participant instances ────────────────────────────────────────────────────────────────────────

/**
 * One instance of a role: a `msgflo-participant` process, restarted (after RESTART_DELAY_MS, as the launcher would)
 * whenever it exits without being asked to. Output of every incarnation is kept for the logs.
 */
export class Instance {
  readonly name: string;
  handle: CliHandle | undefined;
  restarts = 0;
  private output = '';
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly role: string,
    readonly index: number,
    private readonly file: string,
    private readonly env: Record<string, string>,
    private readonly timeline: Timeline,
  ) {
    this.name = `${role}#${index}`;
  }

  start(): void {
    // A stable instance id, as the launcher gives: on MQTT the restarted process takes back the session the broker
    // kept for it (its unacknowledged messages and its share of the group's), as a restarted participant would.
    const args = [this.file, '--name', this.role, '--instance', String(this.index), '--heartbeat', '1'];
    const handle = startCli('msgflo-participant', args, { env: this.env });
    this.handle = handle;
    this.timeline.note(`${this.name}: started (pid ${handle.pid})`);
    void handle.exited.then((r) => {
      this.output += `--- pid ${handle.pid} exited (${r.signal ?? `code ${r.code}`})\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}\n`;
      if (this.stopping || this.handle !== handle) return;
      this.timeline.note(`${this.name}: pid ${handle.pid} exited unexpectedly (${r.signal ?? `code ${r.code}`})`);
      if (this.restarts >= MAX_RESTARTS) {
        this.timeline.note(`${this.name}: crash loop, not restarted`);
        return;
      }
      this.restartTimer = setTimeout(() => {
        if (this.stopping) return;
        this.restarts++;
        this.start();
      }, RESTART_DELAY_MS);
    });
  }

  get pid(): number | undefined {
    return this.handle && !this.handle.done ? this.handle.pid : undefined;
  }

  /** kill -9 the current process (the supervisor starts it again). */
  kill9(): number | undefined {
    const pid = this.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    return pid;
  }

  ready(timeoutMs = 30_000): Promise<unknown> {
    return this.handle!.waitForOutput(/connected to/, { stream: 'stdout', timeoutMs });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.handle && !this.handle.done) await this.handle.stop('SIGTERM', 10_000);
  }

  /** Output of every incarnation, the current one included. */
  logs(): string {
    const h = this.handle;
    const live = h && !h.done ? `--- pid ${h.pid} (running)\n--- stdout:\n${h.stdout}\n--- stderr:\n${h.stderr}\n` : '';
    return this.output + live;
  }
}

// ── the sink's records ──────────────────────────────────────────────────────────────────────────────────────

interface SinkLine {
  n: number;
  h?: number;
  p?: number[];
  id?: string;
  r?: number;
}

/** Reads the sink files incrementally and keeps count of every number. */
export class SinkReader {
  /** Times each number 0..count-1 arrived. */
  readonly seen: Uint16Array;
  lines = 0;
  duplicates = 0;
  /** Lines that did not pass every hop (h !== 3) or could not be parsed. */
  malformed = 0;
  probes = 0;
  redelivered = 0;
  unique = 0;
  /** Highest number seen so far. */
  maxN = -1;
  lastArrival = 0;
  /** Longest time without any arrival while numbers were outstanding. */
  longestGapMs = 0;
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  readonly duplicateSamples: SinkLine[] = [];
  /** First arrival of each number, ms since the epoch (0: not yet). */
  readonly firstArrival: Float64Array;

  constructor(
    private readonly dir: string,
    readonly count: number,
  ) {
    this.seen = new Uint16Array(count);
    this.firstArrival = new Float64Array(count);
  }

  poll(now = Date.now()): void {
    if (!existsSync(this.dir)) return;
    let got = 0;
    for (const name of readdirSync(this.dir)) {
      const file = path.join(this.dir, name);
      const fd = openSync(file, 'r');
      try {
        const size = fstatSync(fd).size;
        const from = this.offsets.get(file) ?? 0;
        if (size <= from) continue;
        const buf = Buffer.alloc(size - from);
        readSync(fd, buf, 0, buf.length, from);
        this.offsets.set(file, size);
        const text = (this.partial.get(file) ?? '') + buf.toString('utf8');
        const parts = text.split('\n');
        this.partial.set(file, parts.pop() ?? '');
        for (const part of parts) if (part) got += this.take(part, now);
      } finally {
        closeSync(fd);
      }
    }
    if (got > 0) {
      if (this.lastArrival && this.unique - got < this.count) this.longestGapMs = Math.max(this.longestGapMs, now - this.lastArrival);
      this.lastArrival = now;
    }
  }

  private take(text: string, now: number): number {
    let line: SinkLine;
    try {
      line = JSON.parse(text) as SinkLine;
    } catch {
      this.malformed++;
      return 0;
    }
    if (typeof line.n !== 'number') {
      this.malformed++;
      return 0;
    }
    if (line.n < 0) {
      this.probes++;
      return 1;
    }
    if (line.n >= this.count || !Number.isInteger(line.n)) {
      this.malformed++;
      return 0;
    }
    this.lines++;
    if (line.r) this.redelivered++;
    if (line.h !== 3) this.malformed++;
    if (this.seen[line.n]! > 0) {
      this.duplicates++;
      if (this.duplicateSamples.length < 10) this.duplicateSamples.push(line);
    } else {
      this.unique++;
      this.firstArrival[line.n] = now;
    }
    this.seen[line.n] = Math.min(0xffff, this.seen[line.n]! + 1);
    if (line.n > this.maxN) this.maxN = line.n;
    return 1;
  }

  /** Missing numbers in [from, to). */
  missingBetween(from: number, to: number): number {
    let c = 0;
    for (let n = Math.max(0, from); n < Math.min(to, this.count); n++) if (this.seen[n] === 0) c++;
    return c;
  }

  /** Numbers below `sent` never seen, as ranges `a-b`. */
  missing(sent: number, limit = 20): { count: number; ranges: string[] } {
    let count = 0;
    const ranges: string[] = [];
    let start = -1;
    for (let n = 0; n <= sent; n++) {
      const miss = n < sent && this.seen[n] === 0;
      if (miss) {
        count++;
        if (start < 0) start = n;
      } else if (start >= 0) {
        if (ranges.length < limit) ranges.push(start === n - 1 ? `${start}` : `${start}-${n - 1}`);
        start = -1;
      }
    }
    return { count, ranges };
  }
}

// ── the driver: hands numbered chunks to the source ──────────────────────────────────────────────────────────

/**
 * Sends `{from, count}` commands to the source's inqueue on a schedule (`rate` numbers per second). A command is
 * counted as sent once the broker confirmed it; a send that fails or takes over 10 s is retried on a fresh
 * connection (so the driver itself never loses a command; a retry may duplicate one, counted in `retries`).
 */
export class Driver {
  sent = 0;
  /** When each number's command was confirmed (ms since the epoch), by number. */
  confirmedAt = new Float64Array(0);
  retries = 0;
  finishedAt = 0;
  private transport: Transport | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly queue: string,
    private readonly name: string,
    private readonly timeline: Timeline,
  ) {}

  async connect(): Promise<void> {
    this.transport = await connectTransport(this.url, { name: this.name });
  }

  private async reconnect(): Promise<void> {
    const old = this.transport;
    this.transport = undefined;
    await old?.close().catch(() => {});
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        this.transport = await connectTransport(this.url, { name: this.name });
        this.timeline.note('driver: reconnected');
        return;
      } catch {
        await sleep(Math.min(2000, 200 * 2 ** attempt));
      }
    }
  }

  async sendChunk(from: number, count: number): Promise<void> {
    for (;;) {
      if (this.stopped) throw new Error('driver stopped');
      try {
        if (!this.transport) await this.reconnect();
        const t = this.transport!;
        await withTimeout(t.send('inqueue', this.queue, { from, count }), 10_000, `send {from: ${from}}`);
        return;
      } catch (err) {
        this.retries++;
        this.timeline.note(`driver: send of ${from}..${from + count - 1} failed (${(err as Error).message.split('\n')[0]}); retrying`);
        await this.reconnect();
      }
    }
  }

  /** Send numbers 0..total-1 at `rate` per second, `chunk` per command. */
  async run(total: number, rate: number, chunk: number): Promise<void> {
    const start = Date.now();
    this.confirmedAt = new Float64Array(total);
    for (let from = 0; from < total && !this.stopped; from += chunk) {
      const due = start + (from / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const n = Math.min(chunk, total - from);
      await this.sendChunk(from, n);
      this.confirmedAt.fill(Date.now(), from, from + n);
      this.sent = from + n;
    }
    this.finishedAt = Date.now();
    this.timeline.note(`driver: all ${this.sent} numbers sent`);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.transport?.close().catch(() => {});
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no confirm within ${ms} ms`)), ms);
    }),
  ]);
}

// ── brokers under the test's control ─────────────────────────────────────────────────────────────────────────

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export async function commandExists(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Mosquitto settings msgflo-ts's at-least-once guarantee needs (README, Guarantees): no bound on the messages
 * queued for a client (stock Mosquitto keeps 1000 and drops the rest when a consumer falls behind or an instance is
 * away), sessions and retained binding records saved to disk, and no Nagle delay on QoS 1 round trips.
 */
export const RELIABLE_MOSQUITTO_SETTINGS = ['max_queued_messages 0', 'persistence true', 'set_tcp_nodelay true'] as const;

/**
 * A Mosquitto of the test's own, on a free port, configured as RELIABLE_MOSQUITTO_SETTINGS say, with persistence in
 * a temp dir (so sessions and retained binding records survive its restarts, as on a production broker).
 * `restart()` stops it (SIGTERM: it saves its state) and starts it again on the same port: every client's
 * connection is cut.
 */
/**
 * For a before() hook: start a private Mosquitto; without the mosquitto binary, skip the suite (or fail it when
 * brokers are mandatory, as in CI).
 */
export async function startPrivateMosquittoOrSkip(ctx: Mocha.Context, options: { stock?: boolean } = {}): Promise<PrivateMosquitto> {
  if (!(await commandExists('mosquitto'))) {
    if (REQUIRE_BROKERS) throw new Error('the mosquitto binary is needed for these specs');
    ctx.skip();
  }
  const broker = new PrivateMosquitto(options);
  await broker.start();
  return broker;
}

export class PrivateMosquitto {
  port = 0;
  private child: ChildProcess | undefined;
  private dir = '';
  private log = '';

  constructor(private readonly options: { stock?: boolean } = {}) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.dir) {
      const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-faults-mosquitto-'));
      this.dir = dir;
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      this.port = await freePort();
      const conf = [
        `listener ${this.port} 127.0.0.1`,
        'allow_anonymous true',
        ...(this.options.stock ? ['persistence true'] : RELIABLE_MOSQUITTO_SETTINGS),
        `persistence_location ${this.dir}/`,
        'autosave_interval 1',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
      ];
      writeFileSync(path.join(this.dir, 'mosquitto.conf'), `${conf.join('\n')}\n`);
    }
    const child = spawn('mosquitto', ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    await waitFor(async () => child.exitCode === null && (await portOpen(this.port)), `private mosquitto on port ${this.port}\n${this.log}`, 10_000, 50);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async restart(downMs = 1000): Promise<void> {
    await this.stop();
    await sleep(downMs);
    await this.start();
  }

  logs(): string {
    return this.log;
  }
}

/** RabbitMQ connections (pid, connection name) as `rabbitmqctl list_connections` shows them. */
export async function rabbitConnections(): Promise<Array<{ pid: string; name: string }>> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '-q'], { timeout: 30_000 });
  const out: Array<{ pid: string; name: string }> = [];
  for (const line of stdout.split('\n')) {
    const [pid, props] = line.split('\t');
    const m = props ? /\{"connection_name","([^"]*)"\}/.exec(props) : null;
    if (pid && m) out.push({ pid: pid.trim(), name: m[1]! });
  }
  return out;
}

/** Close only the connections whose name is one of `names` (RabbitMQ is shared with other test runs). */
export async function closeRabbitConnections(names: ReadonlySet<string>, reason: string): Promise<number> {
  const mine = (await rabbitConnections()).filter((c) => names.has(c.name));
  await Promise.all(mine.map((c) => run('rabbitmqctl', ['close_connection', c.pid, reason], { timeout: 30_000 }).catch(() => undefined)));
  return mine.length;
}

/** `rabbitmqctl stop_app`, a pause, `start_app`; resolves once the AMQP port answers again. */
export async function restartRabbit(downMs: number, amqpPort: number): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
  await sleep(downMs);
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  await waitFor(() => portOpen(amqpPort), 'RabbitMQ back after start_app', 60_000, 200);
}

// ── scenarios ────────────────────────────────────────────────────────────────────────────────────────────────

export type BrokerKind = 'amqp' | 'mqtt';

export interface FaultContext {
  pipeline: Pipeline;
  timeline: Timeline;
}

export interface Fault {
  /** When to inject it: a share (0..1) of the numbers sent. */
  at: number;
  what: string;
  inject(ctx: FaultContext): Promise<void>;
}

export interface Scenario {
  id: string;
  broker: BrokerKind;
  title: string;
  faults: Fault[];
  /** Run on a Mosquitto the test starts (and may restart) itself. */
  privateBroker?: boolean;
}

export interface FaultRecord {
  what: string;
  /** ms since the stream started, when the injection began. */
  atMs: number;
  /** ms since the stream started, when the injection was over (e.g. the broker back after a restart). */
  injectedMs: number;
  /** Numbers sent when the injection began. */
  sentAtStart: number;
  /** Numbers sent when the injection was over. */
  sentAtFault: number;
  /** ms from the end of the injection until the sink got a number sent after it; null: never. */
  recoverMs: number | null;
}

export interface ScenarioResult {
  scenario: string;
  broker: string;
  title: string;
  count: number;
  rate: number;
  instancesPerRole: number;
  sent: number;
  received: number;
  unique: number;
  lost: number;
  duplicated: number;
  redelivered: number;
  malformed: number;
  /** Max over the faults of their time to recover (ms); null when one never recovered. */
  recoverMs: number | null;
  /** End-to-end latency (driver's confirm → sink) of first arrivals, ms. */
  latencyMs: { p50: number; p99: number; max: number };
  /** Numbers lost, by phase: before the first fault, between faults, after the last (by when they were sent). */
  lostByPhase: number[];
  longestGapMs: number;
  /** Last send → every number in (or giving up). */
  drainMs: number;
  durationMs: number;
  driverRetries: number;
  /**
   * MQTT: Mosquitto's "Outgoing messages are being dropped for client …" notices about this run's clients (its
   * queue for a client that falls behind is bounded: max_queued_messages); null when its log cannot be read.
   */
  brokerDrops: number | null;
  /** The machine's load average (1 min) at the end: figures taken on a busy machine are not comparable. */
  loadAverage: number;
  restarts: Record<string, number>;
  faults: FaultRecord[];
  missing: string[];
  duplicateSamples: unknown[];
  passed: boolean;
  timeline: string[];
  logDir: string;
}

// ── the pipeline ─────────────────────────────────────────────────────────────────────────────────────────────

export const HOPS = ['a', 'b', 'c'] as const;

/**
 * src → a → b → c → sink on one broker: a graph file, a `msgflo` coordinator (which discovers the participants and
 * makes the bindings; it launches none of them), `instances` processes per role, and the driver.
 */
export class Pipeline {
  readonly prefix = uniqueName('flt');
  readonly roles: { src: string; a: string; b: string; c: string; sink: string };
  readonly instances: Instance[] = [];
  readonly sinkDir: string;
  readonly workDir: string;
  coordinator: CliHandle | undefined;
  driver: Driver;
  private coordinatorOutput = '';

  constructor(
    readonly url: string,
    readonly timeline: Timeline,
    readonly perRole = CONFIG.instances,
  ) {
    const p = this.prefix;
    this.roles = { src: `${p}src`, a: `${p}a`, b: `${p}b`, c: `${p}c`, sink: `${p}sink` };
    this.workDir = mkdtempSync(path.join(tmpdir(), 'msgflo-faults-'));
    this.sinkDir = path.join(this.workDir, 'sink');
    this.driver = new Driver(url, `${this.roles.src}.IN`, `${p}driver`, timeline);
  }

  get roleNames(): string[] {
    return Object.values(this.roles);
  }

  /** Connection names of the participants (AMQP connection_name = role). */
  get participantConnectionNames(): Set<string> {
    return new Set(this.roleNames);
  }

  instancesOf(role: string): Instance[] {
    return this.instances.filter((i) => i.role === role);
  }

  graph(): string {
    const { src, a, b, c, sink } = this.roles;
    return [
      `${src}(FaultSource) OUT -> IN ${a}(FaultRelay)`,
      `${a} OUT -> IN ${b}(FaultRelay)`,
      `${b} OUT -> IN ${c}(FaultRelay)`,
      `${c} OUT -> IN ${sink}(FaultSink)`,
      '',
    ].join('\n');
  }

  startCoordinator(): CliHandle {
    const file = path.join(this.workDir, 'pipeline.fbp');
    writeFileSync(file, this.graph());
    const handle = startCli('msgflo', ['--graph', file, '--broker', this.url, '--ignore', this.roleNames.join(','), '--forward', '', '--port', '0'], {
      env: { MSGFLO_BROKER: undefined },
    });
    this.coordinator = handle;
    void handle.exited.then((r) => {
      this.coordinatorOutput += `--- msgflo pid ${handle.pid} exited (${r.signal ?? `code ${r.code}`})\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}\n`;
    });
    this.timeline.note(`coordinator: started (pid ${handle.pid})`);
    return handle;
  }

  async start(): Promise<void> {
    const coordinator = this.startCoordinator();
    await coordinator.waitForOutput(/msgflo running|connected to/, { timeoutMs: 20_000 });
    const env = { MSGFLO_BROKER: this.url, MSGFLO_FAULTS_SINK_DIR: this.sinkDir };
    const files: Record<string, string> = { src: 'Source.js', a: 'Relay.js', b: 'Relay.js', c: 'Relay.js', sink: 'Sink.js' };
    for (const [key, role] of Object.entries(this.roles)) {
      for (let i = 0; i < this.perRole; i++) {
        const inst = new Instance(role, i, path.join(PARTICIPANTS, files[key]!), env, this.timeline);
        this.instances.push(inst);
        inst.start();
      }
    }
    await Promise.all(this.instances.map((i) => i.ready()));
    // Every edge bound by the coordinator…
    const { src, a, b, c, sink } = this.roles;
    for (const [from, to] of [
      [src, a],
      [a, b],
      [b, c],
      [c, sink],
    ] as const) {
      await coordinator.waitForOutput(new RegExp(`bound PUBSUB: ${from}\\.OUT -> ${to}\\.IN`), { timeoutMs: 30_000 });
    }
    await this.driver.connect();
    // …and a probe through the whole pipeline.
    const reader = new SinkReader(this.sinkDir, 0);
    let probe = -1;
    await waitFor(
      async () => {
        reader.poll();
        if (reader.probes > 0) return true;
        await this.driver.sendChunk(probe, 1);
        probe -= 1;
        await sleep(400);
        reader.poll();
        return reader.probes > 0;
      },
      'a probe message through the whole pipeline',
      30_000,
      10,
    );
    this.timeline.note('pipeline: ready (probe went through)');
  }

  /** Stop everything this pipeline started (participants gracefully, then the coordinator). */
  async stop(): Promise<void> {
    await this.driver.close();
    await Promise.all(this.instances.map((i) => i.stop()));
    if (this.coordinator && !this.coordinator.done) await this.coordinator.stop('SIGTERM', 10_000);
  }

  coordinatorLogs(): string {
    const h = this.coordinator;
    const live = h && !h.done ? `--- msgflo pid ${h.pid} (running)\n--- stdout:\n${h.stdout}\n--- stderr:\n${h.stderr}\n` : '';
    return this.coordinatorOutput + live;
  }

  /** Write every process's output to `dir`. */
  writeLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'msgflo.log'), this.coordinatorLogs());
    for (const inst of this.instances) writeFileSync(path.join(dir, `${inst.name.replace('#', '-')}.log`), inst.logs());
  }
}

// ── running a scenario ──────────────────────────────────────────────────────────────────────────────────────

/** Run one scenario end to end and return its figures (never throws for a failed guarantee: see `passed`). */
export async function runScenario(scenario: Scenario, url: string, extraLogs?: () => string): Promise<ScenarioResult> {
  const timeline = new Timeline();
  const pipeline = new Pipeline(url, timeline);
  const { count, rate, chunk, settleMs } = CONFIG;
  const reader = new SinkReader(pipeline.sinkDir, count);
  const faults: FaultRecord[] = [];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = path.join(RESULTS_DIR, 'logs', `${stamp}-${scenario.broker}-${scenario.id}`);
  let streamStart = 0;
  let drainMs = 0;
  let poller: NodeJS.Timeout | undefined;
  try {
    await pipeline.start();
    streamStart = Date.now();
    timeline.note(`stream: ${count} numbers at ${rate}/s`);
    poller = setInterval(() => {
      reader.poll();
      for (const f of faults) {
        if (f.recoverMs === null && reader.maxN >= f.sentAtFault) f.recoverMs = Date.now() - streamStart - f.injectedMs;
      }
    }, POLL_MS);
    const driving = pipeline.driver.run(count, rate, chunk);
    const pending = [...scenario.faults].sort((x, y) => x.at - y.at);
    for (const fault of pending) {
      await waitFor(() => pipeline.driver.sent >= fault.at * count || pipeline.driver.finishedAt > 0, `${fault.what} due`, 600_000, 20);
      const atMs = Date.now() - streamStart;
      const sentAtStart = pipeline.driver.sent;
      timeline.note(`fault: ${fault.what} (after ${sentAtStart} sent)`);
      await fault.inject({ pipeline, timeline });
      timeline.note(`fault: ${fault.what}: injected`);
      faults.push({ what: fault.what, atMs, injectedMs: Date.now() - streamStart, sentAtStart, sentAtFault: pipeline.driver.sent, recoverMs: null });
    }
    await driving;
    // Drain: until every number is in, or nothing new arrived for settleMs.
    const lastSend = Date.now();
    for (;;) {
      reader.poll();
      if (reader.unique >= pipeline.driver.sent) break;
      const idleSince = Math.max(reader.lastArrival, lastSend);
      if (Date.now() - idleSince > settleMs) {
        timeline.note(`drain: gave up, nothing arrived for ${settleMs} ms`);
        break;
      }
      await sleep(POLL_MS);
    }
    drainMs = Date.now() - lastSend;
    // Late duplicates (redeliveries still on their way).
    await sleep(1000);
    reader.poll();
    timeline.note(`done: ${reader.unique}/${pipeline.driver.sent} unique, ${reader.duplicates} duplicates`);
  } catch (err) {
    timeline.note(`harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    clearInterval(poller);
    reader.poll();
    await pipeline.stop().catch((err: Error) => timeline.note(`stop failed: ${err.message}`));
    await cleanupRoles(url, pipeline.roleNames).catch((err: Error) => timeline.note(`cleanup failed: ${err.message}`));
    pipeline.writeLogs(logDir);
    // The sink's records, for a closer look at what was lost or duplicated.
    if (existsSync(pipeline.sinkDir)) cpSync(pipeline.sinkDir, path.join(logDir, 'sink'), { recursive: true });
    if (extraLogs) writeFileSync(path.join(logDir, 'broker.log'), extraLogs());
    writeFileSync(path.join(logDir, 'timeline.txt'), timeline.toString());
    rmSync(pipeline.workDir, { recursive: true, force: true });
  }
  const sent = pipeline.driver.sent;
  const missing = reader.missing(sent);
  const restarts: Record<string, number> = {};
  for (const i of pipeline.instances) restarts[i.name] = i.restarts;
  const recoveries = faults.map((f) => f.recoverMs);
  const bounds = [0, ...faults.map((f) => f.sentAtStart), sent];
  const lostByPhase = bounds.slice(1).map((to, i) => reader.missingBetween(bounds[i]!, to));
  const latencies: number[] = [];
  for (let n = 0; n < sent; n++) {
    const at = reader.firstArrival[n]!;
    if (at > 0) latencies.push(Math.max(0, at - pipeline.driver.confirmedAt[n]!));
  }
  latencies.sort((x, y) => x - y);
  const pct = (q: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!) : 0);
  const result: ScenarioResult = {
    scenario: scenario.id,
    broker: scenario.broker,
    title: scenario.title,
    count,
    rate,
    instancesPerRole: pipeline.perRole,
    sent,
    received: reader.lines,
    unique: reader.unique,
    lost: sent - reader.unique,
    duplicated: reader.duplicates,
    redelivered: reader.redelivered,
    malformed: reader.malformed,
    recoverMs: recoveries.length === 0 ? 0 : recoveries.includes(null) ? null : Math.max(...(recoveries as number[])),
    latencyMs: { p50: pct(0.5), p99: pct(0.99), max: pct(1) },
    lostByPhase,
    longestGapMs: reader.longestGapMs,
    drainMs,
    durationMs: streamStart ? Date.now() - streamStart : 0,
    driverRetries: pipeline.driver.retries,
    brokerDrops: scenario.broker === 'mqtt' ? mosquittoDrops(pipeline.prefix, extraLogs?.()) : null,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    restarts,
    faults,
    missing: missing.ranges,
    duplicateSamples: reader.duplicateSamples,
    passed: sent === count && sent - reader.unique === 0 && reader.malformed === 0,
    timeline: timeline.entries.map((e) => `${e.t} ms ${e.what}`),
    logDir: path.relative(REPO_ROOT, logDir),
  };
  writeResult(result, stamp);
  return result;
}

function writeResult(result: ScenarioResult, stamp: string): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${stamp}-${result.broker}-${result.scenario}.json`);
  writeFileSync(file, `${JSON.stringify({ kind: 'msgflo-faults', node: process.version, at: new Date().toISOString(), ...result }, null, 2)}\n`);
  appendFileSync(path.join(RESULTS_DIR, 'latest.ndjson'), `${JSON.stringify({ at: new Date().toISOString(), ...result, timeline: undefined })}\n`);
}

/** The shared Mosquitto's log (Debian's default place), where it says when it drops messages for a client. */
const MOSQUITTO_LOG = process.env.MSGFLO_FAULTS_MOSQUITTO_LOG ?? '/var/log/mosquitto/mosquitto.log';

function mosquittoDrops(prefix: string, privateLog: string | undefined): number | null {
  let text = privateLog;
  if (text === undefined) {
    try {
      text = readFileSync(MOSQUITTO_LOG, 'utf8');
    } catch {
      return null;
    }
  }
  return text.split('\n').filter((l) => l.includes('being dropped for client') && l.includes(prefix)).length;
}

/** A fixed-width table of results, one row per scenario. */
export function resultTable(results: ScenarioResult[]): string {
  const header = ['broker', 'scenario', 'sent', 'received', 'lost', 'dup', 'recover ms', 'gap ms', 'p50/p99 ms', 'drain ms', 'broker drops', 'load', 'result'];
  const rows = results.map((r) => [
    r.broker,
    r.scenario,
    String(r.sent),
    String(r.received),
    String(r.lost),
    String(r.duplicated),
    r.recoverMs === null ? 'never' : String(r.recoverMs),
    String(r.longestGapMs),
    `${r.latencyMs.p50}/${r.latencyMs.p99}`,
    String(r.drainMs),
    r.brokerDrops === null ? '-' : String(r.brokerDrops),
    String(r.loadAverage),
    r.passed ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

/** A failure message with the figures, the timeline and where the logs are. */
export function describeFailure(r: ScenarioResult): string {
  return [
    `${r.broker} ${r.scenario}: sent ${r.sent}/${r.count}, unique ${r.unique}, lost ${r.lost}, duplicated ${r.duplicated}, malformed ${r.malformed}`,
    `missing: ${r.missing.join(', ') || '-'}`,
    `lost by phase (before the first fault, between faults, after the last): ${r.lostByPhase.join(' / ')}`,
    `latency ms: p50 ${r.latencyMs.p50}, p99 ${r.latencyMs.p99}, max ${r.latencyMs.max}; load average ${r.loadAverage}`,
    `broker dropped messages for this run's clients: ${r.brokerDrops === null ? 'unknown (no broker log)' : `${r.brokerDrops} notice(s)`}`,
    `faults: ${r.faults.map((f) => `${f.what} at ${f.atMs} ms → ${f.recoverMs === null ? 'never recovered' : `recovered in ${f.recoverMs} ms`}`).join('; ') || '-'}`,
    `logs: ${r.logDir}`,
    'timeline:',
    ...r.timeline.map((l) => `  ${l}`),
  ].join('\n');
}
