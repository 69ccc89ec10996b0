import assert from 'node:assert/strict';
import { ErrorCodes } from '../../src/errors.js';
import { watchNetwork } from '../../src/participant/watch.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Delivery, InMessage, Transport } from '../../src/transport/types.js';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { startCli, stopAllClis } from '../helpers/cli.js';
import { Collector, waitFor } from '../helpers/wait.js';

const PORTS = ['TEMPERATURE', 'SETPOINT', 'POWER', 'HEATER', 'ALARM', 'ERROR'];

for (const [name, url] of [
  ['RabbitMQ', AMQP_URL],
  ['Mosquitto', MQTT_URL],
] as const) {
  describe(`a statechart participant process (participants/Thermostat.js) on ${name} @broker`, function () {
    this.timeout(60_000);
    const roles: string[] = [];
    let t: Transport;

    before(async function () {
      await requireBroker(this, url);
      t = await connectTransport(url, { name: 'thermostat-spec', keyring: null });
    });
    after(async () => {
      await t?.close();
      await cleanupRoles(url, roles, PORTS);
    });
    afterEach(() => stopAllClis('SIGTERM'));

    it('runs parallel regions, guards, delayed transitions and survives a throwing chart and bad payloads', async () => {
      const role = uniqueName('thermo');
      roles.push(role);
      const heater = new Collector<InMessage>();
      const alarm = new Collector<InMessage>();
      const errors = new Collector<InMessage>();
      const dead = new Collector<Delivery>();
      const env = { MSGFLO_BROKER: url, THERMOSTAT_STALE_MS: '800', MSGFLO_KEY: undefined, MSGFLO_KEY_FILE: undefined };
      const p = startCli('msgflo-participant', ['participants/Thermostat.js', '--name', role], { env });
      await p.waitForOutput(/connected to/, { timeoutMs: 20_000 });
      await t.tap('outqueue', `${role}.HEATER`, heater.push);
      await t.tap('outqueue', `${role}.ALARM`, alarm.push);
      await t.tap('outqueue', `${role}.ERROR`, errors.push);
      for (const port of ['SETPOINT', 'TEMPERATURE']) {
        await t.subscribe(`dead-${role}.${port}`, (d) => {
          void d.ack();
          dead.push(d);
        });
      }
      const send = (port: string, data: unknown) => t.send('inqueue', `${role}.${port}`, data);
      // Inports are separate queues: to send in order, wait until the chart has taken each input (its spy).
      const watcher = await watchNetwork(t, { roles: [role] });
      const took = (signal: string) => waitFor(() => watcher.chart(role).spy().some((l) => l.startsWith(`${signal}:`)), `the chart to take ${signal}`, 10_000);
      await waitFor(() => watcher.chart(role).spy().includes('START'), 'spy switched on', 10_000);

      await send('POWER', true);
      await took('power');
      await send('TEMPERATURE', 15);
      assert.equal((await heater.waitCount(1, 10_000))[0]!.data, true);
      await send('TEMPERATURE', 22);
      assert.equal((await heater.waitCount(2, 10_000))[1]!.data, false);

      // No temperature for 0.8 s: the sensor region goes stale.
      assert.match(String((await alarm.waitCount(1, 10_000))[0]!.data), /no temperature/);

      // A setpoint out of range makes the chart throw: error port, dead letter, and the chart carries on.
      await send('SETPOINT', 99);
      const [refused] = await dead.waitCount(1, 10_000);
      assert.equal(refused!.headers['x-msgflo-code'] ?? (refused!.data as Record<string, string>)['x-msgflo-code'], ErrorCodes.HANDLER);
      assert.match(String((await errors.waitCount(1, 10_000))[0]!.data && (errors.items[0]!.data as { message: string }).message), /setpoint must be a number/);
      await send('SETPOINT', 10);
      await waitFor(() => watcher.chart(role).spy().filter((l) => l.endsWith(':HOOK') && l.startsWith('setpoint:')).length >= 1, 'the new setpoint', 10_000);
      await send('TEMPERATURE', 8);
      assert.equal((await heater.waitCount(3, 10_000))[2]!.data, true, 'the new setpoint applies');

      // A payload that fails the port schema never reaches the chart.
      await send('TEMPERATURE', 'hot');
      const [bad] = (await dead.waitCount(2, 10_000)).slice(1);
      assert.equal(bad!.headers['x-msgflo-code'] ?? (bad!.data as Record<string, string>)['x-msgflo-code'], ErrorCodes.SCHEMA);
      await watcher.close();
    });
  });
}
