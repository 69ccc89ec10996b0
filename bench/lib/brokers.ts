/**
 * The brokers a bench run uses:
 * - RabbitMQ: the machine's, in a virtual host of its own (`msgflo-bench`, made with rabbitmqctl when it does not
 *   exist and that is possible; else the URL's own vhost), so that its discovery traffic (the coordinator-scale
 *   workload announces 1,000 participants a second) never reaches other people's coordinators;
 * - Mosquitto: the machine's (stock configuration), and a private one this run starts on a free port with
 *   `set_tcp_nodelay true`;
 * - the embedded broker (aedes, src/broker) in a process of its own.
 */
import { reachable } from '../../spec/helpers/brokers.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { Proc, startWorker } from './proc.js';

const run = promisify(execFile);

export type BrokerId = 'rabbitmq' | 'mosquitto' | 'mosquitto-nodelay' | 'embedded';
export type Protocol = 'amqp' | 'mqtt';
export type Mode = 'fast' | 'alo' | 'qos0' | 'qos1';

export interface Broker {
  id: BrokerId;
  protocol: Protocol;
  /** Full URL (credentials included: never printed). */
  url: string;
  /** What the report says about it. */
  label: string;
  modes: Mode[];
  note?: string;
}

export const MODE_LABEL: Record<Mode, string> = { fast: 'fast', alo: 'at-least-once', qos0: 'QoS 0', qos1: 'QoS 1' };

export const BENCH_VHOST = 'msgflo-bench';

export { reachable };

async function amqpWorks(url: string): Promise<boolean> {
  try {
    const conn = await amqp.connect(url, { timeout: 5000 });
    await conn.close();
    return true;
  } catch {
    return false;
  }
}

function withVhost(url: string, vhost: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
}

/**
 * The AMQP URL to use: MSGFLO_BENCH_AMQP as it is when set; else MSGFLO_TEST_AMQP (or the local default) moved
 * to the bench's own vhost, created with rabbitmqctl if needed and possible.
 */
export async function resolveAmqp(log: (line: string) => void): Promise<{ url: string; note?: string } | undefined> {
  const explicit = process.env.MSGFLO_BENCH_AMQP;
  if (explicit) return (await amqpWorks(explicit)) ? { url: explicit } : undefined;
  const base = process.env.MSGFLO_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672';
  if (!(await reachable(base))) return undefined;
  const own = withVhost(base, BENCH_VHOST);
  if (await amqpWorks(own)) return { url: own };
  const user = decodeURIComponent(new URL(base).username || 'guest');
  try {
    await run('rabbitmqctl', ['add_vhost', BENCH_VHOST], { timeout: 30_000 });
    await run('rabbitmqctl', ['set_permissions', '-p', BENCH_VHOST, user, '.*', '.*', '.*'], { timeout: 30_000 });
    log(`created RabbitMQ vhost '${BENCH_VHOST}' for the bench (rabbitmqctl)`);
    if (await amqpWorks(own)) return { url: own };
  } catch (err) {
    log(`cannot create RabbitMQ vhost '${BENCH_VHOST}' (${(err as Error).message.split('\n')[0]}): using the default vhost`);
  }
  if (!(await amqpWorks(base))) return undefined;
  return { url: base, note: 'default vhost (rabbitmqctl unavailable): the coordinator-scale workload is skipped on RabbitMQ' };
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateMosquitto {
  url: string;
  stop(): Promise<void>;
}

/** Start `mosquitto` with `set_tcp_nodelay true` on a free port (config in a temp dir, removed on stop). */
export async function startPrivateMosquitto(): Promise<PrivateMosquitto | undefined> {
  try {
    await run('mosquitto', ['-h']).catch((err: { code?: unknown; stdout?: string }) => {
      // `mosquitto -h` exits 3 after printing its usage: only a missing binary is a failure.
      if (err.code === 'ENOENT') throw err;
    });
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msgflo-bench-mosquitto-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'set_tcp_nodelay true', 'persistence false', 'log_dest none', ''].join('\n'));
  const { spawn } = await import('node:child_process');
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `mqtt://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await reachable(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`private mosquitto did not start on port ${port}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The embedded broker (dist/broker) in its own process. */
export async function startEmbedded(): Promise<{ url: string; proc: Proc }> {
  const proc = await startWorker('embedded-broker', 'embedded-broker.js', {});
  return { url: String(proc.readyInfo.url), proc };
}
