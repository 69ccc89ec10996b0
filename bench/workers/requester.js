// The bench requester: sequential request/reply round trips through an echo stage (a msgflo-ts participant or a
// bare relay), one at a time, timing each with the monotonic clock of this one process.
//
//   node bench/workers/requester.js '{"protocol": "amqp"|"mqtt", "url": "…", "mode": "fast"|"alo"|"qos0"|"qos1"}'
//
// Commands: listen({source, bindTo}) (where replies arrive: a queue this client declares and binds to the echo's
//           exchange `bindTo`, or a topic);
//           rr({target, source, count, maxMs, timeoutMs}) → {n, p50, p99, max, elapsed, error?};
//           ping({target, source, everyMs, timeoutMs}) → {at}: send a message every `everyMs` until the first reply
//           arrives, and say when (clock(): for start-up times, compared with the harness's spawn time); stop.
import { performance } from 'node:perf_hooks';
import { connectClient } from './client.js';
import { Samples, clock, message, onStop, serve, toHarness, workerArgs } from './common.js';

const opts = workerArgs();
const client = await connectClient(opts.protocol, opts.url, opts.mode, 'requester');
/** The reply awaited, by source. */
const waiting = new Map();

async function listen({ source, bindTo }) {
  await client.listen(
    source,
    (data) => {
      const w = waiting.get(source);
      if (w && (w.seq === undefined || data?.seq === w.seq)) w.resolve();
    },
    bindTo,
  );
}

async function rr({ target, source, count, maxMs, timeoutMs }) {
  const samples = new Samples();
  const start = performance.now();
  let error;
  for (let seq = 0; seq < count && performance.now() - start < maxMs; seq++) {
    const t = performance.now();
    const replied = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to request ${seq} within ${timeoutMs} ms`)), timeoutMs);
      waiting.set(source, {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
    if (!client.publish(target, message(seq))) await new Promise((r) => client.onDrain(r));
    try {
      await replied;
    } catch (err) {
      error = err.message;
      break;
    } finally {
      waiting.delete(source);
    }
    samples.push(performance.now() - t);
  }
  return { ...samples.summary(), elapsed: performance.now() - start, ...(error ? { error } : {}) };
}

function ping({ target, source, everyMs, timeoutMs }) {
  return new Promise((resolve, reject) => {
    let seq = 0;
    const send = () => client.publish(target, message(seq++));
    const timer = setInterval(send, everyMs);
    const deadline = setTimeout(() => {
      done();
      reject(new Error(`no reply on '${source}' within ${timeoutMs} ms (${seq} pings sent)`));
    }, timeoutMs);
    const done = () => {
      clearInterval(timer);
      clearTimeout(deadline);
      waiting.delete(source);
    };
    waiting.set(source, {
      seq: undefined,
      resolve: () => {
        const at = clock();
        done();
        resolve({ at, sent: seq });
      },
    });
    send();
  });
}

const stop = onStop(() => client.close());
serve({ listen, rr, ping, stop: () => void stop() });
toHarness({ type: 'ready' });
