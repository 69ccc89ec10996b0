/**
 * Child processes of the bench: workers with an IPC channel (commands and replies), their output kept for error
 * reports, CPU time and RSS read from /proc, and a registry so that nothing outlives the harness.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WORKERS = path.join(REPO, 'bench', 'workers');

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** Every live child, so that an interrupted bench stops them all (each by its own pid). */
const live = new Set<Proc>();

export function liveProcs(): Proc[] {
  return [...live];
}

/** Milliseconds since the epoch with sub-ms resolution: the same clock the workers use. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Node options for the child (never the harness's own, which load tsx). */
  execArgv?: string[];
  verbose?: boolean;
}

interface Pending {
  resolve(reply: Record<string, unknown>): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** A child process with an IPC channel. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly startedAt: number;
  /** The worker's 'ready' message, once startWorker() has seen it. */
  readyInfo: Record<string, unknown> = {};
  private output: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<(msg: Record<string, unknown>) => void>>();
  private lineWaiters: Array<{ re: RegExp; resolve(line: string): void }> = [];
  private readonly lineListeners = new Set<(line: string) => void>();
  private readonly verbose: boolean;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(name: string, file: string, args: string[], options: StartOptions = {}) {
    this.name = name;
    this.startedAt = clock();
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The bench's own debug settings must not slow the processes it measures.
    delete env.DEBUG;
    delete env.NODE_OPTIONS;
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    this.child = fork(file, args, {
      cwd: REPO,
      env,
      execArgv: options.execArgv ?? [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(this);
    const keep = (prefix: string) => {
      let rest = '';
      return (chunk: Buffer) => {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) this.onOutput(prefix, line);
      };
    };
    this.child.stdout!.on('data', keep(''));
    this.child.stderr!.on('data', keep('! '));
    this.verbose = options.verbose === true;
    this.child.on('message', (msg: Record<string, unknown>) => this.onMessage(msg));
    this.child.on('error', (err) => this.output.push(`! spawn error: ${err.message}`));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this);
        this.exitInfo = { code, signal };
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`${this.name} exited (${signal ?? `code ${code}`}) before replying\n${this.tail()}`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last lines this process printed (stderr lines start with '! '). */
  tail(lines = 15): string {
    return this.output.slice(-lines).map((l) => `    ${this.name}| ${l}`).join('\n');
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (msg.type === 'reply' && typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (typeof msg.error === 'string') p.reject(new Error(`${this.name}: ${msg.error}`));
      else p.resolve(msg);
      return;
    }
    for (const fn of this.listeners.get(String(msg.type)) ?? []) fn(msg);
  }

  private onOutput(prefix: string, line: string): void {
    if (!line) return;
    this.output.push(`${prefix}${line}`);
    if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    if (this.verbose) process.stderr.write(`  [${this.name}] ${prefix}${line}\n`);
    for (const fn of this.lineListeners) fn(line);
    for (const w of [...this.lineWaiters]) {
      if (w.re.test(line)) {
        this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }

  /** Listen to unsolicited messages of one type (e.g. 'progress'); returns an unsubscribe function. */
  on(type: string, fn: (msg: Record<string, unknown>) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  /** Call `fn` with every line the process prints from now on; returns an unsubscribe function. */
  onLine(fn: (line: string) => void): () => void {
    this.lineListeners.add(fn);
    return () => this.lineListeners.delete(fn);
  }

  /** Send without expecting a reply. */
  post(msg: Record<string, unknown>): void {
    if (this.child.connected) this.child.send(msg);
  }

  /** Send a command and wait for its reply. */
  call<T = Record<string, unknown>>(cmd: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (!this.running || !this.child.connected) return Promise.reject(new Error(`${this.name} is not running\n${this.tail()}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no reply to '${cmd}' within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (r: Record<string, unknown>) => void, reject, timer });
      this.child.send({ ...params, id, cmd });
    });
  }

  /** Resolve with the first message of `type` (e.g. 'ready'); reject if the process exits or time runs out. */
  waitFor(type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return this.race(
      new Promise((resolve) => {
        const off = this.on(type, (msg) => {
          off();
          resolve(msg);
        });
      }),
      `a '${type}' message`,
      timeoutMs,
    );
  }

  /** Resolve with the first output line matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    for (const line of this.output) if (re.test(line)) return Promise.resolve(line);
    return this.race(new Promise((resolve) => this.lineWaiters.push({ re, resolve })), `output matching ${re}`, timeoutMs);
  }

  private race<T>(p: Promise<T>, what: string, timeoutMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      this.exited.then(({ code, signal }) => {
        throw new Error(`${this.name} exited (${signal ?? `code ${code}`}) while waiting for ${what}\n${this.tail()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** CPU time (user + system) used so far, in ms; undefined once the process is gone. */
  cpuMs(): number | undefined {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
    } catch {
      return undefined;
    }
  }

  /** Resident set size in MB (and the peak, VmHWM); undefined once the process is gone. */
  memory(): { rss: number; peak: number } | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
      return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
    } catch {
      return undefined;
    }
  }

  /** SIGTERM (graceful), then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running) this.child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited.then(() => undefined), killed]);
    clearTimeout(timer);
    await this.exited;
  }
}

/** Start a worker from bench/workers with its JSON options, and wait for its 'ready' message. */
export async function startWorker(name: string, file: string, options: object, start: StartOptions = {}, timeoutMs = 20_000): Promise<Proc> {
  const proc = new Proc(name, path.join(WORKERS, file), [JSON.stringify(options)], start);
  try {
    proc.readyInfo = await proc.waitFor('ready', timeoutMs);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return proc;
}

/** Stop several processes at once. */
export async function stopAll(procs: Proc[], graceMs = 5000): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(graceMs)));
}

/** Samples the RSS of some processes while a measurement runs; `stop()` gives each one's peak in MB. */
export class RssSampler {
  private readonly peaks = new Map<Proc, number>();
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly procs: Proc[], everyMs = 200) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  private sample(): void {
    for (const p of this.procs) {
      const m = p.memory();
      if (m) this.peaks.set(p, Math.max(this.peaks.get(p) ?? 0, m.rss));
    }
  }
  stop(): Map<Proc, number> {
    clearInterval(this.timer);
    this.sample();
    return this.peaks;
  }
}
