import path from 'node:path';
import { UsageError } from '../errors.js';
import { SETTINGS, readSetting } from '../settings.js';

/** What a CLI command may touch; tests pass their own. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted when the process receives SIGINT/SIGTERM (long-running commands stop gracefully). */
  signal: AbortSignal;
}

/** Exit codes: 0 success, 1 failure at run time, 2 usage error. */
export const EXIT = { OK: 0, FAIL: 1, USAGE: 2 } as const;

/**
 * The real process's io; SIGINT/SIGTERM abort `signal` (a second signal exits at once). A process started by a
 * coordinator (MSGFLO_PARENT_PID: its pid) stops as on SIGTERM when that coordinator is gone, e.g. killed with
 * -9 before it could stop its children: no orphan keeps running. Throws a SettingError when MSGFLO_PARENT_PID
 * is not a pid.
 */
export function processIO(): CliIO {
  const parent = readSetting(process.env, 'parentPid');
  // Not for our own children: they watch the parent that starts them.
  delete process.env[SETTINGS.parentPid.variable];
  const controller = new AbortController();
  let signalled = 0;
  const onSignal = (sig: NodeJS.Signals | string) => {
    signalled++;
    if (signalled > 1) process.exit(130);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (parent !== undefined) {
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      onSignal('the exit of the coordinator that started it');
    }, 500);
    watch.unref();
  }
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), signal: controller.signal };
}

/** Run a command's main() as the process: sets the exit code, never leaves a rejection unhandled. */
export async function runMain(main: (argv: string[], io: CliIO) => Promise<number>): Promise<void> {
  let io: CliIO;
  try {
    io = processIO();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${path.basename(process.argv[1] ?? 'msgflo', '.js')}: ${err.code}: ${err.message}\n`);
    process.exitCode = EXIT.USAGE;
    return;
  }
  try {
    process.exitCode = await main(process.argv.slice(2), io);
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? String(err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT.FAIL;
  }
  // main() is done: leftover timers or sockets (e.g. a participant's own timers) must not keep the process alive.
  setTimeout(() => process.exit(), 1000).unref();
}
