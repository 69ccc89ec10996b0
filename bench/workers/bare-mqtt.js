// The bare-mqtt.js baseline of one pipeline stage: what a hand-written client does.
//
//   node bench/workers/bare-mqtt.js '{"url": "mqtt://…", "role": "relay"|"sink", "in": "TOPIC", "out": "TOPIC",
//                                    "qos": 0|1}'
//
// - subscribes its input topic with `qos`; a relay parses, re-serialises and publishes each message to `out` with
//   the same QoS; a sink records it (see Recorder).
// - QoS 1 relay: at least once across the stage, as msgflo-ts participants are: the PUBACK of an input is held back
//   until the broker has acknowledged the output it caused (mqtt.js would send it at once; its own hook for later
//   acks, handleMessage, would stop the reading of further packets until then).
// - MQTT 3.1.1, clean session: mqtt.js's defaults.
// - the socket starts with Nagle on; the harness switches it (`socket` command) for each measurement.
import mqtt from 'mqtt';
import { Recorder, onStop, serve, setSocketMode, toHarness, workerArgs } from './common.js';

const opts = workerArgs();
const qos = opts.qos === 0 ? 0 : 1;
const client = await mqtt.connectAsync(opts.url, { clean: true, reconnectPeriod: 0, clientId: `bench-bare-${process.pid}` });
client.on('error', (err) => console.error(`bare-mqtt ${opts.in}: ${err.message}`));

const recorder = opts.role === 'sink' ? new Recorder() : undefined;

/** QoS 1 relay: PUBACKs held until the output is acknowledged, by message id. */
const held = new Map();
if (opts.role === 'relay' && qos === 1) {
  const sendPacket = client._sendPacket.bind(client);
  client._sendPacket = (packet, cb, ...rest) => {
    const hold = packet.cmd === 'puback' ? held.get(packet.messageId) : undefined;
    if (!hold) return sendPacket(packet, cb, ...rest);
    if (hold.outputAcked) {
      held.delete(packet.messageId);
      return sendPacket(packet, cb, ...rest);
    }
    hold.puback = () => sendPacket(packet, undefined, ...rest);
    cb?.(); // mqtt.js goes on reading; the PUBACK leaves when the output is acknowledged
  };
}

client.on(
  'message',
  opts.role === 'sink'
    ? (_topic, payload) => recorder.record(JSON.parse(payload.toString()))
    : qos === 1
      ? (_topic, payload, packet) => {
          const hold = { outputAcked: false, puback: undefined };
          held.set(packet.messageId, hold);
          client.publish(opts.out, JSON.stringify(JSON.parse(payload.toString())), { qos }, () => {
            if (!hold.puback) {
              hold.outputAcked = true;
              return;
            }
            held.delete(packet.messageId);
            hold.puback();
          });
        }
      : (_topic, payload) => {
          client.publish(opts.out, JSON.stringify(JSON.parse(payload.toString())), { qos });
        },
);
await client.subscribeAsync(opts.in, { qos });

const stop = onStop(() => client.endAsync());
serve({
  ...(recorder ? recorder.handlers() : {}),
  socket: ({ mode }) => setSocketMode(client.stream, mode),
  stop: () => {
    void stop();
  },
});
toHarness({ type: 'ready' });
