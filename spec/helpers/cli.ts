/**
 * Helpers for CLI specs.
 *
 * - `fakeIO()`: a CliIO for calling a command's `main(argv, io)` in-process (captured output, own env, abortable).
 * - `runCli(bin, args)`: spawn a real bin (`bin/<name>.js`, which imports ../dist: build first), wait for it to
 *   exit, and return `{code, signal, stdout, stderr}`; a run that outlives `timeoutMs` is killed and rejects.
 * - `startCli(bin, args)`: spawn a long-running bin and get a handle: `waitForOutput(regex)`, `stop(signal)`,
 *   `exited`. Call `stopAllClis()` in an `afterEach` so that a failed test leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../../src/cli/io.js';

/** The repository root (this file is spec/helpers/cli.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `msgflo-send-message` → `<repo>/bin/msgflo-send-message.js`; a path (with a `/`) is resolved as it is. */
export function binPath(bin: string): string {
  if (bin.includes('/') || bin.includes(path.sep)) return path.resolve(REPO_ROOT, bin);
  return path.join(REPO_ROOT, 'bin', bin.endsWith('.js') ? bin : `${bin}.js`);
}

// ── in-process ──────────────────────────────────────────────────────────────────────────────────────────────

export interface FakeIO {
  io: CliIO;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Simulate SIGINT/SIGTERM: aborts `io.signal`. */
  abort(reason?: string): void;
}

/** A CliIO for `main(argv, io)`. `env` is used as it is (nothing is inherited from process.env). */
export function fakeIO(options: { env?: Record<string, string | undefined>; cwd?: string } = {}): FakeIO {
  let out = '';
  let err = '';
  const controller = new AbortController();
  return {
    io: {
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: (text: string) => (err += text) },
      env: { ...options.env },
      cwd: options.cwd ?? REPO_ROOT,
      signal: controller.signal,
    },
    stdout: () => out,
    stderr: () => err,
    abort: (reason = 'received SIGTERM') => controller.abort(new Error(reason)),
  };
}

// ── child processes ─────────────────────────────────────────────────────────────────────────────────────────

export interface CliOptions {
  /**
   * Environment overrides on top of process.env; a key set to undefined is removed (e.g. `{MSGFLO_BROKER:
   * undefined}` so the developer's own broker setting cannot leak into a test).
   */
  env?: Record<string, string | undefined>;
  /** Do not inherit process.env (only PATH and `env` are passed). */
  cleanEnv?: boolean;
  cwd?: string;
  /** runCli: kill the process (SIGKILL) and reject after this long. Default 15000. */
  timeoutMs?: number;
  /** Written to the process's stdin, which is then closed. Default: stdin closed at once. */
  input?: string;
}

export interface CliResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function environment(options: CliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = options.cleanEnv ? { PATH: process.env.PATH } : { ...process.env };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function describeRun(bin: string, args: readonly string[]): string {
  return [path.basename(bin), ...args].join(' ');
}

export interface CliHandle {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<CliResult>;
  /** Whether the process has exited. */
  readonly done: boolean;
  /**
   * Wait until `pattern` matches the output of `stream` (default: stdout and stderr, each checked on its own);
   * resolves with the match. Rejects when the process exits first or after `timeoutMs` (default 10000), with
   * the output in the message.
   */
  waitForOutput(pattern: RegExp, options?: { stream?: 'stdout' | 'stderr' | 'both'; timeoutMs?: number }): Promise<RegExpMatchArray>;
  /**
   * Send `signal` (default SIGTERM) and wait for the exit; SIGKILL after `timeoutMs` (default 5000), in which
   * case the result has `signal: 'SIGKILL'`.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<CliResult>;
  /** SIGKILL at once (no-op when exited). */
  kill(): void;
}

const running = new Set<CliHandle>();

/** Spawn `node <bin> ...args` and return a handle on it. */
export function startCli(bin: string, args: readonly string[] = [], options: CliOptions = {}): CliHandle {
  const file = binPath(bin);
  const child = spawn(process.execPath, [file, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: environment(options),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let done = false;
  const outputListeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...outputListeners]) l();
  };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk;
    notify();
  });
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    notify();
  });
  child.stdin!.on('error', () => {}); // the process may exit before reading its input
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();

  const exited = new Promise<CliResult>((resolve) => {
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
      // 'close' does not follow a failed spawn.
      if (child.pid === undefined) {
        done = true;
        resolve({ code: null, signal: null, stdout, stderr: `${stderr}${err.message}\n` });
      }
    });
    // 'close' (not 'exit'): all output has been read by then.
    child.on('close', (code, signal) => {
      done = true;
      running.delete(handle);
      notify();
      resolve({ code, signal, stdout, stderr: spawnError ? `${stderr}${spawnError.message}\n` : stderr });
    });
  });

  const handle: CliHandle = {
    child,
    pid: child.pid,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get done() {
      return done;
    },
    exited,
    waitForOutput(pattern, { stream = 'both', timeoutMs = 10_000 } = {}) {
      const what = `${describeRun(file, args)}: output matching ${pattern}`;
      return new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = (): boolean => {
          const texts = stream === 'both' ? [stdout, stderr] : [stream === 'stdout' ? stdout : stderr];
          for (const text of texts) {
            const m = pattern.exec(text);
            if (m) {
              finish();
              resolve(m);
              return true;
            }
          }
          if (done) {
            finish();
            reject(new Error(`${what}: the process exited first\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`));
        }, timeoutMs);
        const listener = (): void => {
          check();
        };
        const finish = (): void => {
          clearTimeout(timer);
          outputListeners.delete(listener);
        };
        if (!check()) outputListeners.add(listener);
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 5000) {
      if (!done) child.kill(signal);
      const timer = setTimeout(() => {
        if (!done) child.kill('SIGKILL');
      }, timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      if (!done) child.kill('SIGKILL');
    },
  };
  running.add(handle);
  return handle;
}

/** Run a bin to completion. Rejects (after SIGKILL) when it runs longer than `timeoutMs`. */
export async function runCli(bin: string, args: readonly string[] = [], options: CliOptions = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const handle = startCli(bin, args, options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      handle.kill();
      void handle.exited.then((r) =>
        reject(new Error(`${describeRun(bin, args)} did not exit within ${timeoutMs} ms\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`)),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([handle.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kill every process started by startCli/runCli that is still running (use in afterEach/after). */
export async function stopAllClis(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  await Promise.all([...running].map((h) => h.stop(signal, 2000)));
}

/** The non-empty lines of `text`, each parsed as JSON (for NDJSON output). */
export function jsonLines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);
}

/** Whether a process with this pid still exists (to check that nothing was left running). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
