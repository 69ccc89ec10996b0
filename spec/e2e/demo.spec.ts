/**
 * End to end: `npm start` (msgflo --graph graphs/demo.fbp) shows the Ticker's first message, HELLO 1, first: the
 * ticker holds what it sends until the coordinator has bound its edges (src/participant/start-gate.ts). Before,
 * on a busy machine the first messages left before the edges existed and were lost (HELLO 2 or 3 came first).
 * On the embedded broker as `npm start` runs it, and on Mosquitto and RabbitMQ (roles prefixed: shared brokers).
 */
import assert from 'node:assert/strict';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { startCli, stopAllClis } from '../helpers/cli.js';

const WHERE = [
  { name: 'the embedded broker (npm start)', broker: undefined },
  { name: 'Mosquitto @broker', broker: MQTT_URL },
  { name: 'RabbitMQ @broker', broker: AMQP_URL },
] as const;

for (const { name, broker } of WHERE) {
  describe(`e2e: the demo graph on ${name}`, function () {
    this.timeout(60_000);
    const prefix = broker ? `${uniqueName('demo')}-` : '';

    before(async function () {
      if (broker) await requireBroker(this, broker);
    });
    after(async () => {
      await stopAllClis('SIGTERM');
      if (broker) await cleanupRoles(broker, ['ticker', 'upper', 'print'].map((n) => `${prefix}${n}`));
    });

    it('prints HELLO 1 first: the ticker loses nothing at start', async () => {
      const args = ['--graph', 'graphs/demo.fbp', '--port', '0', ...(prefix ? ['--role-prefix', prefix] : [])];
      const msgflo = startCli('msgflo', args, { env: { MSGFLO_BROKER: broker } });
      const [, first] = await msgflo.waitForOutput(/PRINT\[\S*print\] (\{.*\})\n/, { stream: 'stdout', timeoutMs: 45_000 });
      const message = JSON.parse(first!) as { n: number; msg: string };
      assert.deepEqual({ n: message.n, msg: message.msg }, { n: 1, msg: 'HELLO 1' }, msgflo.stdout);
      const result = await msgflo.stop('SIGTERM', 10_000);
      assert.equal(result.code, 0, result.stderr);
    });
  });
}
