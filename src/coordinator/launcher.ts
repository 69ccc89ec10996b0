import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessFailedError } from '../errors.js';
import { settingsEnv } from '../settings.js';
import { Backoff } from '../util/backoff.js';
import { logger } from '../util/logger.js';

const log = logger('launcher');

export interface LaunchSpec {
  role: string;
  /** argv: command and arguments (no shell). */
  command: string[];
  /**
   * Instance id of this process within its role, handed over as MSGFLO_INSTANCE (default `0`: one process per role).
   * A restart keeps it, so on MQTT the restarted participant takes back the session the broker kept for it.
   */
  instance?: string;
}

export type LauncherEvent =
  | { type: 'started'; role: string; pid: number; command: string[] }
  | { type: 'exited'; role: string; code: number | null; signal: string | null; expected: boolean }
  | { type: 'restarting'; role: string; inMs: number; restarts: number }
  | { type: 'gave-up'; role: string; error: ProcessFailedError }
  | { type: 'spawn-error'; role: string; error: Error };

export interface LauncherOptions {
  /** Broker URL handed to children as MSGFLO_BROKER. */
  broker: string;
  cwd: string;
  env?: Record<string, string | undefined>;
  /** Where prefixed child output goes (default: process.stdout / process.stderr). */
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  /** Forward child stdout/stderr (default both). */
  forward?: { stdout: boolean; stderr: boolean };
  /** Restart crashed children (default true). */
  restart?: boolean;
  /** Crash-loop limit: give up after this many restarts within `crashWindowMs` (default 5 in 60 s). */
  maxRestarts?: number;
  crashWindowMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long stop waits after SIGTERM before SIGKILL (default 5000 ms). */
  killTimeoutMs?: number;
}

interface Child {
  spec: LaunchSpec;
  process: ChildProcess | undefined;
  stopping: boolean;
  backoff: Backoff;
  crashes: number[];
  restartTimer: NodeJS.Timeout | undefined;
  exited: Promise<void>;
}

/** The folder of our own bin/ shims, put first on children's PATH so `msgflo-participant` etc. resolve. */
const OWN_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin');

/** Our own commands (msgflo-participant, msgflo-register…) run with this Node, whatever PATH says. */
function ownCommand(command: string[]): string[] {
  const [file, ...args] = command;
  const own = file && !file.includes('/') ? path.join(OWN_BIN, `${file}.js`) : undefined;
  return own && existsSync(own) ? [process.execPath, own, ...args] : command;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Safety net: if this process exits without stopping its children, take them down with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) killGroup(child, 'SIGTERM');
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Prefix each line of a stream with the role, as `role | line`. */
function pipeLines(stream: NodeJS.ReadableStream, role: string, out: { write(text: string): unknown }): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) out.write(`${role} | ${line}\n`);
  });
  stream.on('end', () => {
    if (buffered) out.write(`${role} | ${buffered}\n`);
    buffered = '';
  });
}

/** Starts participant processes, prefixes their output, restarts crashed ones with backoff, stops them all. */
export class Launcher extends EventEmitter<{ event: [LauncherEvent] }> {
  private readonly children = new Map<string, Child>();
  private readonly options: LauncherOptions;

  constructor(options: LauncherOptions) {
    super();
    this.options = options;
    installExitHook();
  }

  private emitEvent(event: LauncherEvent): void {
    this.emit('event', event);
  }

  roles(): string[] {
    return [...this.children.keys()];
  }

  pid(role: string): number | undefined {
    return this.children.get(role)?.process?.pid;
  }

  /** Start a participant process for a role (no-op if one runs already). */
  start(spec: LaunchSpec): void {
    if (this.children.has(spec.role)) return;
    const child: Child = {
      spec,
      process: undefined,
      stopping: false,
      backoff: new Backoff({ initialMs: this.options.backoff?.initialMs ?? 500, maxMs: this.options.backoff?.maxMs ?? 30_000 }),
      crashes: [],
      restartTimer: undefined,
      exited: Promise.resolve(),
    };
    this.children.set(spec.role, child);
    this.spawn(child);
  }

  private spawn(child: Child): void {
    const { role, command } = child.spec;
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...this.options.env,
      ...settingsEnv({ broker: this.options.broker, instance: child.spec.instance ?? '0' }),
    };
    env.PATH = [OWN_BIN, path.join(this.options.cwd, 'node_modules', '.bin'), env.PATH].filter(Boolean).join(path.delimiter);
    const forward = this.options.forward ?? { stdout: true, stderr: true };
    const [file, ...args] = ownCommand(command);
    let proc: ChildProcess;
    try {
      proc = spawn(file!, args, { cwd: this.options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      this.emitEvent({ type: 'spawn-error', role, error: err as Error });
      this.onExit(child, null, null);
      return;
    }
    child.process = proc;
    live.add(proc);
    let resolveExit!: () => void;
    child.exited = new Promise((r) => (resolveExit = r));
    pipeLines(proc.stdout!, role, forward.stdout ? (this.options.stdout ?? process.stdout) : { write: () => true });
    pipeLines(proc.stderr!, role, forward.stderr ? (this.options.stderr ?? process.stderr) : { write: () => true });
    proc.on('error', (err) => {
      // ENOENT and friends: 'exit' does not follow, and retrying cannot help.
      log('%s: spawn error %s', role, err.message);
      this.emitEvent({ type: 'spawn-error', role, error: err });
      if (proc.pid === undefined) {
        live.delete(proc);
        resolveExit();
        this.children.delete(role);
        const error = new ProcessFailedError(role, `could not be started: ${err.message} (command: ${command.join(' ')})`);
        this.emitEvent({ type: 'gave-up', role, error });
      }
    });
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolveExit();
      this.onExit(child, code, signal);
    });
    if (proc.pid !== undefined) {
      log('%s: started pid %d: %s', role, proc.pid, command.join(' '));
      this.emitEvent({ type: 'started', role, pid: proc.pid, command });
    }
  }

  private onExit(child: Child, code: number | null, signal: string | null): void {
    const { role } = child.spec;
    const expected = child.stopping;
    this.emitEvent({ type: 'exited', role, code, signal, expected });
    if (expected || this.options.restart === false) {
      if (!expected) this.children.delete(role);
      return;
    }
    const now = Date.now();
    const window = this.options.crashWindowMs ?? 60_000;
    child.crashes = child.crashes.filter((t) => now - t < window);
    child.crashes.push(now);
    const max = this.options.maxRestarts ?? 5;
    if (child.crashes.length > max) {
      const error = new ProcessFailedError(role, `crashed ${child.crashes.length} times within ${Math.round(window / 1000)} s (last exit: ${signal ?? `code ${code}`}); not restarting it again`);
      this.children.delete(role);
      this.emitEvent({ type: 'gave-up', role, error });
      return;
    }
    const inMs = child.backoff.next();
    this.emitEvent({ type: 'restarting', role, inMs, restarts: child.crashes.length });
    child.restartTimer = setTimeout(() => {
      child.restartTimer = undefined;
      if (!child.stopping) this.spawn(child);
    }, inMs);
  }

  /** Stop one role's process: SIGTERM (the participant drains), SIGKILL after killTimeoutMs. */
  async stop(role: string): Promise<void> {
    const child = this.children.get(role);
    if (!child) return;
    // A stop is under way: one SIGTERM is enough (a second one makes a participant exit without draining).
    if (child.stopping) return child.exited;
    child.stopping = true;
    if (child.restartTimer) clearTimeout(child.restartTimer);
    const proc = child.process;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      killGroup(proc, 'SIGTERM');
      const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), this.options.killTimeoutMs ?? 5000);
      await child.exited;
      clearTimeout(timer);
    }
    this.children.delete(role);
  }

  /**
   * Stop a role's process at once (SIGKILL), without waiting for it to drain: for a process that has not started
   * serving yet (it has not announced itself), so has nothing to finish, and would only use CPU finishing its start.
   */
  async kill(role: string): Promise<void> {
    const child = this.children.get(role);
    if (!child) return;
    child.stopping = true;
    if (child.restartTimer) clearTimeout(child.restartTimer);
    const proc = child.process;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      killGroup(proc, 'SIGKILL');
      await child.exited;
    }
    this.children.delete(role);
  }

  /** Stop every process this launcher started. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.children.keys()].map((role) => this.stop(role)));
  }
}
