import { connectTransport } from '../../src/transport/index.js';

/**
 * Remove what a test's roles left on a shared broker: their queues/exchanges (role.PORT and dead-role.PORT) on
 * AMQP, and binding records that mention them on MQTT.
 */
export async function cleanupRoles(url: string, roles: string[], ports = ['IN', 'OUT', 'ERROR', 'INTERVAL']): Promise<void> {
  const t = await connectTransport(url, { name: 'cleanup' });
  try {
    if (t.scheme === 'amqp') {
      for (const role of roles) {
        for (const port of ports) {
          const name = `${role}.${port}`;
          await t.removeQueue('inqueue', name).catch(() => {});
          await t.removeQueue('inqueue', `dead-${name}`).catch(() => {});
          await t.removeQueue('outqueue', name).catch(() => {});
        }
      }
    } else {
      const mine = (q: string) => roles.some((r) => q.startsWith(`${r}.`));
      for (const b of await t.listBindings()) if (mine(b.src) || mine(b.tgt)) await t.removeBinding(b).catch(() => {});
    }
  } finally {
    await t.close();
  }
}
