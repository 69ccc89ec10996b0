/**
 * Brokers for the bad-input suite: a RabbitMQ vhost of its own (so that a thousand invalid discovery messages on
 * the `fbp` exchange reach no other test run's coordinator), and raw publishers that can send bytes which are not
 * JSON (the transports only send JSON).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import mqtt from 'mqtt';
import { uniqueName } from '../helpers/brokers.js';

const run = promisify(execFile);

export interface PrivateVhost {
  /** The broker URL pointing at the vhost (or the URL as given when no vhost could be made). */
  url: string;
  /** Whether the vhost is ours alone. */
  isolated: boolean;
  remove(): Promise<void>;
}

/** Make a vhost with `rabbitmqctl` (same machine) and give the URL's user every permission on it. */
export async function privateVhost(baseUrl: string): Promise<PrivateVhost> {
  const u = new URL(baseUrl);
  const vhost = uniqueName('msgflo-badinput-');
  const user = decodeURIComponent(u.username) || 'guest';
  try {
    await run('rabbitmqctl', ['add_vhost', vhost], { timeout: 30_000 });
    await run('rabbitmqctl', ['set_permissions', '-p', vhost, user, '.*', '.*', '.*'], { timeout: 30_000 });
  } catch {
    return { url: baseUrl, isolated: false, remove: async () => {} };
  }
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    url: u.toString(),
    isolated: true,
    remove: async () => {
      await run('rabbitmqctl', ['delete_vhost', vhost], { timeout: 30_000 }).catch(() => undefined);
    },
  };
}

/** Publishes are pipelined: every BATCH-th call (and flush/close) waits until all so far are confirmed. */
const BATCH = 50;

export interface RawPublisher {
  /** Publish bytes to a queue (AMQP: default exchange; MQTT: topic). */
  toQueue(queue: string, body: Buffer): Promise<void>;
  /** AMQP only: publish to an exchange, with headers. */
  toExchange(exchange: string, body: Buffer, headers?: Record<string, string>): Promise<void>;
  /** Wait until the broker confirmed everything published so far. */
  flush(): Promise<void>;
  /** Flush, then disconnect. */
  close(): Promise<void>;
}

export async function rawPublisher(url: string): Promise<RawPublisher> {
  if (url.startsWith('amqp')) {
    const conn = await amqplib.connect(url, { clientProperties: { connection_name: 'msgflo-badinput' } });
    const ch = await conn.createConfirmChannel();
    let count = 0;
    const sent = async () => {
      if (++count % BATCH === 0) await ch.waitForConfirms();
    };
    return {
      async toQueue(queue, body) {
        ch.sendToQueue(queue, body, { persistent: true });
        await sent();
      },
      async toExchange(exchange, body, headers) {
        ch.publish(exchange, '', body, { persistent: true, ...(headers ? { headers } : {}) });
        await sent();
      },
      async flush() {
        await ch.waitForConfirms();
      },
      async close() {
        await ch.waitForConfirms().catch(() => undefined);
        await ch.close().catch(() => undefined);
        await conn.close().catch(() => undefined);
      },
    };
  }
  const client = await mqtt.connectAsync(url, { clientId: uniqueName('msgflo-badinput-'), reconnectPeriod: 0 });
  let pending: Promise<unknown>[] = [];
  const flush = async () => {
    const all = pending;
    pending = [];
    await Promise.all(all);
  };
  return {
    async toQueue(topic, body) {
      pending.push(client.publishAsync(topic, body, { qos: 1 }));
      if (pending.length >= BATCH) await flush();
    },
    async toExchange() {
      throw new Error('MQTT has no exchanges');
    },
    flush,
    async close() {
      await flush().catch(() => undefined);
      await client.endAsync().catch(() => undefined);
    },
  };
}
