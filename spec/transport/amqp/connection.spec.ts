/**
 * AMQP connections: a masked URL, coded connect failures (credentials, vhost, port, host), and a dropped socket reported as disconnect.
 * The transport conformance suite (spec/transport/conformance.ts) covers what every transport does.
 */
import assert from 'node:assert/strict';
import type { ChannelModel } from 'amqplib';
import { BrokerAuthError, BrokerUnreachableError, TransportClosedError } from '../../../src/errors.js';
import { AmqpTransport } from '../../../src/transport/amqp/index.js';
import { connectionSocket } from '../../../src/transport/amqp/internals.js';
import type { TransportEvent } from '../../../src/transport/types.js';
import { AMQP_URL, uniqueName } from '../../helpers/brokers.js';
import { waitFor } from '../../helpers/wait.js';
import { amqpFixture } from './fixture.js';

describe('AmqpTransport connection @broker', function () {
  this.timeout(20000);
  const { transport } = amqpFixture();

  it('masks the password in its url', () => {
    const t = new AmqpTransport('amqp://user:s3cret@127.0.0.1:5672/vh', {});
    assert.equal(t.url.includes('s3cret'), false);
    assert.match(t.url, /user:\*\*\*@/);
    assert.equal(t.scheme, 'amqp');
    assert.equal(t.brokerBindings, true);
  });

  it('reports wrong credentials as BrokerAuthError without the password', async () => {
    const u = new URL(AMQP_URL);
    u.username = 'msgflo-nobody';
    u.password = 'wrong-pass-xyz';
    const t = new AmqpTransport(u.toString(), {});
    await assert.rejects(t.connect(), (err: unknown) => {
      assert.ok(err instanceof BrokerAuthError, String(err));
      assert.equal(err.code, 'MSGFLO_ERR_BROKER_AUTH');
      assert.equal(err.message.includes('wrong-pass-xyz'), false);
      assert.match(err.message, /msgflo-nobody:\*\*\*@/);
      return true;
    });
    await t.close();
  });

  it('reports a refused virtual host as BrokerAuthError', async () => {
    const u = new URL(AMQP_URL);
    u.pathname = `/${uniqueName('novhost')}`;
    await assert.rejects(new AmqpTransport(u.toString(), {}).connect(), (err: unknown) => {
      assert.ok(err instanceof BrokerAuthError, String(err));
      assert.match(String((err.cause as Error).message), /virtual host/);
      return true;
    });
  });

  it('reports a closed port as BrokerUnreachableError', async () => {
    const t = new AmqpTransport('amqp://guest:topsecret@127.0.0.1:1', {});
    await assert.rejects(t.connect(), (err: unknown) => {
      assert.ok(err instanceof BrokerUnreachableError, String(err));
      assert.match(err.message, /ECONNREFUSED/);
      assert.equal(err.message.includes('topsecret'), false);
      return true;
    });
    await t.close();
  });

  it('reports an unknown host as BrokerUnreachableError', async () => {
    const t = new AmqpTransport('amqp://guest:guest@host.invalid:5672', {});
    await assert.rejects(t.connect(), BrokerUnreachableError);
  });

  it('emits disconnect when the connection drops, and then refuses operations', async () => {
    const t = await transport();
    const events: TransportEvent[] = [];
    t.on((e) => events.push(e));
    // Pull the socket from under the connection (what a broker crash looks like).
    const model = Reflect.get(Reflect.get(t, 'connection') as object, 'model') as ChannelModel;
    connectionSocket(model)!.destroy(new Error('simulated connection reset'));
    await waitFor(() => events.some((e) => e.type === 'disconnect'), 'a disconnect event');
    await assert.rejects(t.send('outqueue', 'x', 1), TransportClosedError);
  });
});
