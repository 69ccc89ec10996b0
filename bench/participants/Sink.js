// A msgflo-ts sink for the bench: records every input (count, arrival times, one-way latency) for the harness,
// which drives it over the IPC channel it spawned the participant with.
// MSGFLO_BENCH_FAST=1 makes its inport at-most-once, as the bench's fast modes.
import { defineParticipant } from 'msgflo-ts';
import { Recorder, serve } from '../workers/common.js';

const fast = process.env.MSGFLO_BENCH_FAST === '1';
const recorder = new Recorder();
serve(recorder.handlers());

export default defineParticipant({
  component: 'BenchSink',
  inports: [{ id: 'in', type: 'any', fast }],
  outports: [],
  process: (port, data) => {
    recorder.record(data);
  },
});
