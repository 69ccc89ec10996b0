// A msgflo-ts pipeline stage for the bench: sends every input on unchanged (msgflo's Repeat).
// MSGFLO_BENCH_FAST=1 makes both ports at-most-once (no confirm, transient, QoS 0), as the bench's fast modes.
import { defineParticipant } from 'msgflo-ts';

const fast = process.env.MSGFLO_BENCH_FAST === '1';

export default defineParticipant({
  component: 'BenchRelay',
  inports: [{ id: 'in', type: 'any', fast }],
  outports: [{ id: 'out', type: 'any', fast }],
  process: (port, data, send) => send('out', data),
});
