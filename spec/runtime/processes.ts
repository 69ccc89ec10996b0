/**
 * Finding the processes of one test run by a marker in their environment (/proc/PID/environ, Linux): a runtime
 * started by another tool (fbp-test) and the participants it launched inherit it, so a test can check that
 * none is left behind, and stop exactly those.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from '../helpers/wait.js';

/** Pids of live processes whose environment has `name=value`. */
export function processesWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}`;
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(wanted)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

/**
 * Wait (bounded) until no process carries the marker; returns those still there (after SIGKILLing them, so a
 * failed test leaves nothing behind).
 */
export async function leftBehind(name: string, value: string, timeoutMs = 15_000): Promise<string[]> {
  try {
    await waitFor(() => processesWithEnv(name, value).length === 0, `processes with ${name}=${value} to exit`, timeoutMs, 100);
    return [];
  } catch {
    const pids = processesWithEnv(name, value);
    const described = pids.map((pid) => {
      try {
        return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`;
      } catch {
        return String(pid);
      }
    });
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    return described;
  }
}
