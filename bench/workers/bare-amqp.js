// The bare-amqplib baseline of one pipeline stage: what a careful hand-written client does.
//
//   node bench/workers/bare-amqp.js '{"url": "amqp://…", "role": "relay"|"sink", "in": "Q", "out": "X",
//                                   "bindTo": "UPSTREAM", "mode": "fast"|"alo", "prefetch": 50}'
//
// - declares its input queue `in` and (relay) its output fanout exchange `out`, as msgflo-ts participants do
//   (durable in at-least-once mode; transient and auto-deleted in fast mode), and binds `in` to the upstream
//   stage's exchange `bindTo` when given (the first stage is fed through the default exchange);
// - relay: every message is parsed, re-serialised and published to `out`; at-least-once: persistent, on a confirm
//   channel, and the input is acked only once the output is confirmed; fast: transient, no confirm, acked at once;
// - sink: records the message (see Recorder) and acks it;
// - the socket starts with Nagle on; the harness switches it (`socket` command) between default, nodelay and
//   coalesce for each measurement.
import amqp from 'amqplib';
import { Recorder, onStop, serve, setSocketMode, toHarness, workerArgs } from './common.js';

const opts = workerArgs();
const alo = opts.mode === 'alo';
const life = alo ? { durable: true, autoDelete: false } : { durable: false, autoDelete: true };

const conn = await amqp.connect(opts.url, { noDelay: false, clientProperties: { connection_name: `bench-bare-${opts.role}` } });
const socket = conn.connection.stream;
const ch = alo && opts.role === 'relay' ? await conn.createConfirmChannel() : await conn.createChannel();
ch.on('error', (err) => console.error(`bare-amqp ${opts.in}: channel error: ${err.message}`));
await ch.assertQueue(opts.in, life);
if (opts.role === 'relay') await ch.assertExchange(opts.out, 'fanout', life);
if (opts.bindTo) {
  await ch.assertExchange(opts.bindTo, 'fanout', life);
  await ch.bindQueue(opts.in, opts.bindTo, '');
}
await ch.prefetch(opts.prefetch ?? 50);

const recorder = opts.role === 'sink' ? new Recorder() : undefined;
const publishOptions = { contentType: 'application/json', persistent: alo };

const onMessage =
  opts.role === 'sink'
    ? (msg) => {
        recorder.record(JSON.parse(msg.content.toString()));
        ch.ack(msg);
      }
    : alo
      ? (msg) => {
          const body = Buffer.from(JSON.stringify(JSON.parse(msg.content.toString())));
          ch.publish(opts.out, '', body, publishOptions, (err) => {
            if (err) ch.nack(msg, false, false);
            else ch.ack(msg);
          });
        }
      : (msg) => {
          const body = Buffer.from(JSON.stringify(JSON.parse(msg.content.toString())));
          ch.publish(opts.out, '', body, publishOptions);
          ch.ack(msg);
        };

const { consumerTag } = await ch.consume(opts.in, (msg) => msg && onMessage(msg), { noAck: false });

const stop = onStop(async () => {
  await ch.cancel(consumerTag).catch(() => undefined);
  await conn.close().catch(() => undefined);
});
serve({
  ...(recorder ? recorder.handlers() : {}),
  socket: ({ mode }) => setSocketMode(socket, mode),
  stop: () => {
    void stop();
  },
});
toHarness({ type: 'ready' });
