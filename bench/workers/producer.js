// The bench producer: publishes bench messages to the entry of a pipeline for a given time, keeping at most
// `window` messages ahead of what the slowest sink has received (the harness forwards the sinks' progress as
// `{type: 'credit', received}`), so queues stay short and the broker is not flooded.
//
//   node bench/workers/producer.js '{"protocol": "amqp"|"mqtt", "url": "…", "mode": "fast"|"alo"|"qos0"|"qos1"}'
//
// Commands: run({target, durationMs, window}) → {sent, forgiven, t0, t1}; stop.
// At-most-once modes may lose messages: when no credit comes for STALL_MS while the window is full, the missing
// ones are written off (`forgiven`) and the producer goes on.
import { connectClient } from './client.js';
import { clock, message, onStop, serve, toHarness, workerArgs } from './common.js';

const STALL_MS = 300;
const BATCH = 256;

const opts = workerArgs();
const client = await connectClient(opts.protocol, opts.url, opts.mode, 'producer');

let credit = 0;
let forgiven = 0;
let lastCredit = 0;
let wake;

process.on('message', (msg) => {
  if (msg?.type !== 'credit') return;
  const c = msg.received + forgiven;
  if (c > credit) {
    credit = c;
    lastCredit = clock();
    wake?.();
  }
});

function run({ target, durationMs, window }) {
  credit = 0;
  forgiven = 0;
  let sent = 0;
  const t0 = clock();
  const end = t0 + durationMs;
  lastCredit = t0;
  return new Promise((resolve) => {
    let finished = false;
    let waitingDrain = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      wake = undefined;
      resolve({ sent, forgiven, t0, t1: clock() });
    };
    const pump = () => {
      if (finished || waitingDrain) return;
      if (clock() >= end) return finish();
      let n = 0;
      while (sent - credit < window && n < BATCH) {
        const ok = client.publish(target, message(sent));
        sent++;
        n++;
        if (!ok) {
          waitingDrain = true;
          client.onDrain(() => {
            waitingDrain = false;
            pump();
          });
          return;
        }
      }
      if (n === BATCH) setImmediate(pump);
    };
    wake = pump;
    const watchdog = setInterval(() => {
      if (clock() >= end) return finish();
      if (sent - credit >= window && clock() - lastCredit > STALL_MS) {
        forgiven += sent - credit;
        credit = sent;
        lastCredit = clock();
        pump();
      }
    }, 20);
    pump();
  });
}

const stop = onStop(() => client.close());
serve({ run, stop: () => void stop() });
toHarness({ type: 'ready' });
