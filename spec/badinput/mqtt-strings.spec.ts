/**
 * Found by the bad-input suite: a body holding a NUL on a typed port was dead-lettered with its JSON error (which
 * quotes the input) in an MQTT 5 user property; Mosquitto drops a client that sends a NUL (or another control,
 * a surrogate, a non-character) in an MQTT string, and mqtt.js sent the same publish again after every reconnect:
 * the participant never received anything again. User properties are now made safe before they are sent.
 */
import assert from 'node:assert/strict';
import { mqttSafeProperties, mqttSafeString } from '../../src/transport/mqtt/message.js';
import { MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { startCli, stopAllClis } from '../helpers/cli.js';
import { connectTransport } from '../../src/transport/index.js';
import { Collector } from '../helpers/wait.js';
import { rawPublisher } from './brokers.js';

describe('MQTT user properties are valid MQTT strings', () => {
  it('replaces NUL, controls, surrogates and non-characters; keeps the rest', () => {
    assert.equal(mqttSafeString('a\u0000b\u0007c\u0085d\uD800e\uFFFEf\u{1FFFF}g'), 'a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf\uFFFDg');
    assert.equal(mqttSafeString('line\nnext\ttab\r'), 'line next tab ');
    assert.equal(mqttSafeString('é漢😀 plain'), 'é漢😀 plain');
    assert.deepEqual(mqttSafeProperties({ 'x-\u0000': 'v\u0000' }), { 'x-\uFFFD': 'v\uFFFD' });
  });
});

describe('a participant on Mosquitto keeps working after a body with a NUL on a typed port @broker', function () {
  this.timeout(30_000);
  before(async function () {
    await requireBroker(this, MQTT_URL);
  });
  afterEach(() => stopAllClis('SIGTERM'));

  it('dead-letters it with MSGFLO_ERR_BAD_JSON and goes on with the next input', async () => {
    const role = uniqueName('nul');
    const p = startCli('msgflo-participant', ['spec/badinput/participants/Typed.js', '--name', role], { env: { MSGFLO_BROKER: MQTT_URL } });
    await p.waitForOutput(/connected to/, { stream: 'stdout' });
    const t = await connectTransport(MQTT_URL, { name: `${role}-test` });
    try {
      const dead = new Collector<string | undefined>();
      const out = new Collector<unknown>();
      await t.tap('outqueue', `dead-${role}.NUM`, (m) => dead.push(m.headers['x-msgflo-code']));
      await t.tap('outqueue', `${role}.OUT`, (m) => out.push(m.data));
      const raw = await rawPublisher(MQTT_URL);
      await raw.toQueue(`${role}.NUM`, Buffer.from([0x00, 0x41]));
      await raw.toQueue(`${role}.NUM`, Buffer.from('42'));
      await raw.close();
      assert.deepEqual(await dead.waitCount(1, 10_000), ['MSGFLO_ERR_BAD_JSON']);
      assert.deepEqual(await out.waitCount(1, 10_000), [{ port: 'num', data: 42 }]);
    } finally {
      await t.close();
    }
  });
});
