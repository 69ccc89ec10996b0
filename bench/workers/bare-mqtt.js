// The bare-mqtt.js baseline of one pipeline stage: what a hand-written client does.
//
//   node bench/workers/bare-mqtt.js '{"url": "mqtt://…", "role": "relay"|"sink", "in": "TOPIC", "out": "TOPIC",
//                                    "qos": 0|1}'
//
// - subscribes its input topic with `qos`; a relay parses, re-serialises and publishes each message to `out` with
//   the same QoS; a sink records it (see Recorder). mqtt.js acknowledges QoS 1 deliveries itself.
// - MQTT 3.1.1, clean session: mqtt.js's defaults.
// - the socket starts with Nagle on; the harness switches it (`socket` command) for each measurement.
import mqtt from 'mqtt';
import { Recorder, onStop, serve, setSocketMode, toHarness, workerArgs } from './common.js';

const opts = workerArgs();
const qos = opts.qos === 0 ? 0 : 1;
const client = await mqtt.connectAsync(opts.url, { clean: true, reconnectPeriod: 0, clientId: `bench-bare-${process.pid}` });
client.on('error', (err) => console.error(`bare-mqtt ${opts.in}: ${err.message}`));

const recorder = opts.role === 'sink' ? new Recorder() : undefined;
client.on(
  'message',
  opts.role === 'sink'
    ? (_topic, payload) => recorder.record(JSON.parse(payload.toString()))
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
