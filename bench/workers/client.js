// The bench's own measuring clients (producer, requester): the same in every arm of a row, so that only the
// stages under test differ. They use TCP_NODELAY with writes coalesced per event-loop turn, so they neither stall
// (Nagle + delayed ACK) nor lose throughput to one-segment-per-message writes.
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { setSocketMode } from './common.js';

/**
 * A client for `protocol` ('amqp' | 'mqtt') in `mode` (AMQP: 'fast' | 'alo'; MQTT: 'qos0' | 'qos1').
 * - publish(target, data): AMQP: to the queue `target` through the default exchange; MQTT: to the topic `target`.
 *   Returns false when the caller should wait for `onDrain` before publishing more.
 * - listen(source, handler, bindTo): AMQP: declare the queue `source` (as the stages declare theirs), bind it to the
 *   fanout exchange `bindTo` when given, and consume it; MQTT: subscribe the topic `source`. The handler gets the
 *   parsed JSON.
 */
export async function connectClient(protocol, url, mode, name) {
  return protocol === 'amqp' ? amqpClient(url, mode, name) : mqttClient(url, mode, name);
}

async function amqpClient(url, mode, name) {
  const alo = mode === 'alo';
  const life = alo ? { durable: true, autoDelete: false } : { durable: false, autoDelete: true };
  const conn = await amqp.connect(url, { noDelay: true, clientProperties: { connection_name: `bench-${name}` } });
  setSocketMode(conn.connection.stream, 'coalesce');
  const pub = alo ? await conn.createConfirmChannel() : await conn.createChannel();
  pub.on('error', (err) => console.error(`bench ${name}: channel error: ${err.message}`));
  const sub = await conn.createChannel();
  sub.on('error', (err) => console.error(`bench ${name}: channel error: ${err.message}`));
  const options = { contentType: 'application/json', persistent: alo };
  const noop = () => {};
  return {
    publish(target, data) {
      const body = Buffer.from(JSON.stringify(data));
      return alo ? pub.publish('', target, body, options, noop) : pub.publish('', target, body, options);
    },
    onDrain(fn) {
      pub.once('drain', fn);
    },
    async listen(source, handler, bindTo) {
      await sub.assertQueue(source, life);
      if (bindTo) {
        await sub.assertExchange(bindTo, 'fanout', life);
        await sub.bindQueue(source, bindTo, '');
      }
      await sub.consume(source, (msg) => msg && handler(JSON.parse(msg.content.toString())), { noAck: true });
    },
    async close() {
      if (alo) await pub.waitForConfirms().catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

async function mqttClient(url, mode, name) {
  const qos = mode === 'qos0' ? 0 : 1;
  const client = await mqtt.connectAsync(url, { clean: true, reconnectPeriod: 0, clientId: `bench-${name}-${process.pid}` });
  client.on('error', (err) => console.error(`bench ${name}: ${err.message}`));
  setSocketMode(client.stream, 'coalesce');
  const handlers = new Map();
  client.on('message', (topic, payload) => handlers.get(topic)?.(JSON.parse(payload.toString())));
  return {
    publish(target, data) {
      client.publish(target, JSON.stringify(data), { qos });
      return true;
    },
    onDrain(fn) {
      setImmediate(fn);
    },
    async listen(source, handler) {
      handlers.set(source, handler);
      await client.subscribeAsync(source, { qos });
    },
    async close() {
      await client.endAsync().catch(() => undefined);
    },
  };
}
