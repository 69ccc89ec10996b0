import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** Real brokers for tests. `.ci/run` sets MSGFLO_TEST_REQUIRE_BROKERS=1: then a missing broker fails, never skips. */
export const AMQP_URL = process.env.MSGFLO_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672';
export const MQTT_URL = process.env.MSGFLO_TEST_MQTT ?? 'mqtt://127.0.0.1:1883';
export const REQUIRE_BROKERS = process.env.MSGFLO_TEST_REQUIRE_BROKERS === '1';

/** A unique prefix for queue/role names, so parallel runs on one RabbitMQ never collide. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Whether something listens on the URL's host and port (also used by the bench). */
export function reachable(url: string, timeoutMs = 2000): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol.startsWith('amqp') ? 5672 : 1883));
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(false);
    });
  });
}

/**
 * Call in a `before` hook: skips the suite when the broker is down, unless brokers are mandatory (CI), where it
 * throws so the run goes red.
 */
export async function requireBroker(ctx: { skip(): void }, url: string): Promise<void> {
  if (await reachable(url)) return;
  if (REQUIRE_BROKERS) throw new Error(`Broker ${url} is not reachable and MSGFLO_TEST_REQUIRE_BROKERS=1`);
  ctx.skip();
}
