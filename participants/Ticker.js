// A source: sends {"n": 1, "msg": "hello 1", "at": ISO time} every `interval` ms (default 1000).
// Send a number to its `interval` inport (e.g. as an IIP) to change the pace; 0 pauses it.
// It starts ticking at once: what it sends before its edges are bound is held by the participant (until a coordinator
// says they are, an input arrives, or MSGFLO_START_WAIT passes), so its first message, hello 1, is not lost.
import { defineParticipant } from 'msgflo-ts';

let timer;
let count = 0;
let emit;

function schedule(ms) {
  clearInterval(timer);
  timer = undefined;
  if (ms > 0) {
    timer = setInterval(() => {
      count += 1;
      emit('out', { n: count, msg: `hello ${count}`, at: new Date().toISOString() });
    }, ms);
  }
}

export default defineParticipant({
  component: 'Ticker',
  label: 'Sends a numbered message at a fixed interval',
  icon: 'clock-o',
  inports: [{ id: 'interval', type: 'number', description: 'milliseconds between messages; 0 pauses' }],
  outports: [{ id: 'out', type: 'object' }],
  start: (send) => {
    emit = send;
    schedule(1000);
  },
  process: (port, data) => {
    const ms = Number(data);
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`interval must be a number of milliseconds ≥ 0, got ${JSON.stringify(data)}`);
    schedule(ms);
  },
  stop: () => schedule(0),
});
