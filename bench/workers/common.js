// Shared by every bench worker process (plain JavaScript: workers run on bare `node`, without tsx, so that the
// bare arm pays no loader cost the msgflo-ts arm does not pay either).
//
// - the message: ≈100-byte JSON `{seq, t, pad}` where `t` is the send time (ms, float, same clock in every process);
// - Recorder: what a sink does with each message (count, arrival times, one-way latency), driven over IPC;
// - socket modes for the bare clients: Nagle on (default), TCP_NODELAY, or TCP_NODELAY with writes coalesced per
//   event-loop turn (cork until setImmediate);
// - a tiny IPC command loop: the harness sends `{id, cmd, ...}`, the worker answers `{type: 'reply', id, ...}`.
import { performance } from 'node:perf_hooks';

/** Milliseconds since the epoch, sub-millisecond resolution, comparable between processes of one machine. */
export function clock() {
  return performance.timeOrigin + performance.now();
}

export const MESSAGE_BYTES = 100;
const PAD = 'x'.repeat(Math.max(0, MESSAGE_BYTES - JSON.stringify({ seq: 100000, t: 1763769600000.123, pad: '' }).length));

/** The bench message: ≈100 bytes of JSON. */
export function message(seq) {
  return { seq, t: clock(), pad: PAD };
}

/** Percentile of a sorted Float64Array (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Growable Float64Array of samples. */
export class Samples {
  constructor() {
    this.values = new Float64Array(1024);
    this.length = 0;
  }
  push(v) {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.length++] = v;
  }
  summary() {
    const sorted = this.values.slice(0, this.length).sort();
    return {
      n: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1] : null,
    };
  }
}

/** Send to the harness, if there is one (and the channel is still open). */
export function toHarness(msg) {
  if (process.connected) process.send(msg);
}

/**
 * Answer the harness's commands: `handlers[cmd](msg)` may return a value or a promise; its (object) result is
 * merged into the reply. A failing handler replies `{error}`.
 */
export function serve(handlers) {
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object' || typeof msg.cmd !== 'string') return;
    const handler = handlers[msg.cmd];
    if (!handler) {
      toHarness({ type: 'reply', id: msg.id, error: `unknown command '${msg.cmd}'` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (result) => toHarness({ type: 'reply', id: msg.id, ...(result ?? {}) }),
        (err) => toHarness({ type: 'reply', id: msg.id, error: String(err?.stack ?? err) }),
      );
  });
  // The harness went away: do not linger.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 2000).unref());
}

/**
 * What a sink records. Arrivals count once `reset()` armed it; progress (messages received) goes to the harness
 * every PROGRESS_EVERY messages and on a short timer, so the producer can keep a bounded window in flight.
 */
export class Recorder {
  static PROGRESS_EVERY = 100;

  constructor() {
    this.armed = false;
    this.count = 0;
    this.first = 0;
    this.last = 0;
    this.latency = new Samples();
    this.reported = 0;
    this.timer = setInterval(() => this.progress(), 10);
    this.timer.unref();
  }

  reset() {
    this.armed = true;
    this.count = 0;
    this.first = 0;
    this.last = 0;
    this.latency = new Samples();
    this.reported = 0;
  }

  record(data) {
    if (!this.armed) return;
    const t = clock();
    if (this.count === 0) this.first = t;
    this.last = t;
    this.count++;
    if (data && typeof data.t === 'number') this.latency.push(t - data.t);
    if (this.count - this.reported >= Recorder.PROGRESS_EVERY) this.progress();
  }

  progress() {
    if (!this.armed || this.count === this.reported) return;
    this.reported = this.count;
    toHarness({ type: 'progress', received: this.count });
  }

  report() {
    this.progress();
    this.armed = false;
    return { count: this.count, first: this.first, last: this.last, latency: this.latency.summary() };
  }

  /** The IPC commands of a sink. */
  handlers() {
    return {
      reset: () => {
        this.reset();
      },
      report: () => this.report(),
    };
  }
}

/**
 * Socket modes: 'default' (Nagle on), 'nodelay' (TCP_NODELAY), 'coalesce' (TCP_NODELAY, and writes made during one
 * event-loop turn leave as one: the socket is corked at the first write and uncorked on setImmediate).
 */
export function setSocketMode(socket, mode) {
  if (!socket || typeof socket.setNoDelay !== 'function') throw new Error('no socket to configure');
  if (!socket.__benchWrite) {
    const write = socket.write;
    socket.__benchWrite = write;
    socket.__benchCoalesce = false;
    let scheduled = false;
    socket.write = function coalescingWrite(...args) {
      if (socket.__benchCoalesce && !scheduled && !socket.destroyed) {
        scheduled = true;
        socket.cork();
        setImmediate(() => {
          scheduled = false;
          socket.uncork();
        });
      }
      return write.apply(this, args);
    };
  }
  socket.setNoDelay(mode !== 'default');
  socket.__benchCoalesce = mode === 'coalesce';
}

/** Parse the JSON options a worker gets as its first argument. */
export function workerArgs() {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: node WORKER \'{"json": "options"}\'');
  return JSON.parse(raw);
}

/** Stop on SIGTERM/SIGINT (and on the harness's `stop` command) with `close`, then exit. */
export function onStop(close) {
  let stopping;
  const stop = () => {
    stopping ??= Promise.resolve()
      .then(close)
      .catch(() => undefined)
      .finally(() => setTimeout(() => process.exit(0), 50));
    return stopping;
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return stop;
}
